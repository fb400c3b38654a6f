"""Bundle pricing: bundlewise against bounds and baselines in the market simulator.

Usage::

    python benchmarks/pricing.py [--orders FILE] [--seeds 10] [--bundles 8] [--noise 0.2]
        [--no-grid] [--quick] [--json OUT.json] [--html OUT.html]

Markets (lognormal willingness to pay, Gaussian copula, complementarity bonus) are fitted to the
purchase and co-purchase shares of the orders file; every policy runs on the same simulated
shoppers for each seed: bound A (perfect price discrimination), bound B (best guard-railed offer
knowing the true demand model), component pricing at optimized list prices, pure bundling,
uniform-discount mixed bundling, bundle-size pricing, exact mixed bundling (MILP, default
scenario only) and bundlewise. Reports paired means with 95% intervals over seeds, for the
default scenario and a one-factor-at-a-time grid (noise, correlation, complementarity, cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

from bundlewise import __version__
from bundlewise.pipeline import bundled_dataset_path
from bundlewise_bench.market import Scenario
from bundlewise_bench.pricing_track import format_pricing, pricing_track, quick_scenario
from bundlewise_bench.report import build_simulation_report


def say(step: str) -> None:
    print(f"  {step}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--bundles", type=int, default=8)
    parser.add_argument("--noise", type=float, default=Scenario().noise)
    parser.add_argument("--no-grid", action="store_true")
    parser.add_argument("--quick", action="store_true")
    results = Path(__file__).parent / "results"
    parser.add_argument("--json", type=Path, default=results / "pricing.json")
    parser.add_argument("--html", type=Path, default=results / "pricing.html")
    args = parser.parse_args()
    print(
        f"bundlewise {__version__}; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    base = replace(Scenario(), noise=args.noise)
    if args.quick:
        base = quick_scenario(base)
    start = time.perf_counter()
    result = pricing_track(
        args.orders,
        seeds=tuple(range(args.seeds)),
        n_bundles=args.bundles,
        base=base,
        grid=not args.no_grid,
        progress=say,
    )
    seconds = time.perf_counter() - start
    print("\n" + format_pricing(result))
    print(f"\n{seconds:.0f} s in all")
    report = {"version": __version__, "cpus": os.cpu_count(), "seconds": round(seconds, 1)}
    report.update(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    args.html.write_text(build_simulation_report(result), encoding="utf-8")
    print(f"wrote {args.json} and {args.html}")


if __name__ == "__main__":
    main()
