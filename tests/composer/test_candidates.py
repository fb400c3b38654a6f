from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from bundlewise.composer.candidates import (
    CANDIDATE_COLUMNS,
    POPULAR_INTEREST,
    compose_candidates,
)
from bundlewise.config import ComposerConfig
from bundlewise.mining.cooccurrence import PairMiner

T0 = dt.datetime(2024, 1, 1)


def build_lines(
    anonymous: list[tuple[int, str]], customers: dict[str, list[str]], day0: int = 40
) -> pa.Table:
    """Order lines: ``anonymous`` is (count, items) of orders without customer; ``customers``
    maps a customer to the item strings of their orders (one order per string)."""
    rows: list[tuple[str, str | None, dt.datetime, str]] = []
    k = 0
    for count, items in anonymous:
        for _ in range(count):
            for item in items:
                rows.append((f"x{k}", None, T0 + dt.timedelta(days=k % 30), item))
            k += 1
    for customer, orders in customers.items():
        for j, items in enumerate(orders):
            for item in items:
                rows.append((f"{customer}-{j}", customer, T0 + dt.timedelta(days=day0 + j), item))
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "item_id": pa.array([r[3] for r in rows], pa.string()),
        }
    )


# A, B, C are complements (A always bought with B, B with C, A with C); D, E complements;
# F is bought alone. u1 bought A in three orders; u2 bought D once.
ANON = [(15, "ABC"), (5, "AB"), (10, "DE"), (30, "F")]
CUSTOMERS = {"u1": ["A", "A", "A"], "u2": ["D"]}


@pytest.fixture(scope="module")
def world() -> tuple[pa.Table, PairMiner]:
    lines = build_lines(ANON, CUSTOMERS)
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    return lines, miner


def _compose(
    world: tuple[pa.Table, PairMiner],
    config: ComposerConfig | None = None,
    customer_ids: list[str] | None = None,
) -> pa.Table:
    lines, miner = world
    return compose_candidates(lines, miner.pairs_, miner.partners_, config, customer_ids)


def _rows(table: pa.Table, customer: str) -> list[dict[str, object]]:
    return [r for r in table.to_pylist() if r["customer_id"] == customer]


def test_world_is_mined_as_designed(world: tuple[pa.Table, PairMiner]) -> None:
    _, miner = world
    pairs = {(r["item_a"], r["item_b"]): r for r in miner.pairs_.to_pylist()}
    assert set(pairs) == {("A", "B"), ("A", "C"), ("B", "C"), ("D", "E")}
    assert all(r["lift_shrunk"] > 1 for r in pairs.values())
    assert [p["partner_id"] for p in miner.partners("A")] == ["B", "C"]


def test_history_customer_gets_anchor_bundle_first(world: tuple[pa.Table, PairMiner]) -> None:
    cands = _compose(world, ComposerConfig(n_offers=3))
    assert cands.column_names == list(CANDIDATE_COLUMNS)
    u1 = _rows(cands, "u1")
    assert [r["offer_rank"] for r in u1] == [1, 2, 3]
    first = u1[0]
    assert {"A", "B"} <= set(first["item_ids"])
    assert first["source"] == "history"
    assert first["anchor_id"] == "A"
    assert first["anchor_n_orders"] == 3
    # every personalized bundle of u1 contains the anchor A and only mined complements
    for r in u1:
        if r["source"] == "history":
            assert "A" in r["item_ids"]
            assert r["anchor_id"] == "A"
            assert set(r["item_ids"]) <= {"A", "B", "C"}
    # scores are non-increasing within the history block
    scores = [r["score"] for r in u1 if r["source"] == "history"]
    assert scores == sorted(scores, reverse=True)


def test_pair_score_matches_formula(world: tuple[pa.Table, PairMiner]) -> None:
    # u1 only bought A: s_A = 1, partner B not bought -> interest POPULAR_INTEREST * s_A.
    _, miner = world
    cands = _compose(world, ComposerConfig(n_offers=5, max_bundle_size=2))
    ab = [r for r in _rows(cands, "u1") if r["item_ids"] == ["A", "B"]]
    assert len(ab) == 1
    lift = next(p for p in miner.partners("A") if p["partner_id"] == "B")["lift_shrunk"]
    assert ab[0]["score"] == pytest.approx((1 + POPULAR_INTEREST) / 2 * math.log(lift), rel=1e-9)
    assert ab[0]["min_pair_lift"] == pytest.approx(lift, rel=1e-12)
    assert ab[0]["min_pair_count"] == 20


def test_triple_score_matches_formula(world: tuple[pa.Table, PairMiner]) -> None:
    # score = mean log shrunk lift over the 3 pairs x mean interest (1, 1/2, 1/2 for u1)
    _, miner = world
    cands = _compose(world, ComposerConfig(n_offers=5, max_bundle_size=3))
    abc = [r for r in _rows(cands, "u1") if r["item_ids"] == ["A", "B", "C"]]
    assert len(abc) == 1
    pairs = [r for r in miner.pairs_.to_pylist() if r["item_a"] in "ABC"]
    assert len(pairs) == 3
    mean_c = sum(math.log(p["lift_shrunk"]) for p in pairs) / 3
    interest = (1 + 2 * POPULAR_INTEREST) / 3
    assert abc[0]["score"] == pytest.approx(mean_c * interest, rel=1e-9)
    assert abc[0]["min_pair_count"] == min(p["n_ab"] for p in pairs)
    assert abc[0]["min_pair_lift"] == pytest.approx(min(p["lift_shrunk"] for p in pairs))
    assert abc[0]["anchor_id"] == "A"


def test_customer_without_history_gets_popular_bundles(
    world: tuple[pa.Table, PairMiner],
) -> None:
    cands = _compose(world, ComposerConfig(n_offers=3), customer_ids=["ghost"])
    ghost = _rows(cands, "ghost")
    assert len(ghost) == 3
    assert [r["offer_rank"] for r in ghost] == [1, 2, 3]
    for r in ghost:
        assert r["source"] == "popular"
        assert r["anchor_id"] is None
        assert r["anchor_n_orders"] is None
        assert len(r["item_ids"]) == 2
    # popular bundles score POPULAR_INTEREST * log(shrunk lift)
    _, miner = world
    lifts = {(r["item_a"], r["item_b"]): r for r in miner.pairs_.to_pylist()}
    for r in ghost:
        pair = lifts[tuple(r["item_ids"])]
        assert r["score"] == pytest.approx(
            POPULAR_INTEREST * math.log(pair["lift_shrunk"]), rel=1e-9
        )
        assert r["min_pair_count"] == pair["n_ab"]
        assert r["min_pair_lift"] == pytest.approx(pair["lift_shrunk"], rel=1e-12)
    # popular means most-bought first (ties: higher shrunk lift), not highest score
    counts = [r["min_pair_count"] for r in ghost]
    assert counts == sorted(counts, reverse=True)
    complements = [p for p in lifts.values() if p["lift_shrunk"] > 1]
    best = max(complements, key=lambda p: (p["n_ab"], p["lift_shrunk"]))
    assert ghost[0]["item_ids"] == [best["item_a"], best["item_b"]]
    # a customer not listed and without history gets nothing
    assert _rows(cands, "nobody") == []


def test_customer_without_complements_is_topped_up_with_popular(
    world: tuple[pa.Table, PairMiner],
) -> None:
    # u2 bought D, whose complement is E: a history bundle, then popular fill.
    cands = _compose(world, ComposerConfig(n_offers=4))
    u2 = _rows(cands, "u2")
    assert len(u2) == 4
    assert u2[0]["item_ids"] == ["D", "E"]
    assert u2[0]["source"] == "history"
    assert u2[0]["anchor_id"] == "D"
    assert all(r["source"] == "popular" for r in u2[1:])
    # no duplicate bundles per customer
    keys = [tuple(r["item_ids"]) for r in u2]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("n_offers", [1, 2, 3, 5])
def test_n_offers_respected(world: tuple[pa.Table, PairMiner], n_offers: int) -> None:
    cands = _compose(world, ComposerConfig(n_offers=n_offers), customer_ids=["ghost"])
    for customer in ("u1", "u2", "ghost"):
        rows = _rows(cands, customer)
        assert 1 <= len(rows) <= n_offers
        assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["customer_id"] for r in cands.to_pylist()} == {"u1", "u2", "ghost"}


def test_max_bundle_size_two_gives_only_pairs(world: tuple[pa.Table, PairMiner]) -> None:
    cands = _compose(world, ComposerConfig(n_offers=5, max_bundle_size=2), ["ghost"])
    assert cands.num_rows > 0
    assert all(len(ids) == 2 for ids in cands.column("item_ids").to_pylist())
    # with 3 allowed the triple A+B+C shows up for u1
    cands3 = _compose(world, ComposerConfig(n_offers=5, max_bundle_size=3))
    assert ["A", "B", "C"] in [r["item_ids"] for r in _rows(cands3, "u1")]


def test_item_ids_sorted_and_distinct(world: tuple[pa.Table, PairMiner]) -> None:
    cands = _compose(world, ComposerConfig(n_offers=5), ["ghost"])
    for ids in cands.column("item_ids").to_pylist():
        assert ids == sorted(ids)
        assert len(ids) == len(set(ids))
        assert 2 <= len(ids) <= 3


def test_deterministic(world: tuple[pa.Table, PairMiner]) -> None:
    lines, miner = world
    config = ComposerConfig(n_offers=4)
    first = compose_candidates(lines, miner.pairs_, miner.partners_, config, ["ghost"])
    second = compose_candidates(lines, miner.pairs_, miner.partners_, config, ["ghost"])
    assert first.equals(second)
    # shuffled input rows give the same answer
    shuffled = lines.take(list(range(lines.num_rows))[::-1])
    third = compose_candidates(shuffled, miner.pairs_, miner.partners_, config, ["ghost"])
    assert third.equals(first)


@pytest.mark.parametrize("missing", ["AB", "AC", "BC"])
def test_triple_requires_every_pair_to_be_a_complement(missing: str) -> None:
    # Two of the three pairs of A, B, C are complements, the third never co-occurs:
    # no triple A+B+C, whichever pair is missing.
    anon = [(10, pair) for pair in ("AB", "AC", "BC") if pair != missing]
    lines = build_lines([*anon, (30, "F")], {"u1": ["A", "A"], "u2": ["B"], "u3": ["C"]})
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    cands = compose_candidates(
        lines, miner.pairs_, miner.partners_, ComposerConfig(n_offers=5, max_bundle_size=3)
    )
    assert cands.num_rows > 0
    assert all(len(ids) == 2 for ids in cands.column("item_ids").to_pylist())
    assert all(ids != list(missing) for ids in cands.column("item_ids").to_pylist())
    u1 = _rows(cands, "u1")
    assert u1[0]["source"] == "history"
    assert "A" in u1[0]["item_ids"]


def test_no_pairs_gives_no_candidates() -> None:
    lines = build_lines([(5, "A"), (5, "B")], {"u1": ["A"]})
    miner = PairMiner(min_count=1, prior_strength=1.0).fit(lines)
    cands = compose_candidates(lines, miner.pairs_, miner.partners_, None, ["ghost"])
    assert cands.num_rows == 0
    assert cands.column_names == list(CANDIDATE_COLUMNS)


@pytest.mark.parametrize(("half_life", "expected_anchor"), [(1.0, "D"), (1e5, "A")])
def test_recency_half_life_moves_anchor(half_life: float, expected_anchor: str) -> None:
    # u4 bought A three times long ago and D once at the end of the data.
    base = build_lines(ANON, {})
    extra = pa.table(
        {
            "order_id": ["u4-0", "u4-1", "u4-2", "u4-3"],
            "customer_id": ["u4"] * 4,
            "ts": pa.array(
                [T0, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)]
                + [T0 + dt.timedelta(days=100)],
                pa.timestamp("us"),
            ),
            "item_id": ["A", "A", "A", "D"],
        },
        schema=base.schema,
    )
    lines = pa.concat_tables([base, extra])
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    cands = compose_candidates(
        lines,
        miner.pairs_,
        miner.partners_,
        ComposerConfig(n_offers=5, recency_half_life_days=half_life),
    )
    u4 = _rows(cands, "u4")
    assert u4[0]["source"] == "history"
    assert u4[0]["anchor_id"] == expected_anchor
    assert expected_anchor in u4[0]["item_ids"]
