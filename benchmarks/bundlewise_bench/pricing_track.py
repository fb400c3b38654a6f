"""The pricing track: the market simulator over a scenario grid, as plain JSON-ready results.

Used by ``benchmarks/pricing.py`` and ``bundlewise simulate`` (when this package is
installed); :func:`format_pricing` turns a result into text tables (library code never prints).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bundlewise.config import Config, PricingConfig
from bundlewise_bench.market import Scenario, market_from_orders, scenario_grid, with_titles
from bundlewise_bench.simulator import (
    B_BOUND,
    OURS,
    format_scenario,
    non_personalized,
    run_scenario,
)
from bundlewise_bench.tracks import ingested_tables


def pricing_track(
    orders: str | Path,
    seeds: Sequence[int] = tuple(range(10)),
    n_bundles: int = 8,
    base: Scenario | None = None,
    grid: bool = True,
    pricing: PricingConfig | None = None,
    config: Config | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit bundle markets to ``orders`` and run every policy on every scenario.

    The exact mixed-bundling MILP runs in the default scenario only (it is slow and its
    result does not depend on the engine's noise).
    """
    order_lines, titles_table = ingested_tables(orders, config or Config())
    titles = dict(
        zip(
            titles_table.column("item_id").to_pylist(),
            titles_table.column("title").to_pylist(),
            strict=True,
        )
    )
    bundles = with_titles(market_from_orders(order_lines, n_bundles=n_bundles), titles)
    scenarios = scenario_grid(base) if grid else [base or Scenario()]
    results = []
    for j, scenario in enumerate(scenarios):
        start = time.perf_counter()
        result = run_scenario(
            bundles, scenario, seeds, pricing=pricing, with_milp=(j == 0), progress=progress
        )
        result["seconds"] = round(time.perf_counter() - start, 2)
        results.append(result)
    noise_curve = _noise_curve(results)
    return {
        "source": Path(orders).name,
        "n_bundles": len(bundles),
        "pricing": asdict(pricing or PricingConfig()),
        "scenarios": results,
        "noise_curve": noise_curve,
        "checks": _checks(results),
    }


def _noise_curve(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Profit (% of B) against the engine's noise, other factors at their defaults."""
    base = results[0]["scenario"]
    keep = [
        r
        for r in results
        if all(
            r["scenario"][k] == base[k] for k in ("correlation", "complementarity", "cost_share")
        )
    ]
    keep.sort(key=lambda r: r["scenario"]["noise"])
    policies = [p for p in keep[0]["policies"] if p != B_BOUND]
    return {
        "noise": [r["scenario"]["noise"] for r in keep],
        "labels": {p: keep[0]["policies"][p]["label"] for p in policies},
        "pct_of_B": {
            p: [r["policies"][p]["pct_of_B"]["mean"] for r in keep if p in r["policies"]]
            for p in policies
        },
    }


def _checks(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's acceptance checks, computed from the results."""
    default = results[0]
    zero_noise = [r for r in results if r["scenario"]["noise"] == 0.0]
    ours_default = default["policies"][OURS]
    baselines = non_personalized(default)
    best_baseline = max(baselines, key=lambda p: default["policies"][p]["profit"]["mean"])
    return {
        "pct_of_B_at_zero_noise": (
            zero_noise[0]["policies"][OURS]["pct_of_B"] if zero_noise else None
        ),
        "best_non_personalized_in_default": best_baseline,
        "paired_margin_over_it_pct_of_B": ours_default["paired_minus"][best_baseline],
        "beats_every_non_personalized_in_default": all(
            ours_default["paired_minus"][p]["lo"] > 0 for p in baselines
        ),
        "violations_bundlewise_all_runs": sum(
            r["policies"][OURS]["violations_total"] for r in results
        ),
        "engine_fallbacks_all_runs": {
            key: sum(r["engine_fallbacks"][key] for r in results)
            for key in ("fits", "flat", "prior")
        },
    }


def format_pricing(result: dict[str, Any]) -> str:
    """Text tables: the default scenario in full, then bundlewise across the grid."""
    lines = [format_scenario(result["scenarios"][0]), ""]
    lines.append("bundlewise across the scenario grid (% of B; best non-personalized baseline):")
    lines.append(f"{'scenario':22s} {'bundlewise':>20s} {'best baseline':>44s} {'viol.':>5s}")
    for r in result["scenarios"]:
        pol = r["policies"]
        ours = pol[OURS]["pct_of_B"]
        best = max(non_personalized(r), key=lambda p: pol[p]["profit"]["mean"])
        lines.append(
            f"{r['scenario']['name']:22s} {ours['mean']:6.1f} [{ours['lo']:5.1f},{ours['hi']:5.1f}]"
            f"  {pol[best]['label'][:28]:>28s} {pol[best]['pct_of_B']['mean']:6.1f}"
            f" {int(pol[OURS]['violations_total']):5d}"
        )
    checks = result["checks"]
    zero = checks["pct_of_B_at_zero_noise"]
    lines.append("")
    if zero:
        lines.append(
            f"bundlewise at zero noise: {zero['mean']:.1f}% of B "
            f"[{zero['lo']:.1f}, {zero['hi']:.1f}]"
        )
    margin = checks["paired_margin_over_it_pct_of_B"]
    best_label = result["scenarios"][0]["policies"][checks["best_non_personalized_in_default"]]
    lines.append(
        f"default scenario: bundlewise minus {best_label['label']} = "
        f"{margin['mean']:+.2f} points of B [{margin['lo']:+.2f}, {margin['hi']:+.2f}] (paired)"
    )
    violations = checks["violations_bundlewise_all_runs"]
    lines.append(f"guardrail violations by bundlewise, all runs: {violations:.0f}")
    fallbacks = checks["engine_fallbacks_all_runs"]
    lines.append(
        f"engine price-response fits: {fallbacks['fits']}; flat demand (priced at the list): "
        f"{fallbacks['flat']}; too few acceptances (prior slope): {fallbacks['prior']}"
    )
    return "\n".join(lines)


def quick_scenario(base: Scenario | None = None, scale: float = 0.25) -> Scenario:
    """A smaller version of a scenario (fewer simulated shoppers) for fast runs."""
    b = base or Scenario()
    return replace(
        b,
        n_customers=max(100, int(b.n_customers * scale)),
        n_train=max(100, int(b.n_train * scale)),
        n_logged=max(400, int(b.n_logged * scale)),
        n_milp=min(b.n_milp, 20),
    )


__all__ = ["format_pricing", "pricing_track", "quick_scenario"]
