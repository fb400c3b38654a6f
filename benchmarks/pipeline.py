"""Pipeline speed on the full bundled dataset: ingest, mine, personalize, price.

Usage::

    python benchmarks/pipeline.py [--orders FILE] [--repeat 3] [--json OUT.json]

Each repeat runs in a fresh temporary workspace; the table shows the median and the minimum
seconds per step, plus the cleaning counts and the number of offers of the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bundlewise import __version__
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path, ingest, train


def run_once(orders: Path, config: Config) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(tmp)
        start = time.perf_counter()
        ingested = ingest(workspace, orders, config)
        timings = {"ingest (read+validate+clean+store)": time.perf_counter() - start}
        result = train(workspace, config)
        timings["mine (pair statistics)"] = result.timings["mine"]
        timings["price response (estimate per segment)"] = result.timings.get("price response", 0.0)
        timings["personalize (candidate bundles)"] = result.timings["personalize"]
        timings["price (optimizer + reasons)"] = result.timings["price"]
        timings["title similarity (explanations)"] = result.timings.get("text similarity", 0.0)
        timings["store (tables + explanations)"] = result.timings["store"]
        timings["offers total (personalize + price)"] = (
            result.timings["personalize"] + result.timings["price"]
        )
        cleaning = ingested.report.to_dict()
        cleaning["source"] = Path(cleaning["source"]).name  # no machine paths in results
        facts: dict[str, object] = {
            "cleaning": cleaning,
            "train": result.to_dict(),
        }
    return timings, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "pipeline.json"
    )
    args = parser.parse_args()
    config = Config()
    runs = [run_once(args.orders, config) for _ in range(args.repeat)]
    steps = list(runs[0][0])
    rows = []
    for step in steps:
        values = [timings[step] for timings, _ in runs]
        rows.append({"step": step, "median_s": statistics.median(values), "min_s": min(values)})
    facts = runs[-1][1]
    print(f"bundlewise {__version__} pipeline benchmark on {args.orders.name}")
    print(
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {args.repeat} repeats"
    )
    print(f"{'step':<40}{'median s':>10}{'min s':>10}")
    for row in rows:
        print(f"{row['step']:<40}{row['median_s']:>10.2f}{row['min_s']:>10.2f}")
    cleaning = facts["cleaning"]
    train_facts = facts["train"]
    assert isinstance(cleaning, dict) and isinstance(train_facts, dict)
    print(
        f"\nrows read {cleaning['n_rows_read']:,}, kept {cleaning['n_rows_kept']:,}, "
        f"removed {cleaning['n_rows_removed']:,}"
    )
    for rule in cleaning["rules"]:
        print(f"  {rule['rule']:<30}{rule['action']:<15}{rule['n_rows']:>10,}")
    print(
        f"orders {train_facts['n_orders']:,} (+{train_facts['n_orders_skipped']} skipped as very "
        f"large), pairs {train_facts['n_pairs']:,}, offers {train_facts['n_offers']:,} for "
        f"{train_facts['n_customers']:,} customers, not offered {train_facts['n_not_offered']}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "pipeline",
                "version": __version__,
                "data": str(args.orders.name),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "repeats": args.repeat,
                "steps": rows,
                **facts,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
