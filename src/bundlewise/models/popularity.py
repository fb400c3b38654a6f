"""Popularity: every user gets the items with the most interactions (the baseline to beat)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from bundlewise.models.base import FloatMatrix, IntArray, Recommender


class PopularityRecommender(Recommender):
    """Scores every item by its number of interacting users in the training data.

    Examples
    --------
    >>> import numpy as np
    >>> model = PopularityRecommender().fit(np.array([[1, 0, 1], [0, 0, 1]]))
    >>> model.recommend(0, n=1, exclude_seen=False)[0].tolist()
    [[2]]
    """

    _fitted_arrays = ("item_counts_",)

    def __init__(self) -> None:
        pass

    def _fit(self, interactions: sp.csr_matrix) -> None:
        self.item_counts_ = np.asarray((interactions > 0).sum(axis=0), dtype=np.float64).ravel()

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.tile(self.item_counts_, (len(user_idx), 1))


__all__ = ["PopularityRecommender"]
