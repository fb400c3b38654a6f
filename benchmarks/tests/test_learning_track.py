"""The learning track: markets, guardrail checks, and a quick closed-loop run of the script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from learning_world import world_pricer

from bundlewise.config import LearningConfig
from bundlewise.learning import ResponsePosterior, ThompsonPolicy
from bundlewise.learning.policy import offer_context
from bundlewise_bench.learning_track import (
    LEARNERS,
    LIST,
    ORACLE,
    STATIC,
    THOMPSON,
    Bench,
    Demand,
    GuardrailCheck,
    Market,
    OfferPool,
    PolicySpec,
    run_fixed,
    run_learner,
)

SCRIPT = Path(__file__).resolve().parents[1] / "learning.py"


def test_the_true_take_rate_at_the_list_is_the_priors_and_the_slope_is_scaled() -> None:
    pricer = world_pricer()
    pool = OfferPool.from_pricer(pricer, 5)
    for scale in (0.5, 1.0, 2.0):
        demand = Demand.draw(pool, Market("m", scale), seed=0, bundle_sd=1e-9, pivot=1.0)
        i = np.arange(pool.n)
        at_list = demand.p_accept(i, pool.list_total, scale)
        prior = [
            offer_context(pricer, pool.customers[pool.customer_of[k]], pool.bundles[k])
            for k in range(pool.n)
        ]
        expected = [
            1 / (1 + np.exp(-(c.appeal - b))) for c, b in zip(prior, pool.prior_beta, strict=True)
        ]
        np.testing.assert_allclose(at_list, expected, rtol=1e-6)
        # logit difference between 0.8 L and L is scale * beta0 * 0.2
        low = demand.p_accept(i, 0.8 * pool.list_total, scale)
        diff = np.log(low / (1 - low)) - np.log(at_list / (1 - at_list))
        np.testing.assert_allclose(diff, 0.2 * scale * pool.prior_beta, rtol=1e-6)
    literal = Demand.draw(pool, Market("m", 2.0), seed=0, bundle_sd=1e-9, pivot=0.0)
    p = literal.p_accept(np.arange(pool.n), pool.list_total, 2.0)
    at_zero = 1 / (1 + np.exp(-(pool.appeal - 2.0 * pool.prior_beta)))
    np.testing.assert_allclose(p, at_zero, rtol=1e-6)


def test_the_guardrail_check_counts_every_broken_rule() -> None:
    pricer = world_pricer()
    check = GuardrailCheck(pricer)
    bundle = ("mug", "tea")  # list 1600, cost 640: floor max(704, 1120) = 1120
    check.check(bundle, 1599, 1600, 640)
    assert check.total == 0
    check.check(bundle, 1109, 1600, 640)  # below the discount cap, and the band vs 1599
    check.check(bundle, 1601, 1600, 640)  # above the list; ends in 1
    check.check(bundle, 1500, 1600, 640)  # ends in 0
    assert check.rules["max_discount"] == 1
    assert check.rules["list_total_cap"] == 1
    assert check.rules["price_ending"] == 2
    assert check.rules["fairness_band"] == 3  # 1109 vs 1599, and every price after it
    assert check.n_checked == 4


def test_every_learner_stays_on_the_guarded_ladder_with_valid_propensities() -> None:
    pricer = world_pricer()
    bench = Bench(pricer, LearningConfig(mc_draws=64), OfferPool.from_pricer(pricer, 5))
    market = Market("2x", 2.0)
    oracle = run_fixed(bench, ORACLE, market, 0, 600)
    assert np.all(oracle.expected == oracle.oracle)
    for kind, param in ((THOMPSON, None), ("epsilon_greedy", 0.2), ("ucb", 1.0)):
        run = run_learner(bench, PolicySpec(kind, param), market, 0, 600, log=kind == THOMPSON)
        assert run.violations == {} and run.n_checked == 600
        assert 0.0 < run.extra["propensity_min"] <= run.extra["propensity_max"] <= 1.0
        assert np.all(run.expected <= run.oracle + 1e-9)
        assert np.array_equal(run.oracle, oracle.oracle)  # the same offers for every policy
    log = run_learner(bench, PolicySpec(THOMPSON), market, 0, 600, log=True).extra["log"]
    np.testing.assert_allclose(log["probs"].sum(axis=1), 1.0)
    rows = np.arange(600)
    np.testing.assert_allclose(log["probs"][rows, log["arms"]], log["propensity"])


def test_thompson_learns_the_direction_of_the_market() -> None:
    """2x the prior's sensitivity: the posterior sensitivity rises toward the truth and prices
    fall toward the oracle's; 0.5x: prices rise. The list price loses where discounts pay."""
    pricer = world_pricer()
    cfg = LearningConfig(mc_draws=64)
    pool = OfferPool.from_pricer(pricer, 5)
    bench = Bench(pricer, cfg, pool)
    prior = ThompsonPolicy(pricer, ResponsePosterior.from_pricer(pricer, cfg), cfg, "v", 0.0)
    prior_price = np.mean(
        [
            prior.decide(pool.customers[pool.customer_of[i]], pool.bundles[i], "k").price_minor
            / pool.list_total[i]
            for i in range(pool.n)
        ]
    )
    n, last = 3000, 750
    for seed in (0, 1):
        two = run_learner(bench, PolicySpec(THOMPSON), Market("2x", 2.0), seed, n)
        assert all(b > 4.0 + 2.0 for b in two.extra["posterior_beta"].values())
        assert two.rel_price[-last:].mean() < prior_price - 0.03
        listed = run_fixed(bench, LIST, Market("2x", 2.0), seed, n)
        assert two.expected[-last:].mean() > 1.5 * listed.expected[-last:].mean()
        assert two.expected[-last:].sum() > 0.95 * two.oracle[-last:].sum()
        half = run_learner(bench, PolicySpec(THOMPSON), Market("0.5x", 0.5), seed, n)
        assert half.rel_price[-last:].mean() > prior_price + 0.02


@pytest.mark.integration
def test_the_quick_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "learning.json"
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out),
         "--html", str(tmp_path / "learning.html")],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Thompson (product default)" in done.stdout
    result = json.loads(out.read_text())
    assert set(result["markets"]) == {"0.5x", "1x", "2x", "shift 1x->2x"}
    n, seeds = result["n_offers"], len(result["seeds"])
    for market in result["markets"].values():
        policies = market["policies"]
        for name, entry in policies.items():
            assert entry["violations_total"] == 0, (name, entry["violations_by_rule"])
            if name != LIST:
                assert entry["prices_checked"] == n * seeds
        for name in LEARNERS:
            assert 0.0 < policies[name]["propensity_min"] <= policies[name]["propensity_max"] <= 1
        assert policies[ORACLE]["regret"]["mean"] == 0.0
    two = result["markets"]["2x"]["policies"]
    assert two[THOMPSON]["profit_per_offer"]["mean"] > 1.2 * two[LIST]["profit_per_offer"]["mean"]
    assert two[STATIC]["violations_total"] == 0
    ope = result["markets"]["1x"]["ope"]
    assert ope and all(t["truth"]["mean"] > 0 for t in ope.values())
    html = (tmp_path / "learning.html").read_text()
    assert "data:image/png;base64," in html and "Market 2x" in html
