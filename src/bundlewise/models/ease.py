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
    content_weight
        Weight of item content in the Gram matrix (ignored without content): each content
        feature acts as a pseudo-user who consumed every item that has it, adding
        ``content_weight * content @ content.T`` to the item block of :math:`G`.
    """

    _fitted_arrays = ("weights_",)
    _fitted_sparse = ("user_items_", "user_side_")

    def __init__(
        self, l2: float = 300.0, side_weight: float = 0.05, content_weight: float = 0.3
    ) -> None:
        self.l2 = l2
        self.side_weight = side_weight
        self.content_weight = content_weight

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"l2": 1.0}

    def _validate_params(self) -> None:
        if not self.l2 > 0:
            raise ValueError(f"l2={self.l2!r} should be > 0.")
        if not self.side_weight >= 0:
            raise ValueError(f"side_weight={self.side_weight!r} should be >= 0.")
        if not self.content_weight >= 0:
            raise ValueError(f"content_weight={self.content_weight!r} should be >= 0.")

    def fit(
        self,
        interactions: sp.spmatrix | npt.ArrayLike,
        side: sp.spmatrix | npt.ArrayLike | None = None,
        content: sp.spmatrix | npt.ArrayLike | None = None,
    ) -> EASERecommender:
        """Fit on interactions (n_users, n_items), optional side features (n_users, n_side) and
        optional item content (n_items, n_features), e.g. bundle-item affiliation.

        Raises
        ------
        ValueError
            Invalid hyperparameters, or side/content with a mismatched number of rows.
        """
        matrix = as_interactions(interactions)
        self._content: sp.csr_matrix | None = None
        if content is not None:
            content_matrix = sp.csr_matrix(content, dtype=np.float64)
            if content_matrix.shape[0] != matrix.shape[1]:
                raise ValueError(
                    f"content has {content_matrix.shape[0]} rows, interactions "
                    f"{matrix.shape[1]} items."
                )
            self._content = content_matrix
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
        if self._content is not None and self.content_weight > 0:
            n = self.n_items_
            gram[:n, :n] += self.content_weight * (self._content @ self._content.T).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = np.linalg.inv(gram)
        weights = -inverse[:, : self.n_items_] / np.diag(inverse)[: self.n_items_]
        weights[np.arange(self.n_items_), np.arange(self.n_items_)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.asarray(self._features(user_idx) @ self.weights_, dtype=np.float64)


__all__ = ["EASERecommender"]
