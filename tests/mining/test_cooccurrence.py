from __future__ import annotations

import itertools
import math
from collections import Counter

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlewise.config import MiningConfig
from bundlewise.exceptions import ConfigError, NotFittedError
from bundlewise.mining.cooccurrence import PAIR_COLUMNS, PairMiner

PARTNER_COLUMNS = ("item_id", "partner_id", "rank", "n_ab", "lift_shrunk", "confidence", "npmi")


def _lines(baskets: list[list[str]]) -> pa.Table:
    """Order lines, one order per basket (items may repeat within a basket)."""
    order_ids: list[str] = []
    item_ids: list[str] = []
    for k, basket in enumerate(baskets):
        for item in basket:
            order_ids.append(f"o{k}")
            item_ids.append(item)
    return pa.table(
        {"order_id": pa.array(order_ids, pa.string()), "item_id": pa.array(item_ids, pa.string())}
    )


def _pair(miner: PairMiner, a: str, b: str) -> dict[str, object]:
    rows = [r for r in miner.pairs_.to_pylist() if (r["item_a"], r["item_b"]) == (a, b)]
    assert len(rows) == 1, f"pair {(a, b)} not emitted exactly once: {rows}"
    return rows[0]


# --------------------------------------------------------------------------------------------
# Slow, obviously-correct reference
# --------------------------------------------------------------------------------------------


def reference_pairs(
    baskets: list[list[str]], min_count: int, alpha: float, max_basket_items: int
) -> tuple[list[dict[str, object]], int, int]:
    sets = [set(b) for b in baskets]
    kept = [s for s in sets if len(s) <= max_basket_items]
    skipped = len(sets) - len(kept)
    n = len(kept)
    n_item: Counter[str] = Counter()
    n_pair: Counter[tuple[str, str]] = Counter()
    for s in kept:
        for item in s:
            n_item[item] += 1
        for a, b in itertools.combinations(sorted(s), 2):
            n_pair[(a, b)] += 1
    big_n = float(max(n, 1))
    rows = []
    for (a, b), n_ab in sorted(n_pair.items()):
        if n_ab < min_count:
            continue
        n_a, n_b = n_item[a], n_item[b]
        expected = float(n_a) * n_b / big_n
        if n_ab == n:
            npmi = 1.0
        else:
            npmi = math.log(n_ab / expected) / -math.log(n_ab / big_n)
        rows.append(
            {
                "item_a": a,
                "item_b": b,
                "n_ab": n_ab,
                "n_a": n_a,
                "n_b": n_b,
                "support": n_ab / big_n,
                "confidence_ab": n_ab / n_a,
                "confidence_ba": n_ab / n_b,
                "lift": n_ab / expected,
                "lift_shrunk": (n_ab + alpha) / (expected + alpha),
                "npmi": npmi,
            }
        )
    return rows, n, skipped


def reference_partners(pairs: list[dict[str, object]], n_partners: int) -> list[dict[str, object]]:
    by_item: dict[str, list[dict[str, object]]] = {}
    for r in pairs:
        for x, y, conf in (
            (r["item_a"], r["item_b"], r["confidence_ab"]),
            (r["item_b"], r["item_a"], r["confidence_ba"]),
        ):
            if r["lift_shrunk"] > 1:  # type: ignore[operator]
                by_item.setdefault(x, []).append(  # type: ignore[arg-type]
                    {
                        "item_id": x,
                        "partner_id": y,
                        "n_ab": r["n_ab"],
                        "lift_shrunk": r["lift_shrunk"],
                        "confidence": conf,
                        "npmi": r["npmi"],
                    }
                )
    out = []
    for item in sorted(by_item):
        ranked = sorted(
            by_item[item], key=lambda p: (-p["lift_shrunk"], -p["n_ab"], p["partner_id"])
        )
        for rank, p in enumerate(ranked[:n_partners], start=1):
            out.append({**p, "rank": rank})
    return out


def _assert_rows_close(got: list[dict[str, object]], want: list[dict[str, object]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, abs=1e-9, rel=0), (key, g, w)
            else:
                assert g[key] == value, (key, g, w)


# --------------------------------------------------------------------------------------------
# Tiny worlds with known answers
# --------------------------------------------------------------------------------------------


def test_always_together_pair_has_known_statistics() -> None:
    baskets = [["A", "B"]] * 10 + [["C"]] * 10
    miner = PairMiner(min_count=1, prior_strength=0.0).fit(_lines(baskets))
    assert miner.pairs_.column_names == list(PAIR_COLUMNS)
    assert miner.pairs_.num_rows == 1  # A-C and B-C never co-occur
    row = _pair(miner, "A", "B")
    assert (row["n_ab"], row["n_a"], row["n_b"]) == (10, 10, 10)
    assert row["support"] == pytest.approx(0.5, abs=1e-12)
    assert row["confidence_ab"] == 1.0
    assert row["confidence_ba"] == 1.0
    assert row["lift"] == pytest.approx(20 * 10 / (10 * 10), abs=1e-12)
    assert row["lift"] == pytest.approx(2.0, abs=1e-12)
    assert row["lift_shrunk"] == pytest.approx(2.0, abs=1e-12)  # alpha = 0: no shrinkage
    # NPMI = ln(lift) / -ln(support) = ln 2 / ln 2 = 1 (perfect co-occurrence)
    assert row["npmi"] == pytest.approx(1.0, abs=1e-12)
    assert miner.n_orders_ == 20
    assert miner.n_orders_skipped_ == 0


def test_partial_overlap_statistics_by_hand() -> None:
    # 6 orders {A,B}, 2 orders {A}, 4 orders {B}, 8 orders {C}: N=20, n_a=8, n_b=10, n_ab=6
    baskets = [["A", "B"]] * 6 + [["A"]] * 2 + [["B"]] * 4 + [["C"]] * 8
    miner = PairMiner(min_count=1, prior_strength=0.0).fit(_lines(baskets))
    row = _pair(miner, "A", "B")
    assert (row["n_ab"], row["n_a"], row["n_b"]) == (6, 8, 10)
    assert row["support"] == pytest.approx(6 / 20, abs=1e-12)
    assert row["confidence_ab"] == pytest.approx(6 / 8, abs=1e-12)
    assert row["confidence_ba"] == pytest.approx(6 / 10, abs=1e-12)
    assert row["lift"] == pytest.approx(20 * 6 / (8 * 10), abs=1e-12)  # 1.5
    expected_npmi = math.log(1.5) / -math.log(6 / 20)
    assert row["npmi"] == pytest.approx(expected_npmi, abs=1e-12)
    assert row["npmi"] == pytest.approx(0.33677, abs=1e-5)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 5.0, 100.0])
def test_shrunk_lift_formula_and_between_one_and_lift(alpha: float) -> None:
    baskets = [["A", "B"]] * 6 + [["A"]] * 2 + [["B"]] * 4 + [["C"]] * 8
    miner = PairMiner(min_count=1, prior_strength=alpha).fit(_lines(baskets))
    row = _pair(miner, "A", "B")
    expected = 8 * 10 / 20
    assert row["lift_shrunk"] == pytest.approx((6 + alpha) / (expected + alpha), abs=1e-12)
    assert 1.0 < row["lift_shrunk"] < row["lift"]
    assert row["lift"] == pytest.approx(1.5, abs=1e-12)  # raw lift does not depend on alpha


def test_shrunk_lift_below_one_lies_between_lift_and_one() -> None:
    # A and B co-occur less than independence predicts: lift < lift_shrunk < 1.
    baskets = [["A", "B"]] * 2 + [["A"]] * 8 + [["B"]] * 8 + [["C"]] * 2
    miner = PairMiner(min_count=1, prior_strength=3.0).fit(_lines(baskets))
    row = _pair(miner, "A", "B")
    assert row["lift"] == pytest.approx(20 * 2 / (10 * 10), abs=1e-12)
    assert row["lift"] < row["lift_shrunk"] < 1.0
    assert row["npmi"] < 0
    assert miner.partners("A") == []  # not a complement


def test_min_count_filters_rare_pairs() -> None:
    baskets = [["A", "B"]] * 5 + [["A", "C"]] * 2 + [["D"]] * 5
    low = PairMiner(min_count=2, prior_strength=0.0).fit(_lines(baskets))
    high = PairMiner(min_count=3, prior_strength=0.0).fit(_lines(baskets))
    assert {(r["item_a"], r["item_b"]) for r in low.pairs_.to_pylist()} == {
        ("A", "B"),
        ("A", "C"),
    }
    assert {(r["item_a"], r["item_b"]) for r in high.pairs_.to_pylist()} == {("A", "B")}
    # item counts still include the orders of filtered pairs
    assert _pair(high, "A", "B")["n_a"] == 7
    assert high.n_orders_ == 12


def test_repeated_lines_of_one_item_count_once() -> None:
    once = [["A", "B"]] * 3 + [["C"]] * 3
    repeated = [["A", "A", "B", "A"], ["A", "B", "B"], ["B", "A"], ["C", "C"], ["C"], ["C"]]
    m1 = PairMiner(min_count=1, prior_strength=0.0).fit(_lines(once))
    m2 = PairMiner(min_count=1, prior_strength=0.0).fit(_lines(repeated))
    assert m2.pairs_.equals(m1.pairs_)
    row = _pair(m2, "A", "B")
    assert (row["n_ab"], row["n_a"], row["n_b"]) == (3, 3, 3)
    assert row["lift"] == pytest.approx(2.0, abs=1e-12)
    # A basket holding only repeats of one item is a one-item basket, not a pair (A, A).
    assert all(r["item_a"] != r["item_b"] for r in m2.pairs_.to_pylist())


def test_max_basket_items_excludes_big_basket() -> None:
    big = ["A", "B", "C", "D", "E"]
    baskets = [["A", "B"]] * 4 + [["C"]] * 4 + [big]
    miner = PairMiner(min_count=1, prior_strength=0.0, max_basket_items=4).fit(_lines(baskets))
    assert miner.n_orders_ == 8
    assert miner.n_orders_skipped_ == 1
    row = _pair(miner, "A", "B")
    assert (row["n_ab"], row["n_a"], row["n_b"]) == (4, 4, 4)
    assert row["lift"] == pytest.approx(8 * 4 / 16, abs=1e-12)
    # pairs that exist only inside the big basket are gone
    assert miner.pairs_.num_rows == 1

    # Exactly max_basket_items distinct items is kept (the limit is inclusive); repeated
    # lines do not make a basket big.
    kept = PairMiner(min_count=1, prior_strength=0.0, max_basket_items=5).fit(
        _lines([*baskets[:-1], big + big])
    )
    assert kept.n_orders_skipped_ == 0
    assert kept.n_orders_ == 9
    assert _pair(kept, "A", "B")["n_ab"] == 5
    assert kept.pairs_.num_rows == 10  # all pairs of the 5-item basket


def test_partners_lists_b_for_a() -> None:
    baskets = [["A", "B"]] * 10 + [["A", "C"]] * 3 + [["D"]] * 10 + [["C"]] * 2
    miner = PairMiner(min_count=1, prior_strength=1.0).fit(_lines(baskets))
    assert miner.partners_.column_names == list(PARTNER_COLUMNS)
    partners_a = miner.partners("A")
    assert [p["partner_id"] for p in partners_a][0] == "B"
    assert partners_a[0]["rank"] == 1
    assert partners_a[0]["n_ab"] == 10
    assert partners_a[0]["confidence"] == pytest.approx(10 / 13, abs=1e-12)
    ab = _pair(miner, "A", "B")
    assert partners_a[0]["lift_shrunk"] == pytest.approx(ab["lift_shrunk"], abs=1e-12)
    assert partners_a[0]["npmi"] == pytest.approx(ab["npmi"], abs=1e-12)
    assert [p["partner_id"] for p in miner.partners("B")] == ["A"]
    assert miner.partners("B")[0]["confidence"] == pytest.approx(1.0, abs=1e-12)
    assert miner.partners("D") == []
    assert miner.partners("unknown") == []
    assert len(miner.partners("A", n=1)) == 1


def test_n_partners_truncates_lists() -> None:
    baskets = [["A", "B"]] * 5 + [["A", "C"]] * 4 + [["A", "D"]] * 3 + [["E"]] * 20
    miner = PairMiner(min_count=1, prior_strength=0.0, n_partners=2).fit(_lines(baskets))
    rows = [r for r in miner.partners_.to_pylist() if r["item_id"] == "A"]
    assert [r["rank"] for r in rows] == [1, 2]
    assert len(rows) == 2


def test_from_config_copies_settings() -> None:
    cfg = MiningConfig(min_count=3, prior_strength=2.5, max_basket_items=7, n_partners=4)
    miner = PairMiner.from_config(cfg)
    assert (miner.min_count, miner.prior_strength, miner.max_basket_items, miner.n_partners) == (
        3,
        2.5,
        7,
        4,
    )


def test_unfitted_miner_raises_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        PairMiner().partners("A")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_count": 0},
        {"min_count": -1},
        {"prior_strength": -1.0},
        {"max_basket_items": 1},
        {"n_partners": 0},
        {"min_count": 1.5},
    ],
)
def test_invalid_params_raise_config_error_at_fit(kwargs: dict[str, object]) -> None:
    miner = PairMiner(**kwargs)  # type: ignore[arg-type]  # construction does not validate
    with pytest.raises(ConfigError):
        miner.fit(_lines([["A", "B"]]))
    assert not hasattr(miner, "pairs_")


def test_missing_column_raises_key_error() -> None:
    with pytest.raises(KeyError, match="item_id"):
        PairMiner().fit(pa.table({"order_id": ["1"], "sku": ["A"]}))


def test_extra_columns_are_ignored() -> None:
    lines = _lines([["A", "B"]] * 3 + [["C"]] * 3).append_column(
        "quantity", pa.array([1] * 9, pa.int64())
    )
    miner = PairMiner(min_count=1, prior_strength=0.0).fit(lines)
    assert _pair(miner, "A", "B")["n_ab"] == 3


# --------------------------------------------------------------------------------------------
# Reference comparison and properties on random baskets
# --------------------------------------------------------------------------------------------

ITEMS = ["a", "b", "c", "d", "e", "f", "g"]

baskets_strategy = st.lists(
    st.lists(st.sampled_from(ITEMS), min_size=1, max_size=6), min_size=1, max_size=30
)


@settings(max_examples=120, deadline=None)
@given(
    baskets=baskets_strategy,
    min_count=st.integers(1, 3),
    alpha=st.sampled_from([0.0, 0.5, 1.0, 5.0]),
    max_basket_items=st.integers(2, 7),
    n_partners=st.integers(1, 4),
)
def test_matches_reference_implementation(
    baskets: list[list[str]], min_count: int, alpha: float, max_basket_items: int, n_partners: int
) -> None:
    miner = PairMiner(
        min_count=min_count,
        prior_strength=alpha,
        max_basket_items=max_basket_items,
        n_partners=n_partners,
    ).fit(_lines(baskets))
    want, n_orders, n_skipped = reference_pairs(baskets, min_count, alpha, max_basket_items)
    assert miner.n_orders_ == n_orders
    assert miner.n_orders_skipped_ == n_skipped
    got = miner.pairs_.to_pylist()
    _assert_rows_close(got, want)
    _assert_rows_close(miner.partners_.to_pylist(), reference_partners(want, n_partners))

    for r in got:
        assert r["item_a"] < r["item_b"]
        assert r["n_ab"] <= min(r["n_a"], r["n_b"])
        assert r["support"] <= r["n_a"] / n_orders + 1e-12
        assert r["support"] <= r["n_b"] / n_orders + 1e-12
        assert -1.0 - 1e-12 <= r["npmi"] <= 1.0 + 1e-12
        assert 0.0 < r["confidence_ab"] <= 1.0
        assert 0.0 < r["confidence_ba"] <= 1.0
        if alpha > 0:
            lo, hi = sorted([1.0, r["lift"]])
            assert lo - 1e-12 <= r["lift_shrunk"] <= hi + 1e-12


@settings(max_examples=15, deadline=None)
@given(baskets=baskets_strategy)
def test_deterministic_same_input_same_output(baskets: list[list[str]]) -> None:
    lines = _lines(baskets)
    m1 = PairMiner(min_count=1, prior_strength=1.0).fit(lines)
    m2 = PairMiner(min_count=1, prior_strength=1.0).fit(lines)
    assert m1.pairs_.equals(m2.pairs_)
    assert m1.partners_.equals(m2.partners_)
    # row order of the input does not matter either
    m3 = PairMiner(min_count=1, prior_strength=1.0).fit(lines.take(list(range(len(lines)))[::-1]))
    assert m3.pairs_.equals(m1.pairs_)
    assert m3.partners_.equals(m1.partners_)


def test_refit_replaces_previous_state() -> None:
    miner = PairMiner(min_count=1, prior_strength=0.0)
    miner.fit(_lines([["A", "B"]] * 3))
    miner.fit(_lines([["C", "D"]] * 2 + [["E"]] * 2))
    assert [(r["item_a"], r["item_b"]) for r in miner.pairs_.to_pylist()] == [("C", "D")]
    assert miner.n_orders_ == 4
    assert miner.partners("A") == []


def test_empty_input_gives_empty_tables() -> None:
    miner = PairMiner(min_count=1).fit(_lines([]))
    assert miner.pairs_.num_rows == 0
    assert miner.partners_.num_rows == 0
    assert miner.n_orders_ == 0
    assert miner.n_orders_skipped_ == 0
