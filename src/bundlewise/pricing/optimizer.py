"""Profit-maximizing bundle prices inside the guardrails.

For cost :math:`c` and the logit response of :mod:`bundlewise.pricing.response` with
:math:`\\beta = b / L`, expected profit :math:`\\pi(p) = (p - c)\\,\\sigma(a - \\beta p)` is
unimodal and its maximizer has the closed form

.. math::

    p^* = c + \\frac{1 + W\\!\\left(e^{a - \\beta c - 1}\\right)}{\\beta}

with :math:`W` the principal branch of the Lambert W function (computed as the Wright omega
function :math:`\\omega(z) = W(e^z)`, which does not overflow). Because :math:`\\pi` is unimodal,
clipping :math:`p^*` to the guardrail interval gives the constrained optimum; the rule that
clipped it is recorded. The price is then moved to the better of the two nearest allowed endings
inside the interval. All rounding to money goes through :func:`bundlewise.money.to_minor_units`
(:func:`~bundlewise.money.round_minor_units`).

References
----------
Li & Huh (2011), "Pricing multiple products with the multinomial logit and nested logit models:
concavity and implications", M&SOM 13(4) (Lambert W form of the optimal logit price).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import wrightomega

from bundlewise.money import round_minor_units
from bundlewise.pricing.guardrails import (
    LIST_TOTAL_CAP,
    OPTIMUM,
    Guardrails,
    ending_candidates,
    price_bounds,
)
from bundlewise.pricing.response import acceptance_probability


def optimal_logit_price(
    cost: npt.ArrayLike, list_total: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Unconstrained profit-maximizing price (same units as ``cost`` and ``list_total``).

    Examples
    --------
    >>> round(float(optimal_logit_price(0.0, 1.0, 0.0, 1.0)), 6)  # 1 + W(1/e)
    1.278465
    """
    c = np.asarray(cost, dtype=np.float64)
    beta = np.asarray(b, dtype=np.float64) / np.asarray(list_total, dtype=np.float64)
    z = np.asarray(a, dtype=np.float64) - beta * c - 1.0
    omega = np.real(wrightomega(z))
    return np.asarray(c + (1.0 + omega) / beta, dtype=np.float64)


@dataclass(frozen=True)
class PriceQuotes:
    """Prices for a batch of bundles (arrays of equal length).

    Attributes
    ----------
    price_minor
        Offered price in minor units; -1 where infeasible.
    p_accept
        Acceptance probability at that price (0 where infeasible).
    expected_profit_minor
        ``(price - cost) * p_accept`` in minor units (0 where infeasible).
    binding_rule
        ``optimum``, ``list_total_cap``, ``max_discount``, ``margin_floor``, or ``infeasible``.
    unconstrained_price
        :math:`p^*` before guardrails, in minor units (float).
    is_feasible
        Whether any price satisfies the guardrails.
    """

    price_minor: npt.NDArray[np.int64]
    p_accept: npt.NDArray[np.float64]
    expected_profit_minor: npt.NDArray[np.float64]
    binding_rule: npt.NDArray[np.str_]
    unconstrained_price: npt.NDArray[np.float64]
    is_feasible: npt.NDArray[np.bool_]


def quote_prices(
    list_total_minor: npt.ArrayLike,
    cost_minor: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    guardrails: Guardrails,
) -> PriceQuotes:
    """Profit-maximizing, guard-railed prices for a batch of bundles.

    Parameters
    ----------
    list_total_minor
        Array of shape (n_bundles,): sum of the items' list prices, minor units.
    cost_minor
        Array of shape (n_bundles,): bundle unit cost, minor units.
    a, b
        Logit appeal and price sensitivity, shape (n_bundles,) or scalars.
    guardrails
        The rules in force.

    Returns
    -------
    PriceQuotes
        One quote per bundle; infeasible bundles are marked, never priced.

    Examples
    --------
    >>> q = quote_prices([1000], [600], [6.0], [8.0], Guardrails())
    >>> int(q.price_minor[0]), str(q.binding_rule[0])
    (809, 'optimum')
    """
    L = np.atleast_1d(np.asarray(list_total_minor, dtype=np.int64))
    c = np.atleast_1d(np.asarray(cost_minor, dtype=np.int64))
    n = L.shape[0]
    a_ = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))
    b_ = np.broadcast_to(np.asarray(b, dtype=np.float64), (n,))
    bounds = price_bounds(L, c, guardrails)
    p_star = optimal_logit_price(c, L, a_, b_)
    lo = bounds.lower.astype(np.float64)
    hi = bounds.upper.astype(np.float64)
    clipped = np.clip(p_star, lo, np.maximum(lo, hi))
    rule = np.where(
        p_star > hi, LIST_TOTAL_CAP, np.where(p_star < lo, bounds.lower_rule, OPTIMUM)
    ).astype(np.str_)

    def profit(price: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return (price - c) * acceptance_probability(price, L, a_, b_)

    down, up = ending_candidates(clipped, bounds.lower, bounds.upper, guardrails)
    # Without an allowed ending inside the interval, round the clipped price to money.
    exact = np.clip(round_minor_units(clipped), bounds.lower, bounds.upper)
    profit_down = np.where(down >= 0, profit(down.astype(np.float64)), -np.inf)
    profit_up = np.where(up >= 0, profit(up.astype(np.float64)), -np.inf)
    price = np.where(
        (down < 0) & (up < 0), exact, np.where(profit_up > profit_down, up, down)
    ).astype(np.int64)

    feasible = bounds.is_feasible
    p_accept = np.where(feasible, acceptance_probability(price, L, a_, b_), 0.0)
    expected = np.where(feasible, (price - c) * p_accept, 0.0)
    return PriceQuotes(
        price_minor=np.where(feasible, price, -1).astype(np.int64),
        p_accept=p_accept.astype(np.float64),
        expected_profit_minor=expected.astype(np.float64),
        binding_rule=np.where(feasible, rule, "infeasible").astype(np.str_),
        unconstrained_price=p_star,
        is_feasible=feasible,
    )


__all__ = ["PriceQuotes", "optimal_logit_price", "quote_prices"]
