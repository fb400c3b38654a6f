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
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class BatchState:
    """The batch-coupled decisions of one pricing run, solved once and stored.

    With these, the price of any single offer is a deterministic function of that offer alone
    (:func:`apply_prices`), so a later quote reproduces the batch's price to the minor unit.

    Attributes
    ----------
    budget_multiplier
        :math:`\\mu` of the discount budget (0 when it does not bind).
    budget_at_list
        The budget could not be met with any :math:`\\mu` (endings keep a discount): every
        offer is at its list total.
    windows
        Per bundle key, the fairness window ``(low, high)`` in minor units (floats).
    segment_prices
        Per ``(segment, bundle key)``, the segment's price at ``budget_multiplier``.
    segment_prices_free
        The same at :math:`\\mu = 0` (tells the budget's effect apart).
    """

    budget_multiplier: float = 0.0
    budget_at_list: bool = False
    windows: dict[Any, tuple[float, float]] = field(default_factory=dict)
    segment_prices: dict[tuple[Any, Any], int] = field(default_factory=dict)
    segment_prices_free: dict[tuple[Any, Any], int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Prepared:
    n: int
    L: npt.NDArray[np.int64]
    c: npt.NDArray[np.int64]
    Lf: FloatArray
    Ls: FloatArray
    a: FloatArray
    b: FloatArray
    beta: FloatArray
    A0: FloatArray
    K0: FloatArray
    S: FloatArray
    bounds: Any
    p_star: FloatArray
    rule: npt.NDArray[Any]


def _prepare(
    list_total_minor: npt.ArrayLike,
    cost_minor: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    guardrails: Guardrails,
    objective: Objective,
    bundle_keys: Sequence[Any] | None,
    fairness_band: float | None,
    discount_budget_minor: float | None,
    segments: Sequence[Any] | None,
    opportunity_cost_minor: npt.ArrayLike | None,
) -> _Prepared:
    obj = objective
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
    p_star = _argmax(K0, A0, S, a_, beta).astype(np.float64)
    # The guardrail that sets each price: judged on the unconstrained optimum.
    rule = np.where(
        p_star > bounds.upper,
        LIST_TOTAL_CAP,
        np.where(p_star < bounds.lower, bounds.lower_rule, OPTIMUM),
    ).astype(object)
    return _Prepared(n, L, c, Lf, Ls, a_, b_, beta, A0, K0, S, bounds, p_star, rule)


def _windowed_bounds(
    pr: _Prepared, w_lo: FloatArray, w_hi: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The guardrail interval narrowed to the fairness windows; and where the band binds."""
    lower = pr.bounds.lower
    upper = np.maximum(pr.bounds.upper, pr.bounds.lower)
    new_lo = np.maximum(lower, np.ceil(np.round(w_lo, 6)).astype(np.int64))
    new_hi = np.minimum(upper, np.floor(np.round(w_hi, 6)).astype(np.int64))
    empty = new_lo > new_hi  # windows too narrow to hold a whole minor unit
    mid = np.clip(round_minor_units(np.sqrt(w_lo * w_hi)), lower, upper)  # the median
    new_lo = np.where(empty, mid, new_lo)
    new_hi = np.where(empty, mid, new_hi)
    p_star = pr.p_star
    by_band = ((p_star < new_lo) & (new_lo > lower)) | ((p_star > new_hi) & (new_hi < upper))
    return new_lo, new_hi, by_band


def _window_value(pr: _Prepared) -> Callable[[FloatArray, npt.NDArray[np.int64]], FloatArray]:
    return lambda p, rows: _value(
        p,
        pr.K0[rows, None],
        pr.A0[rows, None],
        pr.S[rows, None],
        pr.a[rows, None],
        pr.beta[rows, None],
    )


def _solve_at(
    pr: _Prepared,
    mu: float,
    lower: npt.NDArray[np.int64],
    upper: npt.NDArray[np.int64],
    guardrails: Guardrails,
    segment_keys: list[tuple[Any, Any]] | None,
    stored: dict[tuple[Any, Any], int] | None,
) -> tuple[npt.NDArray[np.int64], FloatArray, dict[tuple[Any, Any], int]]:
    """Prices at multiplier ``mu``, their expected discount spend, and the segment prices used
    (taken from ``stored`` where it has the key, searched otherwise)."""
    A = pr.A0 + mu
    K = (pr.A0 * pr.K0 + mu * pr.Lf) / A
    group_prices: dict[tuple[Any, Any], int] = {}
    if segment_keys is not None:
        price = np.empty(pr.n, dtype=np.int64)
        groups: dict[tuple[Any, Any], list[int]] = {}
        for k, key in enumerate(segment_keys):
            groups.setdefault(key, []).append(k)
        for key, rows_list in groups.items():
            rows = np.asarray(rows_list)
            if stored is not None and key in stored:
                chosen = stored[key]
            elif stored is not None:  # not in the batch: each offer alone, never pooled
                for r in rows_list:
                    one = np.asarray([r])
                    alone = _segment_price(one, lower, upper, K, A, pr.S, pr.a, pr.beta, guardrails)
                    price[r] = np.clip(alone, lower[r], upper[r])
                continue
            else:
                chosen = _segment_price(rows, lower, upper, K, A, pr.S, pr.a, pr.beta, guardrails)
            group_prices[key] = chosen
            price[rows] = np.clip(chosen, lower[rows], upper[rows])
    else:
        target = _argmax(K, A, pr.S, pr.a, pr.beta)
        price = _snap(
            target, lower, upper, lambda p: _value(p, K, A, pr.S, pr.a, pr.beta), guardrails
        )
    spend = np.where(pr.bounds.is_feasible, (pr.Lf - price) * expit(pr.a - pr.beta * price), 0.0)
    return price, spend, group_prices


def _quotes(
    pr: _Prepared,
    price: npt.NDArray[np.int64],
    price_free: npt.NDArray[np.int64],
    rule: npt.NDArray[Any],
    mu: float,
    segmented: bool,
) -> PriceQuotes:
    feasible = pr.bounds.is_feasible
    if mu > 0:
        rule = np.where((rule == OPTIMUM) & (price != price_free), DISCOUNT_BUDGET, rule)
    if segmented:
        rule = np.where(rule == OPTIMUM, SEGMENT_PRICE, rule)
    spend = np.where(feasible, (pr.Lf - price) * expit(pr.a - pr.beta * price), 0.0)
    p_accept = np.where(feasible, acceptance_probability(price, pr.Ls, pr.a, pr.b), 0.0)
    expected = np.where(feasible, (price - pr.c) * p_accept, 0.0)
    return PriceQuotes(
        price_minor=np.where(feasible, price, -1).astype(np.int64),
        p_accept=p_accept.astype(np.float64),
        expected_profit_minor=expected.astype(np.float64),
        binding_rule=np.where(feasible, rule, INFEASIBLE).astype(np.str_),
        unconstrained_price=pr.p_star,
        is_feasible=feasible,
        expected_discount_minor=np.where(feasible, spend, 0.0).astype(np.float64),
        budget_multiplier=float(mu),
    )


def solve_batch(
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
) -> BatchState:
    """Solve the decisions that couple a batch of offers (see :func:`quote_prices`).

    Returns
    -------
    BatchState
        The discount budget's multiplier, the fairness window of every bundle and the segment
        prices; :func:`apply_prices` turns them into each offer's price.
    """
    pr = _prepare(
        list_total_minor, cost_minor, a, b, guardrails, objective or Objective(),
        bundle_keys, fairness_band, discount_budget_minor, segments, opportunity_cost_minor,
    )  # fmt: skip
    feasible = pr.bounds.is_feasible
    lower = pr.bounds.lower.copy()
    upper = np.maximum(pr.bounds.upper, pr.bounds.lower)
    windows: dict[Any, tuple[float, float]] = {}
    if fairness_band is not None and bundle_keys is not None and pr.n:
        keys = [
            bk if f else (None, k)
            for k, (bk, f) in enumerate(zip(bundle_keys, feasible, strict=True))
        ]
        w_lo, w_hi = _fairness_window(
            keys, lower, upper, pr.p_star, _window_value(pr), fairness_band
        )
        for k, (bk, f) in enumerate(zip(bundle_keys, feasible, strict=True)):
            if f:
                windows[bk] = (float(w_lo[k]), float(w_hi[k]))
        lower, upper, _ = _windowed_bounds(pr, w_lo, w_hi)
    segment_keys = (
        list(zip(segments, bundle_keys, strict=True))
        if segments is not None and bundle_keys is not None
        else None
    )

    def spend_at(mu: float) -> float:
        return float(_solve_at(pr, mu, lower, upper, guardrails, segment_keys, None)[1].sum())

    mu = 0.0
    at_list = False
    _, spend0, free_groups = _solve_at(pr, 0.0, lower, upper, guardrails, segment_keys, None)
    groups = free_groups
    if discount_budget_minor is not None and spend0.sum() > discount_budget_minor:
        hi_mu = 1.0
        while spend_at(hi_mu) > discount_budget_minor and hi_mu < 1e9:
            hi_mu *= 4.0
        lo_mu = 0.0
        for _ in range(60):
            mid_mu = 0.5 * (lo_mu + hi_mu)
            if spend_at(mid_mu) > discount_budget_minor:
                lo_mu = mid_mu
            else:
                hi_mu = mid_mu
        mu = hi_mu
        _, spend, groups = _solve_at(pr, mu, lower, upper, guardrails, segment_keys, None)
        at_list = bool(spend.sum() > discount_budget_minor)  # endings keep a discount
    return BatchState(
        budget_multiplier=float(mu),
        budget_at_list=at_list,
        windows=windows,
        segment_prices=groups if segment_keys is not None else {},
        segment_prices_free=free_groups if segment_keys is not None else {},
    )


def apply_prices(
    list_total_minor: npt.ArrayLike,
    cost_minor: npt.ArrayLike,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    guardrails: Guardrails,
    state: BatchState,
    *,
    objective: Objective | None = None,
    bundle_keys: Sequence[Any] | None = None,
    fairness_band: float | None = None,
    segments: Sequence[Any] | None = None,
    opportunity_cost_minor: npt.ArrayLike | None = None,
) -> PriceQuotes:
    """Each offer's price given the batch's decisions; row by row, so any subset (one offer
    included) gets the same prices as the whole batch.

    A bundle without a stored fairness window gets the window it would get alone (which holds
    its own optimum); a (segment, bundle) without a stored price gets the best allowed price for
    the offer alone; the budget's multiplier applies to every offer.
    """
    pr = _prepare(
        list_total_minor, cost_minor, a, b, guardrails, objective or Objective(),
        bundle_keys, fairness_band, None, segments, opportunity_cost_minor,
    )  # fmt: skip
    feasible = pr.bounds.is_feasible
    lower = pr.bounds.lower.copy()
    upper = np.maximum(pr.bounds.upper, pr.bounds.lower)
    rule = pr.rule
    if fairness_band is not None and bundle_keys is not None and pr.n:
        w_lo = np.empty(pr.n)
        w_hi = np.empty(pr.n)
        value = _window_value(pr)
        for k, key in enumerate(bundle_keys):
            window = state.windows.get(key) if feasible[k] else None
            if window is None:  # a bundle the batch did not have: the window it gets alone

                def alone(p: FloatArray, rows: npt.NDArray[np.int64], k: int = k) -> FloatArray:
                    return value(p, rows + k)

                lo1, hi1 = _fairness_window(
                    [0], lower[k : k + 1], upper[k : k + 1], pr.p_star[k : k + 1], alone,
                    fairness_band,
                )  # fmt: skip
                window = (float(lo1[0]), float(hi1[0]))
            w_lo[k], w_hi[k] = window
        lower, upper, by_band = _windowed_bounds(pr, w_lo, w_hi)
        rule = np.where(by_band, FAIRNESS_BAND, rule)
    segment_keys = (
        list(zip(segments, bundle_keys, strict=True))
        if segments is not None and bundle_keys is not None
        else None
    )
    mu = state.budget_multiplier
    price_free, _, _ = _solve_at(
        pr, 0.0, lower, upper, guardrails, segment_keys, state.segment_prices_free
    )
    if mu > 0:
        price, _, _ = _solve_at(
            pr, mu, lower, upper, guardrails, segment_keys, state.segment_prices
        )
    else:
        price = price_free
    if state.budget_at_list:
        price = np.where(feasible, pr.bounds.upper, price)
    return _quotes(pr, price, price_free, rule, mu, segments is not None)


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
    state = solve_batch(
        list_total_minor, cost_minor, a, b, guardrails, objective=objective,
        bundle_keys=bundle_keys, fairness_band=fairness_band,
        discount_budget_minor=discount_budget_minor, segments=segments,
        opportunity_cost_minor=opportunity_cost_minor,
    )  # fmt: skip
    return apply_prices(
        list_total_minor, cost_minor, a, b, guardrails, state, objective=objective,
        bundle_keys=bundle_keys, fairness_band=fairness_band, segments=segments,
        opportunity_cost_minor=opportunity_cost_minor,
    )  # fmt: skip


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


def _segment_price(
    rows: npt.NDArray[np.int64],
    lower: npt.NDArray[np.int64],
    upper: npt.NDArray[np.int64],
    K: FloatArray,
    A: FloatArray,
    S: FloatArray,
    a: FloatArray,
    beta: FloatArray,
    guardrails: Guardrails,
) -> int:
    """The allowed price that maximizes the summed objective of one (segment, bundle) group."""
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
    return int(grid[int(np.argmax(values))])


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
    "BatchState",
    "Objective",
    "PriceQuotes",
    "allowed_prices",
    "apply_prices",
    "best_price_on_grid",
    "customer_surplus",
    "optimal_logit_price",
    "quote_prices",
    "solve_batch",
]
