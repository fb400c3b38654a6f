"""Guard-railed optimal bundle prices: objectives, a discount budget, a fairness band, segments.

For cost :math:`c` and the logit response of :mod:`bundlewise.pricing.response` with
:math:`\\beta = b / L`, expected profit :math:`\\pi(p) = (p - c)\\,\\sigma(a - \\beta p)` is
unimodal and its maximizer has the closed form

.. math::

    p^* = c + \\frac{1 + W\\!\\left(e^{a - \\beta c - 1}\\right)}{\\beta}

with :math:`W` the principal branch of the Lambert W function (computed as the Wright omega
function :math:`\\omega(z) = W(e^z)`, which does not overflow).

**Objectives.** A weighted blend of profit, revenue and expected customer surplus
:math:`CS(p) = \\log(1 + e^{a - \\beta p}) / \\beta` (the logit's log-sum) has the form
:math:`J(p) = A\\,(p - K)\\,\\sigma(a - \\beta p) + S\\,CS(p)` with
:math:`A = w_\\pi + w_r`, :math:`K = w_\\pi c / A` and :math:`S = w_s`. Its first-order condition
:math:`\\beta (p - K)(1 - \\sigma) = \\theta := 1 - S / A` gives

.. math::

    p^* = K + \\frac{\\theta + \\omega(a - \\beta K - \\theta + \\ln \\theta)}{\\beta},

again unimodal (the left side increases in :math:`p`), so clipping to the guardrail interval is
exact. With :math:`\\theta \\le 0` the objective falls with price and the lowest allowed price wins.

**Discount budget.** Maximizing :math:`\\sum_k J_k(p_k)` subject to an expected discount spend
:math:`\\sum_k \\sigma_k (L_k - p_k) \\le B` has the Lagrangian per offer
:math:`J_k - \\mu \\sigma_k (L_k - p_k) = (A + \\mu)(p - K_\\mu)\\sigma + S\\,CS` with
:math:`K_\\mu = (A K + \\mu L) / (A + \\mu)`: the same closed form. The spend falls as
:math:`\\mu` grows, so :math:`\\mu` is found by bisection; the budget is never exceeded.

**Fairness band.** For one bundle, the prices quoted to different customers stay inside a window
``[t / (1 + band), t]``, so the highest is at most ``1 + band`` times the lowest; ``t`` is chosen
(on a grid) to maximize the summed objective when each customer gets their optimum clipped to the
window, which is each customer's best price inside it. Protected attributes are never inputs.

**Segment-only mode.** All customers of a segment get one price per bundle, the allowed price that
maximizes the segment's summed objective (exact search over the allowed prices).

Every quote records the rule that set it; all rounding to money goes through
:func:`bundlewise.money.round_minor_units`.

References
----------
Li & Huh (2011), "Pricing multiple products with the multinomial logit and nested logit models:
concavity and implications", M&SOM 13(4) (Lambert W form of the optimal logit price).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit, wrightomega

from bundlewise.config import PricingConfig
from bundlewise.exceptions import ConfigError
from bundlewise.money import round_minor_units
from bundlewise.pricing.guardrails import (
    DISCOUNT_BUDGET,
    FAIRNESS_BAND,
    INFEASIBLE,
    LIST_TOTAL_CAP,
    OPTIMUM,
    SEGMENT_PRICE,
    Guardrails,
    ending_candidates,
    price_bounds,
)
from bundlewise.pricing.response import acceptance_probability

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Objective:
    """Weights of the pricing objective: profit, revenue and expected customer surplus.

    The default maximizes expected profit. ``surplus`` must stay below ``profit + revenue``
    for an interior optimum; otherwise the lowest allowed price wins.

    Examples
    --------
    >>> Objective(profit=1.0, surplus=0.5).theta
    0.5
    """

    profit: float = 1.0
    revenue: float = 0.0
    surplus: float = 0.0

    def __post_init__(self) -> None:
        for name in ("profit", "revenue", "surplus"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"objective weight `{name}`={value} must be finite and >= 0.")
        if self.profit + self.revenue <= 0:
            raise ConfigError("objective weights `profit` + `revenue` must be > 0.")

    @classmethod
    def from_config(cls, config: PricingConfig) -> Objective:
        """The objective weights of a :class:`~bundlewise.config.PricingConfig`."""
        return cls(config.objective_profit, config.objective_revenue, config.objective_surplus)

    @property
    def theta(self) -> float:
        """:math:`1 - S / A`, the first-order condition's right-hand side."""
        return 1.0 - self.surplus / (self.profit + self.revenue)


def customer_surplus(
    price: npt.ArrayLike, list_total: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> FloatArray:
    """Expected customer surplus of the logit, :math:`\\log(1 + e^{a - b p / L}) L / b`.

    Examples
    --------
    >>> round(float(customer_surplus(1000, 1000, 8.0, 8.0)), 3)  # log(2) * 1000 / 8
    86.643
    """
    L = np.asarray(list_total, dtype=np.float64)
    beta = np.asarray(b, dtype=np.float64) / L
    u = np.asarray(a, dtype=np.float64) - beta * np.asarray(price, dtype=np.float64)
    return np.asarray(np.logaddexp(0.0, u) / beta, dtype=np.float64)


def _argmax(K: FloatArray, A: FloatArray, S: FloatArray, a: FloatArray, beta: FloatArray) -> Any:
    theta = 1.0 - S / A
    safe = np.where(theta > 0, theta, 1.0)
    omega = np.real(wrightomega(a - beta * K - safe + np.log(safe)))
    return np.where(theta > 0, K + (safe + omega) / beta, -np.inf)


def _value(
    p: FloatArray, K: FloatArray, A: FloatArray, S: FloatArray, a: FloatArray, beta: FloatArray
) -> Any:
    u = a - beta * p
    return A * (p - K) * expit(u) + S * np.logaddexp(0.0, u) / beta


def optimal_logit_price(
    cost: npt.ArrayLike,
    list_total: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    objective: Objective | None = None,
) -> FloatArray:
    """Unconstrained optimal price (same units as ``cost`` and ``list_total``).

    Examples
    --------
    >>> round(float(optimal_logit_price(0.0, 1.0, 0.0, 1.0)), 6)  # 1 + W(1/e)
    1.278465
    """
    obj = objective or Objective()
    c = np.asarray(cost, dtype=np.float64)
    L = np.asarray(list_total, dtype=np.float64)
    beta = np.asarray(b, dtype=np.float64) / L
    A = np.full(np.broadcast(c, beta).shape, obj.profit + obj.revenue)
    K = obj.profit * c / A
    S = np.full(A.shape, obj.surplus)
    return np.asarray(_argmax(K, A, S, np.asarray(a, dtype=np.float64), beta), dtype=np.float64)


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
        ``optimum``, ``list_total_cap``, ``max_discount``, ``margin_floor``, ``fairness_band``,
        ``discount_budget``, ``segment_price`` or ``infeasible``.
    unconstrained_price
        :math:`p^*` before guardrails (and before the budget), in minor units (float).
    is_feasible
        Whether any price satisfies the guardrails.
    expected_discount_minor
        ``(list_total - price) * p_accept``: the expected spend on the discount.
    budget_multiplier
        The Lagrange multiplier :math:`\\mu` of the discount budget (0 when it does not bind).
    """

    price_minor: npt.NDArray[np.int64]
    p_accept: FloatArray
    expected_profit_minor: FloatArray
    binding_rule: npt.NDArray[np.str_]
    unconstrained_price: FloatArray
    is_feasible: npt.NDArray[np.bool_]
    expected_discount_minor: FloatArray
    budget_multiplier: float = 0.0


def _snap(
    target: FloatArray,
    lower: npt.NDArray[np.int64],
    upper: npt.NDArray[np.int64],
    value: Callable[[FloatArray], FloatArray],
    guardrails: Guardrails,
) -> npt.NDArray[np.int64]:
    """Best of the two nearest allowed endings in ``[lower, upper]`` (or the rounded target)."""
    clipped = np.clip(target, lower, np.maximum(lower, upper))
    down, up = ending_candidates(clipped, lower, upper, guardrails)
    exact = np.clip(round_minor_units(clipped), lower, upper)
    v_down = np.where(down >= 0, value(down.astype(np.float64)), -np.inf)
    v_up = np.where(up >= 0, value(up.astype(np.float64)), -np.inf)
    return np.where((down < 0) & (up < 0), exact, np.where(v_up > v_down, up, down)).astype(
        np.int64
    )


def _fairness_window(
    keys: Sequence[Any],
    lower: npt.NDArray[np.int64],
    upper: npt.NDArray[np.int64],
    p_star: FloatArray,
    value: Callable[[FloatArray, npt.NDArray[np.int64]], FloatArray],
    band: float,
    n_candidates: int = 41,
) -> tuple[FloatArray, FloatArray]:
    """Per bundle, the window ``[t / (1 + band), t]`` that maximizes the summed objective when
    each customer gets their optimum clipped to it (searched over ``n_candidates`` tops ``t``)."""
    groups: dict[Any, list[int]] = {}
    for k, key in enumerate(keys):
        groups.setdefault(key, []).append(k)
    lo = np.empty(len(keys))
    hi = np.empty(len(keys))
    for rows_list in groups.values():
        rows = np.asarray(rows_list)
        g_lo, g_hi = float(lower[rows].min()), float(upper[rows].max())
        # A window narrower than the band is never better than the full-width one it lies in.
        tops = np.linspace(min(g_lo * (1.0 + band), g_hi), g_hi, n_candidates)
        w_lo = np.maximum(tops / (1.0 + band), g_lo)
        clipped = np.clip(p_star[rows][:, None], w_lo[None, :], tops[None, :])
        clipped = np.clip(clipped, lower[rows][:, None], upper[rows][:, None])
        best = int(np.argmax(value(clipped, rows).sum(axis=0)))
        lo[rows] = tops[best] / (1.0 + band)
        hi[rows] = tops[best]
    return lo, hi


def quote_prices(
    list_total_minor: npt.ArrayLike,
    cost_minor: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    guardrails: Guardrails,
    *,
    objective: Objective | None = None,
    bundle_keys: Sequence[Any] | None = None,
    fairness_band: float | None = None,
    discount_budget_minor: float | None = None,
    segments: Sequence[Any] | None = None,
    opportunity_cost_minor: npt.ArrayLike | None = None,
) -> PriceQuotes:
    """Optimal, guard-railed prices for a batch of offers.

    Parameters
    ----------
    list_total_minor
        Array of shape (n_offers,): sum of the items' list prices, minor units.
    cost_minor
        Array of shape (n_offers,): bundle unit cost, minor units.
    a, b
        Logit appeal and price sensitivity, shape (n_offers,) or scalars.
    guardrails
        The per-offer rules in force (margin floor, discount cap, list-total cap, endings).
    objective
        Weights of profit, revenue and customer surplus (default: profit).
    bundle_keys
        One hashable key per offer naming its bundle (e.g. the sorted item ids); needed by
        ``fairness_band`` and ``segments``.
    fairness_band
        When given, one bundle's prices across customers differ by at most this factor
        (highest <= (1 + band) * lowest).
    discount_budget_minor
        When given, the expected discount spend ``sum(p_accept * (list_total - price))`` over the
        batch stays at or below it.
    segments
        When given, one price per (segment, bundle): no individual prices.
    opportunity_cost_minor
        Profit the store makes anyway when an offer is declined (e.g. the items bought at list
        price), shape (n_offers,) or scalar. It is added to the cost in the objective, so the
        price maximizes ``(p - cost - opportunity) * P(accept)``; the guardrails and the reported
        ``expected_profit_minor`` use the cost alone.

    Returns
    -------
    PriceQuotes
        One quote per offer; infeasible offers are marked, never priced.

    Raises
    ------
    ValueError
        On mismatched lengths, a missing ``bundle_keys``, or a negative budget or band.

    Examples
    --------
    >>> q = quote_prices([1000], [600], [6.0], [8.0], Guardrails())
    >>> int(q.price_minor[0]), str(q.binding_rule[0])
    (809, 'optimum')
    """
    obj = objective or Objective()
    L = np.atleast_1d(np.asarray(list_total_minor, dtype=np.int64))
    c = np.atleast_1d(np.asarray(cost_minor, dtype=np.int64))
    n = L.shape[0]
    if c.shape != (n,):
        raise ValueError(f"cost_minor has shape {c.shape}, expected ({n},).")
    a_ = np.broadcast_to(np.asarray(a, dtype=np.float64), (n,))
    b_ = np.broadcast_to(np.asarray(b, dtype=np.float64), (n,))
    if (fairness_band is not None or segments is not None) and (
        bundle_keys is None or len(bundle_keys) != n
    ):
        raise ValueError("fairness_band and segments need one bundle key per offer.")
    if fairness_band is not None and not fairness_band >= 0:
        raise ValueError(f"fairness_band must be >= 0, got {fairness_band}.")
    if discount_budget_minor is not None and not discount_budget_minor >= 0:
        raise ValueError(f"discount_budget_minor must be >= 0, got {discount_budget_minor}.")
    if segments is not None and len(segments) != n:
        raise ValueError(f"segments has {len(segments)} entries, expected {n}.")

    bounds = price_bounds(L, c, guardrails)
    feasible = bounds.is_feasible
    Lf = L.astype(np.float64)
    Ls = np.where(Lf > 0, Lf, 1.0)
    beta = b_ / Ls
    A0 = np.full(n, obj.profit + obj.revenue)
    opportunity = (
        np.zeros(n)
        if opportunity_cost_minor is None
        else np.broadcast_to(np.asarray(opportunity_cost_minor, dtype=np.float64), (n,))
    )
    K0 = obj.profit * (c + opportunity) / A0
    S = np.full(n, obj.surplus)
    lower = bounds.lower.copy()
    upper = np.maximum(bounds.upper, bounds.lower)
    p_star = _argmax(K0, A0, S, a_, beta).astype(np.float64)

    # The guardrail that sets each price: judged on the unconstrained optimum.
    rule = np.where(
        p_star > bounds.upper,
        LIST_TOTAL_CAP,
        np.where(p_star < bounds.lower, bounds.lower_rule, OPTIMUM),
    ).astype(object)
    if fairness_band is not None and bundle_keys is not None and n:
        keys = [
            bk if f else (None, k)
            for k, (bk, f) in enumerate(zip(bundle_keys, feasible, strict=True))
        ]
        w_lo, w_hi = _fairness_window(
            keys,
            lower,
            upper,
            p_star,
            lambda p, rows: _value(
                p, K0[rows, None], A0[rows, None], S[rows, None], a_[rows, None], beta[rows, None]
            ),
            fairness_band,
        )
        new_lo = np.maximum(lower, np.ceil(np.round(w_lo, 6)).astype(np.int64))
        new_hi = np.minimum(upper, np.floor(np.round(w_hi, 6)).astype(np.int64))
        empty = new_lo > new_hi  # windows too narrow to hold a whole minor unit
        mid = np.clip(round_minor_units(np.sqrt(w_lo * w_hi)), lower, upper)  # the median
        new_lo = np.where(empty, mid, new_lo)
        new_hi = np.where(empty, mid, new_hi)
        by_band = ((p_star < new_lo) & (new_lo > lower)) | ((p_star > new_hi) & (new_hi < upper))
        rule = np.where(by_band, FAIRNESS_BAND, rule)
        lower, upper = new_lo, new_hi

    def solve(mu: float) -> tuple[npt.NDArray[np.int64], FloatArray]:
        A = A0 + mu
        K = (A0 * K0 + mu * Lf) / A
        if segments is not None and bundle_keys is not None:
            price = _segment_prices(
                list(zip(segments, bundle_keys, strict=True)),
                lower,
                upper,
                K,
                A,
                S,
                a_,
                beta,
                guardrails,
            )
        else:
            target = _argmax(K, A, S, a_, beta)
            price = _snap(target, lower, upper, lambda p: _value(p, K, A, S, a_, beta), guardrails)
        spend = np.where(feasible, (Lf - price) * expit(a_ - beta * price), 0.0)
        return price, spend

    mu = 0.0
    price, spend = solve(0.0)
    price_free = price
    if discount_budget_minor is not None and spend.sum() > discount_budget_minor:
        hi_mu = 1.0
        while solve(hi_mu)[1].sum() > discount_budget_minor and hi_mu < 1e9:
            hi_mu *= 4.0
        lo_mu = 0.0
        for _ in range(60):
            mid_mu = 0.5 * (lo_mu + hi_mu)
            if solve(mid_mu)[1].sum() > discount_budget_minor:
                lo_mu = mid_mu
            else:
                hi_mu = mid_mu
        mu = hi_mu
        price, spend = solve(mu)
        if spend.sum() > discount_budget_minor:  # endings keep a discount: fall back to list
            price = np.where(feasible, bounds.upper, price)
            spend = np.where(feasible, (Lf - price) * expit(a_ - beta * price), 0.0)

    if mu > 0:
        rule = np.where((rule == OPTIMUM) & (price != price_free), DISCOUNT_BUDGET, rule)
    if segments is not None:
        rule = np.where(rule == OPTIMUM, SEGMENT_PRICE, rule)

    p_accept = np.where(feasible, acceptance_probability(price, Ls, a_, b_), 0.0)
    expected = np.where(feasible, (price - c) * p_accept, 0.0)
    return PriceQuotes(
        price_minor=np.where(feasible, price, -1).astype(np.int64),
        p_accept=p_accept.astype(np.float64),
        expected_profit_minor=expected.astype(np.float64),
        binding_rule=np.where(feasible, rule, INFEASIBLE).astype(np.str_),
        unconstrained_price=p_star,
        is_feasible=feasible,
        expected_discount_minor=np.where(feasible, spend, 0.0).astype(np.float64),
        budget_multiplier=float(mu),
    )


def allowed_prices(lower: int, upper: int, guardrails: Guardrails) -> npt.NDArray[np.int64]:
    """Every price in ``[lower, upper]`` with an allowed ending (the bounds when none has one).

    Examples
    --------
    >>> allowed_prices(700, 740, Guardrails()).tolist()
    [709, 719, 729, 739]
    """
    modulus = guardrails.ending_modulus
    start = (lower // modulus) * modulus
    base = np.arange(start, upper + 1, modulus, dtype=np.int64)
    cands = (base[:, None] + np.array(guardrails.ending_residues, dtype=np.int64)[None, :]).ravel()
    cands = np.unique(cands[(cands >= lower) & (cands <= upper)])
    if cands.size == 0:
        return np.unique(np.array([lower, upper], dtype=np.int64))
    return cands


def _segment_prices(
    keys: list[tuple[Any, Any]],
    lower: npt.NDArray[np.int64],
    upper: npt.NDArray[np.int64],
    K: FloatArray,
    A: FloatArray,
    S: FloatArray,
    a: FloatArray,
    beta: FloatArray,
    guardrails: Guardrails,
) -> npt.NDArray[np.int64]:
    groups: dict[tuple[Any, Any], list[int]] = {}
    for k, key in enumerate(keys):
        groups.setdefault(key, []).append(k)
    price = np.empty(len(keys), dtype=np.int64)
    for rows_list in groups.values():
        rows = np.asarray(rows_list)
        lo = int(lower[rows].max())
        hi = int(upper[rows].min())
        if lo > hi:  # members disagree on the interval (different costs): price each alone
            lo, hi = int(lower[rows].min()), int(upper[rows].max())
        grid = allowed_prices(lo, hi, guardrails).astype(np.float64)
        values = _value(
            grid[None, :],
            K[rows, None],
            A[rows, None],
            S[rows, None],
            a[rows, None],
            beta[rows, None],
        ).sum(axis=0)
        price[rows] = np.clip(int(grid[int(np.argmax(values))]), lower[rows], upper[rows])
    return price


def best_price_on_grid(
    value: Callable[[FloatArray], FloatArray],
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    guardrails: Guardrails,
    n_grid: int = 64,
) -> npt.NDArray[np.int64]:
    """Numerical optimum for any response curve: the best allowed price on a grid per offer.

    ``value(prices)`` takes an array of shape (n_offers, n_grid) and returns the objective there.
    The grid holds ``n_grid`` allowed prices spread evenly over each ``[lower, upper]``.

    Examples
    --------
    >>> best_price_on_grid(lambda p: -(p - 815.0) ** 2, [700], [1000], Guardrails()).tolist()
    [819]
    """
    lo = np.atleast_1d(np.asarray(lower, dtype=np.int64))
    hi = np.atleast_1d(np.asarray(upper, dtype=np.int64))
    t = np.linspace(0.0, 1.0, n_grid)
    raw = lo[:, None] + t[None, :] * (hi - lo)[:, None]
    down, up = ending_candidates(
        raw.ravel(), np.repeat(lo, n_grid), np.repeat(hi, n_grid), guardrails
    )
    snapped = np.where(up >= 0, up, np.where(down >= 0, down, np.round(raw.ravel()))).reshape(
        raw.shape
    )
    values = value(snapped.astype(np.float64))
    best: npt.NDArray[np.int64] = snapped[np.arange(lo.shape[0]), np.argmax(values, axis=1)]
    return best.astype(np.int64)


__all__ = [
    "Objective",
    "PriceQuotes",
    "allowed_prices",
    "best_price_on_grid",
    "customer_surplus",
    "optimal_logit_price",
    "quote_prices",
]
