"""Turn candidate bundles into priced offers with reasons.

For each candidate: list total :math:`L` = sum of the items' list prices, cost :math:`C` = sum of
unit costs (where the catalog has none: ``assumed_cost_share`` x list price, flagged), appeal
from the score's quantile among all candidates (acceptance at the list total mapped log-linearly
into ``[accept_at_list_low, accept_at_list_high]``), then the guard-railed optimal price of a
:class:`bundlewise.pricing.Pricer` built over the whole batch. The offers are priced by that
pricer row by row, so a later quote of the same customer and bundle gives the same price.
Bundles with no feasible price are not offered; they are returned separately with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.config import Config, PricingConfig
from bundlewise.data import _sql
from bundlewise.money import currency_exponent, format_money
from bundlewise.pricing import acceptance_at_list_from_score, intercept_for_acceptance
from bundlewise.pricing.estimation import ResponseFit
from bundlewise.pricing.optimizer import BatchState
from bundlewise.pricing.pricer import (
    RULE_TEXT,
    UNKNOWN_SEGMENT,
    PricedRows,
    Pricer,
    catalog_from_items,
)

OFFER_COLUMNS: tuple[str, ...] = (
    "offer_id",
    "customer_id",
    "offer_rank",
    "item_ids",
    "titles",
    "currency",
    "list_total_minor",
    "cost_minor",
    "is_cost_assumed",
    "price_minor",
    "discount_minor",
    "discount_pct",
    "p_accept",
    "expected_profit_minor",
    "binding_rule",
    "reason",
    "source",
    "score",
    "model_version",
    "segment",
    "sensitivity",
    "appeal",
)


@dataclass(frozen=True)
class PricedOffers:
    """Offers that passed the guardrails, and candidates that could not be offered.

    Attributes
    ----------
    offers
        Columns :data:`OFFER_COLUMNS`, ranked per customer.
    not_offered
        ``customer_id, item_ids, reason`` for every dropped candidate.
    n_cost_assumed
        Offers whose cost uses the configured cost share for at least one item.
    pricer
        The pricer that priced them (its appeals restricted to the offers kept).
    """

    offers: pa.Table
    not_offered: pa.Table
    n_cost_assumed: int
    pricer: Pricer


def _offer_id(model_version: str, customer_id: str, item_ids: list[str]) -> str:
    key = "\x1f".join([model_version, customer_id, *item_ids]).encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def weekly_units(lines: pa.Table) -> dict[str, float]:
    """Each item's average units sold a week over the whole history of ``lines``
    (``item_id``, ``quantity``, ``ts``); the history spans at least one week."""
    if lines.num_rows == 0:
        return {}
    con = _sql.connect()
    try:
        con.register("l", lines.select(["item_id", "quantity", "ts"]))
        units = con.sql(
            "SELECT item_id, CAST(sum(quantity) AS BIGINT) AS units FROM l GROUP BY item_id"
        ).to_arrow_table()
        span = con.sql("SELECT min(ts) AS lo, max(ts) AS hi FROM l").to_arrow_table()
    finally:
        con.close()
    return weekly_units_from(units, span)


def weekly_units_from(units: pa.Table, span: pa.Table) -> dict[str, float]:
    """:func:`weekly_units` from each item's units sold (``item_id, units``) and the first and
    last timestamp of the history (a one-row table ``lo, hi``)."""
    con = _sql.connect()
    try:
        con.register("u", units.select(["item_id", "units"]))
        con.register("span", span.select(["lo", "hi"]))
        rows = con.execute(
            """
            WITH w AS (
                SELECT greatest(date_diff('second', lo, hi) / 604800.0, 1.0) AS weeks FROM span
            )
            SELECT item_id, units / w.weeks FROM u, w
            """
        ).fetchall()
    finally:
        con.close()
    return {str(i): float(u) for i, u in rows}


def price_offers(
    candidates: pa.Table,
    items: pa.Table,
    config: PricingConfig | Config | None = None,
    model_version: str = "dev",
    response: ResponseFit | None = None,
    keep: int | None = None,
    weekly_units: dict[str, float] | None = None,
) -> PricedOffers:
    """Price candidate bundles and explain each offer.

    Parameters
    ----------
    candidates
        Output of :func:`bundlewise.composer.compose_candidates`.
    items
        The ``items`` table (list price and, where known, unit cost per item).
    config
        The full config (saved with the pricer) or only its ``[pricing]`` section.
    model_version
        Stored with each offer and part of its id.
    response
        Estimated sensitivities per customer segment; without it every offer uses the prior.
    keep
        Keep at most this many offers per customer (the best by ``config.rank_by``).
    weekly_units
        Each item's average units sold a week in the history (for the excess-stock rule of
        :class:`~bundlewise.pricing.Pricer`; :func:`weekly_units` computes it).

    Returns
    -------
    PricedOffers
    """
    full = full_config(config)
    table = sorted_candidates(candidates)
    pricer = build_pricer(table, items, full, model_version, response, weekly_units)
    offers, not_offered, n_cost_assumed = price_batch(table, pricer, keep)
    kept = pricer.restricted_to(
        offers.column("customer_id").to_pylist(), offers.column("item_ids").to_pylist()
    )
    return PricedOffers(offers, not_offered, n_cost_assumed, kept)


def full_config(config: PricingConfig | Config | None) -> Config:
    """The full config :func:`price_offers` prices under (saved with the pricer)."""
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    return Config(pricing=config)


def sorted_candidates(candidates: pa.Table) -> pa.Table:
    """The candidates by customer and rank, with each one's ``score_quantile`` among all of
    them (what its appeal comes from)."""
    con = _sql.connect()
    try:
        con.register("cands", candidates)
        return con.sql(
            """
            SELECT c.*, percent_rank() OVER (ORDER BY c.score) AS score_quantile
            FROM cands c ORDER BY c.customer_id, c.offer_rank
            """
        ).to_arrow_table()
    finally:
        con.close()


def build_pricer(
    table: pa.Table,
    items: pa.Table,
    full: Config,
    model_version: str,
    response: ResponseFit | None,
    weekly_units: dict[str, float] | None,
) -> Pricer:
    """The one :class:`Pricer` of a batch: appeals from the score quantiles of ``table``
    (:func:`sorted_candidates` of the whole batch: ``customer_id, item_ids,
    score_quantile``), batch decisions solved over all its rows."""
    pricing = full.pricing
    customer_ids: list[str] = table.column("customer_id").to_pylist()
    item_ids: list[list[str]] = table.column("item_ids").to_pylist()
    if response is not None and pricing.sensitivity_source != "prior":
        segment_of = dict(response.customer_segment)
        sensitivity = {seg.segment: seg.posterior for seg in response.segments}
        # A customer the fit has not placed gets the fit's prior (the config's, in ``train``).
        sensitivity.setdefault(UNKNOWN_SEGMENT, float(response.prior))
    else:
        segment_of, sensitivity = {}, {}
    accept_at_list = acceptance_at_list_from_score(
        table.column("score_quantile").to_numpy(zero_copy_only=False),
        pricing.accept_at_list_low,
        pricing.accept_at_list_high,
    )
    catalog = catalog_from_items(items, full.input.currency, weekly_units)
    unfitted = Pricer(
        model_version=model_version, config=full, catalog=catalog, customer_segment=segment_of,
        sensitivity=sensitivity, appeals={}, state=BatchState(),
    )  # fmt: skip
    # One lookup per distinct customer, spread to the rows by position.
    distinct = pc.unique(table.column("customer_id"))
    where = pc.index_in(table.column("customer_id"), distinct).to_numpy(zero_copy_only=False)
    b = np.array(
        [unfitted.sensitivity_of_segment(unfitted.segment_of(unfitted.customer_key(c)))
         for c in distinct.to_pylist()],
        dtype=np.float64,
    )[where]  # fmt: skip
    appeal = intercept_for_acceptance(accept_at_list, b)
    return Pricer.from_batch(
        model_version=model_version,
        config=full,
        catalog=catalog,
        customer_segment=segment_of,
        sensitivity=sensitivity,
        customer_ids=customer_ids,
        bundles=item_ids,
        appeals=appeal.tolist(),
    )


def price_batch(
    table: pa.Table, pricer: Pricer, keep: int | None
) -> tuple[pa.Table, pa.Table, int]:
    """Price candidates (whole customers; any part of the batch ``pricer`` was built over):
    the offers ranked and cut at ``keep`` per customer, the candidates not offered, and how
    many offered candidates (kept or not) assume a cost share."""
    offers, not_offered, n_cost_assumed = price_table(table, pricer)
    return rank_offers(offers, pricer.pricing.rank_by, keep), not_offered, n_cost_assumed


def price_table(table: pa.Table, pricer: Pricer) -> tuple[pa.Table, pa.Table, int]:
    """Every candidate priced by ``pricer`` (row by row): the offered ones (ranks as the
    composer's), those not offered, and how many offered ones assume a cost share."""
    rows = pricer.price_rows(
        table.column("customer_id").to_pylist(), table.column("item_ids").to_pylist()
    )
    offers, not_offered = _offer_tables(table, rows, pricer, pricer.model_version)
    n_cost_assumed = int(np.sum(rows.is_cost_assumed & rows.offered)) if table.num_rows else 0
    return offers, not_offered, n_cost_assumed


def rank_offers(offers: pa.Table, rank_by: str, keep: int | None) -> pa.Table:
    """Ranks 1..k per customer after infeasible candidates were dropped: by expected profit
    (ties: the composer's order) or by the composer's order alone; at most ``keep`` each."""
    if not offers.num_rows:
        return offers
    order = (
        "expected_profit_minor DESC, offer_rank" if rank_by == "expected_profit" else "offer_rank"
    )
    con = _sql.connect()
    try:
        con.register("o", offers)
        ranked = con.sql(
            "SELECT * REPLACE (CAST(row_number() OVER (PARTITION BY customer_id "
            f"ORDER BY {order}) AS INTEGER) AS offer_rank) FROM o"
        ).to_arrow_table()
        con.register("ranked", ranked)
        limit = "" if keep is None else "WHERE offer_rank <= $keep"
        return con.sql(
            f"SELECT * FROM ranked {limit} ORDER BY customer_id, offer_rank",
            params={"keep": int(keep)} if keep is not None else None,
        ).to_arrow_table()
    finally:
        con.close()


def offer_reason(evidence: str, rows: PricedRows, k: int) -> str:
    """An offer's explanation: the co-purchase evidence, then the price and what set it."""
    q = rows.quotes
    currency = rows.currency[k]
    L = int(rows.list_total_minor[k])
    price = int(q.price_minor[k])
    pct = (L - price) / max(L, 1)
    return (
        f"{evidence}. Price {format_money(price, currency)} vs list "
        f"{format_money(L, currency)} ({pct:.0%} off): "
        f"{RULE_TEXT[str(q.binding_rule[k])]}; P(accept) {q.p_accept[k]:.2f} "
        f"(price sensitivity {rows.sensitivity[k]:.2f}, {rows.segment[k]} segment)."
    )


#: Where the price sentence of an offer's reason starts (see :func:`offer_reason`).
PRICE_SENTENCE = ". Price "


#: The reason of every offered row, in SQL: the same text as :func:`offer_reason` over the
#: evidence sentence (checked equal in the tests). ``r`` has one row per offer, ``m`` the money
#: format of each currency (``currency, exponent, scale = 10 ** exponent``), ``t`` the rule texts.
_REASONS_SQL = """
WITH s AS (
    SELECT r.*, list_position(r.item_ids, r.anchor_id) AS anchor_pos,
           m.exponent, m.scale, t.rule_text
    FROM r JOIN m USING (currency) JOIN t USING (binding_rule)
)
SELECT
    CASE WHEN source = 'history' AND anchor_id IS NOT NULL THEN
        'You bought ' || titles[anchor_pos] || ' ('
        || coalesce(CAST(anchor_n_orders AS VARCHAR), 'None') || ' order(s)); '
        || array_to_string(list_filter(titles, lambda x, j: j <> anchor_pos), ' + ')
        || CASE WHEN len(titles) = 2 THEN ' is' ELSE ' are' END
        || ' bought with it in ' || coalesce(CAST(min_pair_count AS VARCHAR), 'None')
        || '+ orders (lift ' || printf('%.1f', min_pair_lift) || ')'
    ELSE
        'Popular with other customers: ' || array_to_string(titles, ' + ')
        || ' bought together in ' || coalesce(CAST(min_pair_count AS VARCHAR), 'None')
        || ' orders (lift ' || printf('%.1f', min_pair_lift) || ')'
    END
    || '. Price ' || currency || ' ' || (CASE WHEN exponent = 0 THEN CAST(price AS VARCHAR)
        ELSE CASE WHEN price < 0 THEN '-' ELSE '' END || CAST(abs(price) // scale AS VARCHAR)
             || '.' || lpad(CAST(abs(price) % scale AS VARCHAR), exponent, '0') END)
    || ' vs list ' || currency || ' ' || (CASE WHEN exponent = 0 THEN CAST(list AS VARCHAR)
        ELSE CASE WHEN list < 0 THEN '-' ELSE '' END || CAST(abs(list) // scale AS VARCHAR)
             || '.' || lpad(CAST(abs(list) % scale AS VARCHAR), exponent, '0') END)
    || ' (' || printf('%.0f', (CAST(list - price AS DOUBLE) / greatest(list, 1)) * 100.0)
    || '% off): ' || rule_text || '; P(accept) ' || printf('%.2f', p_accept)
    || ' (price sensitivity ' || printf('%.2f', sensitivity) || ', ' || segment
    || ' segment).' AS reason
FROM s ORDER BY k
"""


def _reasons(table: pa.Table, rows: PricedRows, offered: np.ndarray) -> pa.Array:
    """:func:`offer_reason` of every offered row (in row order), built in one SQL pass."""
    keep = np.flatnonzero(offered)
    take = pa.array(keep, pa.int64())
    q = rows.quotes
    currency = pa.array(rows.currency, pa.string()).take(take)
    r = pa.table(
        {
            "k": take,
            "item_ids": table.column("item_ids").take(take),
            "titles": pa.array(rows.titles, pa.list_(pa.string())).take(take),
            "source": table.column("source").take(take),
            "anchor_id": table.column("anchor_id").take(take),
            "anchor_n_orders": table.column("anchor_n_orders").take(take),
            "min_pair_count": table.column("min_pair_count").take(take),
            "min_pair_lift": table.column("min_pair_lift").take(take),
            "currency": currency,
            "list": pa.array(rows.list_total_minor[keep], pa.int64()),
            "price": pa.array(np.asarray(q.price_minor)[keep], pa.int64()),
            "binding_rule": pa.array(np.asarray(q.binding_rule)[keep].tolist(), pa.string()),
            "p_accept": pa.array(np.asarray(q.p_accept, dtype=np.float64)[keep], pa.float64()),
            "sensitivity": pa.array(np.asarray(rows.sensitivity)[keep], pa.float64()),
            "segment": pa.array(rows.segment, pa.string()).take(take),
        }
    )
    currencies = [c for c in pc.unique(currency).to_pylist() if c is not None]
    exponents = [currency_exponent(c) for c in currencies]
    m = pa.table(
        {
            "currency": pa.array(currencies, pa.string()),
            "exponent": pa.array(exponents, pa.int32()),
            "scale": pa.array([10**e for e in exponents], pa.int64()),
        }
    )
    t = pa.table(
        {
            "binding_rule": pa.array(list(RULE_TEXT), pa.string()),
            "rule_text": pa.array(list(RULE_TEXT.values()), pa.string()),
        }
    )
    con = _sql.connect()
    try:
        con.register("r", r)
        con.register("m", m)
        con.register("t", t)
        out = con.sql(_REASONS_SQL).to_arrow_table().column("reason").combine_chunks()
    finally:
        con.close()
    if len(out) != keep.size:  # a currency or rule the lookups lack: never silently dropped
        raise ValueError(f"offer reasons: {keep.size} offers but {len(out)} reasons")
    return out


def _offer_tables(
    table: pa.Table, rows: PricedRows, pricer: Pricer, model_version: str
) -> tuple[pa.Table, pa.Table]:
    q = rows.quotes
    offered = np.asarray(rows.offered, dtype=np.bool_)
    list_total = rows.list_total_minor
    dropped_reasons: list[str] = []
    for k in np.flatnonzero(~offered).tolist():
        if not rows.usable[k]:
            dropped_reasons.append(rows.unusable_reason[k])
        else:
            dropped_reasons.append(
                pricer.infeasible_reason(
                    int(list_total[k]), int(rows.cost_minor[k]), rows.currency[k]
                )
            )
    discount = np.where(offered, list_total - q.price_minor, 0)
    discount_pct = np.where(offered, discount / np.maximum(list_total, 1), 0.0)
    mask = pa.array(offered)
    kept = table.filter(mask)
    n_kept = kept.num_rows
    offer_ids = [
        _offer_id(model_version, c, ids)
        for c, ids in zip(
            kept.column("customer_id").to_pylist(), kept.column("item_ids").to_pylist(), strict=True
        )
    ]

    def col(values: object, kind: pa.DataType) -> pa.Array:
        return pc.filter(pa.array(values, kind), mask)

    offers = pa.table(
        {
            "offer_id": pa.array(offer_ids, pa.string()),
            "customer_id": kept.column("customer_id"),
            "offer_rank": kept.column("offer_rank"),
            "item_ids": kept.column("item_ids"),
            "titles": col(rows.titles, pa.list_(pa.string())),
            "currency": col(rows.currency, pa.string()),
            "list_total_minor": col(list_total, pa.int64()),
            "cost_minor": col(rows.cost_minor, pa.int64()),
            "is_cost_assumed": col(rows.is_cost_assumed, pa.bool_()),
            "price_minor": col(q.price_minor, pa.int64()),
            "discount_minor": col(discount, pa.int64()),
            "discount_pct": col(discount_pct, pa.float64()),
            "p_accept": col(q.p_accept, pa.float64()),
            "expected_profit_minor": col(q.expected_profit_minor, pa.float64()),
            "binding_rule": col(q.binding_rule.tolist(), pa.string()),
            "reason": _reasons(table, rows, offered) if n_kept else pa.array([], pa.string()),
            "source": kept.column("source"),
            "score": kept.column("score"),
            "model_version": pa.repeat(pa.scalar(model_version, pa.string()), n_kept),
            "segment": col(rows.segment, pa.string()),
            "sensitivity": col(rows.sensitivity, pa.float64()),
            "appeal": col(rows.appeal, pa.float64()),
        }
    )
    not_offered = pa.table(
        {
            "customer_id": pc.filter(table.column("customer_id"), pc.invert(mask)),
            "item_ids": pc.filter(table.column("item_ids"), pc.invert(mask)),
            "reason": pa.array(dropped_reasons, pa.string()),
        }
    )
    return offers, not_offered


def reprice_offers(offers: pa.Table, pricer: Pricer) -> pa.Table:
    """The stored ``offers`` priced again by ``pricer`` (e.g. under new guardrails): price
    columns, rule and the reason's price sentence replaced; offers no longer feasible dropped;
    ranks kept."""
    customers = offers.column("customer_id").to_pylist()
    bundles = offers.column("item_ids").to_pylist()
    rows = pricer.price_rows(customers, bundles)
    q = rows.quotes
    offered = rows.offered
    L = rows.list_total_minor
    reasons = []
    for k, old in enumerate(offers.column("reason").to_pylist()):
        cut = old.rfind(PRICE_SENTENCE)
        reasons.append(offer_reason(old[:cut] if cut >= 0 else old, rows, k) if offered[k] else "")
    discount = np.where(offered, L - q.price_minor, 0)
    replaced = {
        "cost_minor": pa.array(rows.cost_minor, pa.int64()),
        "is_cost_assumed": pa.array(rows.is_cost_assumed, pa.bool_()),
        "price_minor": pa.array(q.price_minor, pa.int64()),
        "discount_minor": pa.array(discount, pa.int64()),
        "discount_pct": pa.array(np.where(offered, discount / np.maximum(L, 1), 0.0)),
        "p_accept": pa.array(q.p_accept, pa.float64()),
        "expected_profit_minor": pa.array(q.expected_profit_minor, pa.float64()),
        "binding_rule": pa.array(q.binding_rule.tolist(), pa.string()),
        "reason": pa.array(reasons, pa.string()),
        "sensitivity": pa.array(rows.sensitivity, pa.float64()),
        "appeal": pa.array(rows.appeal, pa.float64()),
    }
    for name, column in replaced.items():
        offers = offers.set_column(offers.column_names.index(name), name, column)
    return offers.filter(pa.array(offered))


__all__ = [
    "OFFER_COLUMNS",
    "PRICE_SENTENCE",
    "PricedOffers",
    "build_pricer",
    "full_config",
    "offer_reason",
    "price_batch",
    "price_offers",
    "price_table",
    "rank_offers",
    "reprice_offers",
    "sorted_candidates",
    "weekly_units",
    "weekly_units_from",
]
