"""Personalization in blocks of customers gives exactly what one block gives, and what the
customer-by-customer beam search over dense interest (the composer before blocks) gave."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from bundlewise.composer import beam, price_offers
from bundlewise.composer.beam import beam_search_bundles, compose_beam_candidates
from bundlewise.composer.candidates import add_popular_fallback
from bundlewise.composer.interest import blend, blend_csr, history_interest, max_normalize
from bundlewise.config import ComposerConfig, Config
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError
from bundlewise.mining import PairMiner
from bundlewise.models.item_knn import ItemKNNRecommender
from bundlewise.pipeline import bundled_dataset_path, ingest


def _reference_search(
    customer_ids: list[str],
    item_ids: list[str],
    interest: npt.NDArray[np.float64],
    pairs: pa.Table,
    *,
    n_offers: int,
    n_anchors: int,
    beam_width: int,
    max_bundle_size: int,
    max_partners: int = 30,
) -> list[dict[str, Any]]:
    """The beam search as it was: one customer at a time, a full sort of each interest row."""
    out: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for a, b, lift, n in zip(
        pairs.column("item_a").to_pylist(),
        pairs.column("item_b").to_pylist(),
        pairs.column("lift_shrunk").to_pylist(),
        pairs.column("n_ab").to_pylist(),
        strict=True,
    ):
        if lift > 1.0:
            out[a].append((math.log(lift), n, b))
            out[b].append((math.log(lift), n, a))
    comp = {
        item: {p: (c, n) for c, n, p in sorted(lst, key=lambda t: (-t[0], -t[1], t[2]))[
            :max_partners]}
        for item, lst in out.items()
    }  # fmt: skip
    column = {item: j for j, item in enumerate(item_ids)}
    rows = []
    for u, customer in enumerate(customer_ids):
        row = interest[u]
        top = float(row.max()) if row.size else 0.0
        if top <= 0:
            continue
        s = np.maximum(row, 0.0) / top

        def interest_of(item: str, s: npt.NDArray[np.float64] = s) -> float:
            j = column.get(item)
            return float(s[j]) if j is not None else 0.0

        anchors = [item_ids[j] for j in np.argsort(-s, kind="stable")[:n_anchors] if s[j] > 0]
        bundles: dict[tuple[str, ...], tuple[float, str, int, float]] = {}
        found: list[tuple[float, tuple[str, ...], str, float, int]] = []
        for a in anchors:
            for b, (c, n) in comp.get(a, {}).items():
                key = tuple(sorted((a, b)))
                score = (interest_of(a) + interest_of(b)) / 2 * c
                if key not in bundles or score > bundles[key][0]:
                    bundles[key] = (score, a, n, math.exp(c))
                found.append((score, key, a, c, n))
        found.sort(key=lambda t: (-t[0], t[1]))
        if max_bundle_size == 3:
            for _, (x, y), anchor, c_xy, n_xy in found[:beam_width]:
                cx, cy = comp.get(x, {}), comp.get(y, {})
                s_xy = interest_of(x) + interest_of(y)
                for z in cx.keys() & cy.keys():
                    key = tuple(sorted((x, y, z)))
                    if key in bundles:
                        continue
                    (c_xz, n_xz), (c_yz, n_yz) = cx[z], cy[z]
                    score = (s_xy + interest_of(z)) / 3 * (c_xy + c_xz + c_yz) / 3
                    bundles[key] = (
                        score, anchor, min(n_xy, n_xz, n_yz), math.exp(min(c_xy, c_xz, c_yz)),
                    )  # fmt: skip
        ranked = sorted(bundles.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n_offers]
        for rank, (key, (score, anchor, n_min, lift_min)) in enumerate(ranked, start=1):
            rows.append(
                {
                    "customer_id": customer,
                    "offer_rank": rank,
                    "item_ids": list(key),
                    "score": score,
                    "source": "history",
                    "anchor_id": anchor,
                    "anchor_n_orders": None,
                    "min_pair_count": n_min,
                    "min_pair_lift": lift_min,
                }
            )
    return rows


def _world(seed: int) -> tuple[list[str], list[str], npt.NDArray[np.float64], pa.Table]:
    """Customers, items (not in sorted order), interest and pairs with many exact ties; one
    paired item is not an interest column."""
    rng = np.random.default_rng(seed)
    names = [f"i{k:02d}" for k in range(14)]
    items = [names[k] for k in rng.permutation(len(names))]
    interest = rng.choice([0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 2.0, -1.0], size=(40, len(items)))
    interest[3] = 0.0  # no interest at all
    everyone = sorted([*names, "zz"])
    rows = [
        (everyone[i], everyone[j], float(rng.choice([0.5, 1.5, 2.0, 4.0])), int(rng.integers(1, 3)))
        for i in range(len(everyone))
        for j in range(i + 1, len(everyone))
        if rng.random() < 0.6
    ]  # fmt: skip
    pairs = pa.table(
        {
            "item_a": [r[0] for r in rows],
            "item_b": [r[1] for r in rows],
            "lift_shrunk": [r[2] for r in rows],
            "n_ab": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    return [f"c{k:02d}" for k in range(40)], items, interest, pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "sizes",
    [
        {"n_offers": 4, "n_anchors": 3, "beam_width": 5, "max_bundle_size": 3, "max_partners": 4},
        {"n_offers": 10, "n_anchors": 10, "beam_width": 30, "max_bundle_size": 3},
        {"n_offers": 3, "n_anchors": 2, "beam_width": 5, "max_bundle_size": 2, "max_partners": 3},
    ],
)
def test_blocked_search_is_the_customer_by_customer_search(
    seed: int, sizes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, items, interest, pairs = _world(seed)
    expected = _reference_search(customers, items, interest, pairs, **sizes)
    assert expected and any(len(r["item_ids"]) == 3 for r in expected) == (
        sizes["max_bundle_size"] == 3
    )
    for block_size in (1, 7, 1000):
        got = beam_search_bundles(customers, items, interest, pairs, block_size=block_size, **sizes)
        assert got.to_pylist() == expected
    # sparse input, and a scratch array of two customers: pieces inside each block
    monkeypatch.setattr(beam, "SCRATCH_CELLS", 2 * 15)
    got = beam_search_bundles(customers, items, sp.csr_matrix(interest), pairs, **sizes)
    assert got.to_pylist() == expected


def test_blend_csr_is_blend_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    views = {
        name: sp.random(30, 20, density=0.3, random_state=rng, format="csr") * scale
        for name, scale in (("h", 3.0), ("k", 0.7))
    }
    views["k"].data -= 0.2  # some negative values, clipped
    weights = {"h": 1.0, "k": 0.5}
    dense = blend({k: v.toarray() for k, v in views.items()}, weights)
    assert np.array_equal(blend_csr(views, weights).toarray(), dense)
    assert np.array_equal(
        max_normalize(views["k"].toarray()), blend_csr(views, {"k": 1.0}).toarray()
    )
    with pytest.raises(KeyError, match="unknown views"):
        blend_csr(views, {"x": 1.0})


def test_item_knn_in_item_blocks_and_sparse_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    world = sp.csr_matrix(rng.random((60, 25)) < 0.2)
    whole = ItemKNNRecommender(n_neighbors=4).fit(world)
    monkeypatch.setattr("bundlewise.models.item_knn.ITEM_BLOCK", 3)
    blocked = ItemKNNRecommender(n_neighbors=4).fit(world)
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(whole.similarity_, name), getattr(blocked.similarity_, name))
    users = np.array([4, 0, 59])
    assert np.array_equal(blocked.score_sparse(users).toarray(), whole.score(users))


def _lines(rows: list[tuple[str, str | None, str, datetime]]) -> pa.Table:
    return pa.table(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "item_id": [r[2] for r in rows],
            "ts": pa.array([r[3] for r in rows], pa.timestamp("us")),
        }
    )


def _dense_compose(lines: pa.Table, pairs: pa.Table, config: ComposerConfig) -> pa.Table:
    """The composer before blocks: dense history, dense item-kNN scores, dense blend."""
    interest = history_interest(lines, config.recency_half_life_days)
    knn = ItemKNNRecommender(n_neighbors=100).fit(interest.binary())
    views: dict[str, npt.ArrayLike] = {
        "history": interest.values,
        "item_knn": knn.score(np.arange(len(interest.customer_ids))),
    }
    scores = blend(views, {"history": 1.0, "item_knn": config.knn_weight})
    rows = _reference_search(
        interest.customer_ids,
        interest.item_ids,
        scores,
        pairs,
        n_offers=config.n_offers,
        n_anchors=config.n_anchors,
        beam_width=config.beam_width,
        max_bundle_size=config.max_bundle_size,
    )
    personal = pa.Table.from_pylist(rows, schema=beam._SCHEMA)
    return add_popular_fallback(personal, lines, pairs, config.n_offers, ["ghost"])


def _small_world() -> pa.Table:
    rng = np.random.default_rng(11)
    start = datetime(2010, 1, 1)
    rows = []
    for k in range(400):
        customer = None if k % 9 == 0 else f"u{rng.integers(0, 60)}"
        basket = rng.choice(30, size=int(rng.integers(2, 7)), replace=False)
        for item in basket:
            rows.append((f"o{k}", customer, f"sku{item:02d}", start + timedelta(days=int(k // 3))))
    return _lines(rows)


@pytest.fixture(scope="module")
def bundled_slice(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Clean order lines, items and pairs of the first 20,000 lines of the bundled orders."""
    tmp = tmp_path_factory.mktemp("slice")
    path = Path(tmp) / "slice.parquet"
    pq.write_table(pq.read_table(bundled_dataset_path()).slice(0, 20_000), path)
    workspace = Workspace(Path(tmp) / "ws")
    ingest(workspace, path)
    lines = workspace.table("order_lines")
    pairs = PairMiner.from_config(Config().mining).fit(lines).pairs_
    return lines, workspace.table("items"), pairs


@pytest.mark.parametrize("world", ["small", "bundled slice"])
def test_blocks_give_the_same_candidates_and_offers(
    world: str, bundled_slice: tuple[pa.Table, pa.Table, pa.Table]
) -> None:
    if world == "small":
        lines = _small_world()
        pairs = PairMiner(min_count=2, prior_strength=1.0).fit(lines).pairs_
        items = None
    else:
        lines, items, pairs = bundled_slice
    config = ComposerConfig(n_offers=10)
    one_block = compose_beam_candidates(
        lines, pairs, ComposerConfig(n_offers=10, block_size=10**6), customer_ids=["ghost"]
    )
    n_customers = len(set(lines.column("customer_id").drop_null().to_pylist()))
    assert (one_block.column("source").to_pylist().count("history")) > n_customers
    for block_size in (1, 7, 4096):
        blocked = compose_beam_candidates(
            lines, pairs, ComposerConfig(n_offers=10, block_size=block_size), customer_ids=["ghost"]
        )
        assert blocked.equals(one_block), block_size
    assert _dense_compose(lines, pairs, config).equals(one_block)
    if items is not None:
        offers = [
            price_offers(c, items, Config(), keep=5).offers
            for c in (one_block, compose_beam_candidates(
                lines, pairs, ComposerConfig(n_offers=10, block_size=3), customer_ids=["ghost"]))
        ]  # fmt: skip
        assert offers[0].num_rows > 0 and offers[0].equals(offers[1])


def test_block_size_is_validated() -> None:
    with pytest.raises(ConfigError, match="composer.block_size"):
        ComposerConfig(block_size=0)
    with pytest.raises(ValueError, match="block_size"):
        beam_search_bundles(
            ["u"], ["A"], np.ones((1, 1)), pa.table({"item_a": [], "item_b": []}), block_size=0
        )
