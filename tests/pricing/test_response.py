from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlewise.pricing.response import (
    acceptance_at_list_from_score,
    acceptance_probability,
    intercept_for_acceptance,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize(
    ("price", "list_total", "a", "b"),
    [(1000, 1000, 8.0, 8.0), (700, 1000, 2.0, 8.0), (50, 200, -1.0, 3.0), (1, 1, 0.0, 0.5)],
)
def test_acceptance_probability_matches_logistic_formula(
    price: float, list_total: float, a: float, b: float
) -> None:
    got = float(acceptance_probability(price, list_total, a, b))
    assert got == pytest.approx(_sigmoid(a - b * price / list_total), rel=1e-12)


def test_acceptance_at_list_with_a_equal_b_is_one_half() -> None:
    assert float(acceptance_probability(1000, 1000, 8.0, 8.0)) == 0.5


def test_acceptance_probability_is_vectorized_and_decreasing_in_price() -> None:
    prices = np.arange(0, 2001, 50)
    p = acceptance_probability(prices, 1000, 3.0, 8.0)
    assert p.shape == prices.shape
    assert np.all(np.diff(p) < 0)
    assert np.all((p > 0) & (p < 1))
    # broadcasting over a and b as arrays
    p2 = acceptance_probability([500, 500], [1000, 1000], [1.0, 2.0], [4.0, 4.0])
    assert p2[1] > p2[0]


def test_more_sensitive_customers_accept_less_at_positive_price() -> None:
    low = float(acceptance_probability(800, 1000, 5.0, 4.0))
    high = float(acceptance_probability(800, 1000, 5.0, 8.0))
    assert high < low


@settings(max_examples=150, deadline=None)
@given(
    q=st.floats(1e-6, 1 - 1e-6),
    b=st.floats(0.1, 50.0),
    list_total=st.integers(1, 10**6),
)
def test_intercept_for_acceptance_round_trip(q: float, b: float, list_total: int) -> None:
    a = intercept_for_acceptance(q, b)
    back = float(acceptance_probability(list_total, list_total, a, b))
    assert back == pytest.approx(q, rel=1e-9, abs=1e-12)
    # and a is exactly logit(q) + b
    assert float(a) == pytest.approx(math.log(q / (1 - q)) + b, rel=1e-9, abs=1e-9)


def test_intercept_for_acceptance_vectorized() -> None:
    qs = np.array([0.01, 0.1, 0.5])
    a = intercept_for_acceptance(qs, 8.0)
    assert a.shape == (3,)
    assert float(a[2]) == pytest.approx(8.0, abs=1e-12)
    assert np.allclose(acceptance_probability(1000, 1000, a, 8.0), qs, rtol=1e-12)


def test_acceptance_at_list_from_score_endpoints_and_log_linear() -> None:
    got = acceptance_at_list_from_score([0.0, 0.5, 1.0], 0.01, 0.09)
    assert got.tolist() == pytest.approx([0.01, 0.03, 0.09], rel=1e-12)
    # geometric interpolation: log is linear in the quantile
    qs = np.linspace(0, 1, 11)
    logs = np.log(acceptance_at_list_from_score(qs, 0.02, 0.2))
    assert np.allclose(np.diff(logs), np.diff(logs)[0], rtol=1e-9)


def test_acceptance_at_list_from_score_clips_quantile() -> None:
    got = acceptance_at_list_from_score([-3.0, 7.0], 0.01, 0.1)
    assert got.tolist() == pytest.approx([0.01, 0.1], rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    qs=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=10),
    low=st.floats(1e-6, 0.5),
    ratio=st.floats(1.0, 100.0),
)
def test_acceptance_at_list_from_score_monotone_and_bounded(
    qs: list[float], low: float, ratio: float
) -> None:
    high = min(low * ratio, 0.999)
    order = np.argsort(qs, kind="stable")
    vals = acceptance_at_list_from_score(np.asarray(qs)[order], low, high)
    assert np.all(np.diff(vals) >= -1e-15)
    assert np.all(vals >= low * (1 - 1e-12))
    assert np.all(vals <= high * (1 + 1e-12))
