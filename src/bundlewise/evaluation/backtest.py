"""Backtest on a store's own orders: would the bundles `train` composes have been bought?

The orders are split at a cutoff (default: ``test_weeks`` before the last order); pairs are
mined and bundles composed on the orders before it, exactly as ``train`` does with the given
configuration, and scored on each customer's orders in the following weeks with the
next-orders protocol of :mod:`bundlewise.evaluation.next_basket` (a hit: all items of a bundle
in one test order of that customer), next to three simple baselines: "frequently bought
together" by lift, the most popular pairs and random pairs.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.composer import compose_candidates
from bundlewise.composer.beam import compose_beam_candidates
from bundlewise.config import Config
from bundlewise.evaluation.next_basket import (
    customer_test_baskets,
    fbt_lift_bundles,
    popular_pair_bundles,
    random_pair_bundles,
    score_bundles,
    temporal_split,
)
from bundlewise.exceptions import BundlewiseError
from bundlewise.mining import PairMiner

#: The name of the composer's row in the results.
OURS = "bundlewise"
BASELINES = ("FBT by lift", "popular pairs", "random pairs")
#: Bundles per customer that are scored (hit rate at 1, 3 and this many).
TOP_K = 10


def default_cutoff(order_lines: pa.Table, test_weeks: int) -> datetime:
    """The day ``test_weeks`` weeks before the last order (midnight)."""
    last = pc.max(order_lines.column("ts")).as_py()
    if last is None:
        raise BundlewiseError("there are no orders to evaluate on.")
    day = datetime(last.year, last.month, last.day)
    return day - timedelta(weeks=test_weeks) + timedelta(days=1)


def backtest(
    order_lines: pa.Table,
    config: Config | None = None,
    cutoff: datetime | None = None,
    test_weeks: int = 4,
) -> dict[str, Any]:
    """Score the configured composer's bundles, and the baselines, on the weeks after ``cutoff``.

    Returns a JSON-ready dict: ``cutoff``, ``test_weeks``, ``n_customers`` (customers with a
    test order of 2+ items), ``composer`` (the method) and ``methods`` (one entry per method
    with ``hit_rate`` and ``precision`` at K = 1, 3, 10 (keys ``"1"``, ``"3"``, ``"10"``),
    ``pair_precision``, ``pair_recall``).

    Raises
    ------
    BundlewiseError
        When the cutoff leaves no orders on one side, or no customer has a test order of
        two or more items.
    """
    config = config or Config()
    cutoff = cutoff or default_cutoff(order_lines, test_weeks)
    try:
        split = temporal_split(order_lines, cutoff, test_weeks)
    except ValueError as exc:
        raise BundlewiseError(str(exc)) from None
    baskets = customer_test_baskets(split)
    customers = sorted(baskets)
    if not customers:
        raise BundlewiseError(
            f"no customer has an order of 2+ items in the {test_weeks} weeks after "
            f"{cutoff:%Y-%m-%d}: nothing to score (choose another --cutoff or --test-weeks)."
        )
    miner = PairMiner.from_config(config.mining).fit(split.train)
    composer = dataclasses.replace(config.composer, n_offers=TOP_K)
    if config.composer.method == "beam":
        candidates = compose_beam_candidates(split.train, miner.pairs_, composer, customers)
    else:
        candidates = compose_candidates(
            split.train, miner.pairs_, miner.partners_, composer, customer_ids=customers
        )
    ours: dict[str, list[tuple[str, ...]]] = {}
    for row in candidates.select(["customer_id", "item_ids"]).to_pylist():
        ours.setdefault(row["customer_id"], []).append(tuple(row["item_ids"]))
    methods = {
        OURS: ours,
        "FBT by lift": fbt_lift_bundles(split.train, miner.pairs_, customers, TOP_K),
        "popular pairs": popular_pair_bundles(miner.pairs_, customers, TOP_K),
        "random pairs": random_pair_bundles(split.train, customers, TOP_K, seed=0),
    }
    scored = [score_bundles(name, b, baskets, (1, 3, TOP_K)) for name, b in methods.items()]
    return {
        "cutoff": cutoff.isoformat(),
        "test_weeks": test_weeks,
        "n_train_lines": split.train.num_rows,
        "n_test_lines": split.test.num_rows,
        "n_customers": len(customers),
        "composer": config.composer.method,
        "methods": [
            {
                "method": m.method,
                "hit_rate": {str(k): v for k, v in m.hit_rate.items()},
                "precision": {str(k): v for k, v in m.precision.items()},
                "pair_precision": m.pair_precision,
                "pair_recall": m.pair_recall,
            }
            for m in scored
        ],
    }


def hit_rate_rows(methods: list[dict[str, Any]], width: int) -> list[str]:
    """A header and one row per method: HR@1/3/10, P@10 and pair precision/recall."""
    rows = [
        f"{'method':<{width}}{'HR@1':>8}{'HR@3':>8}{'HR@10':>8}{'P@10':>8}{'pairP':>8}{'pairR':>8}"
    ]
    for m in methods:
        hr = {int(k): v for k, v in m["hit_rate"].items()}
        precision = {int(k): v for k, v in m["precision"].items()}
        rows.append(
            f"{m['method']:<{width}}{hr[1]:>8.4f}{hr[3]:>8.4f}{hr[10]:>8.4f}{precision[10]:>8.4f}"
            f"{m['pair_precision']:>8.4f}{m['pair_recall']:>8.4f}"
        )
    return rows


def format_backtest(result: dict[str, Any]) -> str:
    """Text table of a :func:`backtest` result and bundlewise's hit-rate ratio to each baseline."""
    lines = [
        f"Next-orders backtest: train before {result['cutoff'][:10]}, test "
        f"{result['test_weeks']} weeks, {result['n_customers']} customers with a test order "
        f"of 2+ items (composer: {result['composer']})",
        *hit_rate_rows(result["methods"], 16),
    ]
    by_name = {
        m["method"]: {int(k): v for k, v in m["hit_rate"].items()} for m in result["methods"]
    }
    ours = by_name[OURS]
    for name in BASELINES:
        other = by_name[name]
        ratios = ", ".join(
            f"K={k}: {ours[k] / other[k]:.2f}x" if other[k] else f"K={k}: - (baseline 0)"
            for k in (1, 3, 10)
        )
        lines.append(f"{OURS} vs {name}: {ratios}")
    return "\n".join(lines)


__all__ = ["BASELINES", "OURS", "backtest", "default_cutoff", "format_backtest", "hit_rate_rows"]
