"""A market simulator with known willingness to pay, for judging bundle pricing policies.

**Market.** Each bundle (a pair of items bought together in the real data) is its own market.
Shopper :math:`c` values item :math:`j` at

.. math::

    W_{cj} = \\exp(\\mu_j + s_c + \\eta_{cj}),\\qquad s_c \\sim N(0, \\sigma_s^2),\\qquad
    \\eta_c \\sim N(0, \\sigma_\\eta^2 [(1-\\rho) I + \\rho \\mathbf{1}\\mathbf{1}^\\top])

(lognormal, correlated across items through a Gaussian copula). :math:`s_c` is what a store can
learn about a shopper (their price level); :math:`\\eta` is unknown to everyone. Owning the whole
bundle is worth :math:`(1 + \\kappa)\\sum_j W_{cj}` (complementarity bonus :math:`\\kappa`). The
shopper buys the option of highest surplus among: nothing, any subset at the component prices,
and the bundle offer, if any.

**Fit to real data.** Every customer in the data is in every bundle's market;
:math:`\\mu_j` and :math:`\\rho` are fitted so that, at the real list prices (median unit prices)
and with no bundle offer, the simulated shares of customers buying each item and buying both
match the real shares (where even :math:`\\rho = 0.95` falls short of the real co-purchase
share, the fit stops there and the result reports both shares).

**Policies**, all judged on the same simulated shoppers (common random numbers):

- (A) perfect price discrimination: each shopper pays their full value for their best subset;
- (B) the best guard-railed personalized bundle price knowing the true demand model
  (:math:`\\mu, \\sigma, \\rho, \\kappa` and :math:`s_c`, not :math:`\\eta`);
- component pricing at optimized list prices (no bundle);
- pure bundling (only the bundle, one optimized price);
- uniform-discount mixed bundling (list prices plus the bundle at a fixed % off);
- bundle-size pricing (one price for any single item, one for the pair);
- exact mixed bundling, a MILP over a small training sample (:mod:`bundlewise.evaluation.milp`);
- bundlewise: list prices plus a personalized bundle offer from the engine: a logit price response
  fitted on logged offers at random prices, using a noisy estimate of :math:`s_c`, then
  :func:`bundlewise.pricing.quote_prices` inside the guardrails.

Non-personalized prices are optimized on a separate training sample from the true model; mixed
policies use the optimized list prices of component pricing as their list.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats
from scipy.special import expit

from bundlewise.config import PricingConfig
from bundlewise.data import _sql
from bundlewise.evaluation.milp import mixed_bundling_milp
from bundlewise.pricing import Guardrails, quote_prices
from bundlewise.pricing.guardrails import price_bounds
from bundlewise.pricing.optimizer import Objective, best_price_on_grid

FloatArray = npt.NDArray[np.float64]

A_BOUND = "A: perfect price discrimination"
B_BOUND = "B: best policy, true demand known"
COMPONENT = "component pricing (optimized list prices)"
PURE = "pure bundling"
UNIFORM = "uniform discount mixed bundling"
SIZE = "bundle-size pricing"
MILP = "exact mixed bundling (MILP)"
OURS = "bundlewise"
POLICIES: tuple[str, ...] = (A_BOUND, B_BOUND, OURS, MILP, COMPONENT, PURE, UNIFORM, SIZE)
#: Policies that do not price individually.
NON_PERSONALIZED: tuple[str, ...] = (COMPONENT, PURE, UNIFORM, SIZE, MILP)


@dataclass(frozen=True)
class MarketBundle:
    """One bundle market taken from real orders.

    Attributes
    ----------
    item_ids, titles
        The bundle's items.
    list_prices
        Real list prices (median unit price), minor units, shape (k,).
    n_market
        Customers in the data (the market every bundle is offered to).
    item_rates
        Share of that market buying each item, shape (k,).
    bundle_rate
        Share of that market buying all items.
    """

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]
    list_prices: FloatArray
    n_market: int
    item_rates: FloatArray
    bundle_rate: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["list_prices"] = self.list_prices.tolist()
        d["item_rates"] = self.item_rates.tolist()
        return d


def market_from_orders(
    order_lines: pa.Table, n_bundles: int = 8, min_customers: int = 40, min_lift: float = 1.5
) -> list[MarketBundle]:
    """Pick ``n_bundles`` item pairs (no item twice) that many customers bought together.

    Pairs are ranked by the number of customers who bought both items, among pairs whose
    customer-level lift is at least ``min_lift``.

    Raises
    ------
    ValueError
        When fewer than one pair qualifies.
    """
    con = _sql.connect()
    try:
        con.register("ol", order_lines)
        rows = con.sql(
            """
            WITH ci AS (
                SELECT DISTINCT customer_id, item_id FROM ol
                WHERE customer_id IS NOT NULL AND quantity > 0 AND unit_price_minor > 0
            ),
            n_items AS (SELECT item_id, count(*) AS n FROM ci GROUP BY item_id),
            total AS (SELECT count(DISTINCT customer_id) AS n FROM ci),
            top AS (SELECT item_id FROM n_items WHERE n >= $min ORDER BY n DESC LIMIT 600),
            cit AS (SELECT * FROM ci WHERE item_id IN (SELECT item_id FROM top)),
            pairs AS (
                SELECT a.item_id AS i, b.item_id AS j, count(*) AS n_ij
                FROM cit a JOIN cit b ON a.customer_id = b.customer_id AND a.item_id < b.item_id
                GROUP BY 1, 2 HAVING count(*) >= $min
            ),
            price AS (
                SELECT item_id, CAST(median(unit_price_minor) AS DOUBLE) AS p,
                       any_value(item_id) AS title_key
                FROM ol WHERE quantity > 0 AND unit_price_minor > 0 GROUP BY item_id
            )
            SELECT p.i, p.j, p.n_ij, ni.n AS n_i, nj.n AS n_j,
                   p.n_ij * t.n / (ni.n * nj.n) AS lift, pi.p AS p_i, pj.p AS p_j,
                   t.n AS n_total
            FROM pairs p
            JOIN n_items ni ON ni.item_id = p.i JOIN n_items nj ON nj.item_id = p.j
            JOIN price pi ON pi.item_id = p.i JOIN price pj ON pj.item_id = p.j, total t
            WHERE p.n_ij * t.n / (ni.n * nj.n) >= $lift
            ORDER BY p.n_ij DESC, p.i, p.j
            """,
            params={"min": min_customers, "lift": min_lift},
        ).fetchall()
    finally:
        con.close()
    used: set[str] = set()
    bundles = []
    for i, j, n_ij, n_i, n_j, _lift, p_i, p_j, n_total in rows:
        if i in used or j in used:
            continue
        used.update((i, j))
        n_market = int(n_total)
        bundles.append(
            MarketBundle(
                item_ids=(str(i), str(j)),
                titles=(str(i), str(j)),
                list_prices=np.array([p_i, p_j], dtype=np.float64),
                n_market=n_market,
                item_rates=np.array([n_i / n_market, n_j / n_market]),
                bundle_rate=float(n_ij / n_market),
            )
        )
        if len(bundles) == n_bundles:
            break
    if not bundles:
        raise ValueError(
            f"no item pair was bought by >= {min_customers} customers with lift >= {min_lift}."
        )
    return bundles


def with_titles(bundles: list[MarketBundle], titles: dict[str, str]) -> list[MarketBundle]:
    """The same bundles with item titles filled in from ``titles`` (item id -> title)."""
    return [replace(b, titles=tuple(titles.get(i, i) for i in b.item_ids)) for b in bundles]


@dataclass(frozen=True)
class Scenario:
    """One point of the scenario grid.

    Parameters
    ----------
    noise
        Standard deviation of the engine's error on each shopper's log-price-level :math:`s_c`.
    correlation
        Copula correlation :math:`\\rho` of the idiosyncratic values; ``None`` = fitted per bundle.
    complementarity
        :math:`\\kappa`, the bonus on the value of owning the whole bundle.
    cost_share
        Unit cost as a share of the real list price.
    sigma_customer, sigma_idio
        :math:`\\sigma_s` and :math:`\\sigma_\\eta`.
    n_customers
        Simulated shoppers per bundle market (judged).
    n_train
        Shoppers drawn from the true model to optimize non-personalized prices.
    n_logged
        Logged past offers at random prices the engine learns its price response from.
    n_milp
        Shoppers in the MILP's training sample (kept small: exact MILP).
    uniform_discount
        The fixed discount of uniform-discount mixed bundling.
    """

    name: str = "default"
    noise: float = 0.2
    correlation: float | None = None
    complementarity: float = 0.15
    cost_share: float = 0.6
    sigma_customer: float = 0.35
    sigma_idio: float = 0.35
    n_customers: int = 2000
    n_train: int = 2000
    n_logged: int = 4000
    n_milp: int = 40
    uniform_discount: float = 0.10


def scenario_grid(base: Scenario | None = None) -> list[Scenario]:
    """The default scenario and one-factor-at-a-time variations around it."""
    b = base or Scenario()
    grid = [b]
    grid += [replace(b, name=f"noise {v}", noise=v) for v in (0.0, 0.1, 0.4, 0.8) if v != b.noise]
    grid += [
        replace(b, name=f"correlation {v}", correlation=v) for v in (0.0, 0.6) if v != b.correlation
    ]
    grid += [
        replace(b, name=f"complementarity {v}", complementarity=v)
        for v in (0.0, 0.4)
        if v != b.complementarity
    ]
    grid += [
        replace(b, name=f"cost share {v}", cost_share=v) for v in (0.4, 0.8) if v != b.cost_share
    ]
    return grid


# --------------------------------------------------------------------------------------------
# Shoppers and choices
# --------------------------------------------------------------------------------------------


def _subsets(k: int) -> list[tuple[int, ...]]:
    return [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]


@dataclass(frozen=True)
class Shoppers:
    """Simulated shoppers of one bundle market: price levels and values.

    ``values`` has shape (n, n_subsets), subsets in the order of ``_subsets(k)``; the last
    column is the whole bundle (complementarity bonus included).
    """

    s: FloatArray
    values: FloatArray


@dataclass(frozen=True)
class FittedMarket:
    """A bundle market with its fitted value distribution."""

    bundle: MarketBundle
    mu: FloatArray
    rho: float
    sigma_customer: float
    sigma_idio: float
    complementarity: float
    fitted_item_rates: FloatArray
    fitted_bundle_rate: float

    @property
    def k(self) -> int:
        return int(self.mu.shape[0])

    def values_for(self, s: FloatArray, z: FloatArray) -> FloatArray:
        """Subset values for price levels ``s`` (n,) and independent standard normals ``z``
        (n, k)."""
        eta = self.sigma_idio * (z @ copula_factor(self.rho, self.k).T)
        w = np.exp(self.mu[None, :] + s[:, None] + eta)
        return subset_values(w, self.complementarity)

    def draw(self, n: int, rng: np.random.Generator) -> Shoppers:
        s = rng.normal(0.0, self.sigma_customer, n)
        z = rng.standard_normal((n, self.k))
        return Shoppers(s=s, values=self.values_for(s, z))


def copula_factor(rho: float, k: int) -> FloatArray:
    """Cholesky factor of the equicorrelation matrix ``(1 - rho) I + rho 11'``.

    Raises
    ------
    ValueError
        When ``rho`` is outside ``(-1 / (k - 1), 1)``.
    """
    corr = (1.0 - rho) * np.eye(k) + rho * np.ones((k, k))
    try:
        return np.asarray(np.linalg.cholesky(corr), dtype=np.float64)
    except np.linalg.LinAlgError:
        raise ValueError(f"correlation {rho} is not valid for {k} items.") from None


def subset_values(w: FloatArray, complementarity: float) -> FloatArray:
    """Values of every subset (last = whole bundle, with the bonus) from item values ``w``.

    Examples
    --------
    >>> subset_values(np.array([[10.0, 20.0]]), 0.5).tolist()
    [[10.0, 20.0, 45.0]]
    """
    k = w.shape[-1]
    subsets = _subsets(k)
    out = np.stack([w[..., list(s)].sum(axis=-1) for s in subsets], axis=-1)
    out[..., -1] *= 1.0 + complementarity
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class Menu:
    """What a policy offers: component prices and an optional bundle price, per shopper.

    ``subset_prices`` has shape (n_subsets,) or (n, n_subsets) with ``inf`` where not sold;
    ``bundle_price`` has shape (n,), ``nan`` where no bundle offer is made.
    """

    subset_prices: FloatArray
    bundle_price: FloatArray | None = None


@dataclass(frozen=True)
class Outcome:
    """What each shopper did under a menu."""

    choice: npt.NDArray[np.int64]  # 0 = nothing, 1..m = subset, m + 1 = bundle offer
    paid: FloatArray
    profit: FloatArray
    surplus: FloatArray


def component_menu(prices: FloatArray, k: int) -> FloatArray:
    """Subset prices when items are sold separately at ``prices``."""
    return np.array([prices[list(s)].sum() for s in _subsets(k)], dtype=np.float64)


def choose(values: FloatArray, menu: Menu, subset_costs: FloatArray) -> Outcome:
    """Each shopper buys the option of highest surplus (nothing on ties)."""
    n, m = values.shape
    prices = np.broadcast_to(menu.subset_prices, (n, m))
    full_cost = subset_costs[-1]
    opt_prices = np.concatenate(
        [
            np.zeros((n, 1)),
            prices,
            (
                np.where(np.isnan(menu.bundle_price), np.inf, menu.bundle_price)[:, None]
                if menu.bundle_price is not None
                else np.full((n, 1), np.inf)
            ),
        ],
        axis=1,
    )
    opt_values = np.concatenate([np.zeros((n, 1)), values, values[:, -1:]], axis=1)
    opt_costs = np.concatenate([[0.0], subset_costs, [full_cost]])
    surplus = np.where(np.isfinite(opt_prices), opt_values - opt_prices, -np.inf)
    choice = np.argmax(surplus, axis=1)
    rows = np.arange(n)
    paid = opt_prices[rows, choice]
    return Outcome(
        choice=choice.astype(np.int64),
        paid=paid,
        profit=paid - opt_costs[choice],
        surplus=surplus[rows, choice],
    )


# --------------------------------------------------------------------------------------------
# Fitting the market to real purchase rates
# --------------------------------------------------------------------------------------------


def fit_market(
    bundle: MarketBundle,
    scenario: Scenario,
    n_draws: int = 20_000,
    seed: int = 12345,
) -> FittedMarket:
    """Fit :math:`\\mu` (and :math:`\\rho` unless the scenario fixes it) to the real shares."""
    rng = np.random.default_rng(seed)
    k = bundle.list_prices.shape[0]
    s = rng.normal(0.0, scenario.sigma_customer, n_draws)
    z = rng.standard_normal((n_draws, k))
    costs = component_menu(bundle.list_prices * scenario.cost_share, k)
    menu = Menu(component_menu(bundle.list_prices, k))
    subsets = _subsets(k)
    contains = np.array([[j in sub for sub in subsets] for j in range(k)])  # (k, m)
    sigma_t = math.hypot(scenario.sigma_customer, scenario.sigma_idio)
    item_target = np.clip(bundle.item_rates, 0.01, 0.99)
    bundle_target = float(np.clip(bundle.bundle_rate, 0.005, 0.99))

    def rates(mu: FloatArray, rho: float) -> tuple[FloatArray, float]:
        market = FittedMarket(
            bundle, mu, rho, scenario.sigma_customer, scenario.sigma_idio,
            scenario.complementarity, mu, 0.0,
        )  # fmt: skip
        out = choose(market.values_for(s, z), menu, costs)
        bought = out.choice[:, None] - 1 == np.arange(len(subsets))[None, :]
        item = (bought[:, None, :] & contains[None, :, :]).any(axis=2).mean(axis=0)
        return item, float((out.choice == len(subsets)).mean())

    def fit_mu(rho: float) -> tuple[FloatArray, FloatArray, float]:
        mu = np.log(bundle.list_prices) + sigma_t * stats.norm.ppf(item_target)
        for _ in range(30):
            item, both = rates(mu, rho)
            step = stats.norm.ppf(item_target) - stats.norm.ppf(np.clip(item, 1e-4, 1 - 1e-4))
            mu = mu + 0.8 * sigma_t * step
            if np.max(np.abs(item - item_target)) < 2e-3:
                break
        item, both = rates(mu, rho)
        return mu, item, both

    if scenario.correlation is not None:
        rho = float(scenario.correlation)
        mu, item, both = fit_mu(rho)
    else:
        lo, hi = -1.0 / max(k - 1, 1) + 0.05, 0.95
        mu, item, both = fit_mu(lo)
        if both < bundle_target:
            mu_hi, item_hi, both_hi = fit_mu(hi)
            if both_hi <= bundle_target:
                lo, (mu, item, both) = hi, (mu_hi, item_hi, both_hi)
            else:
                for _ in range(12):
                    mid = 0.5 * (lo + hi)
                    mu_m, item_m, both_m = fit_mu(mid)
                    if both_m < bundle_target:
                        lo = mid
                    else:
                        hi = mid
                    mu, item, both = mu_m, item_m, both_m
                lo = 0.5 * (lo + hi)
        rho = lo
    return FittedMarket(
        bundle=bundle,
        mu=mu,
        rho=rho,
        sigma_customer=scenario.sigma_customer,
        sigma_idio=scenario.sigma_idio,
        complementarity=scenario.complementarity,
        fitted_item_rates=item,
        fitted_bundle_rate=both,
    )


# --------------------------------------------------------------------------------------------
# Policies
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


def optimize_component_prices(train: Shoppers, costs: FloatArray, list_prices: FloatArray) -> Any:
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
            for s in _subsets(k)
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


def fit_logit(x: FloatArray, y: FloatArray, ridge: float = 1e-3) -> FloatArray:
    """Logistic regression by Newton's method (``x`` includes the intercept column).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(20000), rng.normal(size=20000)])
    >>> y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 - 2.0 * x[:, 1])))).astype(float)
    >>> bool(np.allclose(fit_logit(x, y), [0.5, -2.0], atol=0.1))
    True
    """
    theta = np.zeros(x.shape[1])
    for _ in range(50):
        p = expit(x @ theta)
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
    """

    a0: float
    a1: float
    b0: float
    b1: float
    d0: float
    d1: float
    used_prior: bool

    def appeal(self, s_hat: FloatArray) -> FloatArray:
        return np.asarray(self.a0 + self.a1 * s_hat, dtype=np.float64)

    def sensitivity(self, s_hat: FloatArray, floor: float = 0.1) -> FloatArray:
        return np.asarray(np.maximum(self.b0 + self.b1 * s_hat, floor), dtype=np.float64)

    def opportunity(self, s_hat: FloatArray) -> FloatArray:
        return np.asarray(np.maximum(self.d0 + self.d1 * s_hat, 0.0), dtype=np.float64)


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

    Falls back to the prior sensitivity when the logged offers show no price response.
    """
    k = market.k
    logged = market.draw(scenario.n_logged, rng)
    s_hat = logged.s + scenario.noise * rng.standard_normal(scenario.n_logged)
    L = float(list_prices.sum())
    bounds = price_bounds([round(L)], [round(costs[-1])], guardrails)
    if not bounds.is_feasible[0]:
        return EngineFit(0.0, 0.0, prior_b, 0.0, 0.0, 0.0, True)
    lo, hi = float(bounds.lower[0]), float(bounds.upper[0])
    price = rng.uniform(lo, hi, scenario.n_logged)
    out = choose(logged.values, Menu(component_menu(list_prices, k), price), costs)
    took = out.choice == logged.values.shape[1] + 1
    y = took.astype(np.float64)
    x = np.column_stack([np.ones_like(price), s_hat, price / L, s_hat * price / L])
    theta = fit_logit(x, y)
    declined = ~took
    xd = np.column_stack([np.ones(int(declined.sum())), s_hat[declined]])
    d = np.linalg.lstsq(xd, out.profit[declined], rcond=None)[0] if declined.sum() > 2 else [0, 0]
    if not theta[2] < 0 or y.sum() < 10:
        return EngineFit(float(theta[0]), float(theta[1]), prior_b, 0.0, 0.0, 0.0, True)
    return EngineFit(
        float(theta[0]),
        float(theta[1]),
        float(-theta[2]),
        float(-theta[3]),
        float(d[0]),
        float(d[1]),
        False,
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
# One run: every policy on the same shoppers
# --------------------------------------------------------------------------------------------


@dataclass
class PolicyResult:
    """Totals of one policy over all bundle markets of one seed."""

    profit: float = 0.0
    revenue: float = 0.0
    surplus: float = 0.0
    n_shoppers: int = 0
    n_buyers: int = 0
    n_bundle_offers_taken: int = 0
    discount_sum: float = 0.0
    violations: int = 0
    spreads: list[float] = field(default_factory=list)

    def add(
        self,
        out: Outcome,
        bundle_option: int,
        list_total: float | None,
        offered: FloatArray | None = None,
    ) -> None:
        self.profit += float(out.profit.sum())
        self.revenue += float(out.paid.sum())
        self.surplus += float(out.surplus.sum())
        self.n_shoppers += int(out.choice.shape[0])
        self.n_buyers += int((out.choice > 0).sum())
        took = out.choice == bundle_option
        self.n_bundle_offers_taken += int(took.sum())
        if list_total is not None and took.any():
            self.discount_sum += float(((list_total - out.paid[took]) / list_total).sum())
        paid = out.paid[took]
        if paid.size >= 10:
            p10, p90 = np.percentile(paid, [10, 90])
            self.spreads.append(float(p90 / p10) if p10 > 0 else float("inf"))
        elif offered is None:
            self.spreads.append(1.0)


def count_violations(
    prices: FloatArray, list_total: float, cost: float, guardrails: Guardrails
) -> int:
    """Offered bundle prices (non-NaN) that break the margin floor, discount cap or list cap."""
    bounds = price_bounds([round(list_total)], [round(cost)], guardrails)
    p = prices[~np.isnan(prices)]
    if not bounds.is_feasible[0]:
        return int(p.size)
    return int(((p < bounds.lower[0]) | (p > bounds.upper[0])).sum())


def simulate(
    markets: Sequence[FittedMarket],
    scenario: Scenario,
    seed: int,
    pricing: PricingConfig | None = None,
    with_milp: bool = True,
    engine_opportunity: bool = True,
    price_samples: dict[str, list[float]] | None = None,
) -> dict[str, dict[str, float]]:
    """Run every policy on the same simulated shoppers; returns metrics per policy.

    When ``price_samples`` is given, bundlewise's bundle prices (as a share of the list total)
    are stored in it per bundle, for plots.
    """
    config = pricing or PricingConfig()
    guardrails = Guardrails.from_config(config)
    results = {name: PolicyResult() for name in POLICIES}
    if not with_milp:
        del results[MILP]
    rng = np.random.default_rng(seed)
    for market in markets:
        k = market.k
        m = len(_subsets(k))
        bundle_option = m + 1
        costs_item = market.bundle.list_prices * scenario.cost_share
        costs = component_menu(costs_item, k)
        train = market.draw(scenario.n_train, rng)
        test = market.draw(scenario.n_customers, rng)

        # A: perfect discrimination.
        best = np.maximum((test.values - costs[None, :]).max(axis=1), 0.0)
        results[A_BOUND].profit += float(best.sum())
        results[A_BOUND].revenue += float(
            np.where(best > 0, best + costs[np.argmax(test.values - costs, axis=1)], 0).sum()
        )
        results[A_BOUND].n_shoppers += scenario.n_customers
        results[A_BOUND].n_buyers += int((best > 0).sum())
        results[A_BOUND].spreads.append(1.0)

        # Component pricing at optimized list prices; mixed policies use these as the list.
        list_prices = optimize_component_prices(train, costs, market.bundle.list_prices)
        comp = component_menu(list_prices, k)
        results[COMPONENT].add(choose(test.values, Menu(comp), costs), bundle_option, None)
        list_total = float(list_prices.sum())

        pure = np.full(m, np.inf)
        pure[-1] = optimize_pure_bundle(train, costs, list_total)
        results[PURE].add(choose(test.values, Menu(pure), costs), m, None)

        single, whole = optimize_size_prices(train, costs, list_prices)
        results[SIZE].add(choose(test.values, Menu(size_menu(k, single, whole)), costs), m, None)

        uniform = np.full(scenario.n_customers, list_total * (1.0 - scenario.uniform_discount))
        results[UNIFORM].add(
            choose(test.values, Menu(comp, uniform), costs), bundle_option, list_total
        )
        results[UNIFORM].violations += count_violations(uniform, list_total, costs[-1], guardrails)

        if with_milp:
            small = Shoppers(train.s[: scenario.n_milp], train.values[: scenario.n_milp])
            milp_prices = mixed_bundling_milp(small.values, costs, _subsets(k))
            results[MILP].add(choose(test.values, Menu(milp_prices), costs), m, None)

        # B: true demand model known.
        b_prices = best_true_prices(market, test.s, list_prices, costs, guardrails, rng)
        results[B_BOUND].add(
            choose(test.values, Menu(comp, b_prices), costs), bundle_option, list_total, b_prices
        )
        results[B_BOUND].violations += count_violations(b_prices, list_total, costs[-1], guardrails)

        # bundlewise: logit fitted on logged offers, noisy s, guard-railed closed-form price.
        fit = engine_fit(
            market, list_prices, costs, guardrails, scenario, rng, config.sensitivity_prior
        )
        s_hat = test.s + scenario.noise * rng.standard_normal(scenario.n_customers)
        n = scenario.n_customers
        quotes = quote_prices(
            np.full(n, round(list_total)),
            np.full(n, round(costs[-1])),
            fit.appeal(s_hat),
            fit.sensitivity(s_hat),
            guardrails,
            objective=Objective.from_config(config),
            bundle_keys=[0] * n,
            fairness_band=config.fairness_band if config.fairness_band >= 0 else None,
            opportunity_cost_minor=fit.opportunity(s_hat) if engine_opportunity else None,
        )
        ours = np.where(quotes.is_feasible, quotes.price_minor, np.nan).astype(np.float64)
        if price_samples is not None:
            name = " + ".join(market.bundle.titles)
            price_samples[name] = (ours[~np.isnan(ours)] / list_total).round(4).tolist()
        results[OURS].add(
            choose(test.values, Menu(comp, ours), costs), bundle_option, list_total, ours
        )
        results[OURS].violations += count_violations(ours, list_total, costs[-1], guardrails)

    return {name: _metrics(r) for name, r in results.items()}


def _metrics(r: PolicyResult) -> dict[str, float]:
    finite = [x for x in r.spreads if math.isfinite(x)]
    return {
        "profit": r.profit,
        "revenue": r.revenue,
        "consumer_surplus": r.surplus,
        "purchase_rate": r.n_buyers / max(r.n_shoppers, 1),
        "take_rate": r.n_bundle_offers_taken / max(r.n_shoppers, 1),
        "mean_discount": r.discount_sum / max(r.n_bundle_offers_taken, 1),
        "fairness_spread": float(np.mean(finite)) if finite else 1.0,
        "violations": float(r.violations),
    }


# --------------------------------------------------------------------------------------------
# Seeds and summaries
# --------------------------------------------------------------------------------------------


def _mean_ci(values: Sequence[float]) -> dict[str, float]:
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "lo": mean, "hi": mean}
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def run_scenario(
    bundles: Sequence[MarketBundle],
    scenario: Scenario,
    seeds: Sequence[int] = tuple(range(10)),
    pricing: PricingConfig | None = None,
    with_milp: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit the markets, run every seed, and summarize paired ratios with 95% intervals.

    The result also holds bundlewise's prices per bundle (share of the list total) of the
    first seed, under ``price_samples``.
    """
    markets = [fit_market(b, scenario) for b in bundles]
    runs = []
    samples: dict[str, list[float]] = {}
    for j, seed in enumerate(seeds):
        if progress:
            progress(f"{scenario.name}: seed {seed}")
        runs.append(
            simulate(
                markets,
                scenario,
                seed,
                pricing,
                with_milp,
                price_samples=samples if j == 0 else None,
            )
        )
    policies = list(runs[0])
    summary: dict[str, Any] = {}
    for name in policies:
        per_seed = [r[name] for r in runs]
        entry: dict[str, Any] = {key: _mean_ci([p[key] for p in per_seed]) for key in per_seed[0]}
        entry["pct_of_A"] = _mean_ci([100 * r[name]["profit"] / r[A_BOUND]["profit"] for r in runs])
        entry["pct_of_B"] = _mean_ci([100 * r[name]["profit"] / r[B_BOUND]["profit"] for r in runs])
        entry["pct_vs_component"] = _mean_ci(
            [100 * (r[name]["profit"] / r[COMPONENT]["profit"] - 1) for r in runs]
        )
        entry["violations_total"] = float(sum(p["violations"] for p in per_seed))
        summary[name] = entry
    # Paired differences: bundlewise minus each other policy, in % of B, per seed.
    for name in policies:
        if name != OURS:
            summary[OURS].setdefault("paired_minus", {})[name] = _mean_ci(
                [100 * (r[OURS]["profit"] - r[name]["profit"]) / r[B_BOUND]["profit"] for r in runs]
            )
    return {
        "scenario": asdict(scenario),
        "seeds": list(seeds),
        "markets": [
            {
                **mk.bundle.to_dict(),
                "mu": mk.mu.tolist(),
                "rho": mk.rho,
                "fitted_item_rates": mk.fitted_item_rates.tolist(),
                "fitted_bundle_rate": mk.fitted_bundle_rate,
            }
            for mk in markets
        ],
        "policies": summary,
        "price_samples": samples,
    }


def format_scenario(result: dict[str, Any]) -> str:
    """A text table of one scenario's summary."""
    lines = [
        f"Scenario {result['scenario']['name']}  (noise {result['scenario']['noise']}, "
        f"{len(result['seeds'])} seeds, 95% intervals)",
        f"{'policy':44s} {'% of B':>18s} {'% of A':>8s} {'vs comp.':>9s} {'take':>6s} "
        f"{'disc.':>6s} {'p90/p10':>8s} {'viol.':>5s}",
    ]
    for name, e in result["policies"].items():
        b = e["pct_of_B"]
        lines.append(
            f"{name:44s} {b['mean']:7.1f} [{b['lo']:5.1f},{b['hi']:5.1f}] "
            f"{e['pct_of_A']['mean']:8.1f} {e['pct_vs_component']['mean']:+8.1f}% "
            f"{e['take_rate']['mean']:6.3f} {e['mean_discount']['mean']:6.1%} "
            f"{e['fairness_spread']['mean']:8.2f} {int(e['violations_total']):5d}"
        )
    return "\n".join(lines)


__all__ = [
    "A_BOUND",
    "B_BOUND",
    "COMPONENT",
    "MILP",
    "NON_PERSONALIZED",
    "OURS",
    "POLICIES",
    "PURE",
    "SIZE",
    "UNIFORM",
    "FittedMarket",
    "MarketBundle",
    "Menu",
    "Scenario",
    "choose",
    "fit_logit",
    "fit_market",
    "format_scenario",
    "market_from_orders",
    "run_scenario",
    "scenario_grid",
    "simulate",
    "subset_values",
    "with_titles",
]
