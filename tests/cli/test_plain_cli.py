"""The command line speaks plainly: verbatim text, one-line errors, exit codes, --json, progress."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_store import CJK_TITLE, MARKUP_TITLE, write_small_store
from rich.console import Console
from typer.testing import CliRunner

from bundlewise import pipeline
from bundlewise.cli import main as cli
from bundlewise.cli.main import app, exit_code
from bundlewise.data import Workspace
from bundlewise.exceptions import (
    BundlewiseError,
    ConfigError,
    DataValidationError,
    GuardrailViolation,
    NotFittedError,
    UsageError,
    WorkspaceError,
)

pytestmark = pytest.mark.integration

runner = CliRunner()


def _snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with the hash of its bytes."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def ingested(small_store: Path, tmp_path: Path) -> Path:
    """A workspace with the small store ingested (not trained)."""
    workspace = Workspace(tmp_path / "ws")
    workspace.ingest(small_store)
    return workspace.path


# -- exit codes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("unknown key"), 2),
        (UsageError("no such file"), 2),
        (DataValidationError("o.csv", "cannot parse", column="Price", row=1, value="x"), 1),
        (WorkspaceError("no trained model"), 1),
        (GuardrailViolation("max_discount", "too deep"), 1),
        (NotFittedError("fit first"), 1),
        (BundlewiseError("anything else"), 1),
    ],
)
def test_usage_errors_exit_2_and_domain_errors_exit_1(error: BundlewiseError, code: int) -> None:
    assert exit_code(error) == code


def test_unknown_config_key_is_a_usage_error_with_its_brackets(
    small_store: Path, tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[colums]\nunit_cost = "cost"\n', encoding="utf-8")
    result = runner.invoke(
        app, ["ingest", str(small_store), "--workspace", str(tmp_path / "ws"), "-c", str(config)]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {config}: unknown section [colums]; expected one of "
        "['cleaning', 'columns', 'composer', 'input', 'learning', 'mining', 'pricing', "
        "'resources', 'spark'] (or the top-level key `engine`).\n"
    )
    assert not (tmp_path / "ws").exists()


def test_bad_data_exits_1_and_leaves_the_workspace_unchanged(
    ingested: Path, tmp_path: Path
) -> None:
    before = _snapshot(ingested)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1,A,[red]thing[/red],2,2010-01-01 10:00:00,abc,17850,United Kingdom\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ingest", str(bad), "--workspace", str(ingested)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert f"error: {bad}: row 1, column 'Price':" in result.stderr
    assert "(value 'abc')" in result.stderr
    assert _snapshot(ingested) == before


def test_train_and_offers_before_their_time_exit_1(ingested: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    result = runner.invoke(app, ["train", "--workspace", str(empty)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no workspace at {empty}: run `bundlewise ingest` (or `bundlewise demo`) first.\n"
    )
    assert not empty.exists()
    before = _snapshot(ingested)
    offers = runner.invoke(app, ["offers", "--workspace", str(ingested), "--customer", "1001"])
    assert offers.exit_code == 1
    assert (
        offers.stderr == f"error: no trained model in {ingested}: run `bundlewise train` first.\n"
    )
    assert _snapshot(ingested) == before


def test_bad_option_value_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["offers", "--customer", "1", "-n", "0", "-w", str(tmp_path)])
    assert result.exit_code == 2
    assert "Invalid value for '-n' / '--n'" in result.stderr


# -- missing files and directories --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "directory"])
@pytest.mark.parametrize("which", ["orders", "catalog", "events"])
def test_a_missing_file_or_a_directory_is_one_line(
    kind: str, which: str, ingested: Path, small_store: Path, tmp_path: Path
) -> None:
    before = _snapshot(ingested)
    wrong = tmp_path / "nope.csv"
    if kind == "directory":
        wrong.mkdir()
    args = ["ingest", str(wrong if which == "orders" else small_store), "-w", str(ingested)]
    if which != "orders":
        args += [f"--{which}", str(wrong)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    expected = (
        f"error: {which} file {wrong} does not exist.\n"
        if kind == "missing"
        else f"error: {which} file {wrong} is a directory; give the file itself.\n"
    )
    assert result.stderr == expected
    assert result.stdout == ""
    assert _snapshot(ingested) == before


def test_demo_with_a_missing_orders_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--orders", str(tmp_path / "x.csv"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: orders file {tmp_path / 'x.csv'} does not exist.\n"
    assert list(tmp_path.iterdir()) == []


def test_error_lines_are_not_wrapped_at_80_columns(ingested: Path, tmp_path: Path) -> None:
    """A long workspace path at COLUMNS=80 stays on one line (through the real console script)."""
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 8))
    deep.mkdir(parents=True)
    workspace = deep / "ws"
    ingested.rename(workspace)
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-m", "bundlewise", "offers", "-w", str(workspace), "--customer", "1001"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 1
    line = f"error: no trained model in {workspace}: run `bundlewise train` first.\n"
    assert len(line) > 300
    assert result.stderr == line
    assert result.stdout == ""


# -- markup is never interpreted ----------------------------------------------------------------


def test_titles_that_look_like_markup_print_verbatim(small_trained: Path) -> None:
    offers = Workspace(small_trained).table("offers").to_pylist()
    customer = next(
        r["customer_id"]
        for r in offers
        if MARKUP_TITLE in r["titles"] and r["customer_id"] != pipeline.ANONYMOUS
    )
    result = runner.invoke(
        app, ["offers", "-w", str(small_trained), "--customer", customer], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert MARKUP_TITLE in result.stdout
    assert CJK_TITLE in result.stdout or "PINK REGENCY TEACUP" in result.stdout


def test_a_message_with_markup_is_printed_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.typer.Exit) as raised, cli._errors():
        raise ConfigError("Add a [columns] table mapping; [/red] and :smile: stay.")
    assert raised.value.exit_code == 2
    assert capsys.readouterr().err == (
        "error: Add a [columns] table mapping; [/red] and :smile: stay.\n"
    )


# -- --json -------------------------------------------------------------------------------------


def test_ingest_json_is_one_document(tmp_path: Path) -> None:
    store = write_small_store(tmp_path / "orders.csv")
    result = runner.invoke(app, ["ingest", str(store), "-w", str(tmp_path / "ws"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["orders"] == str(store)
    assert document["adapter"] == "online_retail_ii"
    assert document["was_already_ingested"] is False
    assert document["n_items"] == 6
    assert document["report"]["n_rows_kept"] == Workspace(tmp_path / "ws").n_order_lines()
    assert Path(document["cleaning_report_path"]).exists()


@pytest.mark.usefixtures("stub_encoder")
def test_train_json_is_one_document(ingested: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", "-w", str(ingested), "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_customers"] == 80
    assert document["n_offers"] == Workspace(ingested).table("offers").num_rows - sum(
        1
        for c in Workspace(ingested).table("offers").column("customer_id").to_pylist()
        if c == pipeline.ANONYMOUS
    )
    assert (
        document["model_version"] == pipeline.last_train_result(Workspace(ingested)).model_version
    )
    assert Path(document["report_path"]).exists() and Path(document["offers_path"]).exists()
    assert re.search(r"\d+/\d+ steps", result.stderr)  # progress went to stderr


def test_offers_json_is_one_document(small_trained: Path) -> None:
    result = runner.invoke(
        app, ["offers", "-w", str(small_trained), "--customer", "1003", "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["customer_id"] == "1003" and document["kind"] == "personalized"
    offers = document["offers"]
    assert [o["offer_rank"] for o in offers] == list(range(1, len(offers) + 1))
    for offer in offers:
        assert offer["price"] == f"{offer['price_minor'] / 100:.2f}"
        assert len(offer["titles"]) == len(offer["item_ids"])
    unknown = runner.invoke(
        app, ["offers", "-w", str(small_trained), "--customer", "new", "--json"]
    )
    assert json.loads(unknown.stdout)["kind"] == "popular"


# -- progress -----------------------------------------------------------------------------------


def test_progress_shows_steps_and_items_done() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=120, force_terminal=False)
    with cli._steps(("mine", "personalize", "store"), out=out) as progress:
        progress("mine")
        progress("personalize")
        for done in range(0, 1201, 300):
            progress("personalize", done, 1200)
        progress("text similarity", 7, 7)  # a step not announced, reported in items only
        progress("store")
    text = buffer.getvalue()
    assert "personalize" in text and "1,200/1,200 items" in text
    assert "7/7 items" in text
    assert "4/4 steps" in text  # the unannounced step counts too


def test_train_renders_a_pipeline_that_reports_items(
    ingested: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result_of = pipeline.TrainResult("v", 1, 0, 1, 1, 1, 0, 0, {"mine": 0.1})

    def fake_train(
        workspace: Workspace, config: object, progress: cli.StepProgress
    ) -> pipeline.TrainResult:
        progress("mine")
        progress("personalize")
        progress("personalize", 0, 40)
        progress("personalize", 40, 40)
        return result_of

    monkeypatch.setattr(pipeline, "train", fake_train)
    result = runner.invoke(app, ["train", "-w", str(ingested)])
    assert result.exit_code == 0, result.output
    assert "40/40 items" in result.stderr
    assert "Model v:" in result.stdout
