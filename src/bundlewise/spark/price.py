"""Batch pricing on Spark: :func:`bundlewise.composer.offers.price_offers` with the customers
spread over Spark partitions.

The one :class:`~bundlewise.pricing.Pricer` is built on the driver exactly as ``price_offers``
builds it (:func:`~bundlewise.composer.offers.build_pricer` over every candidate's customer,
bundle and score quantile: the appeals and the batch decisions couple the whole batch), then
broadcast; each partition of customers prices its candidates with it and ranks them
(:func:`~bundlewise.composer.offers.price_table`,
:func:`~bundlewise.composer.offers.rank_offers`). A price is a function of one (customer,
bundle) given the pricer, so the offers are those of ``price_offers``.

pyspark is imported only when a function runs (``pip install 'bundlewise[spark]'``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.composer.beam import CANDIDATE_SCHEMA
from bundlewise.composer.offers import OFFER_COLUMNS, PricedOffers
from bundlewise.config import Config, PricingConfig
from bundlewise.pricing.estimation import ResponseFit
from bundlewise.pricing.pricer import Pricer
from bundlewise.spark.compose import (
    canonical,
    n_customer_partitions,
    per_customer_partition,
    to_arrow,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame, SparkSession

#: The Arrow schema of offer tables (:data:`bundlewise.composer.offers.OFFER_COLUMNS`).
OFFER_SCHEMA = pa.schema(
    [
        ("offer_id", pa.string()),
        ("customer_id", pa.string()),
        ("offer_rank", pa.int32()),
        ("item_ids", pa.list_(pa.string())),
        ("titles", pa.list_(pa.string())),
        ("currency", pa.string()),
        ("list_total_minor", pa.int64()),
        ("cost_minor", pa.int64()),
        ("is_cost_assumed", pa.bool_()),
        ("price_minor", pa.int64()),
        ("discount_minor", pa.int64()),
        ("discount_pct", pa.float64()),
        ("p_accept", pa.float64()),
        ("expected_profit_minor", pa.float64()),
        ("binding_rule", pa.string()),
        ("reason", pa.string()),
        ("source", pa.string()),
        ("score", pa.float64()),
        ("model_version", pa.string()),
        ("segment", pa.string()),
        ("sensitivity", pa.float64()),
        ("appeal", pa.float64()),
    ]
)

#: Candidates not offered, with why (:attr:`bundlewise.composer.offers.PricedOffers.not_offered`).
NOT_OFFERED_SCHEMA = pa.schema(
    [("customer_id", pa.string()), ("item_ids", pa.list_(pa.string())), ("reason", pa.string())]
)

#: What a partition returns: every candidate once, by ``status``: ``offer`` (kept; all
#: columns), ``not_offered`` (customer, bundle, composer's rank, reason) or ``beyond_keep``
#: (offered but past ``keep``: customer, bundle, ``is_cost_assumed``).
_PRICED_SCHEMA = pa.schema([*OFFER_SCHEMA, pa.field("status", pa.string())])
_OFFER, _NOT_OFFERED, _BEYOND_KEEP = "offer", "not_offered", "beyond_keep"

_KEY_SCHEMA = pa.schema(
    [CANDIDATE_SCHEMA.field(n) for n in ("customer_id", "offer_rank", "item_ids", "score")]
)


def _with_status(table: pa.Table, status: str) -> pa.Table:
    return table.append_column("status", pa.array([status] * table.num_rows, pa.string()))


def price_partition(candidates: pa.Table, pricer: Pricer, keep: int | None) -> pa.Table:
    """The candidates of some customers (all of theirs) priced and ranked by ``pricer``
    (built over the whole batch): what each partition of customers runs."""
    from bundlewise.composer.offers import price_table, rank_offers

    table = canonical(candidates, CANDIDATE_SCHEMA).sort_by(
        [("customer_id", "ascending"), ("offer_rank", "ascending")]
    )
    offers, not_offered, _ = price_table(table, pricer)
    ranked = rank_offers(offers, pricer.pricing.rank_by, None)
    ranks = ranked.column("offer_rank")
    if keep is None:
        kept, beyond = ranked, ranked.slice(0, 0)
    else:
        kept = ranked.filter(pc.less_equal(ranks, keep))
        beyond = ranked.filter(pc.greater(ranks, keep))
    dropped = not_offered.append_column(
        "offer_rank", pc.filter(table.column("offer_rank"), _not_offered_mask(table, offers))
    )
    parts = [
        _with_status(kept, _OFFER),
        _with_status(dropped, _NOT_OFFERED),
        _with_status(beyond.select(["customer_id", "item_ids", "is_cost_assumed"]), _BEYOND_KEEP),
    ]
    return canonical(pa.concat_tables(parts, promote_options="default"), _PRICED_SCHEMA)


def _not_offered_mask(table: pa.Table, offers: pa.Table) -> pa.Array:
    """Which rows of ``table`` are not among ``offers`` (by customer and composer's rank)."""
    offered = {
        (c, r)
        for c, r in zip(
            offers.column("customer_id").to_pylist(),
            offers.column("offer_rank").to_pylist(),
            strict=True,
        )
    }
    return pa.array(
        [
            (c, r) not in offered
            for c, r in zip(
                table.column("customer_id").to_pylist(),
                table.column("offer_rank").to_pylist(),
                strict=True,
            )
        ],
        pa.bool_(),
    )


def _price_job(shared: Any) -> Callable[[pa.Table], pa.Table]:
    def job(table: pa.Table) -> pa.Table:
        value = shared.value
        return price_partition(table, value["pricer"], value["keep"])

    return job


@dataclass
class SparkPricedOffers:
    """:class:`~bundlewise.composer.offers.PricedOffers` on Spark.

    Attributes
    ----------
    offers
        Columns :data:`~bundlewise.composer.offers.OFFER_COLUMNS` (unordered).
    not_offered
        ``customer_id, item_ids, reason`` for every dropped candidate (unordered).
    n_cost_assumed
        Offered candidates whose cost uses the configured cost share for at least one item.
    pricer
        The pricer that priced them (its appeals restricted to the offers kept).
    """

    offers: DataFrame
    not_offered: DataFrame
    n_cost_assumed: int
    pricer: Pricer
    _priced: DataFrame = field(repr=False)
    _shared: Any = field(repr=False)

    def to_priced_offers(self) -> PricedOffers:
        """Collected to the driver, in the order of ``price_offers`` (offers by customer and
        rank; the candidates not offered by customer and the composer's rank)."""
        from pyspark.sql import functions as F

        offers = to_arrow(self.offers, OFFER_SCHEMA).sort_by(
            [("customer_id", "ascending"), ("offer_rank", "ascending")]
        )
        dropped = self._priced.where(F.col("status") == _NOT_OFFERED)
        not_offered = to_arrow(dropped, pa.schema([*NOT_OFFERED_SCHEMA, _KEY_SCHEMA.field(1)]))
        not_offered = not_offered.sort_by(
            [("customer_id", "ascending"), ("offer_rank", "ascending")]
        ).select(NOT_OFFERED_SCHEMA.names)
        return PricedOffers(offers, not_offered, self.n_cost_assumed, self.pricer)

    def unpersist(self) -> None:
        """Free the cached priced rows and the broadcast pricer on the executors."""
        self._priced.unpersist()
        self._shared.unpersist()


def price_offers_spark(
    spark: SparkSession,
    candidates: DataFrame,
    items: pa.Table,
    config: PricingConfig | Config | None = None,
    model_version: str = "dev",
    response: ResponseFit | None = None,
    keep: int | None = None,
    weekly_units: dict[str, float] | None = None,
    n_partitions: int | None = None,
) -> SparkPricedOffers:
    """Price candidate bundles and explain each offer, as
    :func:`~bundlewise.composer.offers.price_offers` does, on Spark.

    Parameters
    ----------
    spark
        The session.
    candidates
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS` (e.g.
        :func:`bundlewise.spark.compose.compose_candidates_spark`); their customers, bundles
        and scores are collected to the driver to build the pricer.
    items, config, model_version, response, keep, weekly_units
        As for ``price_offers`` (:func:`weekly_units_spark` computes ``weekly_units``).
    n_partitions
        Partitions of the customers; ``None`` or 0: ``spark.sql.shuffle.partitions``.

    Returns
    -------
    SparkPricedOffers
        Its priced rows are cached (``unpersist()`` frees them).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from bundlewise.composer.offers import build_pricer, full_config, sorted_candidates

    full = full_config(config)
    parts = n_customer_partitions(spark, n_partitions)
    cands = candidates.select(*CANDIDATE_SCHEMA.names).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        table = sorted_candidates(to_arrow(cands, _KEY_SCHEMA))
        pricer = build_pricer(table, items, full, model_version, response, weekly_units)
        shared = spark.sparkContext.broadcast({"pricer": pricer, "keep": keep})
        priced = per_customer_partition(cands, parts, _price_job(shared), _PRICED_SCHEMA)
        priced = priced.persist(StorageLevel.MEMORY_AND_DISK)
        status = F.col("status")
        # one pass over the offered rows: the keys of those kept, and the count of assumed costs
        offered = to_arrow(
            priced.where(status != _NOT_OFFERED),
            pa.schema([_PRICED_SCHEMA.field(n) for n in
                       ("status", "customer_id", "item_ids", "is_cost_assumed")]),
        )  # fmt: skip
    finally:
        cands.unpersist()
    n_cost_assumed = pc.sum(offered.column("is_cost_assumed").cast(pa.int64())).as_py() or 0
    keys = offered.filter(pc.equal(offered.column("status"), _OFFER))
    kept = pricer.restricted_to(
        keys.column("customer_id").to_pylist(), keys.column("item_ids").to_pylist()
    )
    offers = priced.where(status == _OFFER).select(*OFFER_COLUMNS)
    not_offered = priced.where(status == _NOT_OFFERED).select(*NOT_OFFERED_SCHEMA.names)
    return SparkPricedOffers(offers, not_offered, int(n_cost_assumed), kept, priced, shared)


def weekly_units_spark(lines: DataFrame) -> dict[str, float]:
    """:func:`bundlewise.composer.offers.weekly_units` of order lines on Spark (``item_id,
    quantity, ts``): each item's average units sold a week over the whole history."""
    from pyspark.sql import functions as F

    from bundlewise.composer.offers import weekly_units_from

    span = to_arrow(
        lines.agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")),
        pa.schema([("lo", pa.timestamp("us")), ("hi", pa.timestamp("us"))]),
    )
    if span.column("lo").null_count:  # no lines
        return {}
    units = to_arrow(
        lines.groupBy("item_id").agg(F.sum("quantity").cast("bigint").alias("units")),
        pa.schema([("item_id", pa.string()), ("units", pa.int64())]),
    )
    return weekly_units_from(units, span)


__all__ = [
    "NOT_OFFERED_SCHEMA",
    "OFFER_SCHEMA",
    "SparkPricedOffers",
    "price_offers_spark",
    "price_partition",
    "weekly_units_spark",
]
