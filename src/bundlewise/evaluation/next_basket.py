"""Next-orders bundle discovery on real orders (the Online Retail track).

Protocol: train on order lines before a cutoff date, test on the customer's orders in the
following weeks. A customer is evaluated when they bought before the cutoff and placed at
least one test order with two or more distinct items. A recommended bundle (two or more items)
is a **hit** when all its items appear together in one of that customer's test orders.

Reported per method and cut-off K: hit rate (share of customers with a hit in their top K),
precision (hits / K), and pair precision / recall (the recommended bundles' item pairs against
the pairs the customer bought together in a test order, micro-averaged).

Baselines:

- ``fbt_lift``: "frequently bought together" by lift, as storefront widgets do: the customer's
  most recent items, each with its highest-lift partner;
- ``popular_pairs``: the store's most co-purchased pairs, the same for everyone;
- ``random_pairs``: uniformly random pairs of items sold in training (seeded).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.data import _sql
from bundlewise.models.base import check_random_state

Bundles = dict[str, list[tuple[str, ...]]]


@dataclass(frozen=True)
class TemporalSplit:
    """Train and test order lines around a cutoff."""

    train: pa.Table
    test: pa.Table
    cutoff: datetime
    test_weeks: int


def temporal_split(order_lines: pa.Table, cutoff: datetime, test_weeks: int = 4) -> TemporalSplit:
    """Lines before ``cutoff`` for training; lines in the following ``test_weeks`` for testing.

    Raises
    ------
    ValueError
        If either side is empty.
    """
    ts = order_lines.column("ts")
    start = pa.scalar(cutoff, pa.timestamp("us"))
    end = pa.scalar(cutoff + timedelta(weeks=test_weeks), pa.timestamp("us"))
    train = order_lines.filter(pc.less(ts, start))
    test = order_lines.filter(pc.and_(pc.greater_equal(ts, start), pc.less(ts, end)))
    if train.num_rows == 0 or test.num_rows == 0:
        raise ValueError(
            f"cutoff {cutoff:%Y-%m-%d} leaves {train.num_rows} train and {test.num_rows} test "
            "lines; both must be non-empty."
        )
    return TemporalSplit(train, test, cutoff, test_weeks)


def customer_test_baskets(split: TemporalSplit) -> dict[str, list[frozenset[str]]]:
    """Each evaluated customer's test orders (sets of items), orders with 2+ items only."""
    con = _sql.connect()
    try:
        con.register("train", split.train.select(["customer_id"]))
        con.register("test", split.test.select(["order_id", "customer_id", "item_id"]))
        rows = con.execute(
            """
            SELECT customer_id, order_id, list(DISTINCT item_id) AS items FROM test
            WHERE customer_id IS NOT NULL
              AND customer_id IN (SELECT DISTINCT customer_id FROM train)
            GROUP BY ALL HAVING count(DISTINCT item_id) >= 2
            ORDER BY customer_id, order_id
            """
        ).fetchall()
    finally:
        con.close()
    baskets: dict[str, list[frozenset[str]]] = {}
    for customer, _order, items in rows:
        baskets.setdefault(customer, []).append(frozenset(items))
    return baskets


def fbt_lift_bundles(train: pa.Table, pairs: pa.Table, customers: Sequence[str], k: int) -> Bundles:
    """Baseline: each of the customer's latest items with its highest-lift partner."""
    con = _sql.connect()
    try:
        con.register("lines", train.select(["customer_id", "item_id", "ts"]))
        con.register("pairs", pairs.select(["item_a", "item_b", "lift", "n_ab"]))
        con.register("wanted", pa.table({"customer_id": pa.array(list(customers), pa.string())}))
        rows = con.execute(
            """
            WITH recent AS (
                SELECT customer_id, item_id, max(ts) AS last_ts FROM lines
                WHERE customer_id IN (SELECT customer_id FROM wanted) GROUP BY ALL
            ), best AS (
                SELECT x, y FROM (
                    SELECT item_a AS x, item_b AS y, lift, n_ab FROM pairs
                    UNION ALL SELECT item_b, item_a, lift, n_ab FROM pairs)
                QUALIFY row_number() OVER (PARTITION BY x ORDER BY lift DESC, n_ab DESC, y) = 1
            )
            SELECT r.customer_id, r.item_id, b.y FROM recent r JOIN best b ON b.x = r.item_id
            ORDER BY r.customer_id, r.last_ts DESC, r.item_id
            """
        ).fetchall()
    finally:
        con.close()
    out: Bundles = {c: [] for c in customers}
    for customer, x, y in rows:
        bundle = tuple(sorted((x, y)))
        if len(out[customer]) < k and bundle not in out[customer]:
            out[customer].append(bundle)
    return out


def popular_pair_bundles(pairs: pa.Table, customers: Sequence[str], k: int) -> Bundles:
    """Baseline: the ``k`` most co-purchased pairs, for everyone."""
    top = pairs.sort_by([("n_ab", "descending"), ("item_a", "ascending")]).slice(0, k)
    bundles = [tuple(sorted(p)) for p in zip(top["item_a"].to_pylist(), top["item_b"].to_pylist(),
                                             strict=True)]  # fmt: skip
    return {c: list(bundles) for c in customers}


def random_pair_bundles(
    train: pa.Table, customers: Sequence[str], k: int, seed: int = 0
) -> Bundles:
    """Baseline: ``k`` uniformly random pairs of items sold in training, per customer."""
    rng = check_random_state(seed)
    items = np.array(sorted(set(train.column("item_id").to_pylist())))
    out: Bundles = {}
    for customer in customers:
        picks = rng.choice(len(items), size=(k, 2), replace=True)
        out[customer] = [tuple(sorted((str(items[a]), str(items[b])))) for a, b in picks if a != b][
            :k
        ]
    return out


@dataclass(frozen=True)
class BundleHitMetrics:
    """Next-orders metrics of one method."""

    method: str
    n_customers: int
    hit_rate: dict[int, float]
    precision: dict[int, float]
    pair_precision: float
    pair_recall: float


def score_bundles(
    method: str,
    bundles: Bundles,
    baskets: dict[str, list[frozenset[str]]],
    ks: Sequence[int] = (1, 3, 10),
) -> BundleHitMetrics:
    """Hit rate and precision at each K, and pair precision / recall at the largest K.

    Examples
    --------
    >>> m = score_bundles("x", {"c": [("a", "b"), ("a", "z")]}, {"c": [frozenset("abc")]}, (1, 2))
    >>> m.hit_rate[1], m.precision[2]
    (1.0, 0.5)
    """
    customers = sorted(baskets)
    k_max = max(ks)
    hit_rate: dict[int, float] = {}
    precision: dict[int, float] = {}
    hits_by_rank = np.zeros((len(customers), k_max), dtype=bool)
    pair_hits = pair_recommended = pair_relevant = pair_found = 0
    for u, customer in enumerate(customers):
        orders = baskets[customer]
        ranked = bundles.get(customer, [])[:k_max]
        for r, bundle in enumerate(ranked):
            items = set(bundle)
            hits_by_rank[u, r] = len(items) >= 2 and any(items <= order for order in orders)
        recommended_pairs = {
            tuple(sorted(p)) for b in ranked for p in itertools.combinations(set(b), 2)
        }
        bought_pairs = {
            tuple(sorted(p)) for order in orders for p in itertools.combinations(order, 2)
        }
        pair_recommended += len(recommended_pairs)
        pair_hits += len(recommended_pairs & bought_pairs)
        pair_relevant += len(bought_pairs)
        pair_found += len(recommended_pairs & bought_pairs)
    for k in ks:
        hit_rate[k] = float(hits_by_rank[:, :k].any(axis=1).mean()) if customers else 0.0
        precision[k] = float(hits_by_rank[:, :k].sum(axis=1).mean() / k) if customers else 0.0
    return BundleHitMetrics(
        method=method,
        n_customers=len(customers),
        hit_rate=hit_rate,
        precision=precision,
        pair_precision=pair_hits / pair_recommended if pair_recommended else 0.0,
        pair_recall=pair_found / pair_relevant if pair_relevant else 0.0,
    )


def cold_start_truth(split: TemporalSplit) -> dict[str, set[str]]:
    """Products first sold in the test period, each with the items bought in the same orders.

    Only products with at least one such co-purchase are returned (anonymous orders count:
    this measures product-to-product association, not personalization).
    """
    train_items = set(split.train.column("item_id").to_pylist())
    orders: dict[str, set[str]] = {}
    for order, item in zip(
        split.test.column("order_id").to_pylist(),
        split.test.column("item_id").to_pylist(),
        strict=True,
    ):
        orders.setdefault(order, set()).add(item)
    truth: dict[str, set[str]] = {}
    for items in orders.values():
        for item in items - train_items:
            others = items - {item}
            if others:
                truth.setdefault(item, set()).update(others)
    return truth


def score_cold_start(
    partners: dict[str, list[str]], truth: dict[str, set[str]], ks: Sequence[int] = (1, 3, 10)
) -> dict[int, float]:
    """Share of new products with at least one proposed partner bought with them, per K.

    Examples
    --------
    >>> score_cold_start({"n": ["a", "b"]}, {"n": {"b"}}, ks=(1, 2))
    {1: 0.0, 2: 1.0}
    """
    if not truth:
        return {k: 0.0 for k in ks}
    return {
        k: float(np.mean([bool(set(partners.get(i, [])[:k]) & bought)
                          for i, bought in truth.items()]))
        for k in ks
    }  # fmt: skip


__all__ = [
    "BundleHitMetrics",
    "cold_start_truth",
    "score_cold_start",
    "TemporalSplit",
    "fbt_lift_bundles",
    "popular_pair_bundles",
    "random_pair_bundles",
    "score_bundles",
    "temporal_split",
    "customer_test_baskets",
]
