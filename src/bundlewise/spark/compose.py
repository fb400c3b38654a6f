"""Candidate composition on Spark: :func:`bundlewise.composer.beam.compose_beam_candidates`
with the customers spread over Spark partitions.

What every customer's candidates depend on beyond their own lines is small and computed once
on the driver: the item ids (the interest columns, sorted), the end of the data (recency's
reference), the item-kNN neighbours (fitted on which items every customer bought, collected
from a Spark job) and the mined pairs. These are broadcast; each partition of customers then
runs the embedded code on its own lines (:func:`bundlewise.composer.interest.interest_weights`,
:func:`bundlewise.composer.beam.search_interest`,
:func:`bundlewise.composer.candidates.add_popular_fallback`), so a customer's candidates are
those of the embedded composer, whatever the partitioning.

pyspark is imported only when a function runs (``pip install 'bundlewise[spark]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from bundlewise.composer.beam import CANDIDATE_SCHEMA
from bundlewise.config import ComposerConfig
from bundlewise.exceptions import ConfigError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import Column, DataFrame, SparkSession

#: Columns of the order lines the composer reads.
LINE_COLUMNS: tuple[str, ...] = ("order_id", "customer_id", "item_id", "ts")
#: Columns of the pairs the composer reads.
PAIR_COLUMNS: tuple[str, ...] = ("item_a", "item_b", "n_ab", "lift_shrunk")

#: Column holding each row's customer partition inside the jobs.
_PART = "_bw_part"

_ARROW_TO_DDL = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.bool_(): "boolean",
}


def spark_ddl(schema: pa.Schema) -> str:
    """A Spark DDL schema string for an Arrow schema of strings, ints, floats, booleans and
    lists of strings.

    Examples
    --------
    >>> spark_ddl(pa.schema([("a", pa.string()), ("b", pa.list_(pa.string()))]))
    'a string, b array<string>'
    """
    parts = []
    for field in schema:
        if pa.types.is_list(field.type):
            parts.append(f"{field.name} array<{_ARROW_TO_DDL[field.type.value_type]}>")
        else:
            parts.append(f"{field.name} {_ARROW_TO_DDL[field.type]}")
    return ", ".join(parts)


def canonical(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns of ``schema``, cast to its types; a zoned timestamp (Spark's
    ``TIMESTAMP`` under a UTC session time zone) becomes the UTC wall time, as the embedded
    engine stores it."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = column.cast(pa.timestamp(kind.unit))
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)


#: The order lines as the composer reads them.
LINES_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("item_id", pa.string()),
        ("ts", pa.timestamp("us")),
    ]
)

#: The pairs as the composer reads them.
PAIRS_SCHEMA = pa.schema(
    [
        ("item_a", pa.string()),
        ("item_b", pa.string()),
        ("n_ab", pa.int64()),
        ("lift_shrunk", pa.float64()),
    ]
)


def customer_partition(customer_id: Column, n_partitions: int) -> Column:
    """The partition (0..n-1) a customer's rows are processed in (a hash of the id; any
    function would do: a customer's result does not depend on the others of its partition)."""
    from pyspark.sql import functions as F

    return F.pmod(F.hash(customer_id), F.lit(n_partitions))


def n_customer_partitions(spark: SparkSession, n_partitions: int | None) -> int:
    """``n_partitions``, or ``spark.sql.shuffle.partitions`` when ``None`` or 0.

    Raises
    ------
    ConfigError
        A negative number.
    """
    if n_partitions is not None and n_partitions < 0:
        raise ConfigError(f"`spark.customer_partitions`={n_partitions} should be >= 0.")
    if not n_partitions:
        return int(str(spark.conf.get("spark.sql.shuffle.partitions", "200")))
    return int(n_partitions)


def per_customer_partition(
    frame: DataFrame,
    n_partitions: int,
    function: Callable[[pa.Table], pa.Table],
    schema: pa.Schema,
) -> DataFrame:
    """``function`` applied to all rows of each partition of customers at once (a customer's
    rows are all in one call); its output is cast to ``schema``."""
    from pyspark.sql import functions as F

    def run(table: pa.Table) -> pa.Table:
        return canonical(function(table.drop_columns([_PART])), schema)

    grouped = frame.withColumn(_PART, customer_partition(F.col("customer_id"), n_partitions))
    return grouped.groupBy(_PART).applyInArrow(run, schema=spark_ddl(schema))


def to_arrow(frame: DataFrame, schema: pa.Schema) -> pa.Table:
    """A (small) DataFrame collected to the driver as Arrow, in ``schema``."""
    return canonical(frame.select(*schema.names).toArrow(), schema)


def _pairs_table(pairs: pa.Table | DataFrame) -> pa.Table:
    if isinstance(pairs, pa.Table):
        return canonical(pairs.select(list(PAIR_COLUMNS)), PAIRS_SCHEMA)
    return to_arrow(pairs, PAIRS_SCHEMA)


def _interest_schema() -> pa.Schema:
    return pa.schema([("customer_id", pa.string()), ("item_id", pa.string()), ("w", pa.float64())])


def _interest_job(globals_: Any) -> Callable[[pa.Table], pa.Table]:
    def job(table: pa.Table) -> pa.Table:
        from bundlewise.composer.interest import interest_weights

        g = globals_.value
        lines = canonical(table, LINES_SCHEMA)
        return interest_weights(lines, g["end_ts"], g["config"].recency_half_life_days)

    return job


def _compose_job(globals_: Any) -> Callable[[pa.Table], pa.Table]:
    def job(table: pa.Table) -> pa.Table:
        return compose_partition(canonical(table, LINES_SCHEMA), **globals_.value)

    return job


def compose_partition(
    lines: pa.Table,
    *,
    items: list[str],
    end_ts: pa.Table,
    similarity: sp.csr_matrix | None,
    pairs: pa.Table,
    config: ComposerConfig,
) -> pa.Table:
    """The candidates of the customers of ``lines`` (all their lines), given the global
    pieces: what each partition of customers runs."""
    from bundlewise.composer.beam import search_interest
    from bundlewise.composer.candidates import add_popular_fallback
    from bundlewise.composer.interest import interest_matrix, interest_weights

    weights = interest_weights(lines, end_ts, config.recency_half_life_days)
    interest = interest_matrix(weights, items)
    personal = search_interest(interest, pairs, config, similarity)
    return add_popular_fallback(personal, lines, pairs, config.n_offers)


def _binary(weights: pa.Table, items: list[str]) -> sp.csr_matrix:
    from bundlewise.composer.interest import interest_matrix

    return interest_matrix(weights, items).binary()


def compose_candidates_spark(
    spark: SparkSession,
    lines: DataFrame,
    pairs: pa.Table | DataFrame,
    config: ComposerConfig | None = None,
    customer_ids: Sequence[str] | None = None,
    n_partitions: int | None = None,
) -> DataFrame:
    """Candidate bundles for every customer, as
    :func:`~bundlewise.composer.beam.compose_beam_candidates` gives them, on Spark.

    Parameters
    ----------
    spark
        The session.
    lines
        Clean order lines: ``order_id, customer_id, item_id, ts`` (other columns are
        ignored); ``ts`` a ``TIMESTAMP_NTZ``, or a ``TIMESTAMP`` under a UTC session time zone.
    pairs
        Pair statistics (``item_a, item_b, n_ab, lift_shrunk``), as Arrow or a DataFrame
        (collected: they are broadcast to every partition).
    config
        Composer settings; ``method`` must be ``"beam"``.
    customer_ids
        Extra customers to cover (e.g. the anonymous one): they get the popular bundles.
    n_partitions
        Partitions of the customers; ``None`` or 0: ``spark.sql.shuffle.partitions``.

    Returns
    -------
    pyspark.sql.DataFrame
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS`, unordered.

    Raises
    ------
    ConfigError
        ``composer.method`` is not ``"beam"``, or a negative ``n_partitions``.
    """
    from pyspark.sql import functions as F

    from bundlewise.composer.beam import fit_knn_similarity
    from bundlewise.composer.candidates import add_popular_fallback
    from bundlewise.composer.interest import interest_globals

    config = config or ComposerConfig()
    if config.method != "beam":
        raise ConfigError(
            f"`composer.method`={config.method!r} is not available with engine 'spark'; use 'beam'."
        )
    parts = n_customer_partitions(spark, n_partitions)
    pair_table = _pairs_table(pairs)
    lines = lines.select(*LINE_COLUMNS)
    # the columns of the interest (every sold item, sorted) and the end of the data
    last_sale = lines.groupBy("item_id").agg(F.max("ts").alias("ts"))
    items, end_ts = interest_globals(
        canonical(
            last_sale.toArrow(), pa.schema([LINES_SCHEMA.field(n) for n in ("item_id", "ts")])
        )
    )
    known = lines.where(F.col("customer_id").isNotNull())
    context = spark.sparkContext
    similarity = None
    #: the customers with lines, where already collected
    present: set[str] | None = None
    if config.knn_weight > 0:
        # who bought what, over all customers: the item-kNN neighbours, fitted on the driver
        first = context.broadcast({"end_ts": end_ts, "config": config})
        weights = to_arrow(
            per_customer_partition(known, parts, _interest_job(first), _interest_schema()),
            _interest_schema(),
        )
        first.destroy()
        similarity = fit_knn_similarity(_binary(weights, items), config)
        present = set(pc.unique(weights.column("customer_id")).to_pylist())
    shared = context.broadcast(
        {"items": items, "end_ts": end_ts, "similarity": similarity, "pairs": pair_table,
         "config": config}
    )  # fmt: skip
    personal = per_customer_partition(known, parts, _compose_job(shared), CANDIDATE_SCHEMA)
    extra = list(dict.fromkeys(customer_ids or []))
    if not extra:
        return personal
    if present is None:
        seen = to_arrow(
            known.where(F.col("customer_id").isin(extra)).select("customer_id").distinct(),
            pa.schema([("customer_id", pa.string())]),
        )
        present = set(seen.column("customer_id").to_pylist())
    missing = [c for c in extra if c not in present]
    if not missing:
        return personal
    # customers without lines get the popular bundles only: composed here
    fallback = add_popular_fallback(
        CANDIDATE_SCHEMA.empty_table(), LINES_SCHEMA.empty_table(), pair_table, config.n_offers,
        missing,
    )  # fmt: skip
    return personal.unionByName(
        spark.createDataFrame(
            canonical(fallback, CANDIDATE_SCHEMA), schema=spark_ddl(CANDIDATE_SCHEMA)
        )
    )


__all__ = [
    "LINES_SCHEMA",
    "PAIRS_SCHEMA",
    "canonical",
    "compose_candidates_spark",
    "compose_partition",
    "customer_partition",
    "n_customer_partitions",
    "per_customer_partition",
    "spark_ddl",
    "to_arrow",
]
