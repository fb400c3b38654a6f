"""Bundle markets with known willingness to pay, fitted to real orders.

**Market.** Each bundle (a pair of items bought together in the real data) is its own market.
Shopper :math:`c` values item :math:`j` at

.. math::

    W_{cj} = \\exp(\\mu_j + s_c + \\eta_{cj}),\\qquad s_c \\sim N(0, \\sigma_s^2),\\qquad
    \\eta_c \\sim N(0, \\sigma_\\eta^2 [(1-\\rho) I + \\rho \\mathbf{1}\\mathbf{1}^\\top])

(lognormal, correlated across items through a Gaussian copula). :math:`s_c` is what a store can
learn about a shopper (their price level); :math:`\\eta` is unknown to everyone. Owning the whole
bundle is worth :math:`(1 + \\kappa)\\sum_j W_{cj}` (complementarity bonus :math:`\\kappa`). The
shopper buys the option of highest surplus among: nothing, any subset at the component prices,
and the bundle offer, if any (:func:`choose`).

**Fit to real data.** Every customer in the data is in every bundle's market;
:math:`\\mu_j` and :math:`\\rho` are fitted so that, at the real list prices (median unit prices)
and with no bundle offer, the simulated shares of customers buying each item and buying both
match the real shares (where even :math:`\\rho = 0.95` falls short of the real co-purchase
share, the fit stops there and the result reports both shares).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats

FloatArray = npt.NDArray[np.float64]


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
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
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


def all_subsets(k: int) -> list[tuple[int, ...]]:
    return [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]


@dataclass(frozen=True)
class Shoppers:
    """Simulated shoppers of one bundle market: price levels and values.

    ``values`` has shape (n, n_subsets), subsets in the order of ``all_subsets(k)``; the last
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
    subsets = all_subsets(k)
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
    return np.array([prices[list(s)].sum() for s in all_subsets(k)], dtype=np.float64)


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
    subsets = all_subsets(k)
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
