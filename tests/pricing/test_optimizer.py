from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from scipy.special import expit, lambertw

from bundlewise.pricing.guardrails import Guardrails, violated_rules
from bundlewise.pricing.optimizer import optimal_logit_price, quote_prices
from bundlewise.pricing.response import acceptance_probability

NO_ENDINGS = {"ending_modulus": 1, "ending_residues": (0,)}


def _profit(price: np.ndarray | float, c: float, a: float, b: float, L: float) -> np.ndarray:
    return (np.asarray(price, dtype=np.float64) - c) * expit(a - b * np.asarray(price) / L)


def _grid_argmax(c: float, a: float, b: float, L: float, n: int) -> tuple[float, float, float]:
    """Brute-force argmax of expected profit over a fine grid (no use of the closed form)."""
    beta = b / L
    span = (max(a - beta * c, 0.0) + 30.0) / beta
    grid = np.linspace(c, c + span, n)
    values = _profit(grid, c, a, b, L)
    k = int(np.argmax(values))
    return float(grid[k]), float(values[k]), float(grid[1] - grid[0])


def _allowed(q: int, guardrails: Guardrails) -> bool:
    return q % guardrails.ending_modulus in guardrails.ending_residues


# --------------------------------------------------------------------------------------------
# Closed-form optimum
# --------------------------------------------------------------------------------------------


def test_docstring_value_one_plus_w_of_one_over_e() -> None:
    got = float(optimal_logit_price(0.0, 1.0, 0.0, 1.0))
    assert got == pytest.approx(1.0 + float(np.real(lambertw(math.exp(-1.0)))), rel=1e-12)
    assert got == pytest.approx(1.278465, abs=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "c", "L"),
    [
        (0.0, 1.0, 0.0, 1.0),
        (6.0, 8.0, 600.0, 1000.0),
        (2.0, 8.0, 0.0, 1000.0),
        (-3.0, 2.0, 100.0, 500.0),
        (10.0, 0.5, 50.0, 200.0),
        (-10.0, 50.0, 10.0, 10_000.0),
        (5.0, 20.0, 1500.0, 1000.0),
        (1.0, 3.0, 999_000.0, 1_000_000.0),
    ],
)
def test_closed_form_matches_brute_force(a: float, b: float, c: float, L: float) -> None:
    p_star = float(optimal_logit_price(c, L, a, b))
    p_grid, best_grid, step = _grid_argmax(c, a, b, L, 400_001)
    assert abs(p_star - p_grid) <= 1e-3 * abs(p_star) + step
    assert float(_profit(p_star, c, a, b, L)) >= best_grid * (1 - 1e-12)
    assert p_star > c


@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    L=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
)
def test_closed_form_matches_brute_force_property(
    a: float, b: float, L: int, cost_share: float
) -> None:
    c = L * cost_share
    p_star = float(optimal_logit_price(c, L, a, b))
    assert math.isfinite(p_star)
    p_grid, best_grid, step = _grid_argmax(c, a, b, L, 100_001)
    assert abs(p_star - p_grid) <= 1e-3 * abs(p_star) + step
    assert float(_profit(p_star, c, a, b, L)) >= best_grid * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    L=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
)
def test_first_order_condition(a: float, b: float, L: int, cost_share: float) -> None:
    # d/dp (p - c) s(a - beta p) = 0  <=>  (p - c) * beta * (1 - s) = 1
    c = L * cost_share
    beta = b / L
    p = float(optimal_logit_price(c, L, a, b))
    s = float(expit(a - beta * p))
    assert (p - c) * beta * (1.0 - s) == pytest.approx(1.0, rel=1e-9)


def test_optimal_price_is_vectorized_and_monotone_in_cost_and_appeal() -> None:
    costs = np.array([0.0, 200.0, 400.0, 600.0, 800.0])
    p = optimal_logit_price(costs, 1000.0, 4.0, 8.0)
    assert p.shape == (5,)
    assert np.all(np.diff(p) > 0)  # pricier to make -> pricier to sell
    assert np.all(np.diff(p) < np.diff(costs))  # but less than one-for-one
    p_a = optimal_logit_price(300.0, 1000.0, np.array([0.0, 2.0, 4.0]), 8.0)
    assert np.all(np.diff(p_a) > 0)  # more appeal -> higher price


# --------------------------------------------------------------------------------------------
# quote_prices
# --------------------------------------------------------------------------------------------


def test_docstring_quote() -> None:
    q = quote_prices([1000], [600], [6.0], [8.0], Guardrails())
    assert int(q.price_minor[0]) == 809
    assert str(q.binding_rule[0]) == "optimum"


@pytest.mark.parametrize(
    ("L", "c", "a", "b"),
    [(1000, 600, 6.0, 8.0), (5000, 1000, 4.0, 6.0), (20_000, 9000, 7.0, 10.0), (777, 100, 5, 9)],
)
def test_without_endings_interior_price_is_rounded_optimum(
    L: int, c: int, a: float, b: float
) -> None:
    g = Guardrails(min_margin=0.0, max_discount=1.0, **NO_ENDINGS)
    q = quote_prices([L], [c], [a], [b], g)
    p_star = float(optimal_logit_price(c, L, a, b))
    assert c < p_star < L  # interior
    assert str(q.binding_rule[0]) == "optimum"
    assert int(q.price_minor[0]) == round(p_star)
    assert float(q.unconstrained_price[0]) == pytest.approx(p_star, rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    L=st.integers(1000, 10**6),
    cost_share=st.floats(0.0, 0.9),
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 20.0),
)
def test_without_endings_interior_price_is_rounded_optimum_property(
    L: int, cost_share: float, a: float, b: float
) -> None:
    c = int(L * cost_share)
    g = Guardrails(min_margin=0.0, max_discount=1.0, **NO_ENDINGS)
    q = quote_prices([L], [c], [a], [b], g)
    p_star = float(optimal_logit_price(c, L, a, b))
    assume(c + 1 < p_star < L - 1)
    assert str(q.binding_rule[0]) == "optimum"
    price = int(q.price_minor[0])
    assert price in (math.floor(p_star), math.ceil(p_star))
    if abs(p_star - math.floor(p_star) - 0.5) > 0.05:
        assert price == round(p_star)


def test_clipping_rules() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.3, **NO_ENDINGS)
    # very appealing: the optimum is above list -> held at list total
    q = quote_prices(
        [1000, 1000, 1000, 1000], [100, 100, 800, 950], [20.0, -5, -5, 0], [8, 8, 50, 8], g
    )
    assert q.binding_rule.tolist() == [
        "list_total_cap",
        "max_discount",
        "margin_floor",
        "infeasible",
    ]
    assert q.price_minor.tolist() == [1000, 700, 880, -1]
    assert q.is_feasible.tolist() == [True, True, True, False]
    assert q.p_accept[3] == 0.0
    assert q.expected_profit_minor[3] == 0.0


def test_ending_applied_at_discount_cap() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.3, ending_modulus=10, ending_residues=(9,))
    q = quote_prices([1000], [100], [-5.0], [8.0], g)
    assert str(q.binding_rule[0]) == "max_discount"
    assert int(q.price_minor[0]) == 709  # 700 is the floor; 699 would break it


def test_no_allowed_ending_inside_bounds_rounds_the_clipped_price() -> None:
    # bounds [990, 1000] (max_discount 1%); nothing ends in 5 with modulus 100 there.
    g = Guardrails(min_margin=0.0, max_discount=0.01, ending_modulus=100, ending_residues=(5,))
    q = quote_prices([1000], [0], [0.0], [8.0], g)
    assert bool(q.is_feasible[0])
    assert int(q.price_minor[0]) == 990
    assert str(q.binding_rule[0]) == "max_discount"


endings = st.integers(1, 100).flatmap(
    lambda mod: st.tuples(
        st.just(mod), st.sets(st.integers(0, mod - 1), min_size=1, max_size=4).map(tuple)
    )
)


def _check_quote(
    L: int, c: int, a: float, b: float, m: float, d: float, mod: int, residues: tuple[int, ...]
) -> None:
    g = Guardrails(min_margin=m, max_discount=d, ending_modulus=mod, ending_residues=residues)
    q = quote_prices([L], [c], [a], [b], g)
    price = int(q.price_minor[0])
    rule = str(q.binding_rule[0])
    event(rule)
    p_star = float(q.unconstrained_price[0])
    assert p_star == pytest.approx(float(optimal_logit_price(c, L, a, b)), rel=1e-12)

    margin_floor = math.ceil(round(c * (1 + m), 6))
    discount_floor = math.ceil(round(L * (1 - d), 6))
    lo, hi = max(margin_floor, discount_floor), L

    if margin_floor > L:  # infeasible iff the margin floor is above the list total
        assert not bool(q.is_feasible[0])
        assert price == -1
        assert rule == "infeasible"
        assert q.p_accept[0] == 0.0
        assert q.expected_profit_minor[0] == 0.0
        return

    assert bool(q.is_feasible[0])
    assert violated_rules(price, L, c, g) == []
    assert lo <= price <= hi
    assert price >= margin_floor
    assert price >= discount_floor

    # binding rule
    if lo <= p_star <= hi:
        assert rule == "optimum"
    elif p_star > hi:
        assert rule == "list_total_cap"
    else:
        assert rule == ("margin_floor" if margin_floor >= discount_floor else "max_discount")

    # reported acceptance and profit are those of the chosen price
    p_acc = float(acceptance_probability(price, L, a, b))
    assert q.p_accept[0] == pytest.approx(p_acc, rel=1e-12)
    assert q.expected_profit_minor[0] == pytest.approx((price - c) * p_acc, rel=1e-12, abs=1e-12)

    # the ending is honoured whenever some allowed price exists inside the bounds
    any_allowed = any(lo + ((r - lo) % mod) <= hi for r in residues)
    if any_allowed:
        assert _allowed(price, g)
    else:
        clipped = min(max(p_star, lo), hi)
        assert abs(price - clipped) <= 0.5 + 1e-9

    # optimality of the ending choice: no allowed price in bounds near p* earns more
    chosen = float(_profit(price, c, a, b, L))
    centre = min(max(p_star, lo), hi)
    start = max(lo, math.floor(centre) - 2 * mod)
    stop = min(hi, math.ceil(centre) + 2 * mod)
    for other in range(start, stop + 1):
        if _allowed(other, g):
            assert chosen >= float(_profit(other, c, a, b, L)) * (1 - 1e-12) - 1e-12, other
    if lo <= p_star - 2 * mod and p_star + 2 * mod <= hi:
        assert rule == "optimum"


@settings(max_examples=200, deadline=None)
@given(
    L=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    m=st.floats(0.0, 1.0),
    d=st.floats(0.0, 1.0),
    ending=endings,
)
def test_quote_properties(
    L: int,
    cost_share: float,
    a: float,
    b: float,
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
) -> None:
    c = min(int(round(L * cost_share)), 2 * L)
    _check_quote(L, c, a, b, m, d, *ending)


@settings(max_examples=150, deadline=None)
@given(
    L=st.integers(100, 10**6),
    cost_share=st.floats(0.0, 0.7),
    a=st.floats(-2.0, 10.0),
    b=st.floats(4.0, 50.0),
    m=st.floats(0.0, 0.3),
    d=st.floats(0.3, 1.0),
    ending=endings,
)
def test_quote_properties_mostly_interior(
    L: int,
    cost_share: float,
    a: float,
    b: float,
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
) -> None:
    # Same checks where the unconstrained optimum is usually inside the bounds.
    _check_quote(L, int(L * cost_share), a, b, m, d, *ending)


@settings(max_examples=60, deadline=None)
@given(
    bundles=st.lists(
        st.tuples(
            st.integers(1, 10**6),
            st.floats(0.0, 2.0),
            st.floats(-10.0, 10.0),
            st.floats(0.1, 50.0),
        ),
        min_size=1,
        max_size=8,
    ),
    m=st.floats(0.0, 1.0),
    d=st.floats(0.0, 1.0),
    ending=endings,
)
def test_batch_equals_single_calls(
    bundles: list[tuple[int, float, float, float]],
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
) -> None:
    mod, residues = ending
    g = Guardrails(min_margin=m, max_discount=d, ending_modulus=mod, ending_residues=residues)
    L = np.array([x[0] for x in bundles], dtype=np.int64)
    c = np.array([int(x[0] * x[1]) for x in bundles], dtype=np.int64)
    a = np.array([x[2] for x in bundles])
    b = np.array([x[3] for x in bundles])
    batch = quote_prices(L, c, a, b, g)
    assert batch.price_minor.shape == (len(bundles),)
    for k in range(len(bundles)):
        one = quote_prices([L[k]], [c[k]], [a[k]], [b[k]], g)
        assert int(batch.price_minor[k]) == int(one.price_minor[0])
        assert str(batch.binding_rule[k]) == str(one.binding_rule[0])
        assert bool(batch.is_feasible[k]) == bool(one.is_feasible[0])
        assert float(batch.p_accept[k]) == float(one.p_accept[0])
        assert float(batch.expected_profit_minor[k]) == float(one.expected_profit_minor[0])
        assert float(batch.unconstrained_price[k]) == float(one.unconstrained_price[0])


def test_scalar_a_b_broadcast() -> None:
    g = Guardrails()
    q1 = quote_prices([1000, 2000], [600, 900], 6.0, 8.0, g)
    q2 = quote_prices([1000, 2000], [600, 900], [6.0, 6.0], [8.0, 8.0], g)
    assert q1.price_minor.tolist() == q2.price_minor.tolist()
    assert q1.binding_rule.tolist() == q2.binding_rule.tolist()


def test_empty_batch() -> None:
    q = quote_prices(
        np.array([], dtype=np.int64), np.array([], dtype=np.int64), [], [], Guardrails()
    )
    assert q.price_minor.shape == (0,)
    assert q.binding_rule.shape == (0,)
