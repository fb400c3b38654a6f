"""Pair statistics on Spark: the SQL of :class:`bundlewise.mining.PairMiner` as Spark SQL.

The same self-join over baskets, the same formulas in the same order of floating-point
operations, and the same partner ranking (``lift_shrunk DESC, n_ab DESC, partner_id``; strings
compare by their UTF-8 bytes in both engines), so the rows equal the embedded engine's: counts
exactly, statistics to the last bit for the arithmetic and within 1e-12 for ``npmi`` (``ln`` is
Java's, not DuckDB's). ``pyspark.ml.fpm.FPGrowth`` is not used: it has no maximum itemset
length, and pairs are all that is needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from bundlewise.config import MiningConfig
from bundlewise.mining import PairMiner

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame, SparkSession

#: Arrow schema of the ``pair_stats`` table (as the embedded miner writes it).
PAIR_SCHEMA = pa.schema(
    [
        ("item_a", pa.string()),
        ("item_b", pa.string()),
        ("n_ab", pa.int64()),
        ("n_a", pa.int64()),
        ("n_b", pa.int64()),
        ("support", pa.float64()),
        ("confidence_ab", pa.float64()),
        ("confidence_ba", pa.float64()),
        ("lift", pa.float64()),
        ("lift_shrunk", pa.float64()),
        ("npmi", pa.float64()),
    ]
)
#: Arrow schema of the ``partners`` table.
PARTNER_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("partner_id", pa.string()),
        ("rank", pa.int32()),
        ("n_ab", pa.int64()),
        ("lift_shrunk", pa.float64()),
        ("confidence", pa.float64()),
        ("npmi", pa.float64()),
    ]
)


@contextmanager
def temp_views(spark: SparkSession) -> Iterator[dict[str, str]]:
    """Unique temporary view names (``names["kept"]`` -> ``bw_<id>_kept``), dropped on exit,
    so that two runs in one session never see each other's views."""
    prefix = f"bw_{uuid.uuid4().hex[:12]}_"
    names: dict[str, str] = _ViewNames(prefix)
    try:
        yield names
    finally:
        for name in names.values():
            spark.catalog.dropTempView(name)


class _ViewNames(dict[str, str]):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def __missing__(self, key: str) -> str:
        self[key] = self.prefix + key
        return self[key]


def to_arrow(frame: DataFrame, schema: pa.Schema) -> pa.Table:
    """Collect a Spark DataFrame to the driver as Arrow, cast to ``schema`` (Spark gives
    ``large_string`` and nullable flags of its own)."""
    table: pa.Table = frame.select(*schema.names).toArrow()
    return table.cast(schema)


@dataclass
class SparkPairs:
    """Pair statistics mined on Spark.

    Attributes
    ----------
    pairs
        Spark DataFrame of ``pair_stats`` (:data:`PAIR_SCHEMA` columns), persisted: call
        :meth:`unpersist` when done.
    partners
        Spark DataFrame of ``partners`` (:data:`PARTNER_SCHEMA` columns).
    n_orders, n_orders_skipped
        Orders counted, and orders left out for having more than ``max_basket_items`` items.
    """

    pairs: DataFrame
    partners: DataFrame
    n_orders: int
    n_orders_skipped: int
    config: MiningConfig

    def pairs_table(self) -> pa.Table:
        """``pair_stats`` on the driver, ordered like the embedded miner's (item_a, item_b)."""
        return to_arrow(self.pairs, PAIR_SCHEMA).sort_by(
            [("item_a", "ascending"), ("item_b", "ascending")]
        )

    def partners_table(self) -> pa.Table:
        """``partners`` on the driver, ordered by item and rank."""
        return to_arrow(self.partners, PARTNER_SCHEMA).sort_by(
            [("item_id", "ascending"), ("rank", "ascending")]
        )

    def to_miner(self) -> PairMiner:
        """A fitted :class:`~bundlewise.mining.PairMiner` holding these tables (collected to
        the driver), for the driver-side steps that take one."""
        miner = PairMiner.from_config(self.config)
        miner.pairs_ = self.pairs_table()
        miner.partners_ = self.partners_table()
        miner.n_orders_ = self.n_orders
        miner.n_orders_skipped_ = self.n_orders_skipped
        return miner

    def unpersist(self) -> None:
        """Release the cached pair statistics."""
        self.pairs.unpersist()


def mine_pairs(
    spark: SparkSession, order_lines: DataFrame, config: MiningConfig | None = None
) -> SparkPairs:
    """Co-purchase pair statistics and partner lists of ``order_lines`` on Spark.

    Parameters
    ----------
    order_lines
        Spark DataFrame with at least ``order_id`` and ``item_id`` (repeated lines of one item
        in one order count once).
    config
        Mining settings (as :meth:`PairMiner.from_config` reads them).

    Raises
    ------
    KeyError
        If ``order_id`` or ``item_id`` is missing.
    """
    config = config or MiningConfig()
    for column in ("order_id", "item_id"):
        if column not in order_lines.columns:
            raise KeyError(f"order_lines has no column {column!r}")
    with temp_views(spark) as v:
        order_lines.select("order_id", "item_id").createOrReplaceTempView(v["lines"])
        # The item index only makes the self-join compare integers; its order is the byte
        # order of the ids, as in DuckDB, so `ia < ib` is `item_a < item_b` in both engines.
        spark.sql(
            f"""
            SELECT item_id, CAST(row_number() OVER (ORDER BY item_id) AS INT) AS idx
            FROM (SELECT DISTINCT item_id FROM {v["lines"]})
            """
        ).createOrReplaceTempView(v["item_idx"])
        spark.sql(
            f"""
            SELECT DISTINCT l.order_id, i.idx
            FROM {v["lines"]} l JOIN {v["item_idx"]} i ON l.item_id = i.item_id
            """
        ).createOrReplaceTempView(v["baskets"])
        sizes = spark.sql(
            f"SELECT order_id, count(*) AS n_items FROM {v['baskets']} GROUP BY order_id"
        )
        sizes.createOrReplaceTempView(v["sizes"])
        counted = spark.sql(
            f"""
            SELECT count_if(n_items <= :max_items) AS n_orders,
                   count_if(n_items > :max_items) AS n_skipped
            FROM {v["sizes"]}
            """,
            args={"max_items": config.max_basket_items},
        ).collect()[0]
        n_orders, n_skipped = int(counted["n_orders"]), int(counted["n_skipped"])
        spark.sql(
            f"""
            SELECT b.order_id, b.idx FROM {v["baskets"]} b JOIN {v["sizes"]} s
            ON b.order_id = s.order_id WHERE s.n_items <= :max_items
            """,
            args={"max_items": config.max_basket_items},
        ).createOrReplaceTempView(v["kept"])
        pairs = spark.sql(
            f"""
            WITH counts AS (SELECT idx, count(*) AS n FROM {v["kept"]} GROUP BY idx),
            pair_counts AS (
                SELECT a.idx AS ia, b.idx AS ib, count(*) AS n_ab
                FROM {v["kept"]} a JOIN {v["kept"]} b ON a.order_id = b.order_id AND a.idx < b.idx
                GROUP BY a.idx, b.idx HAVING count(*) >= :min_count
            ), stats AS (
                SELECT p.ia, p.ib, p.n_ab, ca.n AS n_a, cb.n AS n_b,
                       CAST(ca.n AS DOUBLE) * cb.n / :n_orders AS expected
                FROM pair_counts p JOIN counts ca ON ca.idx = p.ia
                JOIN counts cb ON cb.idx = p.ib
            )
            SELECT ia_.item_id AS item_a, ib_.item_id AS item_b, n_ab, n_a, n_b,
                   n_ab / :n_orders AS support,
                   n_ab / n_a AS confidence_ab,
                   n_ab / n_b AS confidence_ba,
                   n_ab / expected AS lift,
                   (n_ab + :alpha) / (expected + :alpha) AS lift_shrunk,
                   CASE WHEN n_ab = :n_orders THEN CAST(1.0 AS DOUBLE)
                        ELSE ln(n_ab / expected) / -ln(n_ab / :n_orders) END AS npmi
            FROM stats JOIN {v["item_idx"]} ia_ ON ia_.idx = stats.ia
            JOIN {v["item_idx"]} ib_ ON ib_.idx = stats.ib
            """,
            args={
                "min_count": config.min_count,
                "n_orders": float(max(n_orders, 1)),
                "alpha": float(config.prior_strength),
            },
        ).persist()
        pairs.createOrReplaceTempView(v["pairs"])
        partners = spark.sql(
            f"""
            SELECT * FROM (
                SELECT item_id, partner_id,
                       CAST(row_number() OVER (PARTITION BY item_id
                            ORDER BY lift_shrunk DESC, n_ab DESC, partner_id) AS INT) AS rank,
                       n_ab, lift_shrunk, confidence, npmi
                FROM (
                    SELECT item_a AS item_id, item_b AS partner_id, n_ab, lift_shrunk,
                           confidence_ab AS confidence, npmi FROM {v["pairs"]}
                    UNION ALL
                    SELECT item_b, item_a, n_ab, lift_shrunk, confidence_ba, npmi
                    FROM {v["pairs"]}
                ) WHERE lift_shrunk > 1
            ) WHERE rank <= :n_partners
            """,
            args={"n_partners": config.n_partners},
        )
        # The views are dropped on exit; the frames keep their plans.
        pairs = pairs.select(*PAIR_SCHEMA.names)
        partners = partners.select(*PARTNER_SCHEMA.names)
        pairs.count()  # materialise the cache while the views exist
    return SparkPairs(pairs, partners, n_orders, n_skipped, config)


__all__ = ["PAIR_SCHEMA", "PARTNER_SCHEMA", "SparkPairs", "mine_pairs", "temp_views", "to_arrow"]
