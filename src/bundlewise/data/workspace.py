"""The embedded workspace: one DuckDB file holding the canonical tables and derived artifacts.

Re-ingesting the same file is idempotent: a source is identified by the SHA-256 of its bytes, and
its rows are replaced, never appended twice. A newer export of the same store (other bytes) that
contains orders already stored replaces those orders, by order id, and says how many; orders of
a new period are appended.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from bundlewise._memory import release_unused_memory
from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data.catalog import Catalog, derive_items, item_costs, load_catalog
from bundlewise.data.cleaning import CleaningReport, clean_order_lines
from bundlewise.data.events import read_events
from bundlewise.data.readers import read_orders
from bundlewise.exceptions import WorkspaceError

logger = logging.getLogger(__name__)

DB_FILENAME = "bundlewise.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingests (
    source_id VARCHAR PRIMARY KEY, path VARCHAR, adapter VARCHAR, sha256 VARCHAR,
    n_rows_read BIGINT, n_rows_kept BIGINT, ingested_at TIMESTAMP, report_json VARCHAR);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id VARCHAR, customer_id VARCHAR, ts TIMESTAMP, item_id VARCHAR, quantity BIGINT,
    unit_price_minor BIGINT, currency VARCHAR, country VARCHAR, source_row BIGINT,
    source_id VARCHAR);
CREATE TABLE IF NOT EXISTS item_titles (
    source_id VARCHAR, item_id VARCHAR, title VARCHAR, n_lines BIGINT);
CREATE TABLE IF NOT EXISTS item_costs (
    source_id VARCHAR, item_id VARCHAR, unit_cost_minor BIGINT, ts TIMESTAMP);
CREATE TABLE IF NOT EXISTS catalog (
    item_id VARCHAR PRIMARY KEY, title VARCHAR, category VARCHAR, list_price_minor BIGINT,
    unit_cost_minor BIGINT, currency VARCHAR, stock BIGINT);
CREATE TABLE IF NOT EXISTS items (
    item_id VARCHAR PRIMARY KEY, title VARCHAR, category VARCHAR, list_price_minor BIGINT,
    unit_cost_minor BIGINT, currency VARCHAR, stock BIGINT);
CREATE TABLE IF NOT EXISTS events (
    customer_id VARCHAR, ts TIMESTAMP, item_id VARCHAR, kind VARCHAR, source_id VARCHAR);
CREATE TABLE IF NOT EXISTS offers (
    offer_id VARCHAR, customer_id VARCHAR, offer_rank INTEGER, item_ids VARCHAR[],
    titles VARCHAR[], currency VARCHAR, list_total_minor BIGINT, cost_minor BIGINT,
    is_cost_assumed BOOLEAN,
    price_minor BIGINT, discount_minor BIGINT, discount_pct DOUBLE, p_accept DOUBLE,
    expected_profit_minor DOUBLE, binding_rule VARCHAR, reason VARCHAR, source VARCHAR,
    score DOUBLE, model_version VARCHAR);
CREATE TABLE IF NOT EXISTS feedback (
    event_id VARCHAR PRIMARY KEY, offer_id VARCHAR, customer_id VARCHAR, ts TIMESTAMP,
    outcome VARCHAR, price_paid_minor BIGINT, currency VARCHAR);
"""


@dataclass(frozen=True)
class IngestResult:
    """What one ``ingest`` did.

    Attributes
    ----------
    n_orders_replaced, n_lines_replaced
        Orders (and their stored lines) of earlier sources that this file also contains and
        therefore replaced (a newer export of the same store).
    n_items_with_cost
        Items whose unit cost is known (catalog or a mapped ``unit_cost`` column).
    catalog_columns
        Catalog field -> the catalog file's column (empty without a catalog).
    catalog_ignored
        Catalog columns that feed no field.
    """

    source_id: str
    adapter: str
    report: CleaningReport
    was_already_ingested: bool
    n_items: int
    n_events: int = 0
    n_orders_replaced: int = 0
    n_lines_replaced: int = 0
    n_items_with_cost: int = 0
    catalog_columns: dict[str, str] = field(default_factory=dict)
    catalog_ignored: tuple[str, ...] = ()

    @property
    def catalog_aliases(self) -> dict[str, str]:
        """Catalog fields read from a column of another name (``unit_cost`` <- ``cost_price``)."""
        return {k: v for k, v in self.catalog_columns.items() if v != k}

    def notes(self) -> list[str]:
        """One line per thing the user should know beyond the cleaning report."""
        lines = []
        if self.n_orders_replaced:
            lines.append(
                f"Replaced {self.n_orders_replaced:,} orders ({self.n_lines_replaced:,} lines) "
                "stored from earlier files with their versions in this file."
            )
        if self.catalog_aliases:
            used = ", ".join(f"{k} <- {v!r}" for k, v in self.catalog_aliases.items())
            lines.append(f"Catalog columns read by alias: {used}.")
        if self.catalog_ignored:
            lines.append(f"Catalog columns not used: {list(self.catalog_ignored)}.")
        return lines

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "source_id": self.source_id,
            "adapter": self.adapter,
            "was_already_ingested": self.was_already_ingested,
            "n_items": self.n_items,
            "n_events": self.n_events,
            "n_orders_replaced": self.n_orders_replaced,
            "n_lines_replaced": self.n_lines_replaced,
            "n_items_with_cost": self.n_items_with_cost,
            "catalog_columns": dict(self.catalog_columns),
            "catalog_aliases": self.catalog_aliases,
            "catalog_ignored": list(self.catalog_ignored),
            "report": self.report.to_dict(),
        }


@dataclass(frozen=True)
class IngestedSource:
    """One source read and cleaned by an engine, ready for :meth:`Workspace.store_ingest`.

    ``lines`` (clean order lines, without ``source_id``) and ``order_ids`` (every order id the
    source holds, for replacing orders of earlier exports) are Arrow tables or, for a source
    too large for memory, Parquet files (a path or glob that DuckDB reads out of core).
    ``titles`` and ``costs`` are as :func:`~bundlewise.data.cleaning.clean_order_lines` and
    :func:`~bundlewise.data.catalog.item_costs` give them.
    """

    source_id: str
    path: str
    adapter: str
    sha256: str
    report: CleaningReport
    lines: pa.Table | str
    titles: pa.Table
    costs: pa.Table
    order_ids: pa.Table | str


def _register(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table | str) -> None:
    """``data`` as the view ``name``: an Arrow table, or Parquet files read out of core."""
    if isinstance(data, str):
        con.read_parquet(data).create_view(name, replace=True)
    else:
        con.register(name, data)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Workspace:
    """A directory holding ``bundlewise.duckdb`` and the files of one store.

    Parameters
    ----------
    path
        Directory; created on first use.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def db_path(self) -> Path:
        """The DuckDB database file."""
        return self.path / DB_FILENAME

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the database (creating the schema on first use) and close it afterwards."""
        if read_only and not self.db_path.exists():
            raise WorkspaceError(
                f"no workspace at {self.path}: run `bundlewise ingest` (or `bundlewise demo`) "
                "first."
            )
        self.path.mkdir(parents=True, exist_ok=True)
        con = _sql.connect(str(self.db_path), read_only=read_only)
        try:
            if not read_only:
                con.execute(_SCHEMA)
            yield con
        finally:
            con.close()

    def ingest(
        self,
        orders_path: str | Path,
        config: Config | None = None,
        catalog_path: str | Path | None = None,
        events_path: str | Path | None = None,
    ) -> IngestResult:
        """Read, validate, clean and store an orders file (and optionally a catalog and events).

        Re-ingesting a file with the same bytes replaces its rows (idempotent); a new catalog
        replaces the previous one. The cleaning report is stored in the database and written
        to ``cleaning_report_<source_id>.json`` in the workspace directory.

        Raises
        ------
        DataValidationError
            The file is malformed; nothing is written.
        """
        config = config or Config()
        with _sql.limits(config.resources):
            return self._ingest(orders_path, config, catalog_path, events_path)

    def _ingest(
        self,
        orders_path: str | Path,
        config: Config,
        catalog_path: str | Path | None,
        events_path: str | Path | None,
    ) -> IngestResult:
        raw, adapter = read_orders(orders_path, config)
        release_unused_memory()  # the reader's intermediate arrays
        sha = file_sha256(orders_path)
        costs = item_costs(raw)
        order_ids = pa.table({"order_id": raw.column("order_id").unique()})
        cleaned = clean_order_lines(raw, config.cleaning, source=str(orders_path), dialect=adapter)
        del raw  # the cleaned lines are all that is stored (a big file's raw table is freed)
        release_unused_memory()
        source = IngestedSource(
            source_id=sha[:16],
            path=str(orders_path),
            adapter=adapter,
            sha256=sha,
            report=cleaned.report,
            lines=cleaned.order_lines,
            titles=cleaned.titles,
            costs=costs,
            order_ids=order_ids,
        )
        del cleaned
        return self.store_ingest(source, config, catalog_path, events_path)

    def store_ingest(
        self,
        source: IngestedSource,
        config: Config,
        catalog_path: str | Path | None = None,
        events_path: str | Path | None = None,
    ) -> IngestResult:
        """Store one read and cleaned source (any engine's), with an optional catalog and
        events, in one transaction: the storing half of :meth:`ingest`."""
        source_id = source.source_id
        catalog: Catalog | None = (
            load_catalog(catalog_path, config) if catalog_path is not None else None
        )
        events = None
        if events_path is not None:
            raw_events = read_events(events_path, config)
            events_id = file_sha256(events_path)[:16]
            events = raw_events.append_column(
                "source_id", pa.array([events_id] * raw_events.num_rows, pa.string())
            )
        with self.connect() as con:
            existed = bool(
                con.execute(
                    "SELECT count(*) FROM ingests WHERE source_id = ?", [source_id]
                ).fetchall()[0][0]
            )
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM order_lines WHERE source_id = ?", [source_id])
                con.execute("DELETE FROM item_titles WHERE source_id = ?", [source_id])
                con.execute("DELETE FROM item_costs WHERE source_id = ?", [source_id])
                con.execute("DELETE FROM ingests WHERE source_id = ?", [source_id])
                # A newer export of the same store: its orders replace the stored ones.
                _register(con, "new_order_ids", source.order_ids)
                replaced = con.execute(
                    "SELECT count(DISTINCT order_id), count(*) FROM order_lines "
                    "WHERE order_id IN (SELECT order_id FROM new_order_ids)"
                ).fetchall()[0]
                n_orders_replaced, n_lines_replaced = int(replaced[0]), int(replaced[1])
                if n_lines_replaced:
                    con.execute(
                        "DELETE FROM order_lines "
                        "WHERE order_id IN (SELECT order_id FROM new_order_ids)"
                    )
                _register(con, "new_lines", source.lines)
                con.execute(
                    "INSERT INTO order_lines BY NAME SELECT *, ? AS source_id FROM new_lines",
                    [source_id],
                )
                n_lines = int(
                    con.execute(
                        "SELECT count(*) FROM order_lines WHERE source_id = ?", [source_id]
                    ).fetchall()[0][0]
                )
                con.register("new_titles", source.titles)
                con.execute(
                    "INSERT INTO item_titles BY NAME "
                    "SELECT ? AS source_id, item_id, title, n_lines FROM new_titles",
                    [source_id],
                )
                con.register("new_costs", source.costs)
                con.execute(
                    "INSERT INTO item_costs BY NAME SELECT *, ? AS source_id FROM new_costs",
                    [source_id],
                )
                con.execute(
                    "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        source_id,
                        source.path,
                        source.adapter,
                        source.sha256,
                        source.report.n_rows_read,
                        source.report.n_rows_kept,
                        datetime.now(UTC).replace(tzinfo=None),
                        json.dumps(source.report.to_dict()),
                    ],
                )
                if catalog is not None:
                    con.execute("DELETE FROM catalog")
                    con.register("new_catalog", catalog.table)
                    con.execute("INSERT INTO catalog BY NAME SELECT * FROM new_catalog")
                if events is not None:
                    con.register("new_events", events)
                    con.execute(
                        "DELETE FROM events WHERE source_id IN "
                        "(SELECT DISTINCT source_id FROM new_events)"
                    )
                    con.execute("INSERT INTO events BY NAME SELECT * FROM new_events")
                n_items, n_with_cost = self._rebuild_items(con, config.input.currency)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        n_events = events.num_rows if events is not None else 0
        result = IngestResult(
            source_id,
            source.adapter,
            source.report,
            existed,
            n_items,
            n_events,
            n_orders_replaced=n_orders_replaced,
            n_lines_replaced=n_lines_replaced,
            n_items_with_cost=n_with_cost,
            catalog_columns=dict(catalog.columns) if catalog is not None else {},
            catalog_ignored=catalog.ignored if catalog is not None else (),
        )
        report_path = self.path / f"cleaning_report_{source_id}.json"
        report = {**source.report.to_dict(), "ingest": {**result.to_dict(), "report": None}}
        report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        logger.info(
            "ingested %s as %s (%d rows kept, %d orders replaced)",
            source.path,
            source_id,
            n_lines,
            n_orders_replaced,
        )
        return result

    @staticmethod
    def _rebuild_items(con: duckdb.DuckDBPyConnection, currency: str) -> tuple[int, int]:
        lines = con.sql(
            "SELECT order_id, customer_id, ts, item_id, quantity, unit_price_minor, currency, "
            "country, source_row FROM order_lines"
        ).to_arrow_table()
        titles = con.sql(
            "SELECT item_id, arg_max(title, n_lines) AS title FROM item_titles GROUP BY item_id"
        ).to_arrow_table()
        # The latest cost of each item over all sources (an item's cost may change).
        costs = con.sql(
            "SELECT item_id, arg_max(unit_cost_minor, ts) AS unit_cost_minor "
            "FROM item_costs GROUP BY item_id"
        ).to_arrow_table()
        derived = derive_items(lines, titles, currency, costs)
        con.register("derived_items", derived)
        con.execute("DELETE FROM items")
        # The catalog wins where it has a value; catalog items never sold are included too
        # (cold-start products).
        con.execute(
            """
            INSERT INTO items
            SELECT coalesce(c.item_id, d.item_id), coalesce(c.title, d.title),
                   coalesce(c.category, d.category),
                   coalesce(c.list_price_minor, d.list_price_minor),
                   coalesce(c.unit_cost_minor, d.unit_cost_minor),
                   coalesce(c.currency, d.currency), coalesce(c.stock, d.stock)
            FROM derived_items d FULL OUTER JOIN catalog c USING (item_id)
            """
        )
        row = con.execute("SELECT count(*), count(unit_cost_minor) FROM items").fetchall()[0]
        return int(row[0]), int(row[1])

    def table(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table (or only ``columns`` of it) as Arrow.

        Raises
        ------
        WorkspaceError
            If the workspace does not exist.
        KeyError
            If there is no such table.
        """
        with self.connect(read_only=True) as con:
            names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if name not in names:
                raise KeyError(f"no table {name!r} in workspace {self.path}; have {sorted(names)}")
            select = ", ".join(_sql.quote_ident(c) for c in columns) if columns else "*"
            return con.sql(f'SELECT {select} FROM "{name}"').to_arrow_table()

    def replace_table(self, name: str, table: pa.Table) -> None:
        """Replace a derived table (e.g. ``pair_stats``, ``offers``) with ``table``."""
        with self.connect() as con:
            con.register("incoming", table)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM incoming')

    def cleaning_reports(self) -> list[CleaningReport]:
        """The cleaning report of every ingested source, oldest first."""
        with self.connect(read_only=True) as con:
            rows = con.execute("SELECT report_json FROM ingests ORDER BY ingested_at").fetchall()
        return [CleaningReport.from_dict(json.loads(r[0])) for r in rows]

    def n_order_lines(self) -> int:
        """Number of clean order lines stored."""
        with self.connect(read_only=True) as con:
            return int(con.execute("SELECT count(*) FROM order_lines").fetchall()[0][0])


__all__ = ["DB_FILENAME", "IngestResult", "IngestedSource", "Workspace", "file_sha256"]
