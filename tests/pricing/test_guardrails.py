from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlewise.config import PricingConfig
from bundlewise.exceptions import ConfigError, GuardrailViolation
from bundlewise.pricing.guardrails import (
    BINDING_RULES,
    Guardrails,
    check_feasible,
    ending_candidates,
    price_bounds,
    violated_rules,
)


def test_binding_rules_names() -> None:
    assert set(BINDING_RULES) == {
        "optimum",
        "list_total_cap",
        "max_discount",
        "margin_floor",
        "fairness_band",
        "discount_budget",
        "segment_price",
    }


def test_guardrails_from_config() -> None:
    cfg = PricingConfig(
        min_margin=0.2, max_discount=0.4, price_ending_modulus=100, price_ending_residues=(99, 49)
    )
    g = Guardrails.from_config(cfg)
    assert g == Guardrails(
        min_margin=0.2, max_discount=0.4, ending_modulus=100, ending_residues=(99, 49)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_margin": -0.1},
        {"max_discount": 1.5},
        {"max_discount": -0.01},
        {"ending_modulus": 0},
        {"ending_modulus": 10, "ending_residues": (10,)},
        {"ending_modulus": 10, "ending_residues": (-1,)},
        {"ending_residues": ()},
        {"min_margin": float("nan")},
    ],
)
def test_invalid_guardrails_raise_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Guardrails(**kwargs)  # type: ignore[arg-type]


def test_price_bounds_docstring_example() -> None:
    b = price_bounds([1000, 1000], [600, 950], Guardrails(min_margin=0.1, max_discount=0.3))
    assert b.lower.tolist() == [700, 1045]
    assert b.upper.tolist() == [1000, 1000]
    assert b.lower_rule.tolist() == ["max_discount", "margin_floor"]
    assert b.is_feasible.tolist() == [True, False]


def test_price_bounds_float_noise_does_not_push_floor_up() -> None:
    # 700 * (1 - 0.3) is 489.99999999999994 in binary floating point: the floor is 490.
    g = Guardrails(min_margin=0.0, max_discount=0.3)
    b = price_bounds([700], [0], g)
    assert b.lower.tolist() == [490]
    assert violated_rules(490, 700, 0, g) == []
    assert violated_rules(489, 700, 0, g) == ["max_discount"]
    # 1.1 * 100 is 110.00000000000001: the margin floor is 110, not 111.
    g2 = Guardrails(min_margin=0.1, max_discount=0.0)
    b2 = price_bounds([110], [100], g2)
    assert b2.lower.tolist() == [110]
    assert b2.is_feasible.tolist() == [True]


def test_price_bounds_margin_floor_wins_ties() -> None:
    # both floors equal 900: the recorded rule is the margin floor
    b = price_bounds([1000], [900], Guardrails(min_margin=0.0, max_discount=0.1))
    assert b.lower.tolist() == [900]
    assert b.lower_rule.tolist() == ["margin_floor"]


def test_violated_rules_examples() -> None:
    g = Guardrails()
    assert violated_rules(1200, 1000, 600, g) == ["list_total_cap"]
    assert violated_rules(500, 1000, 600, g) == ["margin_floor", "max_discount"]
    assert violated_rules(699, 1000, 600, g) == ["max_discount"]
    assert violated_rules(700, 1000, 600, g) == []
    assert violated_rules(1000, 1000, 600, g) == []
    assert violated_rules(1001, 1000, 600, g) == ["list_total_cap"]
    # margin floor alone: cost 800 -> floor 880
    assert violated_rules(879, 1000, 800, g) == ["margin_floor"]
    assert violated_rules(880, 1000, 800, g) == []


def test_check_feasible_raises_margin_floor() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.3)
    with pytest.raises(GuardrailViolation) as info:
        check_feasible(1000, 950, g)
    assert info.value.rule == "margin_floor"
    assert "1045" in info.value.detail
    assert "1000" in info.value.detail
    assert "no feasible price" in str(info.value)


def test_check_feasible_passes_at_the_edge() -> None:
    g = Guardrails(min_margin=0.25, max_discount=0.3)
    assert check_feasible(1000, 800, g) is None  # floor exactly 1000 == list total
    with pytest.raises(GuardrailViolation):
        check_feasible(1000, 801, g)


@settings(max_examples=150, deadline=None)
@given(
    list_total=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
    m=st.floats(0.0, 1.0),
    d=st.floats(0.0, 1.0),
)
def test_price_bounds_agree_with_violated_rules(
    list_total: int, cost_share: float, m: float, d: float
) -> None:
    cost = int(list_total * cost_share)
    g = Guardrails(min_margin=m, max_discount=d)
    b = price_bounds([list_total], [cost], g)
    lo, hi, feasible = int(b.lower[0]), int(b.upper[0]), bool(b.is_feasible[0])
    margin_floor = math.ceil(round(cost * (1 + m), 6))
    discount_floor = math.ceil(round(list_total * (1 - d), 6))
    assert lo == max(margin_floor, discount_floor)
    assert hi == list_total
    assert feasible == (margin_floor <= list_total)
    if feasible:
        assert violated_rules(lo, list_total, cost, g) == []
        assert violated_rules(hi, list_total, cost, g) == []
        assert violated_rules(lo - 1, list_total, cost, g) != []
        assert violated_rules(hi + 1, list_total, cost, g) == ["list_total_cap"]
        check_feasible(list_total, cost, g)
    else:
        with pytest.raises(GuardrailViolation) as info:
            check_feasible(list_total, cost, g)
        assert info.value.rule == "margin_floor"


def test_ending_candidates_docstring_example() -> None:
    down, up = ending_candidates([745.3], [700], [1000], Guardrails())
    assert down.tolist() == [739]
    assert up.tolist() == [749]


def test_ending_candidates_respect_bounds() -> None:
    g = Guardrails(ending_modulus=10, ending_residues=(9,))
    # nothing ending in 9 inside [700, 705]
    down, up = ending_candidates([702.0], [700], [705], g)
    assert down.tolist() == [-1]
    assert up.tolist() == [-1]
    # only an upper candidate
    down, up = ending_candidates([700.0], [700], [720], g)
    assert down.tolist() == [-1]
    assert up.tolist() == [709]
    # an exact allowed price is both
    down, up = ending_candidates([719.0], [700], [720], g)
    assert down.tolist() == [719]
    assert up.tolist() == [719]


endings = st.integers(1, 100).flatmap(
    lambda mod: st.tuples(
        st.just(mod), st.sets(st.integers(0, mod - 1), min_size=1, max_size=4).map(tuple)
    )
)


@settings(max_examples=150, deadline=None)
@given(
    lo=st.integers(0, 10_000),
    width=st.integers(0, 500),
    t=st.floats(0.0, 1.0),
    ending=endings,
)
def test_ending_candidates_are_nearest_allowed_prices(
    lo: int, width: int, t: float, ending: tuple[int, tuple[int, ...]]
) -> None:
    mod, residues = ending
    g = Guardrails(min_margin=0.0, max_discount=1.0, ending_modulus=mod, ending_residues=residues)
    hi = lo + width
    x = lo + t * width
    down, up = ending_candidates([x], [lo], [hi], g)
    allowed = [q for q in range(lo, hi + 1) if q % mod in residues]
    below = [q for q in allowed if q <= x]
    above = [q for q in allowed if q >= x]
    assert int(down[0]) == (max(below) if below else -1)
    assert int(up[0]) == (min(above) if above else -1)


def test_ending_candidates_vectorized() -> None:
    g = Guardrails(ending_modulus=100, ending_residues=(49, 99))
    down, up = ending_candidates([1020.0, 1075.5, 1999.0], [0, 0, 0], [5000, 5000, 1999], g)
    assert down.tolist() == [999, 1049, 1999]
    assert up.tolist() == [1049, 1099, 1999]
    assert down.dtype == np.int64
