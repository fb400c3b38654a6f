"""Bundle partners for products with no sales, from product text.

A new product has no co-purchase evidence, so it borrows it: its ``n_neighbors`` nearest sold
products by title embedding (cosine) vote for their own co-purchase partners, each vote
weighted by text similarity times the number of orders the pair was bought in:

.. math::

    \\mathrm{score}(p, r) = \\sum_{q \\in \\mathrm{NN}(p)} \\cos(p, q)\\; n_{qr}

The best-scoring partners (never the product itself) form its bundles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from bundlewise.models.text_encoder import nearest_neighbors


def cold_start_partners(
    new_item_ids: Sequence[str],
    new_embeddings: npt.NDArray[np.float32],
    sold_item_ids: Sequence[str],
    sold_embeddings: npt.NDArray[np.float32],
    pairs: pa.Table,
    n_neighbors: int = 5,
    n_partners: int = 10,
) -> pa.Table:
    """Rank bundle partners for each new product.

    Parameters
    ----------
    new_item_ids, new_embeddings
        Products without sales and their unit-length text embeddings, shape (n_new, dim).
    sold_item_ids, sold_embeddings
        Products with sales and their embeddings, shape (n_sold, dim).
    pairs
        ``PairMiner.pairs_`` over the sold products.
    n_neighbors
        Nearest sold products that vote.
    n_partners
        Partners kept per new product.

    Returns
    -------
    pyarrow.Table
        ``item_id, partner_id, rank, score, via_item_id, via_similarity``: ``via`` is the
        neighbour that contributed most to the partner's score (for the explanation).

    Raises
    ------
    ValueError
        Mismatched lengths or ``n_neighbors``/``n_partners`` < 1.
    """
    if len(new_item_ids) != len(new_embeddings) or len(sold_item_ids) != len(sold_embeddings):
        raise ValueError("each id list must have one embedding row per id.")
    if n_neighbors < 1 or n_partners < 1:
        raise ValueError(f"n_neighbors={n_neighbors} and n_partners={n_partners} must be >= 1.")
    cocount: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for a, b, n in zip(
        pairs.column("item_a").to_pylist(),
        pairs.column("item_b").to_pylist(),
        pairs.column("n_ab").to_pylist(),
        strict=True,
    ):
        cocount[a].append((b, n))
        cocount[b].append((a, n))
    rows: dict[str, list[object]] = {
        "item_id": [], "partner_id": [], "rank": [], "score": [], "via_item_id": [],
        "via_similarity": [],
    }  # fmt: skip
    if len(new_item_ids) and len(sold_item_ids):
        idx, sims = nearest_neighbors(new_embeddings, sold_embeddings, n_neighbors)
        for j, item in enumerate(new_item_ids):
            score: dict[str, float] = defaultdict(float)
            best_via: dict[str, tuple[float, str, float]] = {}
            for q, sim in zip(idx[j], sims[j], strict=True):
                neighbour = sold_item_ids[q]
                for partner, n_ab in cocount[neighbour]:
                    if partner == item:
                        continue
                    vote = float(sim) * n_ab
                    score[partner] += vote
                    if partner not in best_via or vote > best_via[partner][0]:
                        best_via[partner] = (vote, neighbour, float(sim))
            ranked = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:n_partners]
            for rank, (partner, value) in enumerate(ranked, start=1):
                rows["item_id"].append(item)
                rows["partner_id"].append(partner)
                rows["rank"].append(rank)
                rows["score"].append(value)
                rows["via_item_id"].append(best_via[partner][1])
                rows["via_similarity"].append(best_via[partner][2])
    return pa.table(
        {
            "item_id": pa.array(rows["item_id"], pa.string()),
            "partner_id": pa.array(rows["partner_id"], pa.string()),
            "rank": pa.array(rows["rank"], pa.int32()),
            "score": pa.array(rows["score"], pa.float64()),
            "via_item_id": pa.array(rows["via_item_id"], pa.string()),
            "via_similarity": pa.array(rows["via_similarity"], pa.float64()),
        }
    )


__all__ = ["cold_start_partners"]
