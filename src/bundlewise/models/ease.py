"""EASE: a closed-form linear item-item model, optionally with side features.

With user rows :math:`X` (interactions, optionally followed by ``side_weight`` x side
features) and Gram matrix :math:`G = X^\\top X + \\lambda I`, :math:`P = G^{-1}`,

.. math::

    B = I - P\\,\\mathrm{diag}(1 / \\mathrm{diag}(P)), \\qquad
    \\mathrm{score}(u) = X_u B_{:, \\le n}

is the least-squares solution of :math:`\\min_B \\|X - XB\\|^2 + \\lambda\\|B\\|^2` with
:math:`\\mathrm{diag}(B) = 0`, of which we keep the columns of the interaction items. On Youshu
the side features are the user's item interactions projected onto bundles (user-item x
bundle-item), so bundles are scored from both views: who took which bundle, and which of a
bundle's items a user already knows.

References
----------
Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW.
Ma et al. (2022), "CrossCBR: cross-view contrastive learning for bundle recommendation", KDD
(the bundle view / item view idea).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise.models.base import FloatMatrix, IntArray, Recommender, as_interactions


class EASERecommender(Recommender):
    """EASE with an optional side-feature block.

    Parameters
    ----------
    l2
        :math:`\\lambda`, ridge strength.
    side_weight
        Scale of the side features relative to the interactions (ignored without side).
    """

    _fitted_arrays = ("weights_",)
    _fitted_sparse = ("user_items_", "user_side_")

    def __init__(self, l2: float = 300.0, side_weight: float = 0.05) -> None:
        self.l2 = l2
        self.side_weight = side_weight

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"l2": 1.0}

    def _validate_params(self) -> None:
        if not self.l2 > 0:
            raise ValueError(f"l2={self.l2!r} should be > 0.")
        if not self.side_weight >= 0:
            raise ValueError(f"side_weight={self.side_weight!r} should be >= 0.")

    def fit(
        self,
        interactions: sp.spmatrix | npt.ArrayLike,
        side: sp.spmatrix | npt.ArrayLike | None = None,
    ) -> EASERecommender:
        """Fit on interactions (n_users, n_items) and optional side features (n_users, n_side).

        Raises
        ------
        ValueError
            Invalid hyperparameters, or side features with another number of users.
        """
        matrix = as_interactions(interactions)
        if side is None:
            self.user_side_ = sp.csr_matrix((matrix.shape[0], 0), dtype=np.float32)
        else:
            side_matrix = sp.csr_matrix(side, dtype=np.float32)
            if side_matrix.shape[0] != matrix.shape[0]:
                raise ValueError(
                    f"side has {side_matrix.shape[0]} rows, interactions {matrix.shape[0]}."
                )
            self.user_side_ = side_matrix
        super().fit(matrix)
        return self

    def _features(self, users: IntArray | slice) -> sp.csr_matrix:
        parts = [self.user_items_[users]]
        if self.user_side_.shape[1]:
            parts.append(self.side_weight * self.user_side_[users])
        return sp.hstack(parts, format="csr")

    def _fit(self, interactions: sp.csr_matrix) -> None:
        features = self._features(slice(None)).astype(np.float64)
        n_cells = features.shape[0] * features.shape[1]
        if features.nnz > 0.01 * n_cells:
            # dense BLAS beats single-threaded sparse products once the side block fills in
            dense = features.toarray()
            gram = dense.T @ dense
        else:
            gram = (features.T @ features).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse[:, : self.n_items_] / np.diag(inverse)[: self.n_items_]
        weights[np.arange(self.n_items_), np.arange(self.n_items_)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.asarray(self._features(user_idx) @ self.weights_, dtype=np.float64)


__all__ = ["EASERecommender"]
