"""The engine's price-response fallbacks on markets with a known answer.

A market whose shoppers' price levels spread far wider than the allowed price range has flat
demand inside that range: about the same share accepts at every allowed price, so the best
offer is the list price (bound B prices there) and a logged-offer fit finds a slope that is
not negative in some fits. Those fits must price at the list, not at the discount cap.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from bundlewise.config import PricingConfig
from bundlewise.pricing import Guardrails
from bundlewise_bench.market import (
    FittedMarket,
    MarketBundle,
    Menu,
    Scenario,
    choose,
    component_menu,
)
from bundlewise_bench.policies import (
    MIN_ACCEPTS,
    BestTrueOffer,
    Bundlewise,
    ComponentPricing,
    EngineFit,
    engine_fit,
)
from bundlewise_bench.simulator import simulate

BUNDLE = MarketBundle(
    item_ids=("a", "b"),
    titles=("a", "b"),
    list_prices=np.array([1000.0, 1000.0]),
    n_market=1000,
    item_rates=np.array([0.5, 0.5]),
    bundle_rate=0.3,
)
# price levels with sd 16 (log scale) against a price range of 0.7-1.0 x list: flat demand;
# the engine's estimate of each shopper's level is poor (noise 5), so it cannot explain it away
FLAT = FittedMarket(
    BUNDLE, np.log(BUNDLE.list_prices), 0.0, 16.0, 0.35, 0.15, BUNDLE.item_rates, 0.3
)
SCENARIO = Scenario(name="flat", noise=5.0, n_customers=1000, n_train=500, n_logged=4000)
PRIOR_B = PricingConfig().sensitivity_prior
GUARDRAILS = Guardrails.from_config(PricingConfig())
COSTS = component_menu(BUNDLE.list_prices * SCENARIO.cost_share, 2)


def _fit(market: FittedMarket, seed: int, scenario: Scenario = SCENARIO) -> EngineFit:
    rng = np.random.default_rng(seed)
    return engine_fit(market, BUNDLE.list_prices, COSTS, GUARDRAILS, scenario, rng, PRIOR_B)


def _logged_share(market: FittedMarket, seed: int) -> tuple[float, float]:
    """Mean predicted P(accept) over the logged offers of ``_fit(market, seed)``, and the
    observed acceptance share (the same random numbers as the fit)."""
    fit = _fit(market, seed)
    rng = np.random.default_rng(seed)
    logged = market.draw(SCENARIO.n_logged, rng)
    s_hat = logged.s + SCENARIO.noise * rng.standard_normal(SCENARIO.n_logged)
    L = float(BUNDLE.list_prices.sum())
    lo, hi = 0.7 * L, L
    price = rng.uniform(lo, hi, SCENARIO.n_logged)
    out = choose(logged.values, Menu(component_menu(BUNDLE.list_prices, 2), price), COSTS)
    observed = float((out.choice == 4).mean())
    predicted = expit(fit.appeal(s_hat) - (fit.b0 + fit.b1 * s_hat) * price / L)
    return float(predicted.mean()), observed


def test_a_flat_slope_prices_as_flat_demand_implies() -> None:
    fits = {seed: _fit(FLAT, seed) for seed in range(30)}
    flat = [seed for seed, fit in fits.items() if fit.fallback == "flat"]
    assert flat, "the flat market should make some fits find no falling demand"
    for seed in flat:
        fit = fits[seed]
        assert fit.b0 == 0.0 and fit.b1 == 0.0
        # the intercept is refitted under the slope used: predicted = observed acceptance
        predicted, observed = _logged_share(FLAT, seed)
        assert 0.2 < observed < 0.8
        assert predicted == pytest.approx(observed, abs=0.01)


def test_too_few_acceptances_use_the_prior_slope_with_a_consistent_intercept() -> None:
    # values far below the allowed prices: almost nobody accepts
    cheap = FittedMarket(
        BUNDLE, np.log(BUNDLE.list_prices) - 3.0, 0.0, 0.35, 0.35, 0.15, BUNDLE.item_rates, 0.0
    )
    fit = _fit(cheap, 0)
    assert fit.fallback == "prior" and fit.b0 == PRIOR_B
    predicted, observed = _logged_share(cheap, 0)
    assert observed * SCENARIO.n_logged < MIN_ACCEPTS
    assert predicted == pytest.approx(observed, abs=0.005)


def test_profit_on_a_flat_market_is_near_the_best_policy() -> None:
    """Known answer: flat demand, so the best offer is the list price. Before the fix the
    flat-slope fits quoted the discount cap to everyone (about 55% of B in those seeds)."""
    shares, n_flat = [], 0
    for seed in range(12):
        engine = Bundlewise()
        policies = [BestTrueOffer(), engine, ComponentPricing()]
        result = simulate([FLAT], SCENARIO, seed, policies=policies)
        n_flat += sum(f.fallback == "flat" for f in engine.fits)
        best = result[BestTrueOffer.name]
        shares.append(result[Bundlewise.name]["profit"] / best["profit"])
        assert best["mean_discount"] < 0.02  # B confirms the answer: (nearly) no discount
        if engine.fits[0].fallback == "flat":
            assert result[Bundlewise.name]["mean_discount"] < 0.02
    assert n_flat >= 1
    assert min(shares) > 0.97
    assert float(np.mean(shares)) > 0.99
