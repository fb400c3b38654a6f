"""Recommendation quality: the Youshu benchmark and next-orders bundle discovery on Online Retail.

Usage::

    python benchmarks/recommendation.py [--youshu DIR] [--orders FILE] [--cutoff 2010-10-01]
        [--test-weeks 4] [--skip-youshu] [--skip-retail] [--json OUT.json]

Youshu: every model trained on user_bundle_train, scored on tune (and test when the folder has
user_bundle_test.txt) with the CrossCBR protocol; fit time on this machine. Online Retail:
train before the cutoff, test on the following weeks; our bundles vs "frequently bought
together" by lift, popular pairs and random pairs, as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from bundlewise import __version__
from bundlewise.composer import compose_candidates
from bundlewise.composer.cold_start import cold_start_partners
from bundlewise.config import ComposerConfig, Config
from bundlewise.data import Workspace
from bundlewise.evaluation.next_basket import (
    TemporalSplit,
    cold_start_truth,
    customer_test_baskets,
    fbt_lift_bundles,
    popular_pair_bundles,
    random_pair_bundles,
    score_bundles,
    score_cold_start,
    temporal_split,
)
from bundlewise.evaluation.runner import run_youshu
from bundlewise.evaluation.youshu import load_youshu
from bundlewise.mining import PairMiner
from bundlewise.models.text_encoder import nearest_neighbors
from bundlewise.pipeline import bundled_dataset_path, ingest

ROOT = Path(__file__).resolve().parents[1]


def youshu_track(folder: Path) -> dict[str, object]:
    data = load_youshu(folder)
    results = run_youshu(data, progress=lambda name: print(f"  fitting {name} ...", flush=True))
    splits = data.splits()
    ease = next(r for r in results if r.name == "EASE (bundle view)")
    print(f"\nYoushu ({', '.join(splits)}), {data.n_users} users, {data.n_bundles} bundles")
    header = f"{'model':<38}{'fit s':>8}"
    for split in splits:
        header += f"{split + ' R@20':>12}{split + ' N@20':>12}{'R/EASE':>8}"
    print(header)
    for r in results:
        line = f"{r.name:<38}{r.fit_seconds:>8.1f}"
        for split in splits:
            m = r.metrics[split]
            ratio = m["recall@20"] / ease.metrics[split]["recall@20"]
            line += f"{m['recall@20']:>12.4f}{m['ndcg@20']:>12.4f}{ratio:>8.3f}"
        print(line)
    return {"splits": splits, "models": [r.to_dict() for r in results]}


def retail_track(orders: Path, cutoff: datetime, test_weeks: int) -> dict[str, object]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(tmp)
        ingest(workspace, orders, Config())
        lines = workspace.table("order_lines")
        items = workspace.table("items")
    split = temporal_split(lines, cutoff, test_weeks)
    baskets = customer_test_baskets(split)
    customers = sorted(baskets)
    config = Config()
    start = time.perf_counter()
    miner = PairMiner.from_config(config.mining).fit(split.train)
    candidates = compose_candidates(
        split.train,
        miner.pairs_,
        miner.partners_,
        ComposerConfig(n_offers=10),
        customer_ids=customers,
    )
    ours_seconds = time.perf_counter() - start
    ours: dict[str, list[tuple[str, ...]]] = {}
    for row in candidates.select(["customer_id", "item_ids"]).to_pylist():
        ours.setdefault(row["customer_id"], []).append(tuple(row["item_ids"]))
    methods = {
        "bundlewise (history x complements)": ours,
        "FBT by lift": fbt_lift_bundles(split.train, miner.pairs_, customers, 10),
        "popular pairs": popular_pair_bundles(miner.pairs_, customers, 10),
        "random pairs": random_pair_bundles(split.train, customers, 10, seed=0),
    }
    scored = [score_bundles(name, bundles, baskets) for name, bundles in methods.items()]
    base = {m.method: m for m in scored}
    print(
        f"\nOnline Retail next-orders bundles: train < {cutoff:%Y-%m-%d}, test {test_weeks} "
        f"weeks, {len(customers)} customers (mine + compose {ours_seconds:.1f} s)"
    )
    print(f"{'method':<38}{'HR@1':>8}{'HR@3':>8}{'HR@10':>8}{'P@10':>8}{'pairP':>8}{'pairR':>8}")
    for m in scored:
        print(
            f"{m.method:<38}{m.hit_rate[1]:>8.4f}{m.hit_rate[3]:>8.4f}{m.hit_rate[10]:>8.4f}"
            f"{m.precision[10]:>8.4f}{m.pair_precision:>8.4f}{m.pair_recall:>8.4f}"
        )
    ours_m = scored[0]
    print("ratios of bundlewise hit rate to each baseline:")
    for name in ("FBT by lift", "popular pairs", "random pairs"):
        other = base[name]
        ratios = [
            f"K={k}: " + (f"{ours_m.hit_rate[k] / other.hit_rate[k]:.2f}x"
                          if other.hit_rate[k] else "inf (baseline 0)")
            for k in (1, 3, 10)
        ]  # fmt: skip
        print(f"  vs {name:<16}" + ", ".join(ratios))
    cold = cold_start_track(split, items, miner)
    return {
        "cold_start": cold,
        "cutoff": cutoff.isoformat(),
        "test_weeks": test_weeks,
        "n_customers": len(customers),
        "methods": [
            {
                "method": m.method,
                "hit_rate": m.hit_rate,
                "precision": m.precision,
                "pair_precision": m.pair_precision,
                "pair_recall": m.pair_recall,
            }
            for m in scored
        ],
    }


def cold_start_track(split: TemporalSplit, items: pa.Table, miner: PairMiner) -> dict[str, object]:
    """Partners for products first sold after the cutoff, from their titles only."""
    from bundlewise.models.text_encoder import TextEncoder

    truth = cold_start_truth(split)
    titles = dict(zip(items["item_id"].to_pylist(), items["title"].to_pylist(), strict=True))
    sold = sorted(set(split.train.column("item_id").to_pylist()))
    new = sorted(truth)
    encoder = TextEncoder()
    start = time.perf_counter()
    sold_emb = encoder.encode([titles.get(i, i) for i in sold])
    new_emb = encoder.encode([titles.get(i, i) for i in new])
    encode_seconds = time.perf_counter() - start
    table = cold_start_partners(new, new_emb, sold, sold_emb, miner.pairs_, n_partners=10)
    text_partners: dict[str, list[str]] = {}
    for row in table.select(["item_id", "partner_id"]).to_pylist():
        text_partners.setdefault(row["item_id"], []).append(row["partner_id"])
    neighbours, _ = nearest_neighbors(new_emb, sold_emb, 10)
    counts = Counter(split.train.column("item_id").to_pylist())
    popular = [item for item, _ in counts.most_common(10)]
    rng = np.random.default_rng(0)
    methods = {
        "text: co-bought partners of 5 nearest sold products": text_partners,
        "text: 10 nearest sold products": {
            item: [sold[q] for q in neighbours[j]] for j, item in enumerate(new)
        },
        "popular items": {item: popular for item in new},
        "random items": {item: list(rng.choice(sold, 10, replace=False)) for item in new},
    }
    print(
        f"\nCold start: {len(new)} products first sold after the cutoff and bought with "
        f"something (titles encoded in {encode_seconds:.1f} s)"
    )
    print(f"{'method':<56}{'HR@1':>8}{'HR@3':>8}{'HR@10':>8}")
    results = {}
    for name, partners in methods.items():
        hr = score_cold_start(partners, truth)
        results[name] = hr
        print(f"{name:<56}{hr[1]:>8.4f}{hr[3]:>8.4f}{hr[10]:>8.4f}")
    return {"n_products": len(new), "hit_rate": results}


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
        report["youshu"] = youshu_track(args.youshu)
    if not args.skip_retail:
        report["online_retail"] = retail_track(args.orders, args.cutoff, args.test_weeks)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
