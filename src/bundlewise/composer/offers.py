"""Turn candidate bundles into priced offers with reasons.

For each candidate: list total :math:`L` = sum of the items' list prices, cost :math:`C` = sum of
unit costs (where the catalog has none: ``assumed_cost_share`` x list price, flagged), acceptance
at list price mapped from the score's quantile among all candidates, then the guard-railed
optimal price of :func:`bundlewise.pricing.quote_prices`. Bundles with no feasible price are not
offered; they are returned separately with the reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.config import PricingConfig
from bundlewise.data import _sql
from bundlewise.money import format_money
from bundlewise.pricing import (
    Guardrails,
    acceptance_at_list_from_score,
    intercept_for_acceptance,
    quote_prices,
)
from bundlewise.pricing.estimation import ResponseFit
from bundlewise.pricing.guardrails import (
    DISCOUNT_BUDGET,
    FAIRNESS_BAND,
    LIST_TOTAL_CAP,
    MARGIN_FLOOR,
    MAX_DISCOUNT,
    OPTIMUM,
    SEGMENT_PRICE,
)
from bundlewise.pricing.optimizer import Objective

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
    """

    offers: pa.Table
    not_offered: pa.Table
    n_cost_assumed: int


_RULE_TEXT = {
    OPTIMUM: "optimal price",
    LIST_TOTAL_CAP: "held at the list total (the optimal price would exceed it)",
    MAX_DISCOUNT: "at the discount cap (the optimal price would be lower)",
    MARGIN_FLOOR: "at the margin floor (the optimal price would be lower)",
    FAIRNESS_BAND: "kept inside the bundle's fairness band across customers",
    DISCOUNT_BUDGET: "raised to stay within the discount budget",
    SEGMENT_PRICE: "one price for the customer's whole segment",
}


def _offer_id(model_version: str, customer_id: str, item_ids: list[str]) -> str:
    key = "\x1f".join([model_version, customer_id, *item_ids]).encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def price_offers(
    candidates: pa.Table,
    items: pa.Table,
    config: PricingConfig | None = None,
    model_version: str = "dev",
    response: ResponseFit | None = None,
    keep: int | None = None,
) -> PricedOffers:
    """Price candidate bundles and explain each offer.

    Parameters
    ----------
    candidates
        Output of :func:`bundlewise.composer.compose_candidates`.
    items
        The ``items`` table (list price and, where known, unit cost per item).
    config
        Guardrails and price-response prior.
    model_version
        Stored with each offer and part of its id.
    response
        Estimated sensitivities per customer segment; without it every offer uses the prior.
    keep
        Keep at most this many offers per customer (the best by ``config.rank_by``).

    Returns
    -------
    PricedOffers
    """
    config = config or PricingConfig()
    con = _sql.connect()
    try:
        con.register("cands", candidates)
        con.register("items", items)
        joined = con.sql(
            """
            WITH exploded AS (
                SELECT c.customer_id, c.offer_rank, c.item_ids, u.pos, u.item_id
                FROM cands c, unnest(c.item_ids) WITH ORDINALITY AS u(item_id, pos)
            )
            SELECT e.customer_id, e.offer_rank,
                   list(coalesce(i.title, e.item_id) ORDER BY e.pos) AS titles,
                   sum(i.list_price_minor) AS list_total_minor,
                   sum(coalesce(i.unit_cost_minor,
                                CAST(round(i.list_price_minor * $share) AS BIGINT)))
                       AS cost_minor,
                   bool_or(i.unit_cost_minor IS NULL) AS cost_assumed,
                   bool_or(i.list_price_minor IS NULL) AS price_missing,
                   any_value(i.currency) AS currency
            FROM exploded e LEFT JOIN items i USING (item_id)
            GROUP BY e.customer_id, e.offer_rank
            """,
            params={"share": config.assumed_cost_share},
        ).to_arrow_table()
        con.register("joined", joined)
        table = con.sql(
            """
            SELECT c.*, j.titles, j.list_total_minor, j.cost_minor, j.cost_assumed,
                   j.price_missing, coalesce(j.currency, 'GBP') AS currency,
                   percent_rank() OVER (ORDER BY c.score) AS score_quantile
            FROM cands c JOIN joined j USING (customer_id, offer_rank)
            ORDER BY c.customer_id, c.offer_rank
            """
        ).to_arrow_table()
    finally:
        con.close()

    n = table.num_rows
    price_missing = table.column("price_missing").to_numpy(zero_copy_only=False).astype(bool)
    list_total = np.nan_to_num(
        table.column("list_total_minor").to_numpy(zero_copy_only=False).astype(np.float64)
    ).astype(np.int64)
    cost = np.nan_to_num(
        table.column("cost_minor").to_numpy(zero_copy_only=False).astype(np.float64)
    ).astype(np.int64)
    usable = ~price_missing & (list_total > 0)
    customer_ids = table.column("customer_id").to_pylist()
    item_ids = table.column("item_ids").to_pylist()
    if response is not None:
        b = np.array([response.sensitivity_of(c) for c in customer_ids], dtype=np.float64)
        segment_of = [response.customer_segment.get(c, "unknown") for c in customer_ids]
    else:
        b = np.full(n, config.sensitivity_prior)
        segment_of = ["all"] * n
    bundle_keys = [tuple(sorted(ids)) for ids in item_ids]
    accept_at_list = acceptance_at_list_from_score(
        table.column("score_quantile").to_numpy(zero_copy_only=False),
        config.accept_at_list_low,
        config.accept_at_list_high,
    )
    a = intercept_for_acceptance(accept_at_list, b)
    quotes = quote_prices(
        np.where(usable, list_total, 1),
        np.where(usable, cost, 0),
        a,
        b,
        Guardrails.from_config(config),
        objective=Objective.from_config(config),
        bundle_keys=bundle_keys,
        fairness_band=config.fairness_band if config.fairness_band >= 0 else None,
        discount_budget_minor=(
            config.discount_budget * 100 if config.discount_budget >= 0 else None
        ),
        segments=segment_of if config.segment_only else None,
    )
    offered = usable & quotes.is_feasible

    titles = table.column("titles").to_pylist()
    sources = table.column("source").to_pylist()
    anchors = table.column("anchor_id").to_pylist()
    anchor_orders = table.column("anchor_n_orders").to_pylist()
    pair_counts = table.column("min_pair_count").to_pylist()
    pair_lifts = table.column("min_pair_lift").to_pylist()
    currencies = table.column("currency").to_pylist()
    discount = np.where(offered, list_total - quotes.price_minor, 0)
    discount_pct = np.where(offered, discount / np.maximum(list_total, 1), 0.0)

    reasons: list[str] = []
    dropped_reasons: list[str] = []
    for k in range(n):
        if not offered[k]:
            if not usable[k]:
                dropped_reasons.append("an item has no list price")
            else:
                dropped_reasons.append(
                    f"no feasible price: cost {format_money(int(cost[k]), currencies[k])} x "
                    f"(1 + min_margin {config.min_margin}) exceeds the list total "
                    f"{format_money(int(list_total[k]), currencies[k])}"
                )
            reasons.append("")
            continue
        names = titles[k]
        if sources[k] == "history" and anchors[k] is not None:
            anchor_pos = item_ids[k].index(anchors[k])
            others = " + ".join(t for j, t in enumerate(names) if j != anchor_pos)
            why = (
                f"You bought {names[anchor_pos]} ({anchor_orders[k]} order(s)); {others} "
                f"{'is' if len(names) == 2 else 'are'} bought with it in "
                f"{pair_counts[k]}+ orders (lift {pair_lifts[k]:.1f})"
            )
        else:
            why = (
                f"Popular with other customers: {' + '.join(names)} bought together in "
                f"{pair_counts[k]} orders (lift {pair_lifts[k]:.1f})"
            )
        reasons.append(
            f"{why}. Price {format_money(int(quotes.price_minor[k]), currencies[k])} vs list "
            f"{format_money(int(list_total[k]), currencies[k])} ({discount_pct[k]:.0%} off): "
            f"{_RULE_TEXT[str(quotes.binding_rule[k])]}; P(accept) {quotes.p_accept[k]:.2f} "
            f"(price sensitivity {b[k]:.2f}, {segment_of[k]} segment)."
        )

    mask = pa.array(offered)
    offers = pa.table(
        {
            "offer_id": [_offer_id(model_version, customer_ids[k], item_ids[k]) for k in range(n)],
            "customer_id": table.column("customer_id"),
            "offer_rank": table.column("offer_rank"),
            "item_ids": table.column("item_ids"),
            "titles": table.column("titles"),
            "currency": table.column("currency"),
            "list_total_minor": pa.array(list_total, pa.int64()),
            "cost_minor": pa.array(cost, pa.int64()),
            "is_cost_assumed": table.column("cost_assumed"),
            "price_minor": pa.array(quotes.price_minor, pa.int64()),
            "discount_minor": pa.array(discount, pa.int64()),
            "discount_pct": pa.array(discount_pct, pa.float64()),
            "p_accept": pa.array(quotes.p_accept, pa.float64()),
            "expected_profit_minor": pa.array(quotes.expected_profit_minor, pa.float64()),
            "binding_rule": pa.array(quotes.binding_rule.tolist(), pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "source": table.column("source"),
            "score": table.column("score"),
            "model_version": pa.array([model_version] * n, pa.string()),
        }
    ).filter(mask)
    # Re-rank after dropping infeasible candidates so ranks stay 1..k per customer; by expected
    # profit (ties: the composer's order) or by the composer's order alone.
    order = (
        "expected_profit_minor DESC, offer_rank"
        if config.rank_by == "expected_profit"
        else "offer_rank"
    )
    if offers.num_rows:
        con = _sql.connect()
        try:
            con.register("o", offers)
            ranked = con.sql(
                "SELECT * REPLACE (CAST(row_number() OVER (PARTITION BY customer_id "
                f"ORDER BY {order}) AS INTEGER) AS offer_rank) FROM o"
            ).to_arrow_table()
            con.register("ranked", ranked)
            limit = "" if keep is None else f"WHERE offer_rank <= {int(keep)}"
            offers = con.sql(
                f"SELECT * FROM ranked {limit} ORDER BY customer_id, offer_rank"
            ).to_arrow_table()
        finally:
            con.close()
    not_offered = pa.table(
        {
            "customer_id": pc.filter(table.column("customer_id"), pc.invert(mask)),
            "item_ids": pc.filter(table.column("item_ids"), pc.invert(mask)),
            "reason": pa.array(dropped_reasons, pa.string()),
        }
    )
    n_cost_assumed = int(
        np.sum(table.column("cost_assumed").to_numpy(zero_copy_only=False).astype(bool) & offered)
    )
    return PricedOffers(offers, not_offered, n_cost_assumed)


__all__ = ["OFFER_COLUMNS", "PricedOffers", "price_offers"]
