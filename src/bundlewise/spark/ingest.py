"""``bundlewise ingest --engine spark``: read, validate and clean a source on Spark, then land
the clean lines in the workspace so that every other command works as after an embedded ingest.

Spark writes the clean lines as Parquet under the workspace directory; DuckDB loads them out of
core into the workspace database in the same transaction as the embedded ingest's
(:meth:`bundlewise.data.Workspace.store_ingest`), and the Parquet is removed afterwards. On a
cluster the workspace directory must therefore be on a file system the executors can write
(local mode always can).
"""

from __future__ import annotations

import shutil
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import IngestResult, Workspace, _sql
from bundlewise.data.workspace import IngestedSource
from bundlewise.spark.cleaning import clean_order_lines
from bundlewise.spark.io import load_source, read_orders
from bundlewise.spark.mining import to_arrow
from bundlewise.spark.session import spark_session

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession

#: Subdirectory of the workspace where Spark lands Parquet for DuckDB to load.
LANDING_DIR = "spark_landing"

_TITLES = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("n_lines", pa.int64())])
_COSTS = pa.schema(
    [("item_id", pa.string()), ("unit_cost_minor", pa.int64()), ("ts", pa.timestamp("us"))]
)


def item_costs(raw: DataFrame) -> DataFrame:
    """Each item's unit cost from the lines that carry one (its latest line's), as
    :func:`bundlewise.data.catalog.item_costs`."""
    from pyspark.sql import functions as F

    return (
        raw.where(F.col("unit_cost_minor").isNotNull())
        .groupBy("item_id")
        .agg(
            F.max_by("unit_cost_minor", F.struct("ts", "source_row")).alias("unit_cost_minor"),
            F.max("ts").alias("ts"),
        )
    )


def ingest(
    workspace: Workspace,
    source: str,
    config: Config | None = None,
    catalog_path: str | Path | None = None,
    events_path: str | Path | None = None,
    spark: SparkSession | None = None,
) -> IngestResult:
    """Read, validate and clean ``source`` on Spark and store it in ``workspace``.

    ``source`` is a path or ``table:NAME`` (see :func:`bundlewise.spark.io.parse_source`); the
    catalog and events files are read on the driver as by the embedded ingest. The result, the
    stored tables and the cleaning report are the embedded ingest's for the same data.

    Raises
    ------
    DataValidationError, ConfigError
        As the embedded ingest; nothing is written.
    SparkUnavailableError
        pyspark or Java is missing.
    """
    config = config or Config()
    spark = spark or spark_session(config.spark)  # first: a missing pyspark is one line
    from pyspark import StorageLevel

    loaded = load_source(spark, source, config)
    raw, adapter = read_orders(spark, loaded, config)
    raw = raw.persist(StorageLevel.MEMORY_AND_DISK)
    source_id = loaded.sha256[:16]
    landing = workspace.path / LANDING_DIR / f"{source_id}-{uuid.uuid4().hex[:8]}"
    try:
        cleaned = clean_order_lines(spark, raw, config.cleaning, source=source, dialect=adapter)
        try:
            cleaned.order_lines.write.parquet(str(landing / "lines"))
        finally:
            cleaned.unpersist()
        raw.select("order_id").distinct().write.parquet(str(landing / "order_ids"))
        titles = to_arrow(cleaned.titles, _TITLES).sort_by("item_id")
        costs = to_arrow(item_costs(raw), _COSTS).sort_by("item_id")
        ingested = IngestedSource(
            source_id=source_id,
            path=source,
            adapter=adapter,
            sha256=loaded.sha256,
            report=cleaned.report,
            lines=str(landing / "lines" / "*.parquet"),
            titles=titles,
            costs=costs,
            order_ids=str(landing / "order_ids" / "*.parquet"),
        )
        with _sql.limits(config.resources):
            return workspace.store_ingest(ingested, config, catalog_path, events_path)
    finally:
        raw.unpersist()
        shutil.rmtree(landing, ignore_errors=True)
        if landing.parent.is_dir() and not any(landing.parent.iterdir()):
            landing.parent.rmdir()


__all__ = ["LANDING_DIR", "ingest", "item_costs"]
