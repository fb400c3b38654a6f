"""The market simulator: every policy on the same simulated shoppers, over seeds.

For each seed and bundle market (:mod:`bundlewise_bench.market`), training and test shoppers
are drawn once; component prices are optimized on the training shoppers (the store's list for
mixed bundling); then every :class:`~bundlewise_bench.policies.Policy` prices the same test
shoppers (common random numbers) and its profit, revenue, consumer surplus, take rate,
discount, price spread and guardrail violations are summed over the markets.
:func:`run_scenario` summarizes seeds as paired ratios to the bounds with 95% intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from bundlewise.config import PricingConfig
from bundlewise.pricing import Guardrails
from bundlewise.pricing.guardrails import price_bounds
from bundlewise_bench.market import (
    FittedMarket,
    FloatArray,
    MarketBundle,
    Outcome,
    Scenario,
    component_menu,
    fit_market,
)
from bundlewise_bench.policies import (
    BestTrueOffer,
    Bundlewise,
    ComponentPricing,
    MarketRun,
    PerfectDiscrimination,
    Policy,
    default_policies,
    optimize_component_prices,
)

#: Result keys of the bounds, the reference policy and the engine.
A_BOUND = PerfectDiscrimination.name
B_BOUND = BestTrueOffer.name
COMPONENT = ComponentPricing.name
OURS = Bundlewise.name


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
    policies: Sequence[Policy] | None = None,
) -> dict[str, dict[str, float]]:
    """Run every policy on the same simulated shoppers; returns metrics per policy name.

    ``policies`` defaults to :func:`~bundlewise_bench.policies.default_policies` (``with_milp``
    and ``engine_opportunity`` configure those); they run in the given order, drawing random
    numbers from one generator seeded with ``seed``. When ``price_samples`` is given, the
    engine's (:class:`~bundlewise_bench.policies.Bundlewise`) bundle prices, as a share of the
    list total, are stored in it per bundle, for plots.
    """
    config = pricing or PricingConfig()
    guardrails = Guardrails.from_config(config)
    chosen = (
        list(policies)
        if policies is not None
        else default_policies(with_milp=with_milp, opportunity=engine_opportunity)
    )
    names = [p.name for p in chosen]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique: {names}")
    results = {p.name: PolicyResult() for p in chosen}
    rng = np.random.default_rng(seed)
    for market in markets:
        k = market.k
        costs = component_menu(market.bundle.list_prices * scenario.cost_share, k)
        train = market.draw(scenario.n_train, rng)
        test = market.draw(scenario.n_customers, rng)
        run = MarketRun(
            market=market,
            scenario=scenario,
            pricing=config,
            guardrails=guardrails,
            train=train,
            test=test,
            costs=costs,
            list_prices=optimize_component_prices(train, costs, market.bundle.list_prices),
            rng=rng,
        )
        m = run.n_subsets
        for policy in chosen:
            menu = policy.prices(run)
            out = policy.outcome(run, menu)
            result = results[policy.name]
            if menu.bundle_price is not None:
                offer = menu.bundle_price
                result.add(out, m + 1, run.list_total, offer)
                result.violations += count_violations(offer, run.list_total, costs[-1], guardrails)
                if price_samples is not None and isinstance(policy, Bundlewise):
                    name = " + ".join(market.bundle.titles)
                    shares = offer[~np.isnan(offer)] / run.list_total
                    price_samples[name] = shares.round(4).tolist()
            else:
                result.add(out, m if policy.sells_whole_bundle else m + 1, None)
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

    The summary of each policy (keyed by name) carries its ``label`` and whether it is
    ``personalized`` or a ``bound``. The result also holds bundlewise's prices per bundle
    (share of the list total) of the first seed, under ``price_samples``, and how often its
    price-response fit fell back (``engine_fallbacks``: fits, ``flat``, ``prior``).
    """
    markets = [fit_market(b, scenario) for b in bundles]
    runs = []
    samples: dict[str, list[float]] = {}
    fits = []
    catalog: dict[str, Policy] = {}
    for j, seed in enumerate(seeds):
        if progress:
            progress(f"{scenario.name}: seed {seed}")
        policies = default_policies(with_milp=with_milp)
        catalog = {p.name: p for p in policies}
        runs.append(
            simulate(
                markets,
                scenario,
                seed,
                pricing,
                price_samples=samples if j == 0 else None,
                policies=policies,
            )
        )
        fits += [f for p in policies if isinstance(p, Bundlewise) for f in p.fits]
    summary: dict[str, Any] = {}
    for name in runs[0]:
        per_seed = [r[name] for r in runs]
        entry: dict[str, Any] = {
            "label": catalog[name].label,
            "personalized": catalog[name].personalized,
            "bound": catalog[name].bound,
        }
        entry.update({key: _mean_ci([p[key] for p in per_seed]) for key in per_seed[0]})
        entry["pct_of_A"] = _mean_ci([100 * r[name]["profit"] / r[A_BOUND]["profit"] for r in runs])
        entry["pct_of_B"] = _mean_ci([100 * r[name]["profit"] / r[B_BOUND]["profit"] for r in runs])
        entry["pct_vs_component"] = _mean_ci(
            [100 * (r[name]["profit"] / r[COMPONENT]["profit"] - 1) for r in runs]
        )
        entry["violations_total"] = float(sum(p["violations"] for p in per_seed))
        summary[name] = entry
    # Paired differences: bundlewise minus each other policy, in % of B, per seed.
    for name in runs[0]:
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
        "engine_fallbacks": {
            "fits": len(fits),
            "flat": sum(f.fallback == "flat" for f in fits),
            "prior": sum(f.fallback == "prior" for f in fits),
        },
    }


def non_personalized(result: dict[str, Any]) -> list[str]:
    """Names of the policies of a scenario result that price everyone alike (no bounds)."""
    return [n for n, e in result["policies"].items() if not e["personalized"] and not e["bound"]]


def format_scenario(result: dict[str, Any]) -> str:
    """A text table of one scenario's summary."""
    lines = [
        f"Scenario {result['scenario']['name']}  (noise {result['scenario']['noise']}, "
        f"{len(result['seeds'])} seeds, 95% intervals)",
        f"{'policy':44s} {'% of B':>18s} {'% of A':>8s} {'vs comp.':>9s} {'take':>6s} "
        f"{'disc.':>6s} {'p90/p10':>8s} {'viol.':>5s}",
    ]
    for e in result["policies"].values():
        b = e["pct_of_B"]
        lines.append(
            f"{e['label']:44s} {b['mean']:7.1f} [{b['lo']:5.1f},{b['hi']:5.1f}] "
            f"{e['pct_of_A']['mean']:8.1f} {e['pct_vs_component']['mean']:+8.1f}% "
            f"{e['take_rate']['mean']:6.3f} {e['mean_discount']['mean']:6.1%} "
            f"{e['fairness_spread']['mean']:8.2f} {int(e['violations_total']):5d}"
        )
    return "\n".join(lines)


__all__ = [
    "A_BOUND",
    "B_BOUND",
    "COMPONENT",
    "OURS",
    "PolicyResult",
    "count_violations",
    "format_scenario",
    "non_personalized",
    "run_scenario",
    "simulate",
]
