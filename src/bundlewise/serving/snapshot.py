"""The partitioned served-offers snapshot: one directory per model version, the served offers
as Parquet files partitioned by customer bucket (:mod:`bundlewise.serving.buckets`), and a
manifest written last.

Layout::

    <workspace dir>/snapshot/<model_version>/served_offers/bucket=<k>/*.parquet
    <workspace dir>/snapshot/<model_version>/manifest.json

Each row is ``customer_id, offers_json, model_version`` (the workspace table ``served_offers``);
the anonymous fallback (customer ``__anonymous__``) sits in its bucket like any customer and
every reader loads it, whatever buckets it serves. ``train`` writes the snapshot with DuckDB; any
writer that produces the same files (the Spark engine) and then calls :func:`write_manifest`
makes an equally valid snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bundlewise.exceptions import WorkspaceError
from bundlewise.pricing.pricer import ANONYMOUS
from bundlewise.serving.buckets import (
    BUCKET_FUNCTION,
    DEFAULT_BUCKETS,
    MAX_BUCKETS,
    BucketRange,
    duckdb_bucket_sql,
)

SNAPSHOT_DIR = "snapshot"
#: Rows of a Parquet row group: each open bucket buffers one (a million customers' JSON is
#: 4 GB; 122,880-row groups in 16 buckets would hold most of it in memory at once).
ROW_GROUP_SIZE = 8192
MANIFEST = "manifest.json"
SERVED_OFFERS = "served_offers"
COLUMNS = ("customer_id", "offers_json", "model_version")
FORMAT = 1


def snapshot_path(workspace_dir: str | Path, model_version: str) -> Path:
    """Where the snapshot of ``model_version`` lives."""
    if not model_version or "/" in model_version or model_version.startswith("."):
        raise ValueError(f"model version {model_version!r} cannot name a snapshot directory")
    return Path(workspace_dir) / SNAPSHOT_DIR / model_version


def write_manifest(
    directory: str | Path, model_version: str, n_buckets: int, n_rows: int, n_customers: int
) -> Path:
    """Write ``manifest.json`` into a snapshot directory whose files are complete."""
    path = Path(directory) / MANIFEST
    manifest = {
        "format": FORMAT,
        "model_version": model_version,
        "n_buckets": n_buckets,
        "bucket_of": BUCKET_FUNCTION,
        "columns": list(COLUMNS),
        "n_rows": n_rows,
        "n_customers": n_customers,
    }
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_snapshot(
    con: duckdb.DuckDBPyConnection,
    workspace_dir: str | Path,
    model_version: str,
    n_buckets: int = DEFAULT_BUCKETS,
    source: str = SERVED_OFFERS,
) -> Path:
    """Write the rows of ``source`` (a table or view of ``con`` with :data:`COLUMNS`) as the
    snapshot of ``model_version`` (``COPY ... PARTITION_BY``), replacing any earlier snapshot
    of that version and removing those of other versions; returns its directory.

    The files are written into a scratch directory that is renamed into place once the
    manifest is in it, so a reader never sees a half-written snapshot."""
    target = snapshot_path(workspace_dir, model_version)
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".{model_version}.writing-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / SERVED_OFFERS).mkdir(parents=True)
    bucket = duckdb_bucket_sql("customer_id", n_buckets)
    out = str(scratch / SERVED_OFFERS).replace("'", "''")
    # Rows buffered before a partitioned write flushes (DuckDB's default, 524,288 rows, is
    # 2 GB of a million customers' JSON per thread); the connection's setting is restored.
    con.execute(f"SET partitioned_write_flush_threshold = {ROW_GROUP_SIZE}")
    try:
        con.execute(
            f"COPY (SELECT customer_id, offers_json, model_version, {bucket} AS bucket "
            f'FROM "{source}") '  # no ORDER BY: streamed, never the whole table sorted
            f"TO '{out}' (FORMAT parquet, PARTITION_BY (bucket), OVERWRITE_OR_IGNORE, "
            f"ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
        )
    finally:
        con.execute("RESET partitioned_write_flush_threshold")
    n_rows, n_anonymous = con.execute(
        f'SELECT count(*), count(*) FILTER (WHERE customer_id = ?) FROM "{source}"', [ANONYMOUS]
    ).fetchall()[0]
    write_manifest(scratch, model_version, n_buckets, int(n_rows), int(n_rows - n_anonymous))
    old = root / f".{model_version}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(scratch, target)
    shutil.rmtree(old, ignore_errors=True)
    for other in root.iterdir():
        if other.name != model_version and not other.name.startswith("."):
            shutil.rmtree(other, ignore_errors=True)
    return target


def read_manifest(directory: str | Path, model_version: str) -> dict[str, Any] | None:
    """The manifest of a snapshot directory (``None`` when it has none: no snapshot there).

    Raises
    ------
    WorkspaceError
        When the manifest is unreadable or names another model or a bad bucket count.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{path}: unreadable snapshot manifest: {exc}") from None
    if not isinstance(manifest, dict):
        raise WorkspaceError(f"{path}: the snapshot manifest is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise WorkspaceError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    if manifest.get("model_version") != model_version:
        raise WorkspaceError(
            f"{path}: model_version {manifest.get('model_version')!r}, expected {model_version!r}"
        )
    n = manifest.get("n_buckets")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_BUCKETS:
        raise WorkspaceError(f"{path}: n_buckets {n!r} is not an integer in 1..{MAX_BUCKETS}")
    if manifest.get("bucket_of") != BUCKET_FUNCTION:
        raise WorkspaceError(
            f"{path}: bucket_of {manifest.get('bucket_of')!r}, expected {BUCKET_FUNCTION!r}"
        )
    return manifest


def read_served_offers(
    directory: str | Path, manifest: dict[str, Any], buckets: BucketRange | None = None
) -> pa.Table:
    """The snapshot's served offers (only ``buckets``' customers and the anonymous fallback,
    when given), in no particular order, as Arrow chunks of :data:`ROWS_PER_CHUNK` rows
    streamed from the files (never the whole table in DuckDB, nor a sorted copy).

    Raises
    ------
    WorkspaceError
        When ``buckets`` has another bucket count than the snapshot, or the files are missing.
    """
    n = int(manifest["n_buckets"])
    if buckets is not None and buckets.n_buckets != n:
        raise WorkspaceError(
            f"buckets {buckets}: the snapshot in {directory} has {n} buckets, not "
            f"{buckets.n_buckets}"
        )
    files = Path(directory) / SERVED_OFFERS
    pattern = str(files / "*" / "*.parquet").replace("'", "''")
    where = ""
    params: list[Any] = []
    if buckets is not None:
        where = "WHERE bucket BETWEEN ? AND ? OR customer_id = ?"
        params = [buckets.first, buckets.last, ANONYMOUS]
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        try:
            table = _streamed(
                con,
                "SELECT customer_id, offers_json, model_version "
                f"FROM read_parquet('{pattern}', hive_partitioning = true) {where}",
                params,
            )
        except duckdb.IOException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise WorkspaceError(f"{files}: cannot read the snapshot: {first}") from None
    finally:
        con.close()
    if buckets is None and table.num_rows != manifest.get("n_rows"):
        raise WorkspaceError(
            f"{files}: {table.num_rows} rows, the manifest says {manifest.get('n_rows')!r}"
        )
    return table


#: Rows of one Arrow chunk of the loaded offers (a chunk's JSON stays well under 2 GiB).
ROWS_PER_CHUNK = 65_536


def _streamed(con: duckdb.DuckDBPyConnection, query: str, params: list[Any]) -> pa.Table:
    reader = con.sql(query, params=params or None).to_arrow_reader(ROWS_PER_CHUNK)
    table: pa.Table = reader.read_all()
    return table


def workspace_served_offers(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """The workspace table ``served_offers`` streamed in chunks (as :func:`read_served_offers`)."""
    return _streamed(con, f'SELECT * FROM "{SERVED_OFFERS}"', [])


def in_buckets(table: pa.Table, buckets: BucketRange) -> pa.Table:
    """The rows of ``table`` (with ``customer_id``) whose customer is in ``buckets``, and the
    anonymous fallback, sorted by customer id."""
    con = duckdb.connect()
    try:
        con.register("t", table)
        bucket = duckdb_bucket_sql("customer_id", buckets.n_buckets)
        out: pa.Table = con.sql(
            f"SELECT * FROM t WHERE {bucket} BETWEEN ? AND ? OR customer_id = ? "
            "ORDER BY customer_id",
            params=[buckets.first, buckets.last, ANONYMOUS],
        ).to_arrow_table()
    finally:
        con.close()
    return out


__all__ = [
    "COLUMNS",
    "MANIFEST",
    "SNAPSHOT_DIR",
    "ROWS_PER_CHUNK",
    "in_buckets",
    "read_manifest",
    "read_served_offers",
    "snapshot_path",
    "write_manifest",
    "workspace_served_offers",
    "write_snapshot",
]
