"""The public, end-to-end API: ingest -> train (mine, personalize, price) -> offers, and the demo.

The CLI and (later) the HTTP server are thin wrappers over these functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bundlewise._memory import release_unused_memory
from bundlewise._version import __version__
from bundlewise.composer import compose_candidates, price_offers
from bundlewise.composer.beam import compose_beam_candidates
from bundlewise.composer.cold_start import cold_start_partners
from bundlewise.composer.explain import Encoder, pair_text_similarity, store_served_offers
from bundlewise.composer.offers import PricedOffers, weekly_units
from bundlewise.config import Config
from bundlewise.data import IngestResult, Workspace, _sql
from bundlewise.exceptions import WorkspaceError
from bundlewise.mining import PairMiner
from bundlewise.money import currency_exponent, from_minor_units
from bundlewise.pricing.estimation import ResponseFit, estimate_price_response, response_table
from bundlewise.pricing.pricer import ANONYMOUS
from bundlewise.serving.snapshot import write_snapshot

logger = logging.getLogger(__name__)


#: ``progress(step)`` starts a step; ``progress(step, done, total)`` reports items done inside
#: it. A callable taking only the step is accepted too (see :func:`_two_level`).
Progress = Callable[..., None]


class _StepProgress(Protocol):
    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None: ...


def _two_level(progress: Callable[..., None]) -> _StepProgress:
    """``progress`` as a ``(step, done, total)`` callback; a one-argument callable only hears
    step starts."""
    try:
        inspect.signature(progress).bind("step", 0, 0)
    except TypeError:

        def steps_only(step: str, done: int | None = None, total: int | None = None) -> None:
            if done is None:
                progress(step)

        return steps_only
    except ValueError:  # no signature (a builtin): assume the full form
        pass

    def full(step: str, done: int | None = None, total: int | None = None) -> None:
        if done is None:
            progress(step)
        else:
            progress(step, done, total)

    return full


def _titles_are_ids(items: pa.Table) -> bool:
    """Whether no item has a title other than its id (text similarity would say nothing)."""
    ids = items.column("item_id").to_pylist()
    titles = items.column("title").to_pylist() if "title" in items.column_names else ids
    return all(t is None or t == i for i, t in zip(ids, titles, strict=True))


def bundled_dataset_path() -> Path:
    """Path of the bundled demo dataset (UCI Online Retail II, 2009-2010, CC BY 4.0)."""
    path = resources.files("bundlewise") / "datasets" / "online_retail_ii_2009_2010.parquet"
    return Path(str(path))


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` produced, with step timings in seconds."""

    model_version: str
    n_orders: int
    n_orders_skipped: int
    n_pairs: int
    n_customers: int
    n_offers: int
    n_not_offered: int
    n_cost_assumed: int
    timings: dict[str, float] = field(default_factory=dict)
    n_cold_start_items: int = 0
    price_response: dict[str, Any] = field(default_factory=dict)
    #: Why the title-similarity step was skipped ("" when it ran).
    text_similarity_skipped: str = ""
    #: Every step of :data:`TRAIN_STEPS` that did not apply, with the reason.
    skipped_steps: dict[str, str] = field(default_factory=dict)
    #: Where training ran: ``duckdb`` (embedded) or ``spark``.
    engine: str = "duckdb"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def _noop(_: str) -> None:
    return None


#: Config fields that say where and how fast training runs, not what it computes (the engines
#: give the same offers by contract): left out of the model version (and the offer ids).
_RUNTIME_FIELDS: tuple[str, ...] = ("engine", "spark", "resources")


def _model_settings(config: Config) -> dict[str, Any]:
    """The config as it enters the model version: every section but the engine's."""
    settings = asdict(config)
    for name in _RUNTIME_FIELDS:
        settings.pop(name)
    return settings


def _model_version(workspace: Workspace, config: Config) -> str:
    with workspace.connect(read_only=True) as con:
        sources = [r[0] for r in con.execute("SELECT sha256 FROM ingests ORDER BY 1").fetchall()]
    digest = hashlib.blake2b(digest_size=4)
    digest.update(json.dumps(_model_settings(config), sort_keys=True, default=str).encode())
    for sha in sources:
        digest.update(sha.encode())
    return f"{__version__}+{digest.hexdigest()}"


def ingest(
    workspace: Workspace,
    orders_path: str | Path,
    config: Config | None = None,
    catalog_path: str | Path | None = None,
    events_path: str | Path | None = None,
) -> IngestResult:
    """Read, validate, clean and store an orders file. See :meth:`Workspace.ingest`.

    With ``config.engine == "spark"`` the source (a path or ``table:NAME``) is read and cleaned
    on Spark (:func:`bundlewise.spark.ingest.ingest`); the workspace ends up the same.
    """
    config = config or Config()
    if config.engine == "spark":
        from bundlewise.spark.ingest import ingest as ingest_on_spark

        return ingest_on_spark(workspace, str(orders_path), config, catalog_path, events_path)
    return workspace.ingest(orders_path, config, catalog_path, events_path)


#: The columns of ``order_lines`` that ``train`` reads (a big store's other columns stay on disk).
TRAIN_LINE_COLUMNS: tuple[str, ...] = (
    "order_id",
    "customer_id",
    "ts",
    "item_id",
    "quantity",
    "unit_price_minor",
)


@dataclass
class _TrainRun:
    """What the steps of one ``train`` share: inputs, then each step's output."""

    workspace: Workspace
    config: Config
    report: _StepProgress
    encoder: Encoder | None
    lines: pa.Table
    items: pa.Table
    version: str
    miner: PairMiner | None = None
    response: ResponseFit | None = None
    candidates: pa.Table | None = None
    priced: PricedOffers | None = None
    cold: pa.Table | None = None
    similarity: pa.Table | None = None
    #: Step name -> why it was skipped.
    skipped: dict[str, str] = field(default_factory=dict)


def _step_mine(run: _TrainRun) -> None:
    """Co-purchase pair statistics (DuckDB SQL)."""
    run.miner = PairMiner.from_config(run.config.mining).fit(run.lines)


def _step_price_response(run: _TrainRun) -> None:
    """Segment price sensitivities from observed price variation (when configured)."""
    if run.config.pricing.sensitivity_source == "estimated":
        run.response = estimate_price_response(
            run.lines,
            prior=run.config.pricing.sensitivity_prior,
            prior_sd=run.config.pricing.sensitivity_prior_sd,
        )


def _step_personalize(run: _TrainRun) -> None:
    """Candidate bundles per customer (beam search or the SQL heuristic) plus popular ones."""
    assert run.miner is not None
    config = run.config
    # Ranking by expected profit picks the best of twice as many candidates per customer.
    by_profit = config.pricing.rank_by == "expected_profit"
    composer = (
        dataclasses.replace(config.composer, n_offers=2 * config.composer.n_offers)
        if by_profit
        else config.composer
    )
    if config.composer.method == "beam":
        run.candidates = compose_beam_candidates(
            run.lines,
            run.miner.pairs_,
            composer,
            customer_ids=[ANONYMOUS],
            on_progress=lambda done, total: run.report("personalize", done, total),
        )
    else:
        n_customers = len(pc.unique(run.lines.column("customer_id").drop_null())) + 1
        run.report("personalize", 0, n_customers)
        run.candidates = compose_candidates(
            run.lines, run.miner.pairs_, run.miner.partners_, composer, customer_ids=[ANONYMOUS]
        )
        run.report("personalize", n_customers, n_customers)


def _step_price(run: _TrainRun) -> None:
    """Every candidate priced by the one Pricer, which this step builds."""
    assert run.candidates is not None
    run.priced = price_offers(
        run.candidates,
        run.items,
        run.config,
        model_version=run.version,
        response=run.response,
        keep=run.config.composer.n_offers,
        weekly_units=weekly_units(run.lines),
    )
    run.candidates = None  # priced: no later step reads the candidates


def _step_cold_start(run: _TrainRun) -> None:
    """Bundle partners from text for catalog items that never sold."""
    assert run.miner is not None
    cold = _cold_start(run.lines, run.items, run.miner, run.encoder)
    run.cold = cold[0] if cold is not None else None


def _step_text_similarity(run: _TrainRun) -> None:
    """Title similarity of every offered pair (pretrained encoder, or the injected one)."""
    assert run.priced is not None
    run.similarity = pair_text_similarity(
        run.priced.offers,
        run.items,
        run.encoder,
        on_progress=lambda done, total: run.report("text similarity", done, total),
    )


def _step_store(run: _TrainRun) -> None:
    """Tables, the Pricer and the served offers (with explanations) into the workspace, and the
    served offers again as the partitioned snapshot the server loads."""
    assert run.miner is not None and run.priced is not None
    workspace = run.workspace
    tables: list[tuple[str, pa.Table]] = []
    if run.cold is not None:
        tables.append(("cold_start_partners", run.cold))
    tables += [
        ("pair_stats", run.miner.pairs_),
        ("partners", run.miner.partners_),
        ("offers", run.priced.offers),
        ("not_offered", run.priced.not_offered),
    ]
    if run.response is not None:
        tables.append(("price_response", response_table(run.response)))
    if run.similarity is not None:
        tables.append(("pair_text_similarity", run.similarity))
    with workspace.connect() as con:
        for name, table in tables:
            con.register("incoming_", table)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming_')
            con.unregister("incoming_")
    run.priced.pricer.save(workspace)
    with workspace.connect() as con:
        store_served_offers(con, run.similarity)
        write_snapshot(con, workspace.path, run.version, n_buckets=run.config.spark.offer_buckets)


class TrainStep(NamedTuple):
    """One named step of ``train``: ``run`` fills the shared state; ``skip`` says why the step
    does not apply to this store ("" when it runs)."""

    name: str
    run: Callable[[_TrainRun], None]
    skip: Callable[[_TrainRun], str] = lambda _: ""


def _skip_price_response(run: _TrainRun) -> str:
    source = run.config.pricing.sensitivity_source
    return "" if source == "estimated" else f"pricing.sensitivity_source is {source!r}"


def _skip_cold_start(run: _TrainRun) -> str:
    sold = set(pc.unique(run.lines.column("item_id")).to_pylist())
    unsold = any(i not in sold for i in run.items.column("item_id").to_pylist())
    return "" if unsold else "every catalog item has sold"


def _skip_text_similarity(run: _TrainRun) -> str:
    return "the item titles are only item ids" if _titles_are_ids(run.items) else ""


#: The steps of ``train``, in order.
TRAIN_STEPS: tuple[TrainStep, ...] = (
    TrainStep("mine", _step_mine),
    TrainStep("price response", _step_price_response, _skip_price_response),
    TrainStep("personalize", _step_personalize),
    TrainStep("price", _step_price),
    TrainStep("cold start", _step_cold_start, _skip_cold_start),
    TrainStep("text similarity", _step_text_similarity, _skip_text_similarity),
    TrainStep("store", _step_store),
)


def train(
    workspace: Workspace,
    config: Config | None = None,
    progress: Progress = _noop,
    encoder: Encoder | None = None,
) -> TrainResult:
    """Mine pairs, compose candidate bundles per customer, price them, store the offers.

    Runs :data:`TRAIN_STEPS` in order, timing each. ``encoder`` encodes item titles for the
    text-similarity and cold-start steps (default: the packaged ``TextEncoder``; tests pass a
    stub).

    Writes the workspace tables ``pair_stats``, ``partners``, ``offers`` (one row per offer),
    ``not_offered`` (candidates no price could satisfy, with the reason), the Pricer's tables
    and ``served_offers``.

    Raises
    ------
    WorkspaceError
        If nothing has been ingested.
    """
    config = config or Config()
    with _sql.limits(config.resources):
        if config.engine == "spark":
            from bundlewise.spark.train import train as train_on_spark

            return train_on_spark(workspace, config, progress, encoder)
        return run_train(new_train_run(workspace, config, progress, encoder), TRAIN_STEPS)


def new_train_run(
    workspace: Workspace,
    config: Config,
    progress: Progress = _noop,
    encoder: Encoder | None = None,
    run_type: type[_TrainRun] = _TrainRun,
) -> _TrainRun:
    """The shared state of one ``train`` (``run_type``: an engine's subclass of it).

    Raises
    ------
    WorkspaceError
        If nothing has been ingested.
    """
    lines = workspace.table("order_lines", TRAIN_LINE_COLUMNS)
    if lines.num_rows == 0:
        raise WorkspaceError(
            f"workspace {workspace.path} has no order lines: run `bundlewise ingest` first."
        )
    return run_type(
        workspace=workspace,
        config=config,
        report=_two_level(progress),
        encoder=encoder,
        lines=lines,
        items=workspace.table("items"),
        version=_model_version(workspace, config),
    )


def run_train(run: _TrainRun, steps: tuple[TrainStep, ...]) -> TrainResult:
    """Run ``steps`` in order, timing each, then record and return the result (every engine's
    ``train`` ends here)."""
    timings: dict[str, float] = {}
    for step in steps:
        reason = step.skip(run)
        if reason:
            run.skipped[step.name] = reason
            run.report(f"{step.name} skipped: {reason}")
            continue
        run.report(step.name)
        start = time.perf_counter()
        step.run(run)
        release_unused_memory()  # what the step freed, before the next one's peak
        timings[step.name] = time.perf_counter() - start
    assert run.miner is not None and run.priced is not None
    workspace = run.workspace
    priced, cold = run.priced, run.cold
    real = pc.not_equal(priced.offers.column("customer_id"), ANONYMOUS)
    n_customers = len(pc.unique(priced.offers.filter(real).column("customer_id")))
    result = TrainResult(
        model_version=run.version,
        n_orders=run.miner.n_orders_,
        n_orders_skipped=run.miner.n_orders_skipped_,
        n_pairs=run.miner.pairs_.num_rows,
        n_customers=n_customers,
        n_offers=int(pc.sum(real).as_py() or 0),
        n_not_offered=priced.not_offered.num_rows,
        n_cost_assumed=int(
            pc.sum(priced.offers.filter(real).column("is_cost_assumed")).as_py() or 0
        ),
        timings=timings,
        n_cold_start_items=len(pc.unique(cold.column("item_id"))) if cold is not None else 0,
        price_response=run.response.to_dict() if run.response is not None else {},
        text_similarity_skipped=run.skipped.get("text similarity", ""),
        skipped_steps=dict(run.skipped),
        engine=run.config.engine,
    )
    workspace.replace_table(
        "runs",
        pa.table({"model_version": [run.version], "result_json": [json.dumps(result.to_dict())]}),
    )
    return result


def _cold_start(
    lines: pa.Table, items: pa.Table, miner: PairMiner, encoder: Encoder | None = None
) -> tuple[pa.Table, float] | None:
    """Bundle partners from text for catalog items that never sold (None when there are none).

    Needs the ``text`` extra; without it the step is skipped with a logged warning.
    """
    sold = set(pc.unique(lines.column("item_id")).to_pylist())
    titles = dict(zip(items["item_id"].to_pylist(), items["title"].to_pylist(), strict=True))
    new = sorted(set(titles) - sold)
    if not new:
        return None
    start = time.perf_counter()
    try:
        if encoder is None:
            from bundlewise.models.text_encoder import TextEncoder

            encoder = TextEncoder()
        sold_ids = sorted(sold & set(titles))
        table = cold_start_partners(
            new,
            encoder.encode([titles[i] or i for i in new]),
            sold_ids,
            encoder.encode([titles[i] or i for i in sold_ids]),
            miner.pairs_,
        )
    except ImportError as exc:
        logger.warning("skipping cold-start bundles for %d unsold items: %s", len(new), exc)
        return None
    return table, time.perf_counter() - start


def cold_start_bundles(workspace: Workspace, item_id: str) -> pa.Table:
    """Text-based bundle partners of a catalog item that has never sold (empty if none)."""
    try:
        table = _trained_table(workspace, "cold_start_partners")
    except KeyError:
        return pa.table({"item_id": pa.array([], pa.string())})
    return table.filter(pc.equal(table.column("item_id"), item_id)).sort_by("rank")


def last_train_result(workspace: Workspace) -> TrainResult:
    """The result of the latest ``train`` in this workspace.

    Raises
    ------
    WorkspaceError
        If ``train`` has not run.
    """
    runs = _trained_table(workspace, "runs")
    return TrainResult(**json.loads(runs.column("result_json")[0].as_py()))


def _trained_table(workspace: Workspace, name: str) -> pa.Table:
    """A table that ``train`` writes; a clear error if ``train`` has not run yet."""
    try:
        workspace.table("runs")
    except KeyError:
        raise WorkspaceError(
            f"no trained model in {workspace.path}: run `bundlewise train` first."
        ) from None
    return workspace.table(name)


def customer_offers(workspace: Workspace, customer_id: str, n: int | None = None) -> pa.Table:
    """Ranked offers for one customer; popular offers for a customer without history.

    Returns the ``offers`` rows of the customer (column ``customer_id`` set to the requested id;
    ``source`` tells ``history`` from ``popular``).

    Raises
    ------
    WorkspaceError
        If ``train`` has not run.
    """
    offers = _trained_table(workspace, "offers")
    mine = offers.filter(pc.equal(offers.column("customer_id"), customer_id))
    if mine.num_rows == 0:
        mine = offers.filter(pc.equal(offers.column("customer_id"), ANONYMOUS))
        mine = mine.set_column(
            mine.column_names.index("customer_id"),
            "customer_id",
            pa.array([customer_id] * mine.num_rows, pa.string()),
        )
    mine = mine.sort_by("offer_rank")
    return mine.slice(0, n) if n is not None else mine


def _money_columns(
    name: str, values: pa.ChunkedArray, currencies: pa.ChunkedArray
) -> dict[str, pa.Array]:
    """``name`` as an exact decimal (scale = the currency's ISO 4217 exponent; the largest one
    if several currencies are mixed) and ``name_float`` as float64 for pandas and plotting."""
    codes = [c for c in currencies.to_pylist() if c is not None]
    scale = max((currency_exponent(c) for c in set(codes)), default=2)
    exact = [
        from_minor_units(int(v), c) if v is not None else None
        for v, c in zip(values.to_pylist(), currencies.to_pylist(), strict=True)
    ]
    return {
        name: pa.array(exact, pa.decimal128(18, scale)),
        f"{name}_float": pa.array(
            [float(v) if v is not None else None for v in exact], pa.float64()
        ),
    }


def offers_for_export(offers: pa.Table) -> pa.Table:
    """The user-facing offers table: money as decimals, one row per offer of a real customer.

    Columns: customer_id, offer_rank, offer_id, item_ids, titles, n_items, currency,
    list_total, price, discount, discount_pct, p_accept, expected_profit, binding_rule,
    is_cost_assumed, reason, source, model_version, and list_total_float, price_float,
    discount_float, expected_profit_float. Money columns are exact decimals in major units
    (JPY 1234 is 1234, GBP 1234 minor units is 12.34); the ``*_float`` twins hold the same
    amounts as float64 (pandas reads the decimals as Python ``Decimal`` objects).
    """
    real = offers.filter(pc.not_equal(offers.column("customer_id"), ANONYMOUS))
    profit_minor = pc.round(real.column("expected_profit_minor"), 0).cast(pa.int64())
    currency = real.column("currency")
    money = {
        **_money_columns("list_total", real.column("list_total_minor"), currency),
        **_money_columns("price", real.column("price_minor"), currency),
        **_money_columns("discount", real.column("discount_minor"), currency),
        **_money_columns("expected_profit", profit_minor, currency),
    }
    return pa.table(
        {
            "customer_id": real.column("customer_id"),
            "offer_rank": real.column("offer_rank"),
            "offer_id": real.column("offer_id"),
            "item_ids": real.column("item_ids"),
            "titles": real.column("titles"),
            "n_items": pc.list_value_length(real.column("item_ids")).cast(pa.int32()),
            "currency": currency,
            "list_total": money["list_total"],
            "price": money["price"],
            "discount": money["discount"],
            "discount_pct": real.column("discount_pct"),
            "p_accept": real.column("p_accept"),
            "expected_profit": money["expected_profit"],
            "binding_rule": real.column("binding_rule"),
            "is_cost_assumed": real.column("is_cost_assumed"),
            "reason": real.column("reason"),
            "source": real.column("source"),
            "model_version": real.column("model_version"),
            **{k: v for k, v in money.items() if k.endswith("_float")},
        }
    )


@dataclass(frozen=True)
class DemoResult:
    """Paths written by :func:`run_demo` and what happened on the way."""

    offers_path: Path
    report_path: Path
    ingest: IngestResult
    train: TrainResult
    timings: dict[str, float]


def export(
    workspace: Workspace, out_dir: str | Path, config: Config | None = None
) -> tuple[Path, Path]:
    """Write ``offers.parquet``, ``cleaning_report.json`` and ``report.html`` to ``out_dir``."""
    from bundlewise.evaluation.report import build_report  # heavy (matplotlib): import late

    config = config or Config()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    offers = workspace.table("offers")
    offers_path = out / "offers.parquet"
    pq.write_table(offers_for_export(offers), offers_path)
    reports = workspace.cleaning_reports()
    (out / "cleaning_report.json").write_text(
        json.dumps([r.to_dict() for r in reports], indent=2), encoding="utf-8"
    )
    report_path = out / "report.html"
    report_path.write_text(
        build_report(
            offers=offers,
            cleaning_reports=reports,
            pairs=workspace.table("pair_stats"),
            items=workspace.table("items"),
            train_result=last_train_result(workspace),
            not_offered=workspace.table("not_offered"),
            config=config,
            sources=workspace.table("ingests").drop_columns(["report_json"]).to_pylist(),
        ),
        encoding="utf-8",
    )
    return offers_path, report_path


def run_demo(
    out_dir: str | Path = "out",
    workspace_dir: str | Path | None = None,
    orders_path: str | Path | None = None,
    config: Config | None = None,
    progress: Progress = _noop,
) -> DemoResult:
    """Ingest -> clean -> mine -> personalize -> price on the bundled data; write out/.

    Parameters
    ----------
    out_dir
        Receives ``offers.parquet``, ``report.html`` and ``cleaning_report.json``.
    workspace_dir
        Workspace to use (default: ``<out_dir>/workspace``).
    orders_path
        Another orders file instead of the bundled dataset.
    """
    config = config or Config()
    workspace = Workspace(workspace_dir or Path(out_dir) / "workspace")
    timings: dict[str, float] = {}
    progress("ingest")
    start = time.perf_counter()
    ingested = ingest(workspace, orders_path or bundled_dataset_path(), config)
    timings["ingest"] = time.perf_counter() - start
    trained = train(workspace, config, progress)
    timings.update(trained.timings)
    progress("report")
    start = time.perf_counter()
    offers_path, report_path = export(workspace, out_dir, config)
    timings["report"] = time.perf_counter() - start
    return DemoResult(offers_path, report_path, ingested, trained, timings)


__all__ = [
    "ANONYMOUS",
    "DemoResult",
    "TrainResult",
    "bundled_dataset_path",
    "cold_start_bundles",
    "customer_offers",
    "export",
    "ingest",
    "last_train_result",
    "offers_for_export",
    "run_demo",
    "train",
]
