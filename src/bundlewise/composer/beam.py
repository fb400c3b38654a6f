"""Beam search over item sets: interest x complementarity.

Given each customer's interest in every item (any recommender or a blend of them) and the mined
complement pairs, grow bundles one item at a time:

1. seeds: the customer's ``n_anchors`` most interesting items;
2. pairs: each seed with each of its complements (shrunk lift above 1); keep the best
   ``beam_width``;
3. triples: each kept pair with an item that complements both of its members; keep the best
   ``beam_width``;

and rank all pairs and triples by

.. math::

    \\mathrm{score}(u, B) = \\overline{s_{u,B}}
    \\times \\overline{\\log \\widehat{\\mathrm{lift}}}_B

(mean interest of the items, interest max-normalized per customer, times the mean log shrunk
lift over the bundle's pairs). The output has the columns of
:func:`bundlewise.composer.compose_candidates`, so :func:`bundlewise.composer.price_offers`
prices it unchanged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from bundlewise.config import ComposerConfig

#: ``on_progress(done, total)``: items done inside a long step.
ItemProgress = Callable[[int, int], None]


def _complements(pairs: pa.Table, max_partners: int) -> dict[str, dict[str, tuple[float, int]]]:
    """item -> {partner: (log shrunk lift, n_ab)}, the ``max_partners`` best per item."""
    out: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for a, b, lift, n in zip(
        pairs.column("item_a").to_pylist(),
        pairs.column("item_b").to_pylist(),
        pairs.column("lift_shrunk").to_pylist(),
        pairs.column("n_ab").to_pylist(),
        strict=True,
    ):
        if lift > 1.0:
            c = math.log(lift)
            out[a].append((c, n, b))
            out[b].append((c, n, a))
    return {
        item: {p: (c, n) for c, n, p in sorted(lst, key=lambda t: (-t[0], -t[1], t[2]))[
            :max_partners]}
        for item, lst in out.items()
    }  # fmt: skip


def beam_search_bundles(
    customer_ids: Sequence[str],
    item_ids: Sequence[str],
    interest: npt.NDArray[np.float64],
    pairs: pa.Table,
    *,
    n_offers: int = 5,
    n_anchors: int = 10,
    beam_width: int = 30,
    max_bundle_size: int = 3,
    max_partners: int = 30,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """Top bundles per customer by beam search.

    Parameters
    ----------
    customer_ids
        One per row of ``interest``.
    item_ids
        One per column of ``interest``.
    interest
        Array of shape (n_customers, n_items): higher = more interesting; non-positive values
        mean no interest.
    pairs
        ``PairMiner.pairs_``.
    n_offers, n_anchors, beam_width, max_bundle_size, max_partners
        Search sizes; ``max_bundle_size`` is 2 or 3.
    on_progress
        Called as ``on_progress(customers_done, n_customers)`` about a hundred times.

    Returns
    -------
    pyarrow.Table
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS` (``source`` = ``"history"``).

    Raises
    ------
    ValueError
        Shape mismatch or invalid sizes.
    """
    scores = np.asarray(interest, dtype=np.float64)
    if scores.shape != (len(customer_ids), len(item_ids)):
        raise ValueError(
            f"interest has shape {scores.shape}, expected ({len(customer_ids)}, {len(item_ids)})."
        )
    if max_bundle_size not in (2, 3):
        raise ValueError(f"max_bundle_size={max_bundle_size} should be 2 or 3.")
    for name, value in (("n_offers", n_offers), ("n_anchors", n_anchors),
                        ("beam_width", beam_width), ("max_partners", max_partners)):  # fmt: skip
        if value < 1:
            raise ValueError(f"{name}={value} should be >= 1.")
    comp = _complements(pairs, max_partners)
    column = {item: j for j, item in enumerate(item_ids)}
    rows: dict[str, list[object]] = {c: [] for c in (
        "customer_id", "offer_rank", "item_ids", "score", "source", "anchor_id",
        "anchor_n_orders", "min_pair_count", "min_pair_lift")}  # fmt: skip

    n_customers = len(customer_ids)
    every = max(1, n_customers // 100)
    for u, customer in enumerate(customer_ids):
        if on_progress is not None and u % every == 0:
            on_progress(u, n_customers)
        row = scores[u]
        top = float(row.max()) if row.size else 0.0
        if top <= 0:
            continue
        s = np.maximum(row, 0.0) / top

        def interest_of(item: str, s: npt.NDArray[np.float64] = s) -> float:
            j = column.get(item)
            return float(s[j]) if j is not None else 0.0

        anchors = [item_ids[j] for j in np.argsort(-s, kind="stable")[:n_anchors] if s[j] > 0]
        bundles: dict[tuple[str, ...], tuple[float, str, int, float]] = {}
        beam: list[tuple[float, tuple[str, ...], str, float, int]] = []
        for a in anchors:
            for b, (c, n) in comp.get(a, {}).items():
                key = tuple(sorted((a, b)))
                score = (interest_of(a) + interest_of(b)) / 2 * c
                if key not in bundles or score > bundles[key][0]:
                    bundles[key] = (score, a, n, math.exp(c))
                beam.append((score, key, a, c, n))
        beam.sort(key=lambda t: (-t[0], t[1]))
        beam = beam[:beam_width]
        if max_bundle_size == 3:
            for _, (x, y), anchor, c_xy, n_xy in beam:
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
            rows["customer_id"].append(customer)
            rows["offer_rank"].append(rank)
            rows["item_ids"].append(list(key))
            rows["score"].append(score)
            rows["source"].append("history")
            rows["anchor_id"].append(anchor)
            rows["anchor_n_orders"].append(None)
            rows["min_pair_count"].append(n_min)
            rows["min_pair_lift"].append(lift_min)
    if on_progress is not None:
        on_progress(n_customers, n_customers)
    return pa.table(
        {
            "customer_id": pa.array(rows["customer_id"], pa.string()),
            "offer_rank": pa.array(rows["offer_rank"], pa.int32()),
            "item_ids": pa.array(rows["item_ids"], pa.list_(pa.string())),
            "score": pa.array(rows["score"], pa.float64()),
            "source": pa.array(rows["source"], pa.string()),
            "anchor_id": pa.array(rows["anchor_id"], pa.string()),
            "anchor_n_orders": pa.array(rows["anchor_n_orders"], pa.int64()),
            "min_pair_count": pa.array(rows["min_pair_count"], pa.int64()),
            "min_pair_lift": pa.array(rows["min_pair_lift"], pa.float64()),
        }
    )


def compose_beam_candidates(
    order_lines: pa.Table,
    pairs: pa.Table,
    config: ComposerConfig | None = None,
    customer_ids: list[str] | None = None,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """Candidate bundles for every customer: blended interest, beam search, popular top-up.

    Interest is the purchase-history view (frequency x recency) plus ``knn_weight`` x the
    item-kNN view fitted on who bought what; see :mod:`bundlewise.composer.interest`.

    Returns
    -------
    pyarrow.Table
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS`.
    """
    from bundlewise.composer.candidates import add_popular_fallback
    from bundlewise.composer.interest import blend, history_interest
    from bundlewise.models.item_knn import ItemKNNRecommender

    config = config or ComposerConfig()
    interest = history_interest(order_lines, config.recency_half_life_days)
    views: dict[str, npt.ArrayLike] = {"history": interest.values}
    weights = {"history": 1.0}
    if config.knn_weight > 0 and interest.customer_ids:
        knn = ItemKNNRecommender(n_neighbors=100).fit(interest.binary())
        views["item_knn"] = knn.score(np.arange(len(interest.customer_ids)))
        weights["item_knn"] = config.knn_weight
    scores = (
        blend(views, weights) if interest.customer_ids else np.zeros((0, len(interest.item_ids)))
    )
    personal = beam_search_bundles(
        interest.customer_ids,
        interest.item_ids,
        scores,
        pairs,
        n_offers=config.n_offers,
        n_anchors=config.n_anchors,
        beam_width=config.beam_width,
        max_bundle_size=config.max_bundle_size,
        on_progress=on_progress,
    )
    return add_popular_fallback(personal, order_lines, pairs, config.n_offers, customer_ids)


__all__ = ["beam_search_bundles", "compose_beam_candidates"]
