from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from bundlewise.evaluation.next_basket import (
    TemporalSplit,
    cold_start_truth,
    customer_test_baskets,
    fbt_lift_bundles,
    popular_pair_bundles,
    random_pair_bundles,
    score_bundles,
    score_cold_start,
    temporal_split,
)
from bundlewise.mining.cooccurrence import PairMiner

CUTOFF = datetime(2011, 6, 1)
US = timedelta(microseconds=1)

#: (order_id, customer_id, ts, items)
Order = tuple[str, "str | None", datetime, Sequence[str]]


def lines(orders: Sequence[Order]) -> pa.Table:
    """Order lines (the ORDER_LINES key columns), one line per item of each order."""
    rows = [(o, c, ts, item) for o, c, ts, items in orders for item in items]
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "item_id": pa.array([r[3] for r in rows], pa.string()),
        }
    )


def order_ids(table: pa.Table) -> set[str]:
    return set(table.column("order_id").to_pylist())


# -- temporal_split -------------------------------------------------------------------------
SPLIT_ORDERS: list[Order] = [
    ("early", "c1", datetime(2011, 5, 1), ["A", "B"]),
    ("just-before", "c1", CUTOFF - US, ["C"]),
    ("at-cutoff", "c1", CUTOFF, ["A", "D"]),
    ("last-test", "c2", CUTOFF + timedelta(weeks=2) - US, ["B", "C"]),
    ("at-end", "c2", CUTOFF + timedelta(weeks=2), ["E"]),
    ("later", "c3", datetime(2011, 9, 1), ["F"]),
]


def test_temporal_split_boundaries() -> None:
    split = temporal_split(lines(SPLIT_ORDERS), CUTOFF, test_weeks=2)
    assert order_ids(split.train) == {"early", "just-before"}
    assert order_ids(split.test) == {"at-cutoff", "last-test"}
    assert split.train.num_rows == 3
    assert split.test.num_rows == 4
    assert split.cutoff == CUTOFF
    assert split.test_weeks == 2
    assert split.train.schema == split.test.schema == lines(SPLIT_ORDERS).schema


def test_temporal_split_test_window_follows_weeks() -> None:
    split = temporal_split(lines(SPLIT_ORDERS), CUTOFF, test_weeks=20)
    assert order_ids(split.test) == {"at-cutoff", "last-test", "at-end", "later"}
    assert order_ids(split.train) == {"early", "just-before"}


@pytest.mark.parametrize(
    ("cutoff", "empty"),
    [(datetime(2011, 5, 1), "0 train"), (datetime(2011, 10, 1), "0 test")],
)
def test_temporal_split_empty_side_raises(cutoff: datetime, empty: str) -> None:
    with pytest.raises(ValueError, match=empty):
        temporal_split(lines(SPLIT_ORDERS), cutoff, test_weeks=2)


def test_temporal_split_gap_with_no_test_lines_raises() -> None:
    # lines on both sides of the window, none inside it
    orders: list[Order] = [
        ("a", "c1", CUTOFF - US, ["A"]),
        ("b", "c1", CUTOFF + timedelta(weeks=1), ["B"]),
    ]
    with pytest.raises(ValueError, match="non-empty"):
        temporal_split(lines(orders), CUTOFF, test_weeks=1)
    assert temporal_split(lines(orders), CUTOFF, test_weeks=2).test.num_rows == 1


# -- customer_test_baskets ------------------------------------------------------------------
def test_customer_test_baskets_filters() -> None:
    day = timedelta(days=1)
    orders: list[Order] = [
        ("h1", "c1", CUTOFF - 5 * day, ["A"]),
        ("h2", "c2", CUTOFF - 4 * day, ["B", "C"]),
        ("h3", None, CUTOFF - 3 * day, ["A", "B"]),
        ("t1", "c1", CUTOFF + day, ["A", "B"]),  # kept
        ("t2", "c1", CUTOFF + day, ["C"]),  # one item: dropped
        ("t3", "c1", CUTOFF + day, ["D", "D"]),  # one distinct item: dropped
        ("t4", "c2", CUTOFF + day, ["A", "B", "C"]),  # kept
        ("t5", "c3", CUTOFF + day, ["A", "B"]),  # c3 never bought before the cutoff
        ("t6", None, CUTOFF + day, ["A", "B"]),  # anonymous
        ("t7", "c2", CUTOFF + 2 * day, ["E", "F", "E"]),  # kept, duplicate line once
    ]
    baskets = customer_test_baskets(temporal_split(lines(orders), CUTOFF))
    assert baskets == {
        "c1": [frozenset({"A", "B"})],
        "c2": [frozenset({"A", "B", "C"}), frozenset({"E", "F"})],
    }


def test_customer_test_baskets_empty_when_nobody_qualifies() -> None:
    orders: list[Order] = [
        ("h1", "c1", CUTOFF - US, ["A", "B"]),
        ("t1", "c2", CUTOFF, ["A", "B"]),
        ("t2", "c1", CUTOFF, ["A"]),
    ]
    assert customer_test_baskets(temporal_split(lines(orders), CUTOFF)) == {}


# -- baselines ------------------------------------------------------------------------------
def jan(day: int) -> datetime:
    return datetime(2011, 1, day)


#: Nine orders. Lifts (N = 9): A-B 2.25, A-C 1.125 (though A-C is bought twice as often),
#: C-F 2.25, D-E 3.
BASELINE_ORDERS: list[Order] = [
    ("o1", "c9", jan(2), ["A", "C"]),
    ("o2", "c9", jan(3), ["A", "C"]),
    ("o3", "c9", jan(4), ["C", "F"]),
    ("o4", None, jan(5), ["C", "F"]),
    ("o5", "c8", jan(10), ["A", "B"]),
    ("o6", "c8", jan(20), ["D", "E"]),
    ("o7", "c1", jan(1), ["A"]),
    ("o8", "c1", datetime(2011, 2, 1), ["D"]),
    ("o9", "c3", datetime(2011, 3, 1), ["D", "E"]),
]


@pytest.fixture
def train() -> pa.Table:
    return lines(BASELINE_ORDERS)


@pytest.fixture
def pairs(train: pa.Table) -> pa.Table:
    return PairMiner(min_count=1, prior_strength=0.0).fit(train).pairs_


def test_baseline_world_lifts(pairs: pa.Table) -> None:
    lift = {(r["item_a"], r["item_b"]): r["lift"] for r in pairs.to_pylist()}
    assert lift == pytest.approx({("A", "B"): 2.25, ("A", "C"): 1.125, ("C", "F"): 2.25,
                                  ("D", "E"): 3.0})  # fmt: skip


def test_fbt_lift_most_recent_items_first(train: pa.Table, pairs: pa.Table) -> None:
    out = fbt_lift_bundles(train, pairs, ["c1", "c8", "c9", "c3", "ghost"], k=5)
    # c1 bought A (Jan) then D (Feb): D's best partner first; A's best is B, not the frequent C
    assert out["c1"] == [("D", "E"), ("A", "B")]
    assert out["c8"] == [("D", "E"), ("A", "B")]
    # C and F (Jan 4) are each other's best partner: one bundle; then A (Jan 3)
    assert out["c9"] == [("C", "F"), ("A", "B")]
    # D -> E and E -> D are the same bundle
    assert out["c3"] == [("D", "E")]
    assert out["ghost"] == []
    assert set(out) == {"c1", "c8", "c9", "c3", "ghost"}


def test_fbt_lift_respects_k(train: pa.Table, pairs: pa.Table) -> None:
    out = fbt_lift_bundles(train, pairs, ["c1", "c9"], k=1)
    assert out == {"c1": [("D", "E")], "c9": [("C", "F")]}


def test_fbt_lift_ignores_customers_not_asked_for(train: pa.Table, pairs: pa.Table) -> None:
    assert fbt_lift_bundles(train, pairs, ["c3"], k=3) == {"c3": [("D", "E")]}


def test_popular_pairs_same_list_for_everyone(pairs: pa.Table) -> None:
    out = popular_pair_bundles(pairs, ["c1", "c2", "c3"], k=2)
    # n_ab: A-C 2, C-F 2, D-E 2, A-B 1; ties broken by item_a
    assert out["c1"] == [("A", "C"), ("C", "F")]
    assert out["c2"] == out["c1"] and out["c3"] == out["c1"]
    out["c1"].append(("X", "Y"))
    assert out["c2"] == [("A", "C"), ("C", "F")]
    assert popular_pair_bundles(pairs, ["c1"], k=10)["c1"] == [
        ("A", "C"), ("C", "F"), ("D", "E"), ("A", "B")
    ]  # fmt: skip


def test_random_pairs_deterministic_per_seed(train: pa.Table) -> None:
    customers = ["c1", "c2", "c3", "c4"]
    first = random_pair_bundles(train, customers, k=6, seed=7)
    assert first == random_pair_bundles(train, customers, k=6, seed=7)
    assert first != random_pair_bundles(train, customers, k=6, seed=8)
    assert set(first) == set(customers)
    sold = set(train.column("item_id").to_pylist())
    for bundles in first.values():
        assert 0 < len(bundles) <= 6
        for bundle in bundles:
            assert len(bundle) == 2
            assert bundle[0] < bundle[1]  # sorted, two distinct items
            assert set(bundle) <= sold


def test_random_pairs_only_train_items() -> None:
    train = lines([("o1", "c1", jan(1), ["A", "B"])])
    out = random_pair_bundles(train, ["c1", "c2"], k=10, seed=0)
    assert {b for bundles in out.values() for b in bundles} == {("A", "B")}


# -- score_bundles --------------------------------------------------------------------------
BASKETS = {
    "c1": [frozenset("ABC"), frozenset("DE")],
    "c2": [frozenset("AD")],
    "c3": [frozenset("XY")],
}
BUNDLES = {
    # A-D: both bought, but in two different orders -> not a hit
    "c1": [("A", "D"), ("A", "B"), ("D", "E")],
    "c2": [("A", "D"), ("B", "C"), ("A", "B", "D")],
    "c3": [("P", "Q")],
    "not-evaluated": [("X", "Y")],
}


def test_score_bundles_hand_computed() -> None:
    m = score_bundles("hand", BUNDLES, BASKETS, ks=(1, 3))
    assert m.method == "hand"
    assert m.n_customers == 3
    # hits by rank: c1 [0, 1, 1], c2 [1, 0, 0], c3 [0]
    assert m.hit_rate == pytest.approx({1: 1 / 3, 3: 2 / 3})
    assert m.precision == pytest.approx({1: 1 / 3, 3: (2 / 3 + 1 / 3 + 0) / 3})
    # recommended pairs: c1 {AD, AB, DE}, c2 {AD, BC, AB, BD}, c3 {PQ} -> 8
    # bought pairs: c1 {AB, AC, BC, DE}, c2 {AD}, c3 {XY} -> 6; common: AB, DE, AD -> 3
    assert m.pair_precision == pytest.approx(3 / 8)
    assert m.pair_recall == pytest.approx(3 / 6)


def test_score_bundles_pairs_use_the_largest_k() -> None:
    m = score_bundles("hand", BUNDLES, BASKETS, ks=(1,))
    # top 1 only: c1 {AD} (no), c2 {AD} (yes), c3 {PQ} (no)
    assert m.pair_precision == pytest.approx(1 / 3)
    assert m.pair_recall == pytest.approx(1 / 6)
    assert m.hit_rate == {1: pytest.approx(1 / 3)}


def test_bundle_split_across_orders_is_not_a_hit() -> None:
    baskets = {"c": [frozenset("AB"), frozenset("CD")]}
    split = score_bundles("x", {"c": [("A", "C")]}, baskets, ks=(1,))
    together = score_bundles("x", {"c": [("C", "D")]}, baskets, ks=(1,))
    assert split.hit_rate[1] == 0.0 and split.precision[1] == 0.0
    assert together.hit_rate[1] == 1.0 and together.precision[1] == 1.0


def test_single_item_bundle_is_never_a_hit() -> None:
    m = score_bundles("x", {"c": [("A",), ("A", "A")]}, {"c": [frozenset("AB")]}, ks=(2,))
    assert m.hit_rate[2] == 0.0
    assert m.pair_precision == 0.0


def test_customer_without_bundles_counts_as_a_miss() -> None:
    baskets = {"c1": [frozenset("AB")], "c2": [frozenset("AB")]}
    m = score_bundles("x", {"c1": [("A", "B")]}, baskets, ks=(1, 2))
    assert m.hit_rate == {1: 0.5, 2: 0.5}
    assert m.precision == {1: 0.5, 2: 0.25}
    assert m.pair_recall == pytest.approx(0.5)
    assert m.pair_precision == pytest.approx(1.0)


def test_score_bundles_nobody_evaluated() -> None:
    m = score_bundles("x", {"c": [("A", "B")]}, {}, ks=(1, 3))
    assert m.n_customers == 0
    assert m.hit_rate == {1: 0.0, 3: 0.0}
    assert m.precision == {1: 0.0, 3: 0.0}
    assert (m.pair_precision, m.pair_recall) == (0.0, 0.0)


# -- cold start -----------------------------------------------------------------------------
def test_cold_start_truth_only_new_products() -> None:
    day = timedelta(days=1)
    orders: list[Order] = [
        ("h1", "c1", CUTOFF - 2 * day, ["A", "B"]),
        ("h2", None, CUTOFF - day, ["C"]),
        ("t1", None, CUTOFF + day, ["A", "N1"]),  # anonymous orders count
        ("t2", "c1", CUTOFF + day, ["N1", "B", "N2"]),
        ("t3", "c2", CUTOFF + day, ["N3"]),  # bought alone: no truth
        ("t4", "c2", CUTOFF + day, ["A", "C"]),  # old products only
        ("t5", "c2", CUTOFF + day, ["N4", "N4"]),  # one product twice
    ]
    truth = cold_start_truth(temporal_split(lines(orders), CUTOFF))
    assert truth == {"N1": {"A", "B", "N2"}, "N2": {"N1", "B"}}


def test_cold_start_truth_empty_without_new_products() -> None:
    train = lines([("h1", "c1", CUTOFF - US, ["A", "B"])])
    test = lines([("t1", "c1", CUTOFF, ["A", "B"])])
    assert cold_start_truth(TemporalSplit(train, test, CUTOFF, 4)) == {}


def test_score_cold_start_hand_cases() -> None:
    partners = {"n1": ["a", "b", "c"], "n2": ["x", "y"], "other": ["z"]}
    truth = {"n1": {"c"}, "n2": {"x"}, "n3": {"z"}}  # n3 has no proposal: a miss
    assert score_cold_start(partners, truth, ks=(1, 2, 3)) == pytest.approx(
        {1: 1 / 3, 2: 1 / 3, 3: 2 / 3}
    )
    assert score_cold_start({}, truth, ks=(5,)) == {5: 0.0}
    assert score_cold_start(partners, {}, ks=(1, 10)) == {1: 0.0, 10: 0.0}
    assert score_cold_start({"n": ["b", "a"]}, {"n": {"a", "b"}}, ks=(1,)) == {1: 1.0}
