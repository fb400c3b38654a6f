from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from bundlewise.config import PricingConfig
from bundlewise_bench.market import (
    FittedMarket,
    MarketBundle,
    Menu,
    Scenario,
    choose,
    copula_factor,
    fit_market,
    market_from_orders,
    scenario_grid,
    subset_values,
    with_titles,
)
from bundlewise_bench.policies import ExactMixedBundling, default_policies, fit_logit
from bundlewise_bench.simulator import (
    A_BOUND,
    B_BOUND,
    COMPONENT,
    OURS,
    format_scenario,
    non_personalized,
    run_scenario,
    simulate,
)

POLICIES = tuple(p.name for p in default_policies())
LABELS = tuple(p.label for p in default_policies())
NON_PERSONALIZED = tuple(p.name for p in default_policies() if not p.personalized)
MILP = ExactMixedBundling.name

TINY = Scenario(name="tiny", n_customers=200, n_train=200, n_logged=800, n_milp=5)
BUNDLES = [
    MarketBundle(
        item_ids=("a", "b"),
        titles=("a", "b"),
        list_prices=np.array([100.0, 200.0]),
        n_market=1000,
        item_rates=np.array([0.2, 0.15]),
        bundle_rate=0.12,
    ),
    MarketBundle(
        item_ids=("c", "d"),
        titles=("c", "d"),
        list_prices=np.array([500.0, 300.0]),
        n_market=1000,
        item_rates=np.array([0.1, 0.3]),
        bundle_rate=0.09,
    ),
]
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def markets() -> list[FittedMarket]:
    return [fit_market(b, TINY) for b in BUNDLES]


@pytest.fixture(scope="module")
def runs(markets: list[FittedMarket]) -> dict[int, dict[str, dict[str, float]]]:
    return {seed: simulate(markets, TINY, seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return run_scenario(BUNDLES, TINY, seeds=SEEDS)


# --------------------------------------------------------------------------------------------
# Values and the copula
# --------------------------------------------------------------------------------------------


def test_subset_values_docstring_example() -> None:
    got = subset_values(np.array([[10.0, 20.0]]), 0.5)
    assert got.tolist() == [[10.0, 20.0, 45.0]]


def test_subset_values_three_items() -> None:
    w = np.array([[1.0, 2.0, 4.0], [10.0, 20.0, 40.0]])
    got = subset_values(w, 0.25)
    assert got.shape == (2, 7)
    # (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2) with the bonus on the last only.
    assert got[0].tolist() == [1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 8.75]
    assert np.allclose(got[1], 10 * got[0])
    assert subset_values(np.ones((4, 5, 3)), 0.0).shape == (4, 5, 7)


@pytest.mark.parametrize(("rho", "k"), [(0.0, 2), (0.3, 2), (-0.5, 2), (0.9, 3), (-0.4, 3)])
def test_copula_factor_gives_the_correlation(rho: float, k: int) -> None:
    factor = copula_factor(rho, k)
    corr = (1 - rho) * np.eye(k) + rho * np.ones((k, k))
    assert np.allclose(factor @ factor.T, corr)
    assert np.allclose(factor, np.tril(factor))
    z = np.random.default_rng(0).standard_normal((200_000, k))
    sample = np.corrcoef((z @ factor.T).T)
    assert np.allclose(sample, corr, atol=0.01)


@pytest.mark.parametrize(("rho", "k"), [(1.0, 2), (1.5, 2), (-1.0, 2), (-0.5, 3), (-0.8, 3)])
def test_copula_factor_rejects_invalid_correlation(rho: float, k: int) -> None:
    with pytest.raises(ValueError, match="not valid"):
        copula_factor(rho, k)


def test_values_for_uses_the_fitted_parameters() -> None:
    market = FittedMarket(
        bundle=BUNDLES[0],
        mu=np.log(np.array([100.0, 200.0])),
        rho=0.0,
        sigma_customer=0.35,
        sigma_idio=0.0,
        complementarity=0.1,
        fitted_item_rates=np.zeros(2),
        fitted_bundle_rate=0.0,
    )
    s = np.array([0.0, np.log(2.0)])
    got = market.values_for(s, np.ones((2, 2)))
    assert np.allclose(got, [[100.0, 200.0, 330.0], [200.0, 400.0, 660.0]])
    drawn = market.draw(7, np.random.default_rng(0))
    assert drawn.s.shape == (7,) and drawn.values.shape == (7, 3)


# --------------------------------------------------------------------------------------------
# Choices
# --------------------------------------------------------------------------------------------

COSTS = np.array([6.0, 4.0, 10.0])


def test_choose_buys_nothing_on_ties() -> None:
    values = np.array([[10.0, 5.0, 15.0]])
    out = choose(values, Menu(np.array([10.0, 5.0, 15.0]), np.array([15.0])), COSTS)
    assert out.choice.tolist() == [0]
    assert out.paid.tolist() == [0.0]
    assert out.profit.tolist() == [0.0]
    assert out.surplus.tolist() == [0.0]


def test_choose_takes_the_bundle_offer_with_the_highest_surplus() -> None:
    values = np.array([[10.0, 10.0, 23.0], [10.0, 10.0, 23.0], [12.0, 1.0, 14.0]])
    comp = np.array([8.0, 8.0, 16.0])
    out = choose(values, Menu(comp, np.array([14.0, np.nan, 14.0])), COSTS)
    # Shopper 0: bundle offer (surplus 9) beats the pair at list (7) and the items (2).
    # Shopper 1: no offer (NaN), so the pair at list. Shopper 2: item 0 (4) beats the offer (0).
    assert out.choice.tolist() == [4, 3, 1]
    assert out.paid.tolist() == [14.0, 16.0, 8.0]
    assert out.surplus.tolist() == [9.0, 7.0, 4.0]
    # profit = paid - cost of what was bought (the offer costs what the whole bundle costs)
    assert out.profit.tolist() == [4.0, 6.0, 2.0]


def test_choose_without_bundle_offer_and_not_sold_subsets() -> None:
    values = np.array([[10.0, 10.0, 23.0], [3.0, 9.0, 12.0]])
    prices = np.array([np.inf, 8.0, 17.0])  # item 0 alone is not sold
    out = choose(values, Menu(prices), COSTS)
    assert out.choice.tolist() == [3, 2]
    assert out.profit.tolist() == [7.0, 4.0]
    all_nan = choose(values, Menu(prices, np.full(2, np.nan)), COSTS)
    assert all_nan.choice.tolist() == out.choice.tolist()


def test_choose_per_shopper_prices() -> None:
    values = np.array([[10.0, 10.0, 23.0], [10.0, 10.0, 23.0]])
    prices = np.array([[8.0, 8.0, 16.0], [30.0, 30.0, 30.0]])
    out = choose(values, Menu(prices), COSTS)
    assert out.choice.tolist() == [3, 0]
    assert out.paid.tolist() == [16.0, 0.0]


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def test_fit_logit_recovers_known_coefficients() -> None:
    rng = np.random.default_rng(3)
    n = 50_000
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(0.5, 1.5, n)])
    truth = np.array([1.0, 0.7, -2.5])
    y = (rng.random(n) < expit(x @ truth)).astype(np.float64)
    got = fit_logit(x, y)
    assert got.shape == (3,)
    assert np.allclose(got, truth, atol=0.1)


def test_fit_logit_docstring_example() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(20000), rng.normal(size=20000)])
    y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 - 2.0 * x[:, 1])))).astype(float)
    assert np.allclose(fit_logit(x, y), [0.5, -2.0], atol=0.1)


def test_fit_logit_is_the_maximum_likelihood_estimate() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(20000), rng.normal(size=20000)])
    y = (rng.random(20000) < expit(0.5 - 2.0 * x[:, 1])).astype(np.float64)

    def nll(theta: np.ndarray) -> float:
        z = x @ theta
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    mle = minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-8}).x
    assert np.allclose(fit_logit(x, y, ridge=0.0), mle, atol=1e-4)
    assert np.allclose(fit_logit(x, y), mle, atol=1e-3)


def _bundle(bundle_rate: float) -> MarketBundle:
    return MarketBundle(
        item_ids=("a", "b"),
        titles=("A", "B"),
        list_prices=np.array([100.0, 200.0]),
        n_market=1000,
        item_rates=np.array([0.2, 0.15]),
        bundle_rate=bundle_rate,
    )


@pytest.mark.parametrize(
    ("bundle_rate", "scenario"),
    [(0.08, Scenario(complementarity=0.0)), (0.12, Scenario()), (0.14, Scenario())],
)
def test_fit_market_reproduces_the_real_rates(bundle_rate: float, scenario: Scenario) -> None:
    fitted = fit_market(_bundle(bundle_rate), scenario)
    assert np.allclose(fitted.fitted_item_rates, [0.2, 0.15], atol=0.01)
    assert fitted.fitted_bundle_rate == pytest.approx(bundle_rate, abs=0.01)
    assert -0.95 <= fitted.rho <= 0.95
    assert fitted.k == 2 and fitted.mu.shape == (2,)


def test_fit_market_stops_at_the_lower_bound_when_co_purchases_are_too_rare() -> None:
    # With the default complementarity even rho = -0.95 gives more co-purchases than 8%.
    fitted = fit_market(_bundle(0.08), Scenario())
    assert fitted.rho == pytest.approx(-0.95)
    assert fitted.fitted_bundle_rate > 0.08
    assert np.allclose(fitted.fitted_item_rates, [0.2, 0.15], atol=0.01)


def test_fit_market_stops_at_the_upper_bound_when_co_purchases_are_too_common() -> None:
    fitted = fit_market(_bundle(0.149), Scenario(complementarity=0.0))
    assert fitted.rho == pytest.approx(0.95)
    assert fitted.fitted_bundle_rate < 0.149
    assert np.allclose(fitted.fitted_item_rates, [0.2, 0.15], atol=0.01)


def test_fit_market_keeps_a_fixed_correlation() -> None:
    fitted = fit_market(_bundle(0.08), Scenario(correlation=0.3))
    assert fitted.rho == 0.3
    assert np.allclose(fitted.fitted_item_rates, [0.2, 0.15], atol=0.01)


def test_fit_market_is_deterministic() -> None:
    a = fit_market(_bundle(0.12), TINY)
    b = fit_market(_bundle(0.12), TINY)
    assert a.rho == b.rho and np.array_equal(a.mu, b.mu)


# --------------------------------------------------------------------------------------------
# Markets from real orders
# --------------------------------------------------------------------------------------------

#: (order_id, customer_id, item_id, quantity, unit_price_minor)
Line = tuple[str, "str | None", str, int, int]

#: Customers c1..c10 (c10 only returns A): n_A = 5, n_B = 4, n_C = 5, n_D = 3, n_E = 2 of 10.
#: Pairs: AB 4 customers (lift 2.0), AC 3 (1.2), BC 2 (1.0), CD 2 (1.33).
ORDERS: list[Line] = [
    ("o1", "c1", "A", 1, 100),
    ("o1", "c1", "B", 2, 50),
    ("o1", "c1", "C", 1, 200),
    ("o2", "c2", "A", 1, 100),
    ("o2", "c2", "B", 1, 50),
    ("o2", "c2", "C", 1, 200),
    ("o3", "c3", "A", 1, 120),
    ("o3", "c3", "B", 1, 50),
    ("o4", "c4", "A", 1, 130),
    ("o4", "c4", "B", 1, 50),
    ("o5", "c4", "B", 3, 50),  # a repeat purchase counts once
    ("o6", "c5", "A", 1, 110),
    ("o6", "c5", "C", 1, 200),
    ("o7", "c6", "C", 1, 200),
    ("o7", "c6", "D", 1, 290),
    ("o8", "c7", "C", 1, 200),
    ("o8", "c7", "D", 1, 310),
    ("o9", "c8", "D", 1, 300),
    ("o10", "c9", "E", 1, 70),
    ("o11", "c10", "E", 1, 70),
    ("o12", "c10", "A", -1, 100),  # a return does not make c10 a buyer of A
    ("o13", None, "A", 1, 110),  # a guest: not a customer of the market
    ("o13", None, "B", 1, 50),
]


def order_lines(lines: Sequence[Line]) -> pa.Table:
    start = datetime(2024, 1, 1)
    return pa.table(
        {
            "order_id": [r[0] for r in lines],
            "customer_id": [r[1] for r in lines],
            "ts": pa.array(
                [start + timedelta(hours=i) for i in range(len(lines))], pa.timestamp("us")
            ),
            "item_id": [r[2] for r in lines],
            "quantity": pa.array([r[3] for r in lines], pa.int64()),
            "unit_price_minor": pa.array([r[4] for r in lines], pa.int64()),
            "currency": ["GBP"] * len(lines),
            "country": ["United Kingdom"] * len(lines),
            "source_row": pa.array(range(1, len(lines) + 1), pa.int64()),
        }
    )


@pytest.mark.parametrize("min_lift", [1.0, 1.1])
def test_market_from_orders_picks_pairs_without_reusing_items(min_lift: float) -> None:
    bundles = market_from_orders(order_lines(ORDERS), min_customers=2, min_lift=min_lift)
    # AB first (4 customers); AC and BC reuse an item; then CD.
    assert [b.item_ids for b in bundles] == [("A", "B"), ("C", "D")]
    ab, cd = bundles
    assert ab.titles == ("A", "B")
    assert ab.n_market == cd.n_market == 10
    assert ab.item_rates.tolist() == pytest.approx([0.5, 0.4])
    assert ab.bundle_rate == pytest.approx(0.4)
    assert cd.item_rates.tolist() == pytest.approx([0.5, 0.3])
    assert cd.bundle_rate == pytest.approx(0.2)
    assert ab.list_prices.tolist() == [110.0, 50.0]  # medians
    assert cd.list_prices.tolist() == [200.0, 300.0]
    used = [i for b in bundles for i in b.item_ids]
    assert len(used) == len(set(used))


def test_market_from_orders_filters_by_lift_and_count() -> None:
    table = order_lines(ORDERS)
    assert [b.item_ids for b in market_from_orders(table, min_customers=2, min_lift=1.5)] == [
        ("A", "B")
    ]
    assert [b.item_ids for b in market_from_orders(table, n_bundles=1, min_customers=2)] == [
        ("A", "B")
    ]
    assert [b.item_ids for b in market_from_orders(table, min_customers=4, min_lift=1.0)] == [
        ("A", "B")
    ]


@pytest.mark.parametrize(("min_customers", "min_lift"), [(5, 1.0), (2, 2.5)])
def test_market_from_orders_raises_when_nothing_qualifies(
    min_customers: int, min_lift: float
) -> None:
    with pytest.raises(ValueError, match="no item pair"):
        market_from_orders(order_lines(ORDERS), min_customers=min_customers, min_lift=min_lift)


def test_market_bundle_to_dict_and_titles() -> None:
    titled = with_titles(BUNDLES[:1], {"a": "Apple"})
    assert titled[0].titles == ("Apple", "b")
    d = titled[0].to_dict()
    assert d["list_prices"] == [100.0, 200.0]
    assert d["item_rates"] == [0.2, 0.15]
    assert d["bundle_rate"] == 0.12


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def test_every_policy_is_reported(runs: dict[int, dict[str, dict[str, float]]]) -> None:
    for result in runs.values():
        assert set(result) == set(POLICIES)
        assert set(NON_PERSONALIZED) < set(POLICIES)
        for metrics in result.values():
            assert all(np.isfinite(v) for v in metrics.values())
            assert 0.0 <= metrics["purchase_rate"] <= 1.0
            assert 0.0 <= metrics["take_rate"] <= metrics["purchase_rate"]


def test_perfect_discrimination_bounds_every_policy(
    runs: dict[int, dict[str, dict[str, float]]],
) -> None:
    for result in runs.values():
        top = result[A_BOUND]["profit"]
        for name in POLICIES:
            assert result[name]["profit"] <= top + 1e-6, name
        assert result[A_BOUND]["consumer_surplus"] == 0.0


def test_guard_railed_policies_never_violate(
    runs: dict[int, dict[str, dict[str, float]]],
) -> None:
    for result in runs.values():
        assert result[OURS]["violations"] == 0
        assert result[B_BOUND]["violations"] == 0


def test_fairness_band_holds_for_bundlewise(
    runs: dict[int, dict[str, dict[str, float]]],
) -> None:
    band = PricingConfig().fairness_band
    for result in runs.values():
        assert 1.0 <= result[OURS]["fairness_spread"] <= 1 + band + 1e-9


def test_narrower_fairness_band(markets: list[FittedMarket]) -> None:
    result = simulate(markets, TINY, 0, PricingConfig(fairness_band=0.1), with_milp=False)
    assert MILP not in result
    assert set(result) == set(POLICIES) - {MILP}
    assert 1.0 <= result[OURS]["fairness_spread"] <= 1.1 + 1e-9


def test_simulate_is_deterministic(
    markets: list[FittedMarket], runs: dict[int, dict[str, dict[str, float]]]
) -> None:
    assert simulate(markets, TINY, 0) == runs[0]
    assert runs[0] != runs[1]


def test_run_scenario_summary(summary: dict[str, Any]) -> None:
    policies = summary["policies"]
    assert isinstance(policies, dict)
    assert list(policies) == list(POLICIES)
    assert policies[B_BOUND]["pct_of_B"]["mean"] == pytest.approx(100.0)
    assert policies[A_BOUND]["pct_of_A"]["mean"] == pytest.approx(100.0)
    assert policies[COMPONENT]["pct_vs_component"]["mean"] == pytest.approx(0.0, abs=1e-9)
    for name in POLICIES:
        assert policies[name]["pct_of_A"]["mean"] <= 100.0 + 1e-6
        entry = policies[name]["profit"]
        assert entry["lo"] <= entry["mean"] <= entry["hi"]
    assert policies[OURS]["violations_total"] == 0.0
    assert policies[B_BOUND]["violations_total"] == 0.0
    band = PricingConfig().fairness_band
    assert policies[OURS]["fairness_spread"]["mean"] <= 1 + band + 1e-9
    assert set(policies[OURS]["paired_minus"]) == set(POLICIES) - {OURS}
    assert summary["seeds"] == list(SEEDS)
    assert summary["scenario"]["name"] == "tiny"
    assert len(summary["markets"]) == len(BUNDLES)
    assert summary["markets"][0]["item_ids"] == ("a", "b")
    assert policies[A_BOUND]["label"] == "A: perfect price discrimination"
    assert policies[A_BOUND]["bound"] and policies[OURS]["personalized"]
    assert non_personalized(summary) == [p for p in POLICIES if p in NON_PERSONALIZED]
    assert summary["engine_fallbacks"]["fits"] == len(SEEDS) * len(BUNDLES)


def test_run_scenario_is_deterministic_and_matches_simulate(
    summary: dict[str, Any], runs: dict[int, dict[str, dict[str, float]]]
) -> None:
    again = run_scenario(BUNDLES, TINY, seeds=SEEDS)
    assert again == summary
    mean_profit = np.mean([runs[s][OURS]["profit"] for s in SEEDS])
    assert summary["policies"][OURS]["profit"]["mean"] == pytest.approx(mean_profit)


def test_format_scenario_names_every_policy(summary: dict[str, Any]) -> None:
    text = format_scenario(summary)
    assert isinstance(text, str)
    assert text.startswith("Scenario tiny")
    for label in LABELS:
        assert label in text
    assert len(text.splitlines()) == 2 + len(POLICIES)


# --------------------------------------------------------------------------------------------
# The scenario grid
# --------------------------------------------------------------------------------------------


def _changed(a: Scenario, b: Scenario) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(Scenario)
        if f.name != "name" and getattr(a, f.name) != getattr(b, f.name)
    }


@pytest.mark.parametrize("base", [None, TINY, Scenario(noise=0.4, cost_share=0.8)])
def test_scenario_grid_varies_one_factor_at_a_time(base: Scenario | None) -> None:
    grid = scenario_grid(base)
    first = base or Scenario()
    assert grid[0] == first
    names = [s.name for s in grid]
    assert len(names) == len(set(names))
    for scenario in grid[1:]:
        assert len(_changed(first, scenario)) == 1, scenario.name
    assert {next(iter(_changed(first, s))) for s in grid[1:]} == {
        "noise",
        "correlation",
        "complementarity",
        "cost_share",
    }


def test_scenario_grid_default_values() -> None:
    grid = scenario_grid()
    assert grid[0] == Scenario()
    assert [s.noise for s in grid if s.name.startswith("noise")] == [0.0, 0.1, 0.4, 0.8]
    assert [s.correlation for s in grid if s.name.startswith("correlation")] == [0.0, 0.6]


def test_scenario_grid_skips_correlation_equal_to_base() -> None:
    base = Scenario(correlation=0.6)
    for scenario in scenario_grid(base)[1:]:
        assert len(_changed(base, scenario)) == 1, scenario.name


def test_price_samples_stay_in_the_guardrails_and_the_band(
    markets: list[FittedMarket], runs: dict[int, dict[str, dict[str, float]]]
) -> None:
    config = PricingConfig()
    samples: dict[str, list[float]] = {}
    result = simulate(markets, TINY, 0, price_samples=samples)
    assert result == runs[0]  # recording prices changes nothing
    assert set(samples) == {"a + b", "c + d"}
    for shares in samples.values():
        x = np.array(shares)
        assert x.size > 0
        # shares of the optimized list total: within the discount cap and the list cap
        assert (x >= 1 - config.max_discount - 1e-3).all() and (x <= 1 + 1e-3).all()
        # every offered price, not only the accepted ones, is inside the fairness band
        assert x.max() / x.min() <= 1 + config.fairness_band + 1e-3


def test_run_scenario_keeps_the_first_seeds_prices(summary: dict[str, Any]) -> None:
    assert set(summary["price_samples"]) == {"a + b", "c + d"}
