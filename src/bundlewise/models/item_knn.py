"""Item-based k-nearest neighbours with shrunk cosine similarity.

.. math::

    \\mathrm{sim}(i, j) = \\frac{|U_i \\cap U_j|}{\\sqrt{|U_i|\\,|U_j|} + h}, \\qquad
    \\mathrm{score}(u, j) = \\sum_{i \\in I_u} \\mathrm{sim}_k(i, j)

where :math:`\\mathrm{sim}_k` keeps each item's ``n_neighbors`` most similar items.

References
----------
Sarwar et al. (2001), "Item-based collaborative filtering recommendation algorithms".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise.models.base import FloatMatrix, IntArray, Recommender

#: Items whose co-occurrence rows are computed at once in :meth:`ItemKNNRecommender.fit`.
ITEM_BLOCK = 2048


class ItemKNNRecommender(Recommender):
    """Item-kNN over binary interactions.

    Parameters
    ----------
    n_neighbors
        Similar items kept per item.
    shrinkage
        :math:`h`, damps similarities supported by few users.
    """

    _fitted_sparse = ("user_items_", "similarity_")

    def __init__(self, n_neighbors: int = 100, shrinkage: float = 10.0) -> None:
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"n_neighbors": 5, "shrinkage": 1.0}

    def _validate_params(self) -> None:
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 1:
            raise ValueError(f"n_neighbors={self.n_neighbors!r} should be an integer >= 1.")
        if not self.shrinkage >= 0:
            raise ValueError(f"shrinkage={self.shrinkage!r} should be >= 0.")

    def _fit(self, interactions: sp.csr_matrix) -> None:
        binary = (interactions > 0).astype(np.float64)
        counts = np.asarray(binary.sum(axis=0)).ravel()
        by_item = sp.csr_matrix(binary.T)
        n_items = binary.shape[1]
        rows: list[npt.NDArray[np.int64]] = []
        cols: list[npt.NDArray[np.int32]] = []
        vals: list[npt.NDArray[np.float64]] = []
        # Co-occurrences a block of items at a time: memory grows with the block, not with
        # the square of the catalog.
        for lo in range(0, n_items, ITEM_BLOCK):
            hi = min(lo + ITEM_BLOCK, n_items)
            co = sp.csr_matrix(by_item[lo:hi] @ binary).tocoo()
            off_diagonal = (co.row + lo != co.col) & (co.data != 0)
            row, col = co.row[off_diagonal], co.col[off_diagonal]
            denom = np.sqrt(counts[row + lo] * counts[col]) + self.shrinkage
            sim = sp.csr_matrix(
                (co.data[off_diagonal] / denom, (row, col)), shape=(hi - lo, n_items)
            )
            sim.sum_duplicates()  # sorted columns in each row
            # keep the top n_neighbors per row
            for i in range(hi - lo):
                start, end = sim.indptr[i], sim.indptr[i + 1]
                if end == start:
                    continue
                data = sim.data[start:end]
                idx = sim.indices[start:end]
                if len(data) > self.n_neighbors:
                    keep = np.argpartition(-data, self.n_neighbors - 1)[: self.n_neighbors]
                    data, idx = data[keep], idx[keep]
                rows.append(np.full(len(idx), lo + i, dtype=np.int64))
                cols.append(idx)
                vals.append(data)
        shape = (n_items, n_items)
        if rows:
            self.similarity_ = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
            )
        else:
            self.similarity_ = sp.csr_matrix(shape)

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.asarray(self.score_sparse(user_idx).toarray(), np.float64)

    def score_sparse(self, user_idx: npt.ArrayLike) -> sp.csr_matrix:
        """:meth:`score` as a sparse matrix (float64 CSR, sorted indices): the same values,
        stored only where an item neighbours one of the user's items.

        Raises
        ------
        NotFittedError, KeyError
        """
        self._check_is_fitted()
        users = self._check_users(user_idx)
        return knn_scores(self.user_items_[users], self.similarity_)


def knn_scores(user_items: sp.csr_matrix, similarity: sp.csr_matrix) -> sp.csr_matrix:
    """Scores of users (rows of their binary ``user_items``, as :func:`as_interactions` gives)
    against a fitted ``similarity_``: float64 CSR with sorted indices; each row depends on that
    user's items only."""
    scores = sp.csr_matrix(user_items @ similarity, dtype=np.float64)
    scores.sort_indices()
    return scores


__all__ = ["ItemKNNRecommender", "knn_scores"]
