"""Ranking metrics as pure functions over a boolean hit matrix.

``hits[u, r]`` is True when the item at rank ``r`` (0-based) of user ``u``'s list is relevant;
``n_relevant[u]`` is how many relevant items user ``u`` has in the evaluated split. Every metric
returns the mean over users (users with no relevant item must be filtered out by the caller,
as the CrossCBR/BGCN protocol does).

.. math::

    \\mathrm{Recall@K} = \\frac{|\\mathrm{top}_K \\cap R|}{|R|}, \\quad
    \\mathrm{NDCG@K} = \\frac{\\sum_{r < K} \\mathrm{hit}_r / \\log_2(r + 2)}
                            {\\sum_{r < \\min(|R|, K)} 1 / \\log_2(r + 2)}, \\quad
    \\mathrm{HR@K} = [\\,|\\mathrm{top}_K \\cap R| > 0\\,], \\quad
    \\mathrm{MRR} = 1 / \\mathrm{rank}_{\\text{first hit}}

References
----------
Järvelin & Kekäläinen (2002), "Cumulated gain-based evaluation of IR techniques".
Ma et al. (2022), CrossCBR (evaluation protocol for Youshu).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

BoolMatrix = npt.NDArray[np.bool_]


def _check(hits: npt.ArrayLike, k: int) -> BoolMatrix:
    matrix = np.asarray(hits, dtype=bool)
    if matrix.ndim != 2:
        raise ValueError(f"hits must be 2-D (n_users, n_ranks), got shape {matrix.shape}.")
    if k < 1:
        raise ValueError(f"k={k} should be >= 1.")
    if matrix.shape[1] < k:
        raise ValueError(f"hits has {matrix.shape[1]} ranks, fewer than k={k}.")
    return matrix[:, :k]


def _n_relevant(n_relevant: npt.ArrayLike, n_users: int) -> npt.NDArray[np.float64]:
    n = np.asarray(n_relevant, dtype=np.float64)
    if n.shape != (n_users,):
        raise ValueError(f"n_relevant has shape {n.shape}, expected ({n_users},).")
    if np.any(n < 1):
        raise ValueError("every evaluated user needs at least one relevant item (n_relevant >= 1).")
    return n


def recall_at_k(hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int) -> float:
    """Mean share of each user's relevant items found in the top ``k``.

    Examples
    --------
    >>> recall_at_k([[True, False, True]], [4], k=3)
    0.5
    """
    h = _check(hits, k)
    n = _n_relevant(n_relevant, h.shape[0])
    return float(np.mean(h.sum(axis=1) / n)) if h.shape[0] else 0.0


def ndcg_at_k(hits: npt.ArrayLike, n_relevant: npt.ArrayLike, k: int) -> float:
    """Mean NDCG@k with binary gains and the ideal DCG over ``min(n_relevant, k)`` hits.

    Examples
    --------
    >>> round(ndcg_at_k([[False, True]], [1], k=2), 4)
    0.6309
    """
    h = _check(hits, k)
    n = _n_relevant(n_relevant, h.shape[0])
    if not h.shape[0]:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (h * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n, k).astype(np.int64) - 1]
    return float(np.mean(dcg / ideal))


def hit_rate_at_k(hits: npt.ArrayLike, k: int) -> float:
    """Share of users with at least one relevant item in the top ``k``.

    Examples
    --------
    >>> hit_rate_at_k([[False, True], [False, False]], k=2)
    0.5
    """
    h = _check(hits, k)
    return float(np.mean(h.any(axis=1))) if h.shape[0] else 0.0


def mean_reciprocal_rank(hits: npt.ArrayLike) -> float:
    """Mean of 1 / (rank of the first hit), 0 for users without a hit in the list.

    Examples
    --------
    >>> mean_reciprocal_rank([[False, True, True], [False, False, False]])
    0.25
    """
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-D (n_users, n_ranks), got shape {h.shape}.")
    if not h.shape[0] or not h.shape[1]:
        return 0.0
    first = np.argmax(h, axis=1)
    rr = np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)
    return float(np.mean(rr))


def catalog_coverage(recommended_ids: npt.ArrayLike, n_catalog: int) -> float:
    """Share of the catalog that appears in at least one recommendation list.

    Examples
    --------
    >>> catalog_coverage([[0, 1], [1, 2]], n_catalog=10)
    0.3
    """
    if n_catalog < 1:
        raise ValueError(f"n_catalog={n_catalog} should be >= 1.")
    ids = np.asarray(recommended_ids).ravel()
    if np.any(ids >= n_catalog):
        raise ValueError(f"recommended ids must be < n_catalog={n_catalog}.")
    return float(len(np.unique(ids[ids >= 0])) / n_catalog) if ids.size else 0.0


def intra_list_diversity(recommended_ids: npt.ArrayLike, embeddings: npt.ArrayLike) -> float:
    """Mean pairwise cosine distance (1 - cosine similarity) within each list.

    Parameters
    ----------
    recommended_ids
        Array of shape (n_users, k) of dense indices into ``embeddings``.
    embeddings
        Array of shape (n_catalog, dim).

    Examples
    --------
    >>> intra_list_diversity([[0, 1]], [[1.0, 0.0], [0.0, 1.0]])
    1.0
    """
    ids = np.asarray(recommended_ids, dtype=np.int64)
    emb = np.asarray(embeddings, dtype=np.float64)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError("recommended_ids must have shape (n_users, k) with k >= 2.")
    if np.any((ids < 0) | (ids >= len(emb))):
        raise ValueError(f"recommended ids must be dense indices in [0, {len(emb)}).")
    if not ids.shape[0]:
        return 0.0
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms == 0, 1.0, norms)
    vectors = unit[ids]  # (n_users, k, dim)
    sims = np.einsum("ukd,ujd->ukj", vectors, vectors)
    k = ids.shape[1]
    off_diagonal = ~np.eye(k, dtype=bool)
    return float(np.mean(1.0 - sims[:, off_diagonal]))


def hits_from_rankings(
    top_ids: npt.ArrayLike, relevant: sp.csr_matrix | Sequence[set[int]]
) -> BoolMatrix:
    """The hit matrix of ranked ids against each user's relevant set.

    Parameters
    ----------
    top_ids
        Array of shape (n_users, k): ranked dense ids per user (-1 = empty slot).
    relevant
        CSR matrix of shape (n_users, n_catalog) or one set of ids per user.

    Examples
    --------
    >>> hits_from_rankings([[2, 0, 1]], [{0, 5}]).tolist()
    [[False, True, False]]
    """
    ids = np.asarray(top_ids, dtype=np.int64)
    if ids.ndim != 2:
        raise ValueError(f"top_ids must be 2-D (n_users, k), got shape {ids.shape}.")
    if not ids.size:
        return np.zeros(ids.shape, dtype=bool)
    if sp.issparse(relevant):
        matrix = sp.csr_matrix(relevant)
        rows = np.repeat(np.arange(ids.shape[0]), ids.shape[1])
        cols = np.clip(ids.ravel(), 0, None)
        found = np.asarray(matrix[rows, cols]).ravel() > 0
        return (found & (ids.ravel() >= 0)).reshape(ids.shape)
    sets = list(relevant)
    return np.array([[int(i) in sets[u] for i in row] for u, row in enumerate(ids)], dtype=bool)


__all__ = [
    "catalog_coverage",
    "hit_rate_at_k",
    "hits_from_rankings",
    "intra_list_diversity",
    "mean_reciprocal_rank",
    "ndcg_at_k",
    "recall_at_k",
]
