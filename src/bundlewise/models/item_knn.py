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
import scipy.sparse as sp

from bundlewise.models.base import FloatMatrix, IntArray, Recommender


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
        co = (binary.T @ binary).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        coo = co.tocoo()
        denom = np.sqrt(counts[coo.row] * counts[coo.col]) + self.shrinkage
        sim = sp.csr_matrix((coo.data / denom, (coo.row, coo.col)), shape=co.shape)
        # keep the top n_neighbors per row
        rows, cols, vals = [], [], []
        for i in range(sim.shape[0]):
            start, end = sim.indptr[i], sim.indptr[i + 1]
            if end == start:
                continue
            data = sim.data[start:end]
            idx = sim.indices[start:end]
            if len(data) > self.n_neighbors:
                keep = np.argpartition(-data, self.n_neighbors - 1)[: self.n_neighbors]
                data, idx = data[keep], idx[keep]
            rows.append(np.full(len(idx), i))
            cols.append(idx)
            vals.append(data)
        if rows:
            self.similarity_ = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=sim.shape,
            )
        else:
            self.similarity_ = sp.csr_matrix(sim.shape)

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.asarray((self.user_items_[user_idx] @ self.similarity_).toarray(), np.float64)


__all__ = ["ItemKNNRecommender"]
