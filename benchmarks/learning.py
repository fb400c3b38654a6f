"""The learning loop in closed loop: Thompson sampling against tuned baselines and an oracle.

Usage::

    python benchmarks/learning.py [--orders FILE] [--offers 20000] [--seeds 5] [--jobs 2]
        [--prior-sensitivity 4] [--pivot 1] [--learning KEY=VALUE ...] [--no-ope] [--quick]
        [--json OUT] [--html OUT]

Trains a workspace on December 2009 of the orders (default: the bundled Online Retail II
data); its Pricer is the prior. Markets: the Pricer's (customer, bundle) offers, shoppers
arriving at random, a true logit response whose price sensitivity is 0.5x, 1x, 2x the prior's
(and 1x switching to 2x half-way). Every offer goes through the product's Learner as the server
uses it (decide -> simulated accept -> observe). Policies on the same guarded price ladder:
Thompson (the default [learning] config), epsilon-greedy and UCB (tuned per market on separate
seeds), the static trained pricer, the oracle (best rung under the true demand) and the list
price. Reports profit as % of the oracle, cumulative regret, exploration, guardrail violations
and an off-policy evaluation table; writes JSON and an HTML page with the curves.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bundlewise import __version__
from bundlewise.exceptions import ConfigError
from bundlewise.pipeline import bundled_dataset_path
from bundlewise_bench.learning_report import build_learning_report
from bundlewise_bench.learning_track import (
    default_slice,
    format_learning,
    learning_config,
    learning_track,
    quick_options,
    trained_pricer,
    with_prior_sensitivity,
)


def say(step: str) -> None:
    print(f"  {step}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--offers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tune-seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--prior-sensitivity",
        type=float,
        default=4.0,
        help="pricing.sensitivity_prior for train (a month of orders falls back to it)",
    )
    parser.add_argument(
        "--pivot",
        type=float,
        default=1.0,
        help="1: the true take rate at the list total is the prior's; 0: the appeal is kept "
        "at price 0 instead",
    )
    parser.add_argument("--bundle-sd", type=float, default=0.3)
    parser.add_argument(
        "--learning",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="[learning] settings other than the defaults, e.g. forgetting=0.999",
    )
    parser.add_argument("--no-ope", action="store_true")
    parser.add_argument("--quick", action="store_true")
    results = Path(__file__).parent / "results"
    parser.add_argument("--json", type=Path, default=results / "learning.json")
    parser.add_argument("--html", type=Path, default=results / "learning.html")
    args = parser.parse_args()
    if args.offers < 100 or args.seeds < 1 or args.tune_seeds < 1 or args.jobs < 1:
        parser.error("--offers must be >= 100 and --seeds, --tune-seeds, --jobs >= 1")
    print(
        f"bundlewise {__version__}; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    try:
        cfg = learning_config(args.learning)
    except (ValueError, ConfigError) as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    first, end = default_slice()
    pricer, prior_info = trained_pricer(
        args.orders, first, end, with_prior_sensitivity(args.prior_sensitivity)
    )
    say(
        f"trained on {prior_info['start']}..{prior_info['end']}: {prior_info['n_customers']} "
        f"customers, {prior_info['n_offers']} offers; sensitivity per segment "
        + ", ".join(f"{s}: {v:.2f}" for s, v in sorted(pricer.sensitivity.items()))
    )
    options = dict(
        n_offers=args.offers,
        seeds=tuple(range(args.seeds)),
        tune_seeds=tuple(1000 + k for k in range(args.tune_seeds)),
    )
    if args.quick:
        options = quick_options()
    result = learning_track(
        pricer,
        cfg=cfg,
        **options,
        bundle_sd=args.bundle_sd,
        pivot=args.pivot,
        ope=not args.no_ope,
        jobs=args.jobs,
        progress=say,
    )
    seconds = time.perf_counter() - start
    result["prior"] = prior_info
    result["source"] = args.orders.name
    print("\n" + format_learning(result))
    print(f"\n{seconds:.0f} s in all")
    report = {"version": __version__, "cpus": os.cpu_count(), "seconds_total": round(seconds, 1)}
    report.update(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    args.html.write_text(build_learning_report(report), encoding="utf-8")
    print(f"wrote {args.json} and {args.html}")


if __name__ == "__main__":
    main()
