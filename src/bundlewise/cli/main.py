"""The ``bundlewise`` command line: a thin wrapper over :mod:`bundlewise.pipeline`.

Configuration precedence is resolved here, never in library constructors: defaults < the TOML
file given with ``--config`` < command-line flags.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bundlewise import pipeline
from bundlewise._version import __version__
from bundlewise.config import ENGINES, Config, load_config
from bundlewise.data import CleaningReport, Workspace
from bundlewise.exceptions import BundlewiseError, ConfigError, UsageError
from bundlewise.money import format_money, from_minor_units

app = typer.Typer(
    name="bundlewise",
    help="Personalized product bundles with guard-railed prices, from a store's order history.\n\n"
    "Typical use: `bundlewise demo` runs everything on the bundled dataset; for your own store, "
    "`bundlewise ingest orders.csv`, then `bundlewise train`, then "
    "`bundlewise offers --customer ID`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help and usage errors: rich markup would eat bracketed words such as [columns].
    rich_markup_mode=None,
)
# Every user-facing string is printed as it is: no markup, no emoji codes, no highlighting,
# and never wrapped (a long path or error line stays one line for grep and for tests).
console = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

#: Exit status of errors made in calling a command (bad option, config key, missing file); every
#: other bundlewise error (bad data, no trained model, no feasible price...) exits with 1.
USAGE_ERRORS: tuple[type[BundlewiseError], ...] = (ConfigError, UsageError)

DEFAULT_WORKSPACE = ".bundlewise"

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace directory (DuckDB file and artifacts).",
        envvar="BUNDLEWISE_WORKSPACE",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config (column mapping, cleaning, pricing...)."),
]

TRAIN_STEPS = ("mine", "personalize", "price", "store")


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where to run: duckdb (embedded, the default) or spark (needs the bundlewise[spark] "
        "extra and Java 17; master and settings in the config's [spark] table). Overrides "
        "`engine` in the config.",
    ),
]


def _config(
    path: Path | None, *, max_discount: float | None = None, engine: str | None = None
) -> Config:
    config = load_config(path)
    if max_discount is not None:
        pricing = dataclasses.replace(config.pricing, max_discount=max_discount)
        config = dataclasses.replace(config, pricing=pricing)
    if engine is not None:
        if engine not in ENGINES:
            raise UsageError(f"--engine {engine!r} should be one of {', '.join(ENGINES)}.")
        config = dataclasses.replace(config, engine=engine)
    return config


def exit_code(exc: BundlewiseError) -> int:
    """2 for a usage error (:data:`USAGE_ERRORS`), 1 for any other bundlewise error."""
    return 2 if isinstance(exc, USAGE_ERRORS) else 1


def _say(*parts: str | tuple[str, str], out: Console | None = None) -> None:
    """Print one message built from plain and ``(text, style)`` parts, never as markup."""
    (out or console).print(Text.assemble(*parts))


def _fail(message: str, code: int) -> typer.Exit:
    _say(("error:", "bold red"), " ", message, out=err_console)
    return typer.Exit(code=code)


@contextmanager
def _errors() -> Iterator[None]:
    """Show errors as one line (no stack trace); exit 2 for usage errors, 1 for the others."""
    try:
        yield
    except BundlewiseError as exc:
        raise _fail(str(exc), exit_code(exc)) from None
    except OSError as exc:  # a file that vanished or cannot be read, a full disk...
        where = f"{exc.filename}: " if exc.filename else ""
        raise _fail(f"{where}{exc.strerror or exc}.", 1) from None


def _input_file(path: Path, what: str) -> Path:
    """``path`` if it names a readable file; otherwise a usage error naming it."""
    if not path.exists():
        raise UsageError(f"{what} file {path} does not exist.")
    if path.is_dir():
        raise UsageError(f"{what} file {path} is a directory; give the file itself.")
    return path


def _print_json(document: object) -> None:
    """The one JSON document a ``--json`` command writes to stdout."""
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json", help="Print one JSON document on stdout (progress goes to stderr) for scripts."
    ),
]


class StepProgress(Protocol):
    """The progress callback of :func:`bundlewise.pipeline.train`.

    ``progress(step)`` starts a step; ``progress(step, done, total)`` reports items done inside
    a long one.
    """

    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None:
        """Report the start of ``step``, or ``done`` of ``total`` items inside it."""


class _TimeLeft(TimeRemainingColumn):
    """Time left inside a long step; blank on the line that counts the steps."""

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "steps":
            return Text("")
        return super().render(task)


@contextmanager
def _steps(names: tuple[str, ...], out: Console | None = None) -> Iterator[StepProgress]:
    """Progress bars on stderr: one line over the named steps, and one per long step that
    reports items done (with the time left); yields the callback the pipeline calls.

    Nothing is drawn before the first step starts (an error found first prints alone).
    """
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False, style="bold"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} {task.fields[unit]}", markup=False),
        TimeElapsedColumn(),
        _TimeLeft(),
        console=out or err_console,
        transient=False,
    )
    task = bar.add_task("starting", total=len(names), unit="steps")
    seen: list[str] = []
    inner: dict[str, TaskID] = {}

    def progress(step: str, done: int | None = None, total: int | None = None) -> None:
        if not seen:
            bar.start()
        if step not in seen:
            if seen:
                bar.advance(task)
            seen.append(step)
            bar.update(task, description=step, total=max(len(names), len(seen)))
        if done is None:
            return
        size = max(total if total is not None else done, done)
        if step not in inner:
            inner[step] = bar.add_task(f"  {step}", total=size, unit="items")
        bar.update(inner[step], completed=done, total=size)

    try:
        yield progress
        if seen:
            bar.update(task, completed=max(len(names), len(seen)), description="done")
    finally:
        if seen:
            bar.stop()


def _cleaning_table(report: CleaningReport) -> Table:
    table = Table(title=f"Cleaning report: {report.source}", title_justify="left")
    table.add_column("rule")
    table.add_column("action")
    table.add_column("rows", justify="right")
    table.add_column("what it does", overflow="fold")
    for rule in report.rules:
        table.add_row(rule.rule, rule.action, f"{rule.n_rows:,}", rule.description)
    table.caption = (
        f"{report.n_rows_read:,} rows read, {report.n_rows_kept:,} kept, "
        f"{report.n_rows_removed:,} removed"
    )
    return table


def _offers_table(offers: pa.Table, title: str) -> Table:
    currency = offers.column("currency")[0].as_py()
    table = Table(
        title=title,
        title_justify="left",
        show_lines=True,
        caption=f"Money in {currency}. profit = (price - cost) x P(accept).",
    )
    table.add_column("#", justify="right")
    table.add_column("bundle", overflow="fold", min_width=18)
    for name in ("list", "price", "off", "P(acc)", "profit"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("set by", overflow="fold")
    for row in offers.to_pylist():
        table.add_row(
            str(row["offer_rank"]),
            "\n".join(f"{i} {t}" for i, t in zip(row["item_ids"], row["titles"], strict=True)),
            format_money(row["list_total_minor"], currency).split()[-1],
            format_money(row["price_minor"], currency).split()[-1],
            f"{row['discount_pct']:.0%}",
            f"{row['p_accept']:.2f}",
            format_money(round(row["expected_profit_minor"]), currency).split()[-1],
            row["binding_rule"],
        )
    return table


def _print_reasons(offers: pa.Table) -> None:
    _say(("Why", "bold"))
    for row in offers.to_pylist():
        console.print(f"  {row['offer_rank']}. {row['reason']}")


def _jsonable(value: Any) -> Any:
    """Dataclass fields for JSON: reports through their ``to_dict``."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


def _offers_json(table: pa.Table) -> list[dict[str, Any]]:
    """Offer rows for ``offers --json``: every column, plus money as decimal strings."""
    rows = []
    for row in table.to_pylist():
        currency = row["currency"]
        for name in ("list_total", "cost", "price", "discount", "expected_profit"):
            minor = row.get(f"{name}_minor")
            if minor is not None:
                row[name] = str(from_minor_units(round(minor), currency))
        rows.append(row)
    return rows


@app.command()
def ingest(
    orders: Annotated[
        str,
        typer.Argument(
            help="Orders file (CSV, TSV, .csv.gz, Parquet or .xlsx). With --engine spark: a "
            "Parquet/CSV file or directory, a Delta table directory, or table:NAME.",
            metavar="SOURCE",
        ),
    ],
    catalog: Annotated[
        Path | None,
        typer.Option(help="Product catalog (item_id, title, list_price, unit_cost, ...)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Shopper events (customer_id, ts, item_id, kind=view|cart|purchase)."),
    ] = None,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    config: ConfigOpt = None,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read, validate and clean an orders file into the workspace, and print the cleaning report.

    UCI Online Retail exports (both schemas) are recognised; other files need a [columns]
    mapping in the config. Re-ingesting the same file replaces its rows (idempotent). Bad input
    stops with a message naming the file, column, row and value; nothing is written then.
    With --engine spark the source is read and cleaned on Spark, with the same result.
    """
    with _errors():
        cfg = _config(config, engine=engine)
        if cfg.engine != "spark":  # Spark sources may be directories, URIs or table:NAME
            _input_file(Path(orders), "orders")
        for path, what in ((catalog, "catalog"), (events, "events")):
            if path is not None:
                _input_file(path, what)
        start = time.perf_counter()
        with err_console.status(f"ingesting {orders} ..."):
            result = pipeline.ingest(Workspace(workspace), orders, cfg, catalog, events)
        elapsed = time.perf_counter() - start
    report_path = workspace / f"cleaning_report_{result.source_id}.json"
    if as_json:
        document = {f.name: _jsonable(getattr(result, f.name)) for f in dataclasses.fields(result)}
        document.update(
            orders=str(orders),
            workspace=str(workspace),
            cleaning_report_path=str(report_path),
            seconds=round(elapsed, 3),
        )
        _print_json(document)
        return
    console.print(_cleaning_table(result.report))
    again = " (same file as before: its rows were replaced)" if result.was_already_ingested else ""
    console.print(
        f"Ingested {orders} as {result.adapter}, source {result.source_id}{again}: "
        f"{result.report.n_rows_kept:,} order lines, {result.n_items:,} items, "
        f"{result.n_events:,} events, "
        f"in {elapsed:.1f} s. Workspace: {workspace} (cleaning report: {report_path})"
    )
    for note in result.notes():  # replaced orders, catalog columns read by alias or unused
        console.print(note, markup=False, highlight=False, soft_wrap=True)


@app.command()
def train(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    config: ConfigOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write offers.parquet and report.html to this directory."),
    ] = None,
    max_discount: Annotated[
        float | None, typer.Option(help="Override pricing.max_discount (0..1).")
    ] = None,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mine co-purchase pairs, compose bundles for every customer, and price them.

    Offers (with price, discount, P(accept), expected profit, binding guardrail and reason) are
    stored in the workspace; see them with `bundlewise offers --customer ID`. With --engine
    spark, mining, composition and pricing run on Spark and give the same offers.
    """
    with _errors():
        cfg = _config(config, max_discount=max_discount, engine=engine)
        ws = Workspace(workspace)
        with _steps(TRAIN_STEPS) as progress:
            result = pipeline.train(ws, cfg, progress)
        written = pipeline.export(ws, out, cfg) if out is not None else None
    if as_json:
        document: dict[str, Any] = {"workspace": str(workspace), **result.to_dict()}
        if written is not None:
            document.update(offers_path=str(written[0]), report_path=str(written[1]))
        _print_json(document)
        return
    _print_train(result)
    if written is not None:
        console.print(f"Wrote {written[0]} and {written[1]}")


def _print_train(result: pipeline.TrainResult) -> None:
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    _say(
        "Model ",
        (result.model_version, "bold"),
        f": {result.n_pairs:,} pairs from {result.n_orders:,} orders "
        f"({result.n_orders_skipped:,} very large orders left out); "
        f"{result.n_offers:,} offers for {result.n_customers:,} customers; "
        f"{result.n_not_offered} candidates had no feasible price. ({timings})",
    )
    if result.n_cost_assumed:
        _say(
            ("Note:", "yellow"),
            f" {result.n_cost_assumed:,} offers use the assumed cost share "
            "(no unit cost in the catalog).",
        )


@app.command()
def offers(
    customer: Annotated[str, typer.Option("--customer", help="Customer id.")],
    n: Annotated[int, typer.Option("-n", "--n", min=1, help="How many offers.")] = 5,
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    as_json: JsonOpt = False,
) -> None:
    """Show a customer's ranked bundle offers with prices and reasons.

    A customer without purchase history gets the store's popular bundles.
    """
    with _errors():
        table = pipeline.customer_offers(Workspace(workspace), customer, n)
    popular = table.num_rows > 0 and table.column("source")[0].as_py() == "popular"
    if as_json:
        _print_json(
            {
                "customer_id": customer,
                "kind": None if table.num_rows == 0 else "popular" if popular else "personalized",
                "offers": _offers_json(table),
            }
        )
        return
    if table.num_rows == 0:
        console.print(f"No offers for customer {customer}.")
        return
    kind = "popular bundles (no purchase history)" if popular else "personalized"
    console.print(_offers_table(table, f"Offers for customer {customer}: {kind}"))
    _print_reasons(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out"),
    workspace: Annotated[
        Path | None, typer.Option(help="Workspace directory (default: <out>/workspace).")
    ] = None,
    orders: Annotated[
        Path | None,
        typer.Option(help="Use this orders file instead of the bundled Online Retail II data."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Run the whole pipeline on the bundled real dataset (UCI Online Retail II, 2009-2010).

    ingest -> clean -> mine -> personalize -> price, then writes <out>/offers.parquet (one row
    per offer), <out>/report.html and <out>/cleaning_report.json, and prints a summary.
    """
    with _errors():
        if orders is not None:
            _input_file(orders, "orders")
        cfg = _config(config)
        with _steps(("ingest", *TRAIN_STEPS, "report")) as progress:
            result = pipeline.run_demo(out, workspace, orders, cfg, progress)
    console.print(_cleaning_table(result.ingest.report))
    _print_train(result.train)
    console.print(
        f"Wrote {result.offers_path} and {result.report_path}. Try: "
        f"bundlewise offers --workspace {workspace or out / 'workspace'} --customer 12346"
    )


def _write_result(
    out: Path, name: str, result: dict[str, Any], html: Callable[[dict[str, Any]], str]
) -> tuple[Path, Path]:
    """``<name>.json`` and ``<name>.html`` in ``out``; their paths are recorded in the result."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / f"{name}.json", out / f"{name}.html"
    result["files"] = [str(json_path), str(html_path)]
    json_path.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    html_path.write_text(html(result), encoding="utf-8")
    return json_path, html_path


@app.command()
def evaluate(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    orders: Annotated[
        Path | None,
        typer.Option(help="Evaluate on this orders file instead of the workspace's orders."),
    ] = None,
    config: ConfigOpt = None,
    cutoff: Annotated[
        str | None,
        typer.Option(
            help="Train before this date (YYYY-MM-DD); default: --test-weeks before the last order."
        ),
    ] = None,
    test_weeks: Annotated[int, typer.Option(min=1, help="Weeks of test orders.")] = 4,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out"),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
    ] = False,
) -> None:
    """Backtest the bundles on your own orders: would customers have bought them?

    Splits the orders at the cutoff, mines and composes bundles on the orders before it as
    `train` does with this config, and scores them on each customer's orders in the following
    weeks (a hit: all items of a bundle in one test order), next to "frequently bought
    together" by lift, popular pairs and random pairs. Uses the workspace's ingested orders,
    or --orders FILE (ingested into a temporary workspace with the config). Writes
    <out>/evaluation.json and <out>/evaluation.html. Model benchmarks (Youshu, the pricing
    simulator) live in the source checkout's benchmarks/ folder.
    """
    import json
    import tempfile
    from datetime import datetime

    from bundlewise.evaluation.backtest import backtest, format_backtest
    from bundlewise.evaluation.report import build_evaluation_report

    with _errors():
        cfg = _config(config)
        try:
            cutoff_date = datetime.fromisoformat(cutoff) if cutoff else None
        except ValueError:
            raise UsageError(f"--cutoff {cutoff!r} is not a date (YYYY-MM-DD).") from None
        with _steps(("load orders", "backtest", "report")) as progress:
            progress("load orders")
            if orders is not None:
                if not orders.is_file():
                    raise UsageError(f"--orders {orders}: no such file.")
                with tempfile.TemporaryDirectory() as tmp:
                    scratch = Workspace(tmp)
                    scratch.ingest(orders, cfg)
                    lines = scratch.table("order_lines")
            else:
                try:
                    lines = Workspace(workspace).table("order_lines")
                except KeyError:
                    lines = pa.table({"ts": pa.array([], pa.timestamp("us"))})
                if lines.num_rows == 0:
                    raise BundlewiseError(
                        f"workspace {workspace} has no orders: run `bundlewise ingest` first, "
                        "or give --orders FILE."
                    )
            progress("backtest")
            result = backtest(lines, cfg, cutoff_date, test_weeks)
            result["source"] = str(orders) if orders is not None else str(workspace)
            progress("report")
            json_path, html_path = _write_result(out, "evaluation", result, build_evaluation_report)
    if json_output:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(format_backtest(result))
    console.print(f"Wrote {json_path} and {html_path}", markup=False, highlight=False)


#: What `bundlewise simulate` says when the benchmark harness is not installed.
BENCH_MISSING = (
    "`bundlewise simulate` runs the benchmark harness, which is not installed: in a source "
    "checkout run `pip install -e ./benchmarks` (`make test` does), or run "
    "`python benchmarks/pricing.py`."
)


@app.command()
def simulate(
    orders: Annotated[
        Path | None,
        typer.Option(help="Orders the markets are fitted to (default: the bundled data)."),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, max=100, help="Number of seeds.")] = 10,
    bundles: Annotated[int, typer.Option(min=1, max=50, help="Bundle markets.")] = 8,
    noise: Annotated[
        float, typer.Option(min=0.0, max=5.0, help="Engine noise in the default scenario.")
    ] = 0.2,
    grid: Annotated[bool, typer.Option(help="Run the whole scenario grid.")] = True,
    quick: Annotated[
        bool, typer.Option(help="A quarter of the simulated shoppers (faster, noisier).")
    ] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML config (its [pricing] guardrails).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out"),
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
    ] = False,
) -> None:
    """Pricing simulation (benchmark harness): bundlewise against bounds and baselines.

    Fits bundle markets (lognormal willingness to pay, Gaussian copula, complementarity) to real
    purchase and co-purchase rates, then runs bound A (perfect discrimination), bound B (best
    policy knowing the true demand), component pricing, pure bundling, uniform-discount mixed
    bundling, bundle-size pricing, the exact mixed-bundling MILP and bundlewise on the same
    shoppers, over seeds and a scenario grid. Writes <out>/simulation.json and
    <out>/simulation.html. Needs the benchmark package of a source checkout
    (`pip install -e ./benchmarks`).
    """
    import json
    from dataclasses import replace

    with _errors():
        try:
            from bundlewise_bench.market import Scenario
            from bundlewise_bench.pricing_track import (
                format_pricing,
                pricing_track,
                quick_scenario,
            )
            from bundlewise_bench.report import build_simulation_report
        except ModuleNotFoundError as exc:
            if (exc.name or "").partition(".")[0] != "bundlewise_bench":
                raise
            raise BundlewiseError(BENCH_MISSING) from None
        cfg = load_config(config_file) if config_file else Config()
        if orders is not None and not orders.is_file():
            raise UsageError(f"--orders {orders}: no such file.")
        base = replace(Scenario(), noise=noise)
        if quick:
            base = quick_scenario(base)
        with _steps(("simulate", "report")) as progress:
            progress("simulate")
            result = pricing_track(
                orders or pipeline.bundled_dataset_path(),
                seeds=tuple(range(seeds)),
                n_bundles=bundles,
                base=base,
                grid=grid,
                pricing=cfg.pricing,
                config=cfg,
            )
            progress("report")
            json_path, html_path = _write_result(out, "simulation", result, build_simulation_report)
    if json_output:
        typer.echo(json.dumps(result, default=str))
        return
    typer.echo(format_pricing(result))
    console.print(f"Wrote {json_path} and {html_path}", markup=False, highlight=False)


keys_app = typer.Typer(
    help="Manage API keys of the HTTP server (stored hashed).", rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")
KeysFileOpt = Annotated[
    Path | None, typer.Option(help="API key file (default: api_keys.json in the workspace).")
]


def _key_store(workspace: Path, keys_file: Path | None) -> Any:
    from bundlewise.serving.keys import KeyStore

    return KeyStore(keys_file or workspace / "api_keys.json")


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str], typer.Option(help="Scopes: read (offers, quotes, feedback), admin (reload).")
    ],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    keys_file: KeysFileOpt = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    with _errors():
        key = _key_store(workspace, keys_file).create(tuple(scope), label)
    typer.echo(key)


@keys_app.command("list")
def keys_list(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    keys_file: KeysFileOpt = None,
) -> None:
    """List key ids, scopes and labels (never the keys)."""
    with _errors():
        store = _key_store(workspace, keys_file)
    for r in store.records():
        typer.echo(f"{r.key_id}\t{','.join(r.scopes)}\t{r.label}\t{r.created}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (second part of the key).")],
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    keys_file: KeysFileOpt = None,
) -> None:
    """Revoke a key (a running server stops accepting it within a second)."""
    with _errors():
        if not _key_store(workspace, keys_file).revoke(key_id):
            raise UsageError(f"no key with id {key_id!r}.")
    typer.echo(f"revoked {key_id}")


@app.command()
def serve(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    host: Annotated[
        str | None, typer.Option(help="Interface to bind [default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: 8000].")
    ] = None,
    feedback_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the feedback store (default: SQLite in the workspace)."
        ),
    ] = None,
    keys_file: KeysFileOpt = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Requests per minute per key, whole server [default: 6000]."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Server processes; they share the rate limits [default: 1]."
        ),
    ] = None,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, help="Connections and requests at once per worker; more get 503 [default: 256]."
        ),
    ] = None,
    keep_alive_timeout: Annotated[
        int | None,
        typer.Option(min=1, help="Seconds before an idle connection is closed [default: 5]."),
    ] = None,
    feedback_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a feedback write may take before a 503 [default: 2]."),
    ] = None,
    reprice: Annotated[
        bool,
        typer.Option(
            "--reprice",
            help="Price with --config's guardrails even when they differ from the trained "
            "model's (otherwise such a config is refused).",
        ),
    ] = False,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="TOML config [default: the one the model was trained with]."),
    ] = None,
    learn: Annotated[
        bool | None,
        typer.Option(
            "--learn/--no-learn",
            help="Run the learning loop: prices from the learning policy, learning from feedback "
            "sent with policy_version (one worker) [default: the config's [learning] enabled].",
        ),
    ] = None,
    buckets: Annotated[
        str | None,
        typer.Option(
            help="Serve only the offers of the customers in these buckets of the model's "
            "partitioned snapshot, e.g. 0-3/16 (one server of a fleet); offers and feedback for "
            "a customer of another bucket answer 421 [default: every customer].",
        ),
    ] = None,
) -> None:
    """Serve offers, quotes, feedback and the dashboard (/dashboard) over HTTP.

    Needs a trained workspace and an API key (`bundlewise keys create --scope read`).
    OpenAPI docs at /docs (offline); metrics at /metrics; health at /health. Every setting can
    also come from a BUNDLEWISE_* environment variable (e.g. BUNDLEWISE_RATE_LIMIT_PER_MINUTE);
    flags win. With --learn, each offer carries a decision (policy version, price, propensity)
    and GET /v1/learning shows what was learned.
    """
    import tempfile

    import pydantic
    import uvicorn

    from bundlewise.exceptions import ConfigError
    from bundlewise.serving.app import create_app
    from bundlewise.serving.ratelimit import SharedTokenBucket
    from bundlewise.serving.settings import ServeSettings
    from bundlewise.serving.state import ServingState

    flags: dict[str, Any] = {
        "workspace": workspace,
        "host": host,
        "port": port,
        "feedback_url": feedback_url,
        "keys_file": keys_file,
        "rate_limit_per_minute": rate_limit,
        "workers": workers,
        "max_concurrency": max_concurrency,
        "timeout_keep_alive_seconds": keep_alive_timeout,
        "feedback_timeout_seconds": feedback_timeout,
        "config_file": config_file,
        "reprice": reprice or None,
        "learn": learn,
        "buckets": buckets,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    with tempfile.TemporaryDirectory(prefix="bundlewise-serve-") as scratch, _errors():
        try:
            # Several worker processes share their token buckets through this file.
            shared = Path(scratch) / "rate_limits"
            SharedTokenBucket.create(shared)
            settings = ServeSettings(**{"rate_limit_file": shared, **flags})
            if settings.workers == 1 and settings.rate_limit_file == shared:
                settings = ServeSettings(**flags)  # one process: the buckets stay in it
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"serve: {where}: {message}") from None
        if not (settings.workspace / "bundlewise.duckdb").exists():
            raise BundlewiseError(
                f"no workspace at {settings.workspace}: run `bundlewise train` first."
            )
        state = ServingState(settings)  # a bad model, config or store: one line, here
        snapshot = state.snapshot
        url = f"http://{settings.host}:{settings.port}"
        n_workers = settings.workers
        if state.learning is not None:
            service = state.learning.service
            console.print(
                f"learning: policy {service.policy.version} (explore rate "
                f"{service.policy.explore_rate:.3f}) after replaying "
                f"{service.logged.n_used:,} feedback events in {service.replay_seconds:.1f} s",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        fleet = f", buckets {snapshot.buckets}" if snapshot.buckets is not None else ""
        console.print(
            f"bundlewise {__version__} serving model {snapshot.model_version} "
            f"({snapshot.n_customers:,} customers{fleet}) at {url} with {n_workers} worker(s)\n"
            f"  dashboard: {url}/dashboard\n"
            f"  API docs:  {url}/docs\n"
            f"  health:    {url}/health",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        options: dict[str, Any] = {
            "host": settings.host,
            "port": settings.port,
            "log_level": "warning",
            "access_log": False,
            "timeout_keep_alive": settings.timeout_keep_alive_seconds,
            "limit_concurrency": settings.max_concurrency,
        }
        if n_workers == 1:
            uvicorn.run(create_app(settings, state=state), **options)
        else:
            state.close()
            del state, snapshot
            os.environ.update(settings.to_environment())
            uvicorn.run(
                "bundlewise.serving.app:app_from_environment",
                factory=True,
                workers=n_workers,
                **options,
            )


FeedbackUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--feedback-url",
        help="SQLAlchemy URL of the feedback store (SQLite or PostgreSQL) [default: SQLite in "
        "the workspace, as `serve`].",
        envvar="BUNDLEWISE_FEEDBACK_URL",
    ),
]
LearningConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--logging-config",
        help="TOML config the server learned with (its [learning] section) [default: the one "
        "the model was trained with].",
    ),
]


@app.command()
def learn(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    feedback_url: FeedbackUrlOpt = None,
    config: LearningConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild the learning loop's posterior in batch from the feedback store.

    Replays the accepted and rejected events that carry a decision, in the order the server
    learned them (the same posterior as a server with --learn after the same events), saves
    the posterior in the workspace table learned_posterior under a new version, and prints
    per segment how the price sensitivity moved (prior -> posterior mean +- sd, events).
    """
    from bundlewise.cli import learning as learning_cli

    with _errors():
        logs = learning_cli.read_logs(workspace, feedback_url, config)
        result = learning_cli.learn(workspace, logs)
    if as_json:
        _print_json(result)
        return
    typer.echo(learning_cli.format_learn(result))


@app.command("evaluate-policy")
def evaluate_policy(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    feedback_url: FeedbackUrlOpt = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Candidate TOML config (its [learning] section is evaluated)."
        ),
    ] = None,
    explore_rate: Annotated[
        float | None,
        typer.Option(help="Evaluate the learned policy with this explore rate (0..1)."),
    ] = None,
    greedy: Annotated[
        bool, typer.Option("--greedy", help="Evaluate the learned policy without exploring.")
    ] = False,
    logging_config: LearningConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate a candidate policy's profit, revenue and take rate per offer from the logged
    feedback, before it goes live (off-policy: IPS, SNIPS, doubly robust).

    The candidate is the policy learned from the logs under --config's [learning] settings
    (default: the server's), with --explore-rate or --greedy if given. Printed beside the
    logging policy's on-policy means, with the effective sample size and a warning when the
    logs do not support the candidate.
    """
    from bundlewise.cli import learning as learning_cli

    with _errors():
        logs = learning_cli.read_logs(workspace, feedback_url, logging_config)
        result = learning_cli.evaluate(logs, config, explore_rate, greedy)
    if as_json:
        _print_json(result)
        return
    typer.echo(learning_cli.format_evaluate(result))


@app.command("experiment-report")
def experiment_report(
    workspace: WorkspaceOpt = Path(DEFAULT_WORKSPACE),
    feedback_url: FeedbackUrlOpt = None,
    config: LearningConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The pricing experiment's report: per variant (learning, holdout) the take rate, revenue
    and profit per offer, the lift against the holdout with 95% intervals, and the
    sample-ratio-mismatch check."""
    from bundlewise.cli import learning as learning_cli

    with _errors():
        logs = learning_cli.read_logs(workspace, feedback_url, config)
        result = learning_cli.report(logs)
    if as_json:
        _print_json(result)
        return
    typer.echo(learning_cli.format_report(result))


@app.callback(invoke_without_command=True)
def _main(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    if verbose or os.environ.get("BUNDLEWISE_LOG"):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if version:
        console.print(f"bundlewise {__version__}")
        raise typer.Exit()


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
