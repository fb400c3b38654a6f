"""The embedded workspace: one DuckDB file holding the canonical tables and derived artifacts.

Re-ingesting the same file is idempotent: a source is identified by the SHA-256 of its bytes, and
its rows are replaced, never appended twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data.catalog import derive_items, read_catalog
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
    """What one ``ingest`` did."""

    source_id: str
    adapter: str
    report: CleaningReport
    was_already_ingested: bool
    n_items: int
    n_events: int = 0


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
        sha = file_sha256(orders_path)
        source_id = sha[:16]
        raw, adapter = read_orders(orders_path, config)
        cleaned = clean_order_lines(raw, config.cleaning, source=str(orders_path))
        catalog = read_catalog(catalog_path, config) if catalog_path is not None else None
        events = None
        if events_path is not None:
            raw_events = read_events(events_path, config)
            events_id = file_sha256(events_path)[:16]
            events = raw_events.append_column(
                "source_id", pa.array([events_id] * raw_events.num_rows, pa.string())
            )
        lines = cleaned.order_lines.append_column(
            "source_id", pa.array([source_id] * cleaned.order_lines.num_rows, pa.string())
        )
        titles = cleaned.titles.append_column(
            "source_id", pa.array([source_id] * cleaned.titles.num_rows, pa.string())
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
                con.execute("DELETE FROM ingests WHERE source_id = ?", [source_id])
                con.register("new_lines", lines)
                con.execute("INSERT INTO order_lines BY NAME SELECT * FROM new_lines")
                con.register("new_titles", titles)
                con.execute(
                    "INSERT INTO item_titles BY NAME "
                    "SELECT source_id, item_id, title, n_lines FROM new_titles"
                )
                con.execute(
                    "INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        source_id,
                        str(orders_path),
                        adapter,
                        sha,
                        cleaned.report.n_rows_read,
                        cleaned.report.n_rows_kept,
                        datetime.now(UTC).replace(tzinfo=None),
                        json.dumps(cleaned.report.to_dict()),
                    ],
                )
                if catalog is not None:
                    con.execute("DELETE FROM catalog")
                    con.register("new_catalog", catalog)
                    con.execute("INSERT INTO catalog BY NAME SELECT * FROM new_catalog")
                if events is not None:
                    con.register("new_events", events)
                    con.execute(
                        "DELETE FROM events WHERE source_id IN "
                        "(SELECT DISTINCT source_id FROM new_events)"
                    )
                    con.execute("INSERT INTO events BY NAME SELECT * FROM new_events")
                n_items = self._rebuild_items(con, config.input.currency)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        report_path = self.path / f"cleaning_report_{source_id}.json"
        report_path.write_text(json.dumps(cleaned.report.to_dict(), indent=2), encoding="utf-8")
        logger.info("ingested %s as %s (%d rows kept)", orders_path, source_id, lines.num_rows)
        n_events = events.num_rows if events is not None else 0
        return IngestResult(source_id, adapter, cleaned.report, existed, n_items, n_events)

    @staticmethod
    def _rebuild_items(con: duckdb.DuckDBPyConnection, currency: str) -> int:
        lines = con.sql(
            "SELECT order_id, customer_id, ts, item_id, quantity, unit_price_minor, currency, "
            "country, source_row FROM order_lines"
        ).to_arrow_table()
        titles = con.sql(
            "SELECT item_id, arg_max(title, n_lines) AS title FROM item_titles GROUP BY item_id"
        ).to_arrow_table()
        derived = derive_items(lines, titles, currency)
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
        return int(con.execute("SELECT count(*) FROM items").fetchall()[0][0])

    def table(self, name: str) -> pa.Table:
        """Read a whole table as Arrow.

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
            return con.sql(f'SELECT * FROM "{name}"').to_arrow_table()

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


__all__ = ["DB_FILENAME", "IngestResult", "Workspace", "file_sha256"]
