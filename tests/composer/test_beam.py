"""Beam search over item sets: known answers on a tiny world."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from bundlewise.composer import CANDIDATE_COLUMNS
from bundlewise.composer.beam import beam_search_bundles

ITEMS = ["A", "B", "C", "D", "E"]


def _pairs(rows: list[tuple[str, str, float, int]]) -> pa.Table:
    return pa.table(
        {
            "item_a": [r[0] for r in rows],
            "item_b": [r[1] for r in rows],
            "lift_shrunk": [r[2] for r in rows],
            "n_ab": [r[3] for r in rows],
        }
    )


PAIRS = _pairs(
    [("A", "B", 4.0, 40), ("A", "C", 2.0, 20), ("B", "C", 3.0, 30), ("D", "E", 8.0, 80),
     ("A", "D", 0.5, 5)]
)  # fmt: skip


def test_ranks_by_mean_interest_times_mean_log_lift() -> None:
    interest = np.array([[1.0, 0.5, 0.0, 0.0, 0.0]])
    out = beam_search_bundles(["u"], ITEMS, interest, PAIRS, n_offers=10)
    assert set(CANDIDATE_COLUMNS) <= set(out.column_names)
    rows = out.to_pylist()
    scores = {tuple(r["item_ids"]): r["score"] for r in rows}
    assert scores[("A", "B")] == pytest.approx((1.0 + 0.5) / 2 * math.log(4.0))
    assert scores[("A", "C")] == pytest.approx((1.0 + 0.0) / 2 * math.log(2.0))
    triple = (math.log(4.0) + math.log(2.0) + math.log(3.0)) / 3 * (1.0 + 0.5 + 0.0) / 3
    assert scores[("A", "B", "C")] == pytest.approx(triple)
    assert rows[0]["item_ids"] == ["A", "B"]
    assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
    # D+E is the strongest pair in the store but the customer has no interest in either item,
    # and A-D has lift below 1: neither is offered.
    assert ("D", "E") not in scores and ("A", "D") not in scores


def test_pairs_only_and_offer_count() -> None:
    interest = np.array([[1.0, 0.5, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.1]])
    out = beam_search_bundles(["u", "v"], ITEMS, interest, PAIRS, n_offers=1, max_bundle_size=2)
    by_customer = {r["customer_id"]: r["item_ids"] for r in out.to_pylist()}
    assert by_customer == {"u": ["A", "B"], "v": ["D", "E"]}


def test_customer_without_interest_gets_nothing_and_bad_input_raises() -> None:
    out = beam_search_bundles(["u"], ITEMS, np.zeros((1, 5)), PAIRS)
    assert out.num_rows == 0
    with pytest.raises(ValueError, match="shape"):
        beam_search_bundles(["u"], ITEMS, np.zeros((2, 5)), PAIRS)
    with pytest.raises(ValueError, match="max_bundle_size"):
        beam_search_bundles(["u"], ITEMS, np.ones((1, 5)), PAIRS, max_bundle_size=4)


def test_compose_beam_candidates_covers_customers_and_tops_up_with_popular() -> None:
    from datetime import datetime

    from bundlewise.composer.beam import compose_beam_candidates
    from bundlewise.config import ComposerConfig
    from bundlewise.mining import PairMiner

    rows = []
    for k in range(12):  # A and B always together, C and D always together
        rows.append((f"o{k}", None, "A" if k % 2 else "C"))
        rows.append((f"o{k}", None, "B" if k % 2 else "D"))
    rows += [("u1", "u1", "A"), ("v1", "v", "E")]
    lines = pa.table(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "item_id": [r[2] for r in rows],
            "ts": pa.array([datetime(2010, 1, 1)] * len(rows), pa.timestamp("us")),
        }
    )
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    out = compose_beam_candidates(
        lines, miner.pairs_, ComposerConfig(n_offers=2, knn_weight=0.0), customer_ids=["ghost"]
    )
    rows_by = {}
    for r in out.to_pylist():
        rows_by.setdefault(r["customer_id"], []).append(r)
    assert set(rows_by) == {"u1", "v", "ghost"}
    assert rows_by["u1"][0]["item_ids"] == ["A", "B"]
    assert rows_by["u1"][0]["source"] == "history"
    assert rows_by["u1"][0]["anchor_n_orders"] == 1
    # v bought only E, which has no complement: popular pairs only
    assert {r["source"] for r in rows_by["v"]} == {"popular"}
    assert all(len(rs) == 2 for rs in rows_by.values())
