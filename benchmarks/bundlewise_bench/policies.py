"""Pricing policies judged by the market simulator, one class per policy.

Every policy implements :class:`Policy`: a machine ``name`` (the key of every result), a
human-readable ``label`` (for tables), and :meth:`Policy.prices`, the menu it offers the test
shoppers of one :class:`MarketRun` (component prices per subset and, for mixed bundling, a bundle
offer per shopper). The policies:

- :class:`PerfectDiscrimination` (bound A): each shopper pays their full value for their best
  subset;
- :class:`BestTrueOffer` (bound B): the best guard-railed personalized bundle price knowing the
  true demand model (:math:`\\mu, \\sigma, \\rho, \\kappa` and :math:`s_c`, not :math:`\\eta`);
- :class:`ComponentPricing` at optimized list prices (no bundle);
- :class:`PureBundling` (only the bundle, one optimized price);
- :class:`UniformDiscount` mixed bundling (list prices plus the bundle at a fixed % off);
- :class:`BundleSizePricing` (one price for any single item, one for the pair);
- :class:`ExactMixedBundling`, a MILP over a small training sample (:mod:`bundlewise_bench.milp`);
- :class:`Bundlewise`: list prices plus a personalized bundle offer from the engine: a logit price
  response fitted on logged offers at random prices, using a noisy estimate of :math:`s_c`,
  priced by the product's :class:`bundlewise.pricing.Pricer` inside the guardrails (each
  shopper a customer with its own fitted sensitivity, appeal and opportunity cost).

Non-personalized prices are optimized on a separate training sample from the true model; mixed
policies use the optimized list prices of component pricing as their list
(:attr:`MarketRun.list_prices`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import expit

from bundlewise.config import Config, PricingConfig
from bundlewise.pricing import Guardrails
from bundlewise.pricing.guardrails import price_bounds
from bundlewise.pricing.optimizer import best_price_on_grid
from bundlewise.pricing.pricer import CatalogItem, Pricer
from bundlewise_bench.market import (
    FittedMarket,
    FloatArray,
    Menu,
    Outcome,
    Scenario,
    Shoppers,
    all_subsets,
    choose,
    component_menu,
)
from bundlewise_bench.milp import mixed_bundling_milp


# --------------------------------------------------------------------------------------------
# Price optimization helpers
# --------------------------------------------------------------------------------------------
def _grid_search(
    objective: Callable[[FloatArray], float], start: FloatArray, spans: FloatArray, passes: int = 3
) -> FloatArray:
    """Coordinate ascent over multiplicative grids around ``start``."""
    x = start.astype(np.float64).copy()
    for _ in range(passes):
        for j in range(x.shape[0]):
            best, best_v = x[j], -np.inf
            for f in np.linspace(1.0 - spans[j], 1.0 + spans[j], 41):
                trial = x.copy()
                trial[j] = start[j] * f
                v = objective(trial)
                if v > best_v:
                    best, best_v = trial[j], v
            x[j] = best
    return x


def optimize_component_prices(
    train: Shoppers, costs: FloatArray, list_prices: FloatArray
) -> FloatArray:
    """Item prices maximizing profit on ``train`` when items are sold separately."""
    k = list_prices.shape[0]

    def profit(p: FloatArray) -> float:
        return float(choose(train.values, Menu(component_menu(p, k)), costs).profit.sum())

    return _grid_search(profit, list_prices, np.full(k, 0.6))


def optimize_pure_bundle(train: Shoppers, costs: FloatArray, list_total: float) -> float:
    m = train.values.shape[1]

    def profit(p: FloatArray) -> float:
        prices = np.full(m, np.inf)
        prices[-1] = p[0]
        return float(choose(train.values, Menu(prices), costs).profit.sum())

    return float(_grid_search(profit, np.array([list_total]), np.array([0.7]), passes=1)[0])


def size_menu(k: int, single: float, whole: float) -> FloatArray:
    """Bundle-size pricing: any single item at ``single``, the whole bundle at ``whole``."""
    return np.array(
        [
            single if len(s) == 1 else (whole if len(s) == k else single * len(s))
            for s in all_subsets(k)
        ]
    )


def optimize_size_prices(
    train: Shoppers, costs: FloatArray, list_prices: FloatArray
) -> tuple[float, float]:
    k = list_prices.shape[0]

    def profit(p: FloatArray) -> float:
        return float(choose(train.values, Menu(size_menu(k, p[0], p[1])), costs).profit.sum())

    start = np.array([list_prices.mean(), list_prices.sum()])
    best = _grid_search(profit, start, np.array([0.7, 0.7]))
    return float(best[0]), float(best[1])


def fit_logit(
    x: FloatArray, y: FloatArray, ridge: float = 1e-3, offset: FloatArray | None = None
) -> FloatArray:
    """Logistic regression by Newton's method (``x`` includes the intercept column).

    ``offset`` is a known term added to the linear predictor (its coefficient fixed at 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(20000), rng.normal(size=20000)])
    >>> y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 - 2.0 * x[:, 1])))).astype(float)
    >>> bool(np.allclose(fit_logit(x, y), [0.5, -2.0], atol=0.1))
    True
    >>> bool(np.allclose(fit_logit(x[:, :1], y, offset=-2.0 * x[:, 1]), [0.5], atol=0.1))
    True
    """
    base = np.zeros(x.shape[0]) if offset is None else offset
    theta = np.zeros(x.shape[1])
    for _ in range(50):
        p = expit(base + x @ theta)
        grad = x.T @ (y - p) - ridge * theta
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta


@dataclass
class EngineFit:
    """The engine's price response for one bundle, learned from logged offers.

    ``P(accept) = sigmoid(a0 + a1 * s_hat - (b0 + b1 * s_hat) * p / L)``; a declined offer still
    earns ``d0 + d1 * s_hat`` from items bought at list price (the opportunity cost).
    ``fallback`` says why the slope was not fitted: ``""`` (it was), ``"flat"`` (the logged
    offers show no falling demand: slope 0, the intercept refitted without a price term) or
    ``"prior"`` (too few acceptances to fit a slope: the prior slope, the intercept refitted
    with it held fixed).
    """

    a0: float
    a1: float
    b0: float
    b1: float
    d0: float
    d1: float
    fallback: str = ""

    def appeal(self, s_hat: FloatArray) -> FloatArray:
        return np.asarray(self.a0 + self.a1 * s_hat, dtype=np.float64)

    def sensitivity(self, s_hat: FloatArray, floor: float = 0.1) -> FloatArray:
        return np.asarray(np.maximum(self.b0 + self.b1 * s_hat, floor), dtype=np.float64)

    def opportunity(self, s_hat: FloatArray) -> FloatArray:
        return np.asarray(np.maximum(self.d0 + self.d1 * s_hat, 0.0), dtype=np.float64)


#: Fewer acceptances than this among the logged offers: the slope is not fitted.
MIN_ACCEPTS = 10


def engine_fit(
    market: FittedMarket,
    list_prices: FloatArray,
    costs: FloatArray,
    guardrails: Guardrails,
    scenario: Scenario,
    rng: np.random.Generator,
    prior_b: float,
) -> EngineFit:
    """Fit the engine's response on logged offers made at random allowed prices.

    Every fallback keeps the intercept consistent with the slope it uses: when the fitted
    price slope is not negative (demand flat, or rising by noise, inside the logged price
    range) the response is flat (slope 0, intercept refitted without price), which prices at
    the list, as flat demand implies; with fewer than :data:`MIN_ACCEPTS` acceptances the prior
    slope is used and the intercept refitted with that slope held fixed.
    """
    k = market.k
    logged = market.draw(scenario.n_logged, rng)
    s_hat = logged.s + scenario.noise * rng.standard_normal(scenario.n_logged)
    L = float(list_prices.sum())
    bounds = price_bounds([round(L)], [round(costs[-1])], guardrails)
    if not bounds.is_feasible[0]:
        return EngineFit(0.0, 0.0, prior_b, 0.0, 0.0, 0.0, "prior")
    lo, hi = float(bounds.lower[0]), float(bounds.upper[0])
    price = rng.uniform(lo, hi, scenario.n_logged)
    out = choose(logged.values, Menu(component_menu(list_prices, k), price), costs)
    took = out.choice == logged.values.shape[1] + 1
    y = took.astype(np.float64)
    x = np.column_stack([np.ones_like(price), s_hat, price / L, s_hat * price / L])
    declined = ~took
    xd = np.column_stack([np.ones(int(declined.sum())), s_hat[declined]])
    d = np.linalg.lstsq(xd, out.profit[declined], rcond=None)[0] if declined.sum() > 2 else [0, 0]
    if y.sum() < MIN_ACCEPTS:
        a = fit_logit(x[:, :2], y, offset=-prior_b * price / L)
        return EngineFit(float(a[0]), float(a[1]), prior_b, 0.0, float(d[0]), float(d[1]), "prior")
    theta = fit_logit(x, y)
    if not theta[2] < 0:
        a = fit_logit(x[:, :2], y)
        return EngineFit(float(a[0]), float(a[1]), 0.0, 0.0, float(d[0]), float(d[1]), "flat")
    return EngineFit(
        float(theta[0]),
        float(theta[1]),
        float(-theta[2]),
        float(-theta[3]),
        float(d[0]),
        float(d[1]),
    )


def best_true_prices(
    market: FittedMarket,
    s: FloatArray,
    list_prices: FloatArray,
    costs: FloatArray,
    guardrails: Guardrails,
    rng: np.random.Generator,
    n_draws: int = 1000,
    n_grid: int = 32,
    n_levels: int = 64,
) -> FloatArray:
    """Bound B: per shopper, the allowed bundle price maximizing expected profit under the true
    model given :math:`s_c` (expectation over ``n_draws`` draws of :math:`\\eta`).

    The best price depends on the shopper only through :math:`s_c`; it is computed on
    ``n_levels`` evenly spaced levels spanning ``s`` and each shopper gets the nearest level's.
    """
    k = market.k
    n = s.shape[0]
    L = round(float(list_prices.sum()))
    bounds = price_bounds([L], [round(costs[-1])], guardrails)
    if not bounds.is_feasible[0] or n == 0:
        return np.full(n, np.nan)
    levels = np.linspace(float(s.min()), float(s.max()), n_levels)
    z = rng.standard_normal((n_draws, k))
    comp = component_menu(list_prices, k)
    vals = market.values_for(np.repeat(levels, n_draws), np.tile(z, (n_levels, 1)))

    def expected(prices: FloatArray) -> FloatArray:
        res = np.empty(prices.shape)
        for g in range(prices.shape[1]):
            offer = np.repeat(prices[:, g], n_draws)
            profit = choose(vals, Menu(comp, offer), costs).profit
            res[:, g] = profit.reshape(n_levels, n_draws).mean(axis=1)
        return res

    best = best_price_on_grid(
        expected,
        np.full(n_levels, bounds.lower[0]),
        np.full(n_levels, bounds.upper[0]),
        guardrails,
        n_grid=n_grid,
    )
    nearest = np.clip(np.rint((s - levels[0]) / max(levels[1] - levels[0], 1e-12)), 0, n_levels - 1)
    chosen: FloatArray = best[nearest.astype(np.int64)].astype(np.float64)
    return chosen


# --------------------------------------------------------------------------------------------
# The policies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRun:
    """One bundle market of one seed, as every policy sees it.

    ``train`` shoppers are drawn from the true model to optimize non-personalized prices;
    ``test`` shoppers are the ones every policy is judged on. ``costs`` are per subset (last =
    whole bundle); ``list_prices`` are the optimized component prices, the store's list for
    every mixed-bundling policy. Policies that draw random numbers take them from ``rng`` in
    the order they run.
    """

    market: FittedMarket
    scenario: Scenario
    pricing: PricingConfig
    guardrails: Guardrails
    train: Shoppers
    test: Shoppers
    costs: FloatArray
    list_prices: FloatArray
    rng: np.random.Generator

    @property
    def k(self) -> int:
        return self.market.k

    @property
    def n_subsets(self) -> int:
        return len(all_subsets(self.k))

    @property
    def list_total(self) -> float:
        return float(self.list_prices.sum())

    @property
    def component_prices(self) -> FloatArray:
        """Subset prices at the list (items bought separately)."""
        return component_menu(self.list_prices, self.k)


class Policy(ABC):
    """A pricing policy: what it offers the test shoppers of one market run.

    Class attributes: ``name`` (result key), ``label`` (for tables), ``personalized`` (prices
    differ between shoppers), ``bound`` (a benchmark bound, not a policy a store could run) and
    ``sells_whole_bundle`` (the whole bundle has its own price on the menu, so buying it counts
    as taking the bundle; mixed bundling counts the separate bundle offer instead).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    personalized: ClassVar[bool] = False
    bound: ClassVar[bool] = False
    sells_whole_bundle: ClassVar[bool] = False

    @abstractmethod
    def prices(self, run: MarketRun) -> Menu:
        """The menu offered to ``run.test`` (subset prices, and bundle offers if any)."""

    def outcome(self, run: MarketRun, menu: Menu) -> Outcome:
        """What the test shoppers do under ``menu`` (each buys the option of highest surplus)."""
        return choose(run.test.values, menu, run.costs)


class PerfectDiscrimination(Policy):
    """Bound A: every shopper is charged their own value of every subset."""

    name = "perfect_discrimination"
    label = "A: perfect price discrimination"
    personalized = True
    bound = True

    def prices(self, run: MarketRun) -> Menu:
        return Menu(run.test.values.copy())

    def outcome(self, run: MarketRun, menu: Menu) -> Outcome:
        """Indifferent shoppers buy the subset of highest profit (if any profit is positive)."""
        values = np.asarray(menu.subset_prices, dtype=np.float64)
        margin = values - run.costs[None, :]
        best = np.argmax(margin, axis=1)
        rows = np.arange(values.shape[0])
        buys = margin[rows, best] > 0
        paid = np.where(buys, values[rows, best], 0.0)
        return Outcome(
            choice=np.where(buys, best + 1, 0).astype(np.int64),
            paid=paid,
            profit=np.where(buys, margin[rows, best], 0.0),
            surplus=np.zeros(values.shape[0]),
        )


class BestTrueOffer(Policy):
    """Bound B: list prices plus the best guard-railed bundle offer under the true model."""

    name = "best_true_offer"
    label = "B: best policy, true demand known"
    personalized = True
    bound = True

    def prices(self, run: MarketRun) -> Menu:
        offer = best_true_prices(
            run.market, run.test.s, run.list_prices, run.costs, run.guardrails, run.rng
        )
        return Menu(run.component_prices, offer)


class ComponentPricing(Policy):
    """Items sold separately at the optimized list prices; no bundle."""

    name = "component"
    label = "component pricing (optimized list prices)"

    def prices(self, run: MarketRun) -> Menu:
        return Menu(run.component_prices)


class PureBundling(Policy):
    """Only the whole bundle is sold, at one optimized price."""

    name = "pure_bundling"
    label = "pure bundling"
    sells_whole_bundle = True

    def prices(self, run: MarketRun) -> Menu:
        menu = np.full(run.n_subsets, np.inf)
        menu[-1] = optimize_pure_bundle(run.train, run.costs, run.list_total)
        return Menu(menu)


class UniformDiscount(Policy):
    """List prices plus the bundle at a fixed discount off the list total, for everyone."""

    name = "uniform_discount"
    label = "uniform discount mixed bundling"

    def prices(self, run: MarketRun) -> Menu:
        n = run.test.values.shape[0]
        offer = np.full(n, run.list_total * (1.0 - run.scenario.uniform_discount))
        return Menu(run.component_prices, offer)


class BundleSizePricing(Policy):
    """One optimized price for any single item, one for the whole bundle."""

    name = "bundle_size"
    label = "bundle-size pricing"
    sells_whole_bundle = True

    def prices(self, run: MarketRun) -> Menu:
        single, whole = optimize_size_prices(run.train, run.costs, run.list_prices)
        return Menu(size_menu(run.k, single, whole))


class ExactMixedBundling(Policy):
    """One price per subset, the exact MILP optimum on ``scenario.n_milp`` training shoppers."""

    name = "exact_mixed_bundling"
    label = "exact mixed bundling (MILP)"
    sells_whole_bundle = True

    def prices(self, run: MarketRun) -> Menu:
        n = run.scenario.n_milp
        return Menu(mixed_bundling_milp(run.train.values[:n], run.costs, all_subsets(run.k)))


class Bundlewise(Policy):
    """The engine: a logit response learned from logged offers, priced inside the guardrails.

    ``opportunity=False`` ignores the profit a declined offer still earns at list prices.
    ``fits`` collects every :class:`EngineFit` it makes (e.g. to count fallbacks).
    """

    name = "bundlewise"
    label = "bundlewise"
    personalized = True

    def __init__(self, opportunity: bool = True) -> None:
        self.opportunity = opportunity
        self.fits: list[EngineFit] = []

    def prices(self, run: MarketRun) -> Menu:
        fit = engine_fit(
            run.market,
            run.list_prices,
            run.costs,
            run.guardrails,
            run.scenario,
            run.rng,
            run.pricing.sensitivity_prior,
        )
        self.fits.append(fit)
        n = run.test.values.shape[0]
        s_hat = run.test.s + run.scenario.noise * run.rng.standard_normal(n)
        pricer = engine_pricer(run, fit, s_hat, opportunity=self.opportunity)
        shoppers = [f"shopper{i}" for i in range(n)]
        bundle = list(pricer.catalog)
        rows = pricer.price_rows(shoppers, [bundle] * n)
        offer = np.where(rows.offered, rows.quotes.price_minor, np.nan).astype(np.float64)
        return Menu(run.component_prices, offer)


def engine_pricer(
    run: MarketRun, fit: EngineFit, s_hat: FloatArray, opportunity: bool = True
) -> Pricer:
    """The product's :class:`~bundlewise.pricing.Pricer` for one market's test shoppers.

    The bundle's items form the catalog (list prices and unit costs in minor units, the whole
    bundle's cost on the items in proportion to their list prices so that the bundle's cost is
    exact); each shopper ``shopper{i}`` is a customer in a segment of its own with the fitted
    sensitivity, appeal and (with ``opportunity``) opportunity cost at its noisy ``s_hat``; the
    batch decisions (fairness windows, discount budget) are solved over all of them, as
    ``train`` does over a store's offers.
    """
    k = run.k
    list_minor = np.rint(run.list_prices).astype(np.int64)
    list_minor[-1] += round(run.list_total) - int(list_minor.sum())
    cost_total = round(float(run.costs[-1]))
    cost_minor = np.floor(cost_total * list_minor / list_minor.sum()).astype(np.int64)
    cost_minor[-1] += cost_total - int(cost_minor.sum())
    catalog = {
        f"item{j}": CatalogItem(
            item_id=f"item{j}",
            title=f"item {j}",
            list_price_minor=int(list_minor[j]),
            unit_cost_minor=int(cost_minor[j]),
            currency="GBP",
        )
        for j in range(k)
    }
    n = s_hat.shape[0]
    shoppers = [f"shopper{i}" for i in range(n)]
    b = fit.sensitivity(s_hat)
    return Pricer.from_batch(
        model_version="simulated",
        config=Config(pricing=run.pricing),
        catalog=catalog,
        customer_segment={c: c for c in shoppers},
        sensitivity={c: float(b[i]) for i, c in enumerate(shoppers)},
        customer_ids=shoppers,
        bundles=[list(catalog)] * n,
        appeals=fit.appeal(s_hat).tolist(),
        opportunities=fit.opportunity(s_hat).tolist() if opportunity else None,
    )


def default_policies(with_milp: bool = True, opportunity: bool = True) -> list[Policy]:
    """Every policy, in the order of the result tables (bounds first, then ours)."""
    policies: list[Policy] = [
        PerfectDiscrimination(),
        BestTrueOffer(),
        Bundlewise(opportunity),
        ExactMixedBundling(),
        ComponentPricing(),
        PureBundling(),
        UniformDiscount(),
        BundleSizePricing(),
    ]
    return [p for p in policies if with_milp or not isinstance(p, ExactMixedBundling)]


__all__ = [
    "BestTrueOffer",
    "BundleSizePricing",
    "Bundlewise",
    "ComponentPricing",
    "EngineFit",
    "ExactMixedBundling",
    "MarketRun",
    "PerfectDiscrimination",
    "Policy",
    "PureBundling",
    "UniformDiscount",
    "best_true_prices",
    "default_policies",
    "engine_fit",
    "engine_pricer",
    "fit_logit",
]
