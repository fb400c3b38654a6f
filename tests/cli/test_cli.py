"""End-to-end tests of the ``bundlewise`` command line on a slice of the real dataset."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.config import PricingConfig
from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path
from bundlewise.pricing import Guardrails, violated_rules

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """December 2009 and January 2010 of the bundled Online Retail II data (~70k rows)."""
    table = pq.read_table(bundled_dataset_path())
    mask = pc.less(table.column("InvoiceDate"), pa.scalar(datetime(2010, 2, 1), pa.timestamp("ns")))
    path = tmp_path_factory.mktemp("data") / "slice.parquet"
    pq.write_table(table.filter(mask), path)
    return path


@pytest.fixture(scope="module")
def demo_out(real_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--orders", str(real_slice), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "offers for" in result.output
    return out


def test_demo_writes_offers_and_report(demo_out: Path) -> None:
    offers = pq.read_table(demo_out / "offers.parquet")
    expected = {
        "customer_id", "offer_rank", "offer_id", "item_ids", "titles", "n_items", "currency",
        "list_total", "price", "discount", "discount_pct", "p_accept", "expected_profit",
        "binding_rule", "reason", "source", "model_version",
    }  # fmt: skip
    assert expected <= set(offers.column_names)
    assert offers.num_rows > 1000
    rows = offers.to_pylist()
    for row in rows:
        assert row["reason"], row
        assert 2 <= row["n_items"] <= 3
        assert len(set(row["item_ids"])) == row["n_items"]
        assert row["price"] <= row["list_total"]
        assert row["discount"] == row["list_total"] - row["price"]
        assert 0 < row["p_accept"] < 1
        assert isinstance(row["price"], Decimal)
    html = (demo_out / "report.html").read_text(encoding="utf-8")
    for section in ("Cleaning", "Top bundles", "Assumptions", "return_netted", "data:image/png"):
        assert section in html
    assert (demo_out / "cleaning_report.json").exists()


def test_every_customer_with_two_orders_has_offers(demo_out: Path) -> None:
    workspace = Workspace(demo_out / "workspace")
    with workspace.connect(read_only=True) as con:
        repeaters = {
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM order_lines WHERE customer_id IS NOT NULL "
                "GROUP BY customer_id HAVING count(DISTINCT order_id) >= 2"
            ).fetchall()
        }
    offered = set(pq.read_table(demo_out / "offers.parquet").column("customer_id").to_pylist())
    assert repeaters, "the slice should contain repeat customers"
    assert repeaters <= offered


def test_no_offer_breaks_a_guardrail(demo_out: Path) -> None:
    guardrails = Guardrails.from_config(PricingConfig())
    offers = Workspace(demo_out / "workspace").table("offers").to_pylist()
    for row in offers:
        assert (
            violated_rules(
                row["price_minor"], row["list_total_minor"], row["cost_minor"], guardrails
            )
            == []
        ), row
        # The default config has a fairness band, no discount budget and individual prices.
        assert row["binding_rule"] in (
            "optimum",
            "list_total_cap",
            "max_discount",
            "margin_floor",
            "fairness_band",
        )


def test_offers_command_shows_a_customer(demo_out: Path) -> None:
    customer = pq.read_table(demo_out / "offers.parquet").column("customer_id")[0].as_py()
    result = runner.invoke(
        app, ["offers", "--workspace", str(demo_out / "workspace"), "--customer", customer]
    )
    assert result.exit_code == 0, result.output
    assert "personalized" in result.output
    unknown = runner.invoke(
        app, ["offers", "--workspace", str(demo_out / "workspace"), "--customer", "no-such"]
    )
    assert unknown.exit_code == 0, unknown.output
    assert "popular bundles" in unknown.output


def test_ingest_then_train_idempotent(real_slice: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    first = runner.invoke(app, ["ingest", str(real_slice), "--workspace", str(ws)])
    assert first.exit_code == 0, first.output
    n_lines = Workspace(ws).n_order_lines()
    again = runner.invoke(app, ["ingest", str(real_slice), "--workspace", str(ws)])
    assert again.exit_code == 0, again.output
    assert "rows were replaced" in again.output
    reports = list(ws.glob("cleaning_report_*.json"))
    assert len(reports) == 1
    assert '"return_netted"' in reports[0].read_text(encoding="utf-8")
    assert Workspace(ws).n_order_lines() == n_lines
    trained = runner.invoke(app, ["train", "--workspace", str(ws), "--out", str(tmp_path / "o")])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "o" / "offers.parquet").exists()


def test_bad_input_is_one_clear_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "orders.csv"
    bad.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1,A,thing,2,2010-01-01 10:00:00,abc,17850,United Kingdom\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bundlewise", "ingest", str(bad), "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1  # bad data: a domain error
    assert "Traceback" not in result.stderr + result.stdout
    message = " ".join(result.stderr.split())
    assert str(bad) in message.replace(" ", "") or "orders.csv" in message
    assert "row 1" in message and "'Price'" in message and "'abc'" in message


def test_train_before_ingest_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--workspace", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "bundlewise ingest" in result.output


def test_help_explains_each_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "train", "offers", "demo"):
        assert command in result.output
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0
        assert len(sub.output) > 200


def test_offers_before_train_is_a_clear_error(real_slice: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(real_slice), "--workspace", str(ws)]).exit_code == 0
    result = runner.invoke(app, ["offers", "--workspace", str(ws), "--customer", "13085"])
    assert result.exit_code == 1
    assert "bundlewise train" in result.output
