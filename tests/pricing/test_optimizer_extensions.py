"""Tests of the optimizer's objectives, discount budget, fairness band and segment-only mode."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from scipy.special import expit

from bundlewise.exceptions import ConfigError
from bundlewise.pricing.guardrails import Guardrails, price_bounds, violated_rules
from bundlewise.pricing.optimizer import (
    Objective,
    PriceQuotes,
    allowed_prices,
    best_price_on_grid,
    customer_surplus,
    optimal_logit_price,
    quote_prices,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NO_ENDINGS: dict[str, Any] = {"ending_modulus": 1, "ending_residues": (0,)}
WIDE = Guardrails(min_margin=0.0, max_discount=1.0, **NO_ENDINGS)


def _objective_value(
    price: npt.ArrayLike, c: float, L: float, a: float, b: float, w: Objective
) -> FloatArray:
    """J(p) written out term by term (no use of the optimizer's internals)."""
    p = np.asarray(price, dtype=np.float64)
    u = a - b * p / L
    s = expit(u)
    surplus = np.logaddexp(0.0, u) * L / b
    return np.asarray(
        w.profit * (p - c) * s + w.revenue * p * s + w.surplus * surplus, dtype=np.float64
    )


def _grid_argmax(
    c: float, L: float, a: float, b: float, w: Objective, n: int
) -> tuple[float, float, float]:
    """Brute-force argmax of J over a fine grid that surely holds the maximizer."""
    beta = b / L
    K = w.profit * c / (w.profit + w.revenue)
    span = (max(a - beta * K, 0.0) + 30.0) / beta
    grid = np.linspace(K, K + span, n)
    values = _objective_value(grid, c, L, a, b, w)
    k = int(np.argmax(values))
    return float(grid[k]), float(values[k]), float(grid[1] - grid[0])


def _allowed(q: int, g: Guardrails) -> bool:
    return q % g.ending_modulus in g.ending_residues


def _guardrails(m: float, d: float, ending: tuple[int, tuple[int, ...]]) -> Guardrails:
    mod, residues = ending
    return Guardrails(min_margin=m, max_discount=d, ending_modulus=mod, ending_residues=residues)


def _assert_guardrails_hold(q: PriceQuotes, L: IntArray, c: IntArray, g: Guardrails) -> None:
    bounds = price_bounds(L, c, g)
    for k in range(L.shape[0]):
        if bool(bounds.is_feasible[k]):
            assert bool(q.is_feasible[k])
            assert violated_rules(int(q.price_minor[k]), int(L[k]), int(c[k]), g) == [], k
            assert str(q.binding_rule[k]) != "infeasible"
        else:
            assert not bool(q.is_feasible[k])
            assert int(q.price_minor[k]) == -1
            assert str(q.binding_rule[k]) == "infeasible"
            assert float(q.p_accept[k]) == 0.0
            assert float(q.expected_profit_minor[k]) == 0.0
            assert float(q.expected_discount_minor[k]) == 0.0


def _assert_reported_consistent(
    q: PriceQuotes, L: IntArray, c: IntArray, a: FloatArray, b: FloatArray
) -> None:
    """p_accept, expected profit and expected discount are those of the quoted price."""
    for k in range(L.shape[0]):
        if not bool(q.is_feasible[k]):
            continue
        price = float(q.price_minor[k])
        s = float(expit(a[k] - b[k] * price / L[k]))
        assert float(q.p_accept[k]) == pytest.approx(s, rel=1e-9, abs=1e-300)
        assert float(q.expected_profit_minor[k]) == pytest.approx(
            (price - c[k]) * s, rel=1e-9, abs=1e-9
        )
        assert float(q.expected_discount_minor[k]) == pytest.approx(
            (L[k] - price) * s, rel=1e-9, abs=1e-9
        )


endings = st.integers(1, 20).flatmap(
    lambda mod: st.tuples(
        st.just(mod), st.sets(st.integers(0, mod - 1), min_size=1, max_size=3).map(tuple)
    )
)

offers = st.lists(
    st.tuples(
        st.integers(1, 20_000),  # list total
        st.floats(0.0, 1.5),  # cost share
        st.floats(-10.0, 10.0),  # a
        st.floats(0.1, 30.0),  # b
    ),
    min_size=1,
    max_size=6,
)

objectives = (
    st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.floats(0.0, 0.95))
    .filter(lambda t: t[0] + t[1] > 0.01)
    .map(lambda t: Objective(t[0], t[1], t[2] * (t[0] + t[1])))
)


def _arrays(
    rows: Sequence[tuple[int, float, float, float]],
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    L = np.array([r[0] for r in rows], dtype=np.int64)
    c = np.array([int(r[0] * r[1]) for r in rows], dtype=np.int64)
    a = np.array([r[2] for r in rows], dtype=np.float64)
    b = np.array([r[3] for r in rows], dtype=np.float64)
    return L, c, a, b


# --------------------------------------------------------------------------------------------
# Objective and the closed form
# --------------------------------------------------------------------------------------------


def test_objective_defaults_and_theta() -> None:
    w = Objective()
    assert (w.profit, w.revenue, w.surplus) == (1.0, 0.0, 0.0)
    assert w.theta == 1.0
    assert Objective(profit=1.0, surplus=0.5).theta == pytest.approx(0.5)
    assert Objective(profit=1.0, revenue=3.0, surplus=1.0).theta == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("profit", "revenue", "surplus"),
    [
        (-1.0, 1.0, 0.0),
        (1.0, -0.5, 0.0),
        (1.0, 0.0, -1e-9),
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 1.0),
        (math.nan, 1.0, 0.0),
        (1.0, math.inf, 0.0),
        (1.0, 0.0, math.nan),
    ],
)
def test_objective_rejects_bad_weights(profit: float, revenue: float, surplus: float) -> None:
    with pytest.raises(ConfigError):
        Objective(profit=profit, revenue=revenue, surplus=surplus)


def test_objective_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Objective(profit=0.0, revenue=0.0)


@pytest.mark.parametrize(
    ("price", "L", "a", "b"),
    [
        (1000.0, 1000.0, 8.0, 8.0),
        (0.0, 500.0, -3.0, 2.0),
        (750.0, 1000.0, 6.0, 8.0),
        (2.5, 3.0, 40.0, 0.5),
        (9000.0, 10_000.0, -20.0, 50.0),
    ],
)
def test_customer_surplus_equals_formula(price: float, L: float, a: float, b: float) -> None:
    want = math.log1p(math.exp(a - b * price / L)) * L / b
    assert float(customer_surplus(price, L, a, b)) == pytest.approx(want, rel=1e-12)


def test_customer_surplus_docstring_value_and_vectorized() -> None:
    assert float(customer_surplus(1000, 1000, 8.0, 8.0)) == pytest.approx(
        math.log(2.0) * 1000 / 8.0, rel=1e-12
    )
    prices = np.array([0.0, 250.0, 500.0, 1000.0])
    cs = customer_surplus(prices, 1000.0, 4.0, 8.0)
    assert cs.shape == (4,)
    assert np.all(np.diff(cs) < 0)  # dearer -> less surplus
    # d CS / d p = -sigma(a - b p / L)
    h = 1e-3
    deriv = (
        customer_surplus(500.0 + h, 1000.0, 4.0, 8.0)
        - customer_surplus(500.0 - h, 1000.0, 4.0, 8.0)
    ) / (2 * h)
    assert float(deriv) == pytest.approx(-float(expit(4.0 - 8.0 * 0.5)), rel=1e-6)


def test_customer_surplus_does_not_overflow() -> None:
    # a - b p / L = 1000: log(1 + e^1000) = 1000 (no overflow to inf)
    got = float(customer_surplus(0.0, 1.0, 1000.0, 1.0))
    assert got == pytest.approx(1000.0, rel=1e-12)


def test_default_objective_is_profit() -> None:
    p0 = optimal_logit_price(600.0, 1000.0, 6.0, 8.0)
    p1 = optimal_logit_price(600.0, 1000.0, 6.0, 8.0, objective=Objective())
    p2 = optimal_logit_price(600.0, 1000.0, 6.0, 8.0, objective=Objective(profit=3.0))
    assert float(p0) == float(p1)
    assert float(p2) == pytest.approx(float(p0), rel=1e-12)  # the scale does not matter


@pytest.mark.parametrize(
    ("c", "L", "a", "b", "weights"),
    [
        (0.0, 1.0, 0.0, 1.0, (1.0, 0.0, 0.0)),
        (600.0, 1000.0, 6.0, 8.0, (1.0, 0.0, 0.0)),
        (600.0, 1000.0, 6.0, 8.0, (0.0, 1.0, 0.0)),
        (600.0, 1000.0, 6.0, 8.0, (1.0, 1.0, 0.0)),
        (600.0, 1000.0, 6.0, 8.0, (1.0, 0.0, 0.5)),
        (600.0, 1000.0, 6.0, 8.0, (1.0, 0.5, 1.2)),
        (100.0, 500.0, -3.0, 2.0, (2.0, 1.0, 0.3)),
        (50.0, 200.0, 10.0, 0.5, (0.2, 0.7, 0.8)),
        (10.0, 10_000.0, -10.0, 50.0, (1.0, 0.0, 0.9)),
        (1500.0, 1000.0, 5.0, 20.0, (1.0, 2.0, 0.1)),
        (0.0, 2000.0, 3.0, 6.0, (0.0, 1.0, 0.5)),
    ],
)
def test_objective_closed_form_matches_brute_force(
    c: float, L: float, a: float, b: float, weights: tuple[float, float, float]
) -> None:
    w = Objective(*weights)
    p_star = float(optimal_logit_price(c, L, a, b, objective=w))
    assert math.isfinite(p_star)
    p_grid, best, step = _grid_argmax(c, L, a, b, w, 400_001)
    assert abs(p_star - p_grid) <= 1e-3 * abs(p_star) + step
    assert float(_objective_value(p_star, c, L, a, b, w)) >= best - 1e-12 * abs(best)


def test_pure_revenue_ignores_cost() -> None:
    w = Objective(profit=0.0, revenue=1.0)
    p = optimal_logit_price(np.array([0.0, 300.0, 900.0]), 1000.0, 4.0, 8.0, objective=w)
    assert np.allclose(p, p[0], rtol=1e-12)


def test_surplus_weight_lowers_the_price() -> None:
    prices = [
        float(optimal_logit_price(300.0, 1000.0, 4.0, 8.0, objective=Objective(surplus=s)))
        for s in (0.0, 0.25, 0.5, 0.75, 0.95)
    ]
    assert all(x > y for x, y in zip(prices, prices[1:], strict=False))


@pytest.mark.parametrize("surplus", [1.0, 1.5, 10.0])
def test_surplus_at_or_above_profit_weight_gives_minus_infinity(surplus: float) -> None:
    p = optimal_logit_price(300.0, 1000.0, 4.0, 8.0, objective=Objective(surplus=surplus))
    assert float(p) == -math.inf


@settings(max_examples=80, deadline=None)
@given(
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    L=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
    w=objectives,
)
def test_objective_closed_form_matches_brute_force_property(
    a: float, b: float, L: int, cost_share: float, w: Objective
) -> None:
    c = L * cost_share
    p_star = float(optimal_logit_price(c, L, a, b, objective=w))
    assert math.isfinite(p_star)
    p_grid, best, step = _grid_argmax(c, L, a, b, w, 100_001)
    assert float(_objective_value(p_star, c, L, a, b, w)) >= best - 1e-12 * abs(best)
    assert abs(p_star - p_grid) <= 1e-3 * abs(p_star) + step


@settings(max_examples=80, deadline=None)
@given(
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    L=st.integers(1, 10**6),
    cost_share=st.floats(0.0, 2.0),
    w=objectives,
)
def test_objective_first_order_condition(
    a: float, b: float, L: int, cost_share: float, w: Objective
) -> None:
    # beta (p - K) (1 - sigma) = 1 - S / A
    c = L * cost_share
    beta = b / L
    K = w.profit * c / (w.profit + w.revenue)
    p = float(optimal_logit_price(c, L, a, b, objective=w))
    s = float(expit(a - beta * p))
    assert beta * (p - K) * (1.0 - s) == pytest.approx(w.theta, rel=1e-8)


# --------------------------------------------------------------------------------------------
# quote_prices with an objective
# --------------------------------------------------------------------------------------------


def test_quote_with_objective_without_endings_is_rounded_optimum() -> None:
    w = Objective(profit=1.0, revenue=0.5, surplus=0.4)
    q = quote_prices([1000], [300], [4.0], [8.0], WIDE, objective=w)
    p_star = float(optimal_logit_price(300.0, 1000.0, 4.0, 8.0, objective=w))
    assert 300 < p_star < 1000
    assert str(q.binding_rule[0]) == "optimum"
    assert int(q.price_minor[0]) == round(p_star)
    assert float(q.unconstrained_price[0]) == pytest.approx(p_star, rel=1e-12)


def test_quote_with_surplus_dominating_takes_lowest_allowed_price() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.3)  # endings in 9
    q = quote_prices(
        [1000, 1000], [100, 800], [4.0, 4.0], [8.0, 8.0], g, objective=Objective(surplus=2.0)
    )
    assert q.price_minor.tolist() == [709, 889]  # lowest prices ending in 9 above 700 and 880
    assert q.binding_rule.tolist() == ["max_discount", "margin_floor"]
    assert np.all(np.isneginf(q.unconstrained_price))


@settings(max_examples=60, deadline=None)
@given(
    rows=offers,
    w=objectives,
    m=st.floats(0.0, 1.0),
    d=st.floats(0.0, 1.0),
    ending=endings,
)
def test_quote_with_objective_obeys_guardrails_and_is_best_allowed(
    rows: list[tuple[int, float, float, float]],
    w: Objective,
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
) -> None:
    g = _guardrails(m, d, ending)
    L, c, a, b = _arrays(rows)
    q = quote_prices(L, c, a, b, g, objective=w)
    _assert_guardrails_hold(q, L, c, g)
    _assert_reported_consistent(q, L, c, a, b)
    bounds = price_bounds(L, c, g)
    for k in range(L.shape[0]):
        event(str(q.binding_rule[k]))
        if not bool(bounds.is_feasible[k]):
            continue
        lo, hi = int(bounds.lower[k]), int(bounds.upper[k])
        every = np.arange(lo, hi + 1)
        ok = np.array([_allowed(int(p), g) for p in every])
        if not ok.any():
            continue
        price = int(q.price_minor[k])
        assert _allowed(price, g)
        values = _objective_value(every[ok], c[k], L[k], a[k], b[k], w)
        best = float(values.max())
        got = float(_objective_value(price, c[k], L[k], a[k], b[k], w))
        assert got >= best - 1e-9 * abs(best) - 1e-12


# --------------------------------------------------------------------------------------------
# Discount budget
# --------------------------------------------------------------------------------------------


def test_budget_binding_on_interior_price() -> None:
    L = np.array([1000, 2000, 1500], dtype=np.int64)
    c = np.array([200, 500, 300], dtype=np.int64)
    a = np.array([4.0, 5.0, 3.0])
    b = np.array([8.0, 8.0, 8.0])
    free = quote_prices(L, c, a, b, WIDE)
    assert free.binding_rule.tolist() == ["optimum"] * 3
    assert free.budget_multiplier == 0.0
    budget = 0.5 * float(free.expected_discount_minor.sum())
    q = quote_prices(L, c, a, b, WIDE, discount_budget_minor=budget)
    assert float(q.expected_discount_minor.sum()) <= budget + 1e-6
    assert float(q.expected_discount_minor.sum()) >= 0.9 * budget  # not wasted
    assert q.budget_multiplier > 0.0
    assert set(q.binding_rule.tolist()) == {"discount_budget"}
    assert np.all(q.price_minor > free.price_minor)  # a budget raises prices
    assert np.all(q.price_minor < L)  # still interior
    assert float(q.expected_profit_minor.sum()) <= float(free.expected_profit_minor.sum())
    # unconstrained_price is reported before the budget
    assert np.array_equal(q.unconstrained_price, free.unconstrained_price)


def test_zero_budget_gives_list_prices() -> None:
    g = Guardrails()  # endings in 9; list totals do not end in 9
    L = np.array([1000, 2000, 1500], dtype=np.int64)
    c = np.array([200, 500, 300], dtype=np.int64)
    q = quote_prices(L, c, [4.0, 5.0, 3.0], 8.0, g, discount_budget_minor=0.0)
    assert q.price_minor.tolist() == L.tolist()
    assert float(q.expected_discount_minor.sum()) == 0.0
    assert q.budget_multiplier > 0.0


def test_budget_that_does_not_bind_changes_nothing() -> None:
    L = np.array([1000, 2000], dtype=np.int64)
    c = np.array([200, 500], dtype=np.int64)
    free = quote_prices(L, c, [4.0, 5.0], 8.0, Guardrails())
    q = quote_prices(L, c, [4.0, 5.0], 8.0, Guardrails(), discount_budget_minor=1e9)
    assert q.budget_multiplier == 0.0
    assert q.price_minor.tolist() == free.price_minor.tolist()
    assert q.binding_rule.tolist() == free.binding_rule.tolist()


@pytest.mark.parametrize("bad", [-1.0, -1e-9, math.nan])
def test_negative_budget_raises(bad: float) -> None:
    with pytest.raises(ValueError):
        quote_prices([1000], [200], [4.0], [8.0], Guardrails(), discount_budget_minor=bad)


def _same_quotes(x: PriceQuotes, y: PriceQuotes) -> None:
    assert x.price_minor.tolist() == y.price_minor.tolist()
    assert x.binding_rule.tolist() == y.binding_rule.tolist()
    assert x.is_feasible.tolist() == y.is_feasible.tolist()
    assert np.array_equal(x.p_accept, y.p_accept)
    assert np.array_equal(x.expected_profit_minor, y.expected_profit_minor)
    assert np.array_equal(x.expected_discount_minor, y.expected_discount_minor)


@settings(max_examples=80, deadline=None)
@given(
    rows=offers,
    w=objectives,
    m=st.floats(0.0, 1.0),
    d=st.floats(0.0, 1.0),
    ending=endings,
    share=st.one_of(st.just(0.0), st.floats(0.0, 1.5)),
)
def test_budget_is_never_exceeded(
    rows: list[tuple[int, float, float, float]],
    w: Objective,
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
    share: float,
) -> None:
    g = _guardrails(m, d, ending)
    L, c, a, b = _arrays(rows)
    free = quote_prices(L, c, a, b, g, objective=w)
    free_spend = float(free.expected_discount_minor.sum())
    budget = share * free_spend
    q = quote_prices(L, c, a, b, g, objective=w, discount_budget_minor=budget)
    spend = float(q.expected_discount_minor.sum())
    assert spend <= budget + 1e-6
    assert np.all(q.expected_discount_minor >= 0.0)
    _assert_guardrails_hold(q, L, c, g)
    _assert_reported_consistent(q, L, c, a, b)
    if free_spend <= budget:
        event("budget does not bind")
        assert q.budget_multiplier == 0.0
        _same_quotes(q, free)
    else:
        event("budget binds")
        assert q.budget_multiplier > 0.0
        moved = q.price_minor != free.price_minor
        # an offer the budget moved off its free optimum says so
        assert all(
            str(r) == "discount_budget"
            for r, f in zip(q.binding_rule[moved], free.binding_rule[moved], strict=True)
            if str(f) == "optimum"
        )

    # The free quote maximizes each offer's objective over the prices with allowed endings, so
    # no budget can raise the total objective while it keeps to those endings (its fallback to
    # the list total may not).
    if not all(_allowed(int(p), g) for p in q.price_minor[q.is_feasible]):
        return

    def total(quotes: PriceQuotes) -> float:
        return sum(
            float(_objective_value(quotes.price_minor[k], c[k], L[k], a[k], b[k], w))
            for k in range(L.shape[0])
            if bool(quotes.is_feasible[k])
        )

    assert total(q) <= total(free) + 1e-9 * abs(total(free)) + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    rows=offers,
    m=st.floats(0.0, 0.5),
    d=st.floats(0.0, 1.0),
    ending=endings,
    shares=st.tuples(st.floats(0.0, 1.2), st.floats(0.0, 1.2)),
)
def test_tighter_budget_never_spends_more(
    rows: list[tuple[int, float, float, float]],
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
    shares: tuple[float, float],
) -> None:
    g = _guardrails(m, d, ending)
    L, c, a, b = _arrays(rows)
    free_spend = float(quote_prices(L, c, a, b, g).expected_discount_minor.sum())
    tight, loose = sorted(shares)
    q_tight = quote_prices(L, c, a, b, g, discount_budget_minor=tight * free_spend)
    q_loose = quote_prices(L, c, a, b, g, discount_budget_minor=loose * free_spend)
    spend_tight = float(q_tight.expected_discount_minor.sum())
    spend_loose = float(q_loose.expected_discount_minor.sum())
    assert spend_tight <= spend_loose + 1e-9 * max(1.0, spend_loose)
    assert q_tight.budget_multiplier >= q_loose.budget_multiplier or (
        q_tight.budget_multiplier == 0.0 and q_loose.budget_multiplier == 0.0
    )


def test_budget_ignores_infeasible_rows() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.5, **NO_ENDINGS)
    L = np.array([1000, 1000], dtype=np.int64)
    c = np.array([200, 950], dtype=np.int64)  # the second cannot be offered
    q = quote_prices(L, c, [3.0, 3.0], 8.0, g, discount_budget_minor=10.0)
    assert q.binding_rule.tolist()[1] == "infeasible"
    assert float(q.expected_discount_minor[1]) == 0.0
    assert float(q.expected_discount_minor.sum()) <= 10.0 + 1e-6


# --------------------------------------------------------------------------------------------
# Fairness band
# --------------------------------------------------------------------------------------------

# One bundle (list total, cost) per key, several customers (a, b) per bundle.
bundles = st.lists(st.tuples(st.integers(100, 20_000), st.floats(0.0, 1.2)), min_size=1, max_size=3)
customers = st.lists(
    st.tuples(st.integers(0, 2), st.floats(-6.0, 10.0), st.floats(0.5, 30.0)),
    min_size=1,
    max_size=8,
)


def _fair_batch(
    bundle_rows: list[tuple[int, float]], customer_rows: list[tuple[int, float, float]]
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, list[str]]:
    keys, L_, c_, a_, b_ = [], [], [], [], []
    for j, a, b in customer_rows:
        j %= len(bundle_rows)
        L, share = bundle_rows[j]
        keys.append(f"bundle-{j}")
        L_.append(L)
        c_.append(int(L * share))
        a_.append(a)
        b_.append(b)
    return (
        np.array(L_, dtype=np.int64),
        np.array(c_, dtype=np.int64),
        np.array(a_, dtype=np.float64),
        np.array(b_, dtype=np.float64),
        keys,
    )


def _max_ratio_per_key(q: PriceQuotes, keys: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in set(keys):
        rows = [k for k, kk in enumerate(keys) if kk == key and bool(q.is_feasible[k])]
        if rows:
            prices = q.price_minor[rows].astype(np.float64)
            out[key] = float(prices.max() / prices.min())
    return out


def test_fairness_band_narrows_prices() -> None:
    L = np.full(4, 1000, dtype=np.int64)
    c = np.full(4, 100, dtype=np.int64)
    a = np.array([1.0, 3.0, 6.0, 9.0])
    free = quote_prices(L, c, a, 8.0, WIDE)
    assert float(free.price_minor.max() / free.price_minor.min()) > 1.5
    keys = ["x"] * 4
    q = quote_prices(L, c, a, 8.0, WIDE, bundle_keys=keys, fairness_band=0.1)
    assert float(q.price_minor.max() / q.price_minor.min()) <= 1.1 + 1e-12
    assert "fairness_band" in q.binding_rule.tolist()
    _assert_guardrails_hold(q, L, c, WIDE)


def test_fairness_band_zero_one_price_odd_group() -> None:
    L = np.full(3, 1000, dtype=np.int64)
    c = np.full(3, 100, dtype=np.int64)
    q = quote_prices(
        L, c, [2.0, 4.0, 6.0], 8.0, Guardrails(), bundle_keys=["x"] * 3, fairness_band=0.0
    )
    assert len(set(q.price_minor.tolist())) == 1
    _assert_guardrails_hold(q, L, c, Guardrails())


def test_fairness_band_zero_one_price_even_group() -> None:
    L = np.full(2, 1000, dtype=np.int64)
    c = np.full(2, 100, dtype=np.int64)
    q = quote_prices(L, c, [2.0, 6.0], 8.0, WIDE, bundle_keys=["x", "x"], fairness_band=0.0)
    assert len(set(q.price_minor.tolist())) == 1, q.price_minor.tolist()


def test_fairness_band_window_without_a_whole_minor_unit() -> None:
    L = np.full(3, 100, dtype=np.int64)
    c = np.zeros(3, dtype=np.int64)
    q = quote_prices(
        L,
        c,
        [0.0, 0.0, 0.0],
        [1.0, 5.0, 5.0],
        WIDE,
        objective=Objective(profit=0.0, revenue=1.0),
        bundle_keys=["x"] * 3,
        fairness_band=0.03125,
    )
    ratio = float(q.price_minor.max() / q.price_minor.min())
    assert ratio <= 1.03125 + 1e-12, q.price_minor.tolist()


def test_fairness_band_keys_are_independent() -> None:
    L = np.array([1000, 1000, 3000, 3000], dtype=np.int64)
    c = np.array([100, 100, 600, 600], dtype=np.int64)
    a = np.array([2.0, 6.0, 2.0, 2.5])
    keys = ["x", "x", "y", "y"]
    q = quote_prices(L, c, a, 8.0, WIDE, bundle_keys=keys, fairness_band=0.2)
    for ratio in _max_ratio_per_key(q, keys).values():
        assert ratio <= 1.2 + 1e-12
    # a wide band leaves the free prices alone
    free = quote_prices(L, c, a, 8.0, WIDE)
    wide = quote_prices(L, c, a, 8.0, WIDE, bundle_keys=keys, fairness_band=100.0)
    _same_quotes(wide, free)


def test_fairness_band_needs_bundle_keys() -> None:
    with pytest.raises(ValueError):
        quote_prices([1000, 1000], [100, 100], [2.0, 6.0], 8.0, WIDE, fairness_band=0.1)
    with pytest.raises(ValueError):
        quote_prices(
            [1000, 1000], [100, 100], [2.0, 6.0], 8.0, WIDE, bundle_keys=["x"], fairness_band=0.1
        )


@pytest.mark.parametrize("bad", [-0.1, -1e-12, math.nan])
def test_fairness_band_rejects_negative_band(bad: float) -> None:
    with pytest.raises(ValueError):
        quote_prices(
            [1000, 1000],
            [100, 100],
            [2.0, 6.0],
            8.0,
            WIDE,
            bundle_keys=["x", "x"],
            fairness_band=bad,
        )


# Prices of at least 100 minor units and bands of at least 5%: every band window holds a whole
# minor unit (narrower windows are tested below).
wide_window_bundles = st.lists(
    st.tuples(st.integers(2_000, 20_000), st.floats(0.0, 1.2)), min_size=1, max_size=3
)
wide_window_customers = st.lists(
    st.tuples(st.integers(0, 2), st.floats(-6.0, 10.0), st.floats(0.5, 10.0)),
    min_size=1,
    max_size=8,
)
mild_objectives = (
    st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.floats(0.0, 0.5))
    .filter(lambda t: t[0] + t[1] > 0.01)
    .map(lambda t: Objective(t[0], t[1], t[2] * (t[0] + t[1])))
)


@settings(max_examples=80, deadline=None)
@given(
    bundle_rows=wide_window_bundles,
    customer_rows=wide_window_customers,
    band=st.floats(0.05, 1.0),
    m=st.floats(0.0, 0.5),
    d=st.floats(0.0, 1.0),
    ending=endings,
    w=mild_objectives,
)
def test_fairness_band_property(
    bundle_rows: list[tuple[int, float]],
    customer_rows: list[tuple[int, float, float]],
    band: float,
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
    w: Objective,
) -> None:
    g = _guardrails(m, d, ending)
    L, c, a, b, keys = _fair_batch(bundle_rows, customer_rows)
    q = quote_prices(L, c, a, b, g, objective=w, bundle_keys=keys, fairness_band=band)
    _assert_guardrails_hold(q, L, c, g)
    _assert_reported_consistent(q, L, c, a, b)
    for ratio in _max_ratio_per_key(q, keys).values():
        assert ratio <= (1.0 + band) * (1.0 + 1e-12)


@settings(max_examples=80, deadline=None)
@given(
    bundle_rows=bundles,
    customer_rows=customers,
    band=st.one_of(st.just(0.0), st.floats(0.0, 1e-4)),
)
@example(bundle_rows=[(1000, 0.1)], customer_rows=[(0, 2.0, 8.0), (0, 6.0, 8.0)], band=0.0)
def test_fairness_band_property_tiny_band(
    bundle_rows: list[tuple[int, float]],
    customer_rows: list[tuple[int, float, float]],
    band: float,
) -> None:
    L, c, a, b, keys = _fair_batch(bundle_rows, customer_rows)
    q = quote_prices(L, c, a, b, WIDE, bundle_keys=keys, fairness_band=band)
    _assert_guardrails_hold(q, L, c, WIDE)
    for ratio in _max_ratio_per_key(q, keys).values():
        assert ratio <= (1.0 + band) * (1.0 + 1e-12)


def test_budget_with_fairness_band_is_never_exceeded() -> None:
    L = np.full(2, 1000, dtype=np.int64)
    c = np.full(2, 100, dtype=np.int64)
    q = quote_prices(
        L,
        c,
        [2.0, 12.0],
        8.0,
        WIDE,
        bundle_keys=["x", "x"],
        fairness_band=0.01,
        discount_budget_minor=0.0,
    )
    assert float(q.expected_discount_minor.sum()) <= 1e-6, q.price_minor.tolist()


# --------------------------------------------------------------------------------------------
# Segment-only mode
# --------------------------------------------------------------------------------------------


def test_segments_need_bundle_keys_and_matching_lengths() -> None:
    with pytest.raises(ValueError):
        quote_prices([1000, 1000], [100, 100], [2.0, 6.0], 8.0, WIDE, segments=["s", "s"])
    with pytest.raises(ValueError):
        quote_prices(
            [1000, 1000], [100, 100], [2.0, 6.0], 8.0, WIDE, segments=["s"], bundle_keys=["x", "x"]
        )


def _segment_brute_force(
    rows: list[int], L: int, c: int, a: FloatArray, b: FloatArray, g: Guardrails, w: Objective
) -> tuple[FloatArray, FloatArray]:
    bounds = price_bounds([L], [c], g)
    grid = allowed_prices(int(bounds.lower[0]), int(bounds.upper[0]), g).astype(np.float64)
    total = np.zeros_like(grid)
    for k in rows:
        total += _objective_value(grid, c, L, float(a[k]), float(b[k]), w)
    return grid, total


def test_segment_price_small_known_case() -> None:
    g = Guardrails(min_margin=0.1, max_discount=0.3)
    L = np.full(4, 1000, dtype=np.int64)
    c = np.full(4, 300, dtype=np.int64)
    a = np.array([3.0, 5.0, 7.0, 4.0])
    b = np.full(4, 8.0)
    seg = ["s1", "s1", "s2", "s2"]
    keys = ["x"] * 4
    q = quote_prices(L, c, a, b, g, segments=seg, bundle_keys=keys)
    assert q.price_minor[0] == q.price_minor[1]
    assert q.price_minor[2] == q.price_minor[3]
    for rows in ([0, 1], [2, 3]):
        grid, total = _segment_brute_force(rows, 1000, 300, a, b, g, Objective())
        assert float(q.price_minor[rows[0]]) == grid[int(np.argmax(total))]
    assert set(q.binding_rule.tolist()) <= {"segment_price", "list_total_cap", "max_discount"}
    _assert_guardrails_hold(q, L, c, g)


@settings(max_examples=60, deadline=None)
@given(
    bundle_rows=st.lists(
        st.tuples(st.integers(50, 5_000), st.floats(0.0, 1.2)), min_size=1, max_size=3
    ),
    customer_rows=st.lists(
        st.tuples(
            st.integers(0, 2), st.integers(0, 2), st.floats(-6.0, 10.0), st.floats(0.5, 30.0)
        ),
        min_size=1,
        max_size=8,
    ),
    m=st.floats(0.0, 0.5),
    d=st.floats(0.0, 1.0),
    ending=endings,
    w=objectives,
)
def test_segment_prices_are_one_per_pair_and_optimal(
    bundle_rows: list[tuple[int, float]],
    customer_rows: list[tuple[int, int, float, float]],
    m: float,
    d: float,
    ending: tuple[int, tuple[int, ...]],
    w: Objective,
) -> None:
    g = _guardrails(m, d, ending)
    L, c, a, b, keys = _fair_batch(bundle_rows, [(j, x, y) for _, j, x, y in customer_rows])
    seg = [f"seg-{s}" for s, _, _, _ in customer_rows]
    q = quote_prices(L, c, a, b, g, objective=w, segments=seg, bundle_keys=keys)
    _assert_guardrails_hold(q, L, c, g)
    _assert_reported_consistent(q, L, c, a, b)
    pairs: dict[tuple[str, str], list[int]] = {}
    for k, pair in enumerate(zip(seg, keys, strict=True)):
        pairs.setdefault(pair, []).append(k)
    for rows in pairs.values():
        assert len({int(q.price_minor[k]) for k in rows}) == 1
        if not bool(q.is_feasible[rows[0]]):
            continue
        k0 = rows[0]
        grid, total = _segment_brute_force(rows, int(L[k0]), int(c[k0]), a, b, g, w)
        best = float(total.max())
        chosen = float(
            sum(_objective_value(q.price_minor[k], c[k], L[k], a[k], b[k], w) for k in rows)
        )
        assert chosen >= best - 1e-9 * abs(best) - 1e-12
        assert float(q.price_minor[k0]) in set(grid.tolist())
        event(f"segment of {len(rows)}")
    for rule in q.binding_rule.tolist():
        assert rule != "optimum"


# --------------------------------------------------------------------------------------------
# allowed_prices and best_price_on_grid
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "upper", "mod", "residues", "want"),
    [
        (700, 740, 10, (9,), [709, 719, 729, 739]),
        (700, 705, 1, (0,), [700, 701, 702, 703, 704, 705]),
        (700, 760, 25, (0, 24), [700, 724, 725, 749, 750]),
        (701, 708, 10, (9,), [701, 708]),  # no allowed ending: the bounds
        (709, 709, 10, (9,), [709]),
        (705, 705, 10, (9,), [705]),
        (0, 30, 10, (0, 5), [0, 5, 10, 15, 20, 25, 30]),
        (995, 1000, 100, (99,), [999]),
    ],
)
def test_allowed_prices_known_answers(
    lower: int, upper: int, mod: int, residues: tuple[int, ...], want: list[int]
) -> None:
    g = Guardrails(ending_modulus=mod, ending_residues=residues)
    got = allowed_prices(lower, upper, g)
    assert got.dtype == np.int64
    assert got.tolist() == want


@settings(max_examples=80, deadline=None)
@given(lower=st.integers(0, 5000), width=st.integers(0, 500), ending=endings)
def test_allowed_prices_property(
    lower: int, width: int, ending: tuple[int, tuple[int, ...]]
) -> None:
    g = _guardrails(0.1, 0.3, ending)
    upper = lower + width
    want = [p for p in range(lower, upper + 1) if _allowed(p, g)]
    got = allowed_prices(lower, upper, g).tolist()
    assert got == (want if want else sorted({lower, upper}))


def test_best_price_on_grid_quadratic() -> None:
    got = best_price_on_grid(lambda p: -((p - 815.0) ** 2), [700], [1000], Guardrails())
    assert got.tolist() == [819]
    got = best_price_on_grid(
        lambda p: -((p - 815.0) ** 2), [700], [1000], Guardrails(**NO_ENDINGS), n_grid=301
    )
    assert got.tolist() == [815]  # the grid holds every integer


def test_best_price_on_grid_rows_are_independent() -> None:
    targets = np.array([[720.0], [950.0], [1200.0]])
    got = best_price_on_grid(
        lambda p: -((p - targets) ** 2), [700, 700, 700], [1000, 1000, 1000], Guardrails()
    )
    assert got.dtype == np.int64
    assert got.tolist() == [719, 949, 999]  # the last one is held at the top allowed ending


@pytest.mark.parametrize(
    ("c", "scale", "lower", "upper", "mod", "residues"),
    [
        (300.0, 400.0, 500, 1500, 10, (9,)),
        (0.0, 250.0, 100, 2000, 1, (0,)),
        (1000.0, 50.0, 1010, 1400, 5, (0, 4)),
        (200.0, 5000.0, 300, 900, 10, (9,)),  # optimum above the top: the top allowed price
        (50.0, 10.0, 500, 900, 100, (99,)),  # optimum below the bottom
    ],
)
def test_best_price_on_grid_exponential_demand(
    c: float, scale: float, lower: int, upper: int, mod: int, residues: tuple[int, ...]
) -> None:
    # expected profit (p - c) exp(-p / scale) peaks at c + scale
    g = Guardrails(ending_modulus=mod, ending_residues=residues)

    def value(p: FloatArray) -> FloatArray:
        return np.asarray((p - c) * np.exp(-p / scale), dtype=np.float64)

    n_grid = 64
    got = int(best_price_on_grid(value, [lower], [upper], g, n_grid=n_grid)[0])
    assert lower <= got <= upper
    assert _allowed(got, g)
    every = allowed_prices(lower, upper, g)
    vals = value(every.astype(np.float64))
    brute = int(every[int(np.argmax(vals))])
    step = (upper - lower) / (n_grid - 1)
    assert abs(got - brute) <= step + mod
    # and the value lost is at most what one grid step (plus one ending) can cost
    v_got = float(value(np.array([float(got)]))[0])
    near = every[np.abs(every - brute) <= step + mod]
    assert v_got >= float(value(near.astype(np.float64)).min()) - 1e-12


def test_best_price_on_grid_logit_matches_quote() -> None:
    # for the logit the grid search lands within one grid step of the closed form's quote
    g = Guardrails()
    L, c, a, b = 1000, 600, 6.0, 8.0
    q = quote_prices([L], [c], [a], [b], g)
    bounds = price_bounds([L], [c], g)

    def value(p: FloatArray) -> FloatArray:
        return np.asarray((p - c) * expit(a - b * p / L), dtype=np.float64)

    got = best_price_on_grid(value, bounds.lower, bounds.upper, g, n_grid=64)
    step = (int(bounds.upper[0]) - int(bounds.lower[0])) / 63
    assert abs(int(got[0]) - int(q.price_minor[0])) <= step + g.ending_modulus


# --------------------------------------------------------------------------------------------
# Infeasible rows under every mode
# --------------------------------------------------------------------------------------------


MODES: list[dict[str, Any]] = [
    {},
    {"objective": Objective(profit=1.0, revenue=1.0, surplus=0.5)},
    {"objective": Objective(profit=1.0, surplus=3.0)},
    {"discount_budget_minor": 0.0},
    {"discount_budget_minor": 50.0},
    {"discount_budget_minor": 1e9},
    {"fairness_band": 0.1, "bundle_keys": ["x", "x", "y", "y"]},
    {"fairness_band": 0.0, "bundle_keys": ["x", "x", "x", "y"]},
    {"segments": ["s", "s", "t", "s"], "bundle_keys": ["x", "x", "x", "y"]},
    {
        "segments": ["s", "s", "s", "s"],
        "bundle_keys": ["x", "x", "y", "y"],
        "fairness_band": 0.2,
        "discount_budget_minor": 20.0,
        "objective": Objective(revenue=1.0, surplus=0.2),
    },
]


MODE_IDS = [
    "profit",
    "blend",
    "surplus-dominates",
    "budget-0",
    "budget-50",
    "budget-slack",
    "band",
    "band-0",
    "segments",
    "everything",
]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_infeasible_rows_under_every_mode(mode: dict[str, Any]) -> None:
    g = Guardrails(min_margin=0.2, max_discount=0.3)
    # rows 2 and 3: cost * 1.2 > list total (row 2: 900 * 1.2 = 1080 > 1000; 3: 1700 > 1500)
    L = np.array([1000, 1000, 1000, 1500], dtype=np.int64)
    c = np.array([300, 300, 900, 1700], dtype=np.int64)
    a = np.array([3.0, 5.0, 4.0, 6.0])
    b = np.array([8.0, 8.0, 8.0, 8.0])
    if "bundle_keys" in mode and mode["bundle_keys"][2] == "x":
        c[2] = 300  # keep each bundle key on one (list total, cost); row 3 stays infeasible
    q = quote_prices(L, c, a, b, g, **mode)
    bounds = price_bounds(L, c, g)
    assert (~bounds.is_feasible).sum() >= 1
    for k in range(4):
        if bool(bounds.is_feasible[k]):
            assert int(q.price_minor[k]) > 0
            assert violated_rules(int(q.price_minor[k]), int(L[k]), int(c[k]), g) == []
        else:
            assert int(q.price_minor[k]) == -1
            assert str(q.binding_rule[k]) == "infeasible"
            assert float(q.p_accept[k]) == 0.0
            assert float(q.expected_profit_minor[k]) == 0.0
            assert float(q.expected_discount_minor[k]) == 0.0
            assert not bool(q.is_feasible[k])


@settings(max_examples=50, deadline=None)
@given(
    L=st.integers(1, 10_000),
    excess=st.integers(1, 10_000),
    m=st.floats(0.0, 1.0),
    a=st.floats(-10.0, 10.0),
    b=st.floats(0.1, 50.0),
    mode=st.sampled_from(["plain", "objective", "budget", "fair", "segment", "all"]),
)
def test_infeasible_property(L: int, excess: int, m: float, a: float, b: float, mode: str) -> None:
    g = Guardrails(min_margin=m, max_discount=0.3)
    # cost above list / (1 + m) by a margin: cost * (1 + m) > list total
    c = math.ceil(L / (1.0 + m)) + excess
    assume(c * (1.0 + m) > L + 1e-6)
    modes: dict[str, dict[str, Any]] = {
        "plain": {},
        "objective": {"objective": Objective(revenue=1.0, surplus=0.5)},
        "budget": {"discount_budget_minor": 0.0},
        "fair": {"fairness_band": 0.1, "bundle_keys": ["x", "x"]},
        "segment": {"segments": ["s", "s"], "bundle_keys": ["x", "x"]},
        "all": {
            "objective": Objective(profit=1.0, surplus=0.2),
            "discount_budget_minor": 5.0,
            "fairness_band": 0.0,
            "segments": ["s", "s"],
            "bundle_keys": ["x", "x"],
        },
    }
    kw = modes[mode]
    q = quote_prices([L, L], [c, c], [a, a + 1.0], [b, b], g, **kw)
    assert q.price_minor.tolist() == [-1, -1]
    assert q.binding_rule.tolist() == ["infeasible", "infeasible"]
    assert q.p_accept.tolist() == [0.0, 0.0]
    assert q.expected_profit_minor.tolist() == [0.0, 0.0]
    assert q.expected_discount_minor.tolist() == [0.0, 0.0]
    assert q.is_feasible.tolist() == [False, False]
