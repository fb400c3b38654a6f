"""The simulator's engine prices through the product's Pricer, and that changes no price.

Known answer: the optimizer called directly on the same fitted inputs (the list total, the
bundle's cost, each shopper's appeal, sensitivity and opportunity cost) gives the prices the
engine's :class:`~bundlewise.pricing.Pricer` gives, to the minor unit, with and without a
fairness band (a decision the Pricer solves over the whole batch of shoppers).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bundlewise.config import PricingConfig
from bundlewise.pricing import Guardrails, quote_prices
from bundlewise.pricing.optimizer import Objective
from bundlewise_bench.market import FittedMarket, MarketBundle, Scenario, component_menu
from bundlewise_bench.policies import MarketRun, engine_fit, engine_pricer

BUNDLE = MarketBundle(
    item_ids=("a", "b"),
    titles=("a", "b"),
    list_prices=np.array([1295.0, 849.0]),
    n_market=1000,
    item_rates=np.array([0.4, 0.3]),
    bundle_rate=0.15,
)
MARKET = FittedMarket(
    BUNDLE, np.log(BUNDLE.list_prices), 0.0, 0.35, 0.35, 0.15, BUNDLE.item_rates, 0.3
)
SCENARIO = Scenario(name="t", noise=0.2, n_customers=400, n_train=200, n_logged=3000)


def _run(pricing: PricingConfig, seed: int) -> MarketRun:
    rng = np.random.default_rng(seed)
    costs = component_menu(BUNDLE.list_prices * SCENARIO.cost_share, 2)
    return MarketRun(
        market=MARKET,
        scenario=SCENARIO,
        pricing=pricing,
        guardrails=Guardrails.from_config(pricing),
        train=MARKET.draw(SCENARIO.n_train, rng),
        test=MARKET.draw(SCENARIO.n_customers, rng),
        costs=costs,
        list_prices=BUNDLE.list_prices * np.array([1.03, 0.97]),
        rng=rng,
    )


@pytest.mark.parametrize("band", [-1.0, 0.1])
@pytest.mark.parametrize("opportunity", [True, False])
def test_the_pricer_gives_the_optimizer_prices(band: float, opportunity: bool) -> None:
    pricing = dataclasses.replace(PricingConfig(), fairness_band=band)
    run = _run(pricing, seed=3)
    fit = engine_fit(
        run.market, run.list_prices, run.costs, run.guardrails, run.scenario, run.rng, 8.0
    )
    n = run.test.values.shape[0]
    s_hat = run.test.s + 0.2 * run.rng.standard_normal(n)
    pricer = engine_pricer(run, fit, s_hat, opportunity=opportunity)
    shoppers = [f"shopper{i}" for i in range(n)]
    rows = pricer.price_rows(shoppers, [list(pricer.catalog)] * n)
    assert int(rows.list_total_minor[0]) == round(run.list_total)
    assert int(rows.cost_minor[0]) == round(run.costs[-1])
    direct = quote_prices(
        np.full(n, round(run.list_total)),
        np.full(n, round(run.costs[-1])),
        fit.appeal(s_hat),
        fit.sensitivity(s_hat),
        run.guardrails,
        objective=Objective.from_config(pricing),
        bundle_keys=[0] * n,
        fairness_band=band if band >= 0 else None,
        opportunity_cost_minor=fit.opportunity(s_hat) if opportunity else None,
    )
    assert rows.offered.all() and direct.is_feasible.all()
    np.testing.assert_array_equal(rows.quotes.price_minor, direct.price_minor)
    # the shoppers differ, so the prices do (a personalized engine, not one price)
    assert len(np.unique(rows.quotes.price_minor)) > 5


def test_opportunity_cost_raises_prices() -> None:
    """A declined offer that still earns something makes a discount less worth giving."""
    run = _run(PricingConfig(), seed=5)
    fit = engine_fit(
        run.market, run.list_prices, run.costs, run.guardrails, run.scenario, run.rng, 8.0
    )
    assert fit.opportunity(np.zeros(1))[0] > 0
    n = run.test.values.shape[0]
    s_hat = run.test.s
    shoppers = [f"shopper{i}" for i in range(n)]
    with_cost = engine_pricer(run, fit, s_hat, opportunity=True)
    without = engine_pricer(run, fit, s_hat, opportunity=False)
    bundle = list(with_cost.catalog)
    p_with = with_cost.price_rows(shoppers, [bundle] * n).quotes.price_minor
    p_without = without.price_rows(shoppers, [bundle] * n).quotes.price_minor
    assert (p_with >= p_without).all() and (p_with > p_without).any()
