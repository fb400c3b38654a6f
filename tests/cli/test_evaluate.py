"""`bundlewise evaluate`: a next-orders backtest on the user's own orders, through the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.data import Workspace
from bundlewise.evaluation.backtest import backtest, default_cutoff

pytestmark = pytest.mark.integration

runner = CliRunner()
START = datetime(2011, 1, 3, 10)
#: Three taste groups, each with its own pair of items bought together.
PAIRS = [("10001", "10002"), ("20001", "20002"), ("30001", "30002")]
FILLERS = [str(40000 + j) for j in range(12)]


def _orders(path: Path) -> Path:
    """30 customers: each buys their group's pair in 4 orders over 8 weeks (plus a filler
    item), and the pair again in the last 4 weeks; fillers are bought alone."""
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, int, datetime, float, float]] = []
    n = 0
    for c in range(30):
        a, b = PAIRS[c % 3]
        customer = 12000.0 + c
        days = [*sorted(rng.choice(56, 4, replace=False)), 60 + int(rng.integers(0, 20))]
        for day in days:
            n += 1
            ts = START + timedelta(days=int(day), minutes=c)
            for item in (a, b, str(rng.choice(FILLERS))):
                rows.append((f"5{n:05d}", item, 1 + int(rng.integers(0, 3)), ts, 2.5, customer))
    table = pa.table(
        {
            "Invoice": [r[0] for r in rows],
            "StockCode": [r[1] for r in rows],
            "Description": [f"ITEM {r[1]}" for r in rows],
            "Quantity": pa.array([r[2] for r in rows], pa.int64()),
            "InvoiceDate": pa.array([r[3] for r in rows], pa.timestamp("ns")),
            "Price": [r[4] for r in rows],
            "Customer ID": [r[5] for r in rows],
            "Country": ["United Kingdom"] * len(rows),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture(scope="module")
def orders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _orders(tmp_path_factory.mktemp("orders") / "orders.parquet")


def test_evaluate_scores_the_bundles_on_next_orders(orders: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "--orders", str(orders), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Next-orders backtest" in result.output and "FBT by lift" in result.output
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert report["n_customers"] == 30  # everyone bought their pair in the test weeks
    methods = {m["method"]: m for m in report["methods"]}
    assert set(methods) == {"bundlewise", "FBT by lift", "popular pairs", "random pairs"}
    # each customer's own pair is their top bundle: a hit at K = 1 for everyone
    assert methods["bundlewise"]["hit_rate"]["1"] == 1.0
    assert methods["random pairs"]["hit_rate"]["1"] < 0.5
    html = (out / "evaluation.html").read_text(encoding="utf-8")
    assert "backtest on next orders" in html and "data:image/png" in html


def test_evaluate_json_is_one_document_and_defaults_to_the_workspace(
    orders: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    ingested = runner.invoke(app, ["ingest", str(orders), "--workspace", str(workspace)])
    assert ingested.exit_code == 0, ingested.output
    result = runner.invoke(
        app, ["evaluate", "--workspace", str(workspace), "--out", str(tmp_path / "o"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # default cutoff: 4 weeks before the last order
    lines = Workspace(workspace).table("order_lines")
    assert report["cutoff"] == default_cutoff(lines, 4).isoformat()
    assert report["source"] == str(workspace)
    assert report["files"] == [str(tmp_path / "o" / f"evaluation.{x}") for x in ("json", "html")]
    assert report == {**backtest(lines), "source": str(workspace), "files": report["files"]}


def test_default_cutoff_keeps_the_last_day_in_the_test_weeks(orders: Path) -> None:
    lines = pa.table({"ts": pa.array([datetime(2011, 3, 31, 17, 5)], pa.timestamp("us"))})
    assert default_cutoff(lines, 4) == datetime(2011, 3, 4)


def _said(result: object) -> str:
    """The output as one line (independent of the terminal width)."""
    return " ".join(str(getattr(result, "output", "")).split())


def test_evaluate_rejects_bad_input_in_one_line(orders: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["evaluate", "--orders", str(orders), "--cutoff", "soon"])
    assert bad.exit_code != 0 and "--cutoff 'soon' is not a date" in _said(bad)
    empty = runner.invoke(app, ["evaluate", "--workspace", str(tmp_path / "nothing")])
    assert empty.exit_code != 0 and "run `bundlewise ingest`" in _said(empty)
    missing = runner.invoke(app, ["evaluate", "--orders", str(tmp_path / "nope.csv")])
    assert missing.exit_code != 0 and "nope.csv: no such file" in _said(missing)
    late = runner.invoke(app, ["evaluate", "--orders", str(orders), "--cutoff", "2012-01-01"])
    assert late.exit_code != 0 and "both must be non-empty" in _said(late)
    for r in (bad, empty, missing, late):
        assert "Traceback" not in r.output
