"""The guarded price ladder: every rung passes the guardrails, endings and the fairness band."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnworld import MUG_TEA, make_pricer

from bundlewise.config import PricingConfig
from bundlewise.learning.ladder import (
    PriceLadder,
    build_ladder,
    ladder_cache,
    ladder_rungs,
)
from bundlewise.pricing import Guardrails, price_bounds, violated_rules
from bundlewise.pricing.optimizer import allowed_prices


@st.composite
def guardrails_and_bundle(draw: st.DrawFn) -> tuple[Guardrails, float | None, int, int, int]:
    modulus = draw(st.sampled_from([1, 5, 10, 100]))
    residues = tuple(
        sorted(draw(st.sets(st.integers(0, modulus - 1), min_size=1, max_size=min(3, modulus))))
    )
    guardrails = Guardrails(
        min_margin=draw(st.floats(0.0, 1.0)),
        max_discount=draw(st.floats(0.0, 0.9)),
        ending_modulus=modulus,
        ending_residues=residues,
    )
    band = draw(st.one_of(st.none(), st.floats(0.0, 1.0)))
    list_total = draw(st.integers(1, 1_000_000))
    cost = draw(st.integers(0, 2 * list_total))
    n_rungs = draw(st.integers(1, 12))
    return guardrails, band, list_total, cost, n_rungs


@settings(max_examples=300, deadline=None)
@given(guardrails_and_bundle())
def test_every_rung_passes_the_guardrails(
    case: tuple[Guardrails, float | None, int, int, int],
) -> None:
    guardrails, band, L, C, n_rungs = case
    rungs = ladder_rungs(L, C, guardrails, n_rungs, band)
    bounds = price_bounds([L], [C], guardrails)
    if not bounds.is_feasible[0]:
        assert rungs.size == 0
        return
    allowed = allowed_prices(int(bounds.lower[0]), int(bounds.upper[0]), guardrails)
    assert 1 <= rungs.size <= n_rungs
    assert np.all(np.diff(rungs) > 0)
    for p in rungs.tolist():
        assert violated_rules(p, L, C, guardrails) == []
        assert p in set(allowed.tolist())
    # the top rung is the highest allowed price: the list total when its ending is allowed
    assert rungs[-1] == allowed[-1]
    if L % guardrails.ending_modulus in guardrails.ending_residues:
        assert rungs[-1] == L
    # the ladder reaches down to the lowest allowed price the band permits (given 2 rungs)
    inside = allowed if band is None else allowed[allowed * (1.0 + band) >= allowed[-1]]
    if band is not None:
        assert rungs[-1] <= (1.0 + band) * rungs[0]
    if n_rungs >= 2:
        assert rungs[0] == inside[0]
        assert rungs.size == min(n_rungs, inside.size)


def test_a_known_ladder() -> None:
    # floor max(600 * 1.1, 1000 * 0.7) = 700; endings in 9; band 25% below 999 starts at 809
    assert ladder_rungs(1000, 600, Guardrails(), 5, 0.25).tolist() == [809, 859, 909, 949, 999]
    assert ladder_rungs(1000, 600, Guardrails(), 5, None).tolist() == [709, 779, 849, 929, 999]
    # fewer allowed prices than rungs: all of them
    assert ladder_rungs(1000, 600, Guardrails(max_discount=0.02), 5, None).tolist() == [989, 999]


def test_build_ladder_follows_the_pricers_guardrails() -> None:
    pricer = make_pricer(PricingConfig(max_discount=0.2, fairness_band=-1.0))
    ladder = build_ladder(pricer, ["tea", "mug"], 4)
    assert ladder is not None
    assert ladder.bundle == MUG_TEA
    assert (ladder.list_total_minor, ladder.cost_minor) == (1600, 640)
    assert ladder.rungs.tolist() == [1289, 1389, 1499, 1599]
    assert ladder.arm_of(1499) == 2 and ladder.arm_of(1490) is None
    assert ladder.rel_prices[-1] == pytest.approx(1599 / 1600)
    assert ladder.to_dict()["rungs_minor"] == [1289, 1389, 1499, 1599]


def test_no_ladder_without_an_allowed_price() -> None:
    pricer = make_pricer()
    assert build_ladder(pricer, ["gold"], 5) is None  # cost 990 * 1.1 > list total 1000
    assert build_ladder(pricer, ["free", "mug"], 5) is None  # no list price
    with pytest.raises(KeyError, match="unknown item id"):
        build_ladder(pricer, ["mug", "nope"], 5)


def test_the_cache_builds_each_ladder_once() -> None:
    pricer = make_pricer()
    cache = ladder_cache(pricer, 5)
    assert ladder_cache(pricer, 5) is cache
    first = cache.get(["tea", "mug"])
    assert cache.get(list(MUG_TEA)) is first
    assert first == build_ladder(pricer, MUG_TEA, 5)
    assert ladder_cache(pricer, 3) is not cache


def test_a_ladder_must_ascend() -> None:
    with pytest.raises(ValueError, match="strictly ascending"):
        PriceLadder(("a",), 100, 10, np.array([90, 90]))
    with pytest.raises(ValueError, match="at least one rung"):
        PriceLadder(("a",), 100, 10, np.array([], dtype=np.int64))
