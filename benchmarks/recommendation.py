"""Recommendation quality: the Youshu benchmark and next-orders bundle discovery on Online Retail.

Usage::

    python benchmarks/recommendation.py [--youshu DIR] [--orders FILE] [--cutoff 2010-10-01]
        [--test-weeks 4] [--skip-youshu] [--skip-retail] [--json OUT.json]

Youshu: every model trained on user_bundle_train, scored on tune (and test when the folder has
user_bundle_test.txt) with the CrossCBR protocol; fit time on this machine. Online Retail:
train before the cutoff, test on the following weeks; our bundles vs "frequently bought
together" by lift, popular pairs and random pairs, as ratios; plus cold start from text.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime
from pathlib import Path

from bundlewise import __version__
from bundlewise.pipeline import bundled_dataset_path
from bundlewise_bench.tracks import format_retail, format_youshu, retail_track, youshu_track

ROOT = Path(__file__).resolve().parents[1]


def say(model_name: str) -> None:
    print(f"  fitting {model_name} ...", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--youshu", type=Path, default=ROOT.parent / "shared" / "data" / "youshu")
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--cutoff", type=datetime.fromisoformat, default=datetime(2010, 10, 1))
    parser.add_argument("--test-weeks", type=int, default=4)
    parser.add_argument("--skip-youshu", action="store_true")
    parser.add_argument("--skip-retail", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "recommendation.json"
    )
    args = parser.parse_args()
    print(
        f"bundlewise {__version__}; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    report: dict[str, object] = {"version": __version__, "cpus": os.cpu_count()}
    if not args.skip_youshu:
        youshu = youshu_track(args.youshu, progress=say)
        print("\n" + format_youshu(youshu))
        report["youshu"] = youshu
    if not args.skip_retail:
        retail = retail_track(args.orders, args.cutoff, args.test_weeks)
        print("\n" + format_retail(retail))
        report["online_retail"] = retail
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
