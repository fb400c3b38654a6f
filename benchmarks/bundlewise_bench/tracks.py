"""The two recommendation tracks as functions returning plain, JSON-ready results.

Used by ``benchmarks/recommendation.py``; the ``format_*``
functions turn results into text tables (library code never prints).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from bundlewise.composer import compose_candidates
from bundlewise.composer.beam import beam_search_bundles
from bundlewise.composer.cold_start import cold_start_partners
from bundlewise.composer.interest import (
    InterestMatrix,
    blend,
    customer_sequences,
    history_interest,
)
from bundlewise.config import ComposerConfig, Config
from bundlewise.data import Workspace
from bundlewise.evaluation.backtest import hit_rate_rows
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
from bundlewise.evaluation.youshu import load_youshu
from bundlewise.mining import PairMiner
from bundlewise.models import ItemKNNRecommender
from bundlewise_bench.runner import run_youshu

OURS = "bundlewise (history x complements)"
OURS_BEAM = "bundlewise beam (blend tuned on validation)"
#: Weights of the item-kNN and sequence-model views tried on the validation window (history
#: view weight 1).
KNN_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
SEQ_WEIGHTS = (0.0, 0.25, 0.5)
BASELINES = ("FBT by lift", "popular pairs", "random pairs")
EASE_NAME = "EASE (bundle view)"


def youshu_track(
    folder: str | Path, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train and score every Youshu model; see :func:`bundlewise_bench.runner.run_youshu`."""
    data = load_youshu(folder)
    results = run_youshu(data, progress=progress)
    return {
        "n_users": data.n_users,
        "n_bundles": data.n_bundles,
        "splits": data.splits(),
        "models": [r.to_dict() for r in results],
    }


def ingested_tables(orders: str | Path, config: Config) -> tuple[pa.Table, pa.Table]:
    """The cleaned ``order_lines`` and ``items`` of an orders file (via a temporary workspace)."""
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(tmp)
        workspace.ingest(orders, config)
        return workspace.table("order_lines"), workspace.table("items")


def retail_track(
    orders: str | Path,
    cutoff: datetime,
    test_weeks: int = 4,
    config: Config | None = None,
    with_cold_start: bool = True,
    with_sequence: bool = True,
) -> dict[str, Any]:
    """Next-orders bundle hits of bundlewise vs the baselines, and the cold-start figure."""
    config = config or Config()
    lines, items = ingested_tables(orders, config)
    split = temporal_split(lines, cutoff, test_weeks)
    baskets = customer_test_baskets(split)
    customers = sorted(baskets)
    start = time.perf_counter()
    miner = PairMiner.from_config(config.mining).fit(split.train)
    candidates = compose_candidates(
        split.train, miner.pairs_, miner.partners_, ComposerConfig(n_offers=10),
        customer_ids=customers,
    )  # fmt: skip
    ours_seconds = time.perf_counter() - start
    ours: dict[str, list[tuple[str, ...]]] = {}
    for row in candidates.select(["customer_id", "item_ids"]).to_pylist():
        ours.setdefault(row["customer_id"], []).append(tuple(row["item_ids"]))
    titles = dict(zip(items["item_id"].to_pylist(), items["title"].to_pylist(), strict=True))
    beam, beam_info = _tuned_beam(
        cutoff, test_weeks, split, miner.pairs_, customers, titles, config, with_sequence
    )
    methods = {
        OURS: ours,
        OURS_BEAM: beam,
        "FBT by lift": fbt_lift_bundles(split.train, miner.pairs_, customers, 10),
        "popular pairs": popular_pair_bundles(miner.pairs_, customers, 10),
        "random pairs": random_pair_bundles(split.train, customers, 10, seed=0),
    }
    scored = [score_bundles(name, bundles, baskets) for name, bundles in methods.items()]
    result: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "test_weeks": test_weeks,
        "n_customers": len(customers),
        "seconds_mine_and_compose": ours_seconds,
        "beam_blend": beam_info,
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
    if with_cold_start:
        result["cold_start"] = cold_start_track(split, items, miner)
    return result


def _interest_views(
    train: pa.Table, titles: dict[str, str], config: Config, with_sequence: bool
) -> tuple[InterestMatrix, dict[str, npt.NDArray[np.float64]]]:
    """History, item-kNN and (optionally) SASRec views over the customers of ``train``."""
    interest = history_interest(train, config.composer.recency_half_life_days)
    users = np.arange(len(interest.customer_ids))
    views = {"history": interest.values}
    views["item_knn"] = ItemKNNRecommender(n_neighbors=100).fit(interest.binary()).score(users)
    if with_sequence:
        from bundlewise.models.sequence import SASRecRecommender
        from bundlewise.models.text_encoder import TextEncoder

        text = TextEncoder().encode([titles.get(i, i) for i in interest.item_ids])
        sasrec = SASRecRecommender(max_len=30, epochs=8, batch_size=256, random_state=0).fit(
            interest.binary(),
            sequences=customer_sequences(train, interest),
            item_embeddings=text,
        )
        # next-item probabilities (softmax of the logits): peaked where the model is sure,
        # so max-normalization does not spread interest over thousands of items
        logits = sasrec.score(users)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        views["sasrec"] = probabilities / probabilities.sum(axis=1, keepdims=True)
    return interest, views


def _beam_bundles(
    interest: InterestMatrix,
    views: dict[str, npt.NDArray[np.float64]],
    weights: dict[str, float],
    pairs: pa.Table,
    customers: list[str],
) -> dict[str, list[tuple[str, ...]]]:
    """Beam-search bundles from a weighted blend of interest views."""
    row_of = {c: i for i, c in enumerate(interest.customer_ids)}
    wanted = [c for c in customers if c in row_of]
    rows = np.array([row_of[c] for c in wanted], dtype=np.int64)
    used = {k: w for k, w in weights.items() if w > 0}
    scores = blend({k: views[k][rows] for k in used}, used)
    table = beam_search_bundles(wanted, interest.item_ids, scores, pairs, n_offers=10)
    out: dict[str, list[tuple[str, ...]]] = {}
    for row in table.select(["customer_id", "item_ids"]).to_pylist():
        out.setdefault(row["customer_id"], []).append(tuple(row["item_ids"]))
    return out


def _tuned_beam(
    cutoff: datetime,
    test_weeks: int,
    split: TemporalSplit,
    pairs: pa.Table,
    customers: list[str],
    titles: dict[str, str],
    config: Config,
    with_sequence: bool,
) -> tuple[dict[str, list[tuple[str, ...]]], dict[str, Any]]:
    """Choose the blend weights on the window before the cutoff, then score on test.

    ``pairs`` are the complements mined on ``split.train`` (mined once by the caller).
    """
    val_split = temporal_split(split.train, cutoff - timedelta(weeks=test_weeks), test_weeks)
    val_baskets = customer_test_baskets(val_split)
    grid = [
        {"history": 1.0, "item_knn": k, "sasrec": q}
        for k in KNN_WEIGHTS
        for q in (SEQ_WEIGHTS if with_sequence else (0.0,))
    ]
    interest, views = _interest_views(val_split.train, titles, config, with_sequence)
    val_pairs = PairMiner.from_config(config.mining).fit(val_split.train).pairs_
    scored: list[tuple[float, dict[str, float]]] = []
    for weights in grid:
        bundles = _beam_bundles(interest, views, weights, val_pairs, sorted(val_baskets))
        scored.append((score_bundles("v", bundles, val_baskets).hit_rate[10], weights))
    # best validation HR@10; ties go to the simpler blend (smaller total weight)
    _, chosen = max(scored, key=lambda t: (t[0], -sum(t[1].values())))
    interest, views = _interest_views(split.train, titles, config, with_sequence)
    info = {
        "validation": [{"weights": w, "hr@10": hr} for hr, w in scored],
        "chosen_weights": chosen,
    }
    return _beam_bundles(interest, views, chosen, pairs, customers), info


def cold_start_track(split: TemporalSplit, items: pa.Table, miner: PairMiner) -> dict[str, Any]:
    """Partners for products first sold after the cutoff, from their titles only."""
    from bundlewise.models.text_encoder import TextEncoder, nearest_neighbors

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
        "random items": {item: [str(x) for x in rng.choice(sold, 10, replace=False)]
                         for item in new},
    }  # fmt: skip
    return {
        "n_products": len(new),
        "seconds_encode": encode_seconds,
        "hit_rate": {name: score_cold_start(p, truth) for name, p in methods.items()},
    }


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "inf (baseline 0)"


def format_youshu(result: dict[str, Any]) -> str:
    """Text table: R@20, N@20 per split, ratio to EASE, fit seconds."""
    splits = result["splits"]
    models = result["models"]
    ease = next((m for m in models if m["name"] == EASE_NAME), None)
    lines = [
        f"Youshu ({', '.join(splits)}): {result['n_users']} users, {result['n_bundles']} bundles"
    ]
    header = f"{'model':<38}{'fit s':>8}"
    for split in splits:
        header += f"{split + ' R@20':>12}{split + ' N@20':>12}{'R/EASE':>8}"
    lines.append(header)
    for m in models:
        line = f"{m['name']:<38}{m['fit_seconds']:>8.1f}"
        for split in splits:
            metrics = m["metrics"][split]
            base = ease["metrics"][split]["recall@20"] if ease else float("nan")
            line += f"{metrics['recall@20']:>12.4f}{metrics['ndcg@20']:>12.4f}"
            line += f"{metrics['recall@20'] / base:>8.3f}"
        lines.append(line)
    return "\n".join(lines)


def format_retail(result: dict[str, Any]) -> str:
    """Text tables: next-orders hits with ratios to each baseline, and cold start."""
    methods = {m["method"]: m for m in result["methods"]}
    lines = [
        f"Online Retail next-orders bundles: train < {result['cutoff'][:10]}, test "
        f"{result['test_weeks']} weeks, {result['n_customers']} customers "
        f"(mine + compose {result['seconds_mine_and_compose']:.1f} s)",
        *hit_rate_rows(result["methods"], 46),
    ]
    beam = result.get("beam_blend")
    if beam:
        lines.append(
            f"beam blend weights chosen on the validation window: {beam['chosen_weights']} "
            f"(validation HR@10 {max(v['hr@10'] for v in beam['validation']):.4f} over "
            f"{len(beam['validation'])} settings)"
        )
    for ours_name in (OURS, OURS_BEAM):
        if ours_name not in methods:
            continue
        ours = {int(k): v for k, v in methods[ours_name]["hit_rate"].items()}
        lines.append(f"hit-rate ratio of {ours_name} to each baseline:")
        for name in BASELINES:
            other = {int(k): v for k, v in methods[name]["hit_rate"].items()}
            lines.append(
                f"  vs {name:<16}"
                + ", ".join(f"K={k}: {_ratio(ours[k], other[k])}" for k in (1, 3, 10))
            )
    cold = result.get("cold_start")
    if cold:
        lines.append(
            f"Cold start: {cold['n_products']} products first sold after the cutoff and "
            f"bought with something (titles encoded in {cold['seconds_encode']:.1f} s)"
        )
        lines.append(f"{'method':<56}{'HR@1':>8}{'HR@3':>8}{'HR@10':>8}")
        for name, hr_raw in cold["hit_rate"].items():
            hr = {int(k): v for k, v in hr_raw.items()}
            lines.append(f"{name:<56}{hr[1]:>8.4f}{hr[3]:>8.4f}{hr[10]:>8.4f}")
    return "\n".join(lines)


__all__ = ["cold_start_track", "format_retail", "format_youshu", "retail_track", "youshu_track"]
