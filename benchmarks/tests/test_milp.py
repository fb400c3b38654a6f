from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlewise_bench.market import Menu, choose
from bundlewise_bench.milp import mixed_bundling_milp

PAIR = [(0,), (1,), (0, 1)]
#: Slack on surplus ties: the MILP's prices carry solver noise (big-M, feasibility tolerances).
TIE = 1e-4


def seller_profit(values: np.ndarray, prices: np.ndarray, costs: np.ndarray) -> float:
    """Total profit when each shopper buys an option of highest surplus (or nothing) and, among
    options tied within ``TIE``, the one the seller prefers (the MILP's convention)."""
    v = np.asarray(values, dtype=np.float64)
    p = np.broadcast_to(np.asarray(prices, dtype=np.float64), v.shape[-1:])
    surplus = np.concatenate([np.zeros((v.shape[0], 1)), v - p[None, :]], axis=1)
    margin = np.concatenate([[0.0], p - costs])
    best = surplus.max(axis=1, keepdims=True)
    tied = surplus >= best - TIE
    return float(np.where(tied, margin[None, :], -np.inf).max(axis=1).sum())


def brute_force_pair(values: np.ndarray, costs: np.ndarray) -> tuple[float, np.ndarray]:
    """Best profit over all prices (P_0, P_1, P_01) in [0, big]^3 with P_01 <= P_0 + P_1.

    With seller-favourable tie-breaking the profit is linear on each cell of the arrangement of
    the indifference planes (``P_S = v_cS``, ``P_S - P_T = v_cS - v_cT``) cut by the box and the
    subadditivity plane, and the best point of a cell's closure is one of its vertices: every
    vertex, the intersection of three independent planes, is tried.
    """
    n, m = values.shape
    big = float(max(values.max(), 0.0)) + 1.0
    eye = np.eye(m)
    planes: set[tuple[tuple[float, ...], float]] = set()
    for s in range(m):
        planes.add((tuple(eye[s]), 0.0))
        planes.add((tuple(eye[s]), big))
        for c in range(n):
            planes.add((tuple(eye[s]), float(values[c, s])))
    for s, t in itertools.combinations(range(m), 2):
        for c in range(n):
            planes.add((tuple(eye[s] - eye[t]), float(values[c, s] - values[c, t])))
    planes.add(((-1.0, -1.0, 1.0), 0.0))  # P_01 = P_0 + P_1
    normals = np.array([a for a, _ in planes])
    rhs = np.array([b for _, b in planes])
    triples = np.array(list(itertools.combinations(range(len(planes)), m)))
    mats = normals[triples]
    ok = np.abs(np.linalg.det(mats)) > 1e-9
    points = np.linalg.solve(mats[ok], rhs[triples[ok]][..., None])[..., 0]
    inside = (
        (points >= -1e-9).all(axis=1)
        & (points <= big + 1e-9).all(axis=1)
        & (points[:, 2] <= points[:, 0] + points[:, 1] + 1e-9)
    )
    best, best_p = -np.inf, np.full(m, big)
    for p in points[inside]:
        profit = seller_profit(values, p, costs)
        if profit > best:
            best, best_p = profit, p
    return best, best_p


def component_profit_grid(values: np.ndarray, costs: np.ndarray, step: float = 0.5) -> float:
    """Best profit of component pricing (P_01 = P_0 + P_1) over a grid of item prices; with
    integer values every vertex of the indifference lines lies on the half-integer grid."""
    grid = np.arange(0.0, values.max() + 1.0 + step, step)
    return max(seller_profit(values, np.array([a, b, a + b]), costs) for a in grid for b in grid)


def test_docstring_example() -> None:
    v = np.array([[8.0, 2.0, 10.0], [2.0, 8.0, 10.0]])
    prices = mixed_bundling_milp(v, np.zeros(3), PAIR)
    assert prices.shape == (3,)
    assert prices.round(3).tolist() == [8.0, 8.0, 10.0]
    # Both shoppers pay their full value for the bundle.
    assert seller_profit(v, prices, np.zeros(3)) == pytest.approx(20.0, abs=1e-6)


@pytest.mark.parametrize(
    ("v", "costs", "expected"),
    [
        # One shopper: the best option net of cost is the bundle, 15 - 3.
        ([5.0, 7.0, 15.0], [1.0, 2.0, 3.0], 12.0),
        # ... or an item, when the bundle costs too much.
        ([9.0, 2.0, 11.0], [1.0, 1.0, 6.0], 8.0),
        # A shopper who values nothing above its cost buys nothing.
        ([1.0, 2.0, 3.0], [2.0, 3.0, 5.0], 0.0),
    ],
)
def test_one_shopper_pays_full_value_of_best_option(
    v: list[float], costs: list[float], expected: float
) -> None:
    values = np.array([v])
    prices = mixed_bundling_milp(values, np.array(costs), PAIR)
    assert seller_profit(values, prices, np.array(costs)) == pytest.approx(expected, abs=1e-5)
    if expected > 0:
        best = int(np.argmax(values[0] - np.array(costs)))
        assert prices[best] == pytest.approx(v[best], abs=1e-5)


def test_negatively_correlated_values_mixed_beats_component_and_pure() -> None:
    # Two single-item fans and one shopper who wants both: perfect extraction is 7 + 6 + 7.
    values = np.array([[10.0, 1.0, 11.0], [6.0, 6.0, 12.0], [1.0, 10.0, 11.0]])
    costs = np.array([3.0, 3.0, 6.0])
    prices = mixed_bundling_milp(values, costs, PAIR)
    mixed = seller_profit(values, prices, costs)
    assert mixed == pytest.approx(20.0, abs=1e-5)
    component = component_profit_grid(values, costs)
    assert component == pytest.approx(14.0)
    pure = max(seller_profit(values, np.array([np.inf, np.inf, p]), costs) for p in values[:, 2])
    assert pure == pytest.approx(15.0)
    assert mixed > component and mixed > pure
    assert prices[2] <= prices[0] + prices[1] + 1e-6


def test_milp_prices_evaluated_with_choose() -> None:
    # ``choose`` breaks ties towards nothing (then the lower option); prices a hair lower make
    # every intended purchase strict.
    values = np.array([[10.0, 1.0, 11.0], [6.0, 6.0, 12.0], [1.0, 10.0, 11.0]])
    costs = np.array([3.0, 3.0, 6.0])
    prices = mixed_bundling_milp(values, costs, PAIR)
    at_prices = choose(values, Menu(prices), costs).profit.sum()
    lowered = choose(values, Menu(prices - 1e-6), costs)
    assert float(lowered.profit.sum()) == pytest.approx(20.0, abs=1e-4)
    assert float(at_prices) <= 20.0 + 1e-9
    assert lowered.choice.tolist() == [1, 3, 2]


def test_three_items_with_all_subsets() -> None:
    subsets = [s for r in (1, 2, 3) for s in itertools.combinations(range(3), r)]
    # Each shopper is the only one with a positive value for one option.
    values = np.zeros((3, len(subsets)))
    values[0, subsets.index((0,))] = 5.0
    values[1, subsets.index((1, 2))] = 9.0
    values[2, subsets.index((0, 1, 2))] = 12.0
    prices = mixed_bundling_milp(values, np.zeros(len(subsets)), subsets)
    assert prices.shape == (len(subsets),)
    assert seller_profit(values, prices, np.zeros(len(subsets))) == pytest.approx(26.0, abs=1e-5)
    index = {s: i for i, s in enumerate(subsets)}
    for s in subsets:
        for r in range(1, len(s)):
            for part in itertools.combinations(s, r):
                rest = tuple(x for x in s if x not in part)
                assert prices[index[s]] <= prices[index[part]] + prices[index[rest]] + 1e-6


def test_no_shoppers_with_positive_value_gives_no_profit() -> None:
    values = np.zeros((2, 3))
    prices = mixed_bundling_milp(values, np.ones(3), PAIR)
    assert np.isfinite(prices).all()
    assert seller_profit(values, prices, np.ones(3)) == pytest.approx(0.0, abs=1e-9)


@st.composite
def pair_instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 4))
    values = np.array(
        [[draw(st.integers(0, 10)) for _ in range(3)] for _ in range(n)], dtype=np.float64
    )
    c0, c1 = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    return values, np.array([c0, c1, c0 + c1], dtype=np.float64)


def test_brute_force_helper_on_known_instance() -> None:
    values = np.array([[10.0, 1.0, 11.0], [6.0, 6.0, 12.0], [1.0, 10.0, 11.0]])
    best, _ = brute_force_pair(values, np.array([3.0, 3.0, 6.0]))
    assert best == pytest.approx(20.0)


@settings(max_examples=30, deadline=None)
@given(instance=pair_instances())
def test_milp_matches_brute_force(instance: tuple[np.ndarray, np.ndarray]) -> None:
    values, costs = instance
    prices = mixed_bundling_milp(values, costs, PAIR)
    assert prices.shape == (3,)
    assert (prices >= -1e-9).all()
    assert prices[2] <= prices[0] + prices[1] + 1e-6
    got = seller_profit(values, prices, costs)
    best, _ = brute_force_pair(values, costs)
    assert got == pytest.approx(best, abs=1e-3)
    # No shopper is made to pay more than they value their purchase (profit <= extraction).
    extraction = np.maximum((values - costs).max(axis=1), 0.0).sum()
    assert got <= extraction + 1e-3
