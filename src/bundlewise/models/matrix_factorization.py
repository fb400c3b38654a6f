"""Matrix factorization through the ``implicit`` library: ALS and BPR.

``implicit`` is an optional dependency (extra ``mf``); importing these classes works without
it, fitting raises an ``ImportError`` naming the extra. BLAS is limited to one thread while
fitting, as ``implicit`` recommends (its own threads parallelize over users).

References
----------
Hu, Koren & Volinsky (2008), "Collaborative filtering for implicit feedback datasets" (ALS).
Rendle et al. (2009), "BPR: Bayesian personalized ranking from implicit feedback".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise.models.base import FloatMatrix, IntArray, Recommender


def _require_implicit() -> Any:
    try:
        import implicit.cpu.als
        import implicit.cpu.bpr
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "ALS/BPR need the `implicit` library: pip install 'bundlewise[mf]'"
        ) from exc
    return implicit, threadpool_limits


class _FactorModel(Recommender):
    """Shared scoring of factor models: ``score(u) = user_factors[u] @ item_factors.T``."""

    _fitted_arrays = ("user_factors_", "item_factors_")
    user_factors_: npt.NDArray[np.float32]
    item_factors_: npt.NDArray[np.float32]

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        return np.asarray(self.user_factors_[user_idx] @ self.item_factors_.T, dtype=np.float64)

    def _fit_implicit(self, interactions: sp.csr_matrix, build: Callable[[Any], Any]) -> None:
        """Build an ``implicit`` model (``build(implicit)``) and fit it with one BLAS thread."""
        implicit, threadpool_limits = _require_implicit()
        with threadpool_limits(1, "blas"):  # before the model: implicit checks BLAS then
            model = build(implicit)
            model.fit(interactions.astype(np.float32), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _validate_common(self, factors: int, iterations: int, regularization: float) -> None:
        if not isinstance(factors, int) or factors < 1:
            raise ValueError(f"factors={factors!r} should be an integer >= 1.")
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations={iterations!r} should be an integer >= 1.")
        if not regularization >= 0:
            raise ValueError(f"regularization={regularization!r} should be >= 0.")


class ALSRecommender(_FactorModel):
    """Implicit-feedback ALS (weighted matrix factorization).

    Parameters
    ----------
    factors
        Latent dimensions.
    regularization
        L2 penalty.
    alpha
        Confidence scale of observed interactions.
    iterations
        ALS sweeps.
    random_state
        Seed of the factor initialization.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"factors": 4, "iterations": 3, "random_state": 0}

    def _validate_params(self) -> None:
        self._validate_common(self.factors, self.iterations, self.regularization)
        if not self.alpha > 0:
            raise ValueError(f"alpha={self.alpha!r} should be > 0.")

    def _fit(self, interactions: sp.csr_matrix) -> None:
        self._fit_implicit(
            interactions,
            lambda implicit: implicit.cpu.als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=1,
            ),
        )


class BPRRecommender(_FactorModel):
    """Bayesian personalized ranking with SGD (one thread, so a seed fixes the result).

    Parameters
    ----------
    factors
        Latent dimensions.
    learning_rate, regularization
        SGD step and L2 penalty.
    iterations
        Epochs.
    random_state
        Seed of initialization and sampling.
    """

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"factors": 4, "iterations": 5, "random_state": 0}

    def _validate_params(self) -> None:
        self._validate_common(self.factors, self.iterations, self.regularization)
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} should be > 0.")

    def _fit(self, interactions: sp.csr_matrix) -> None:
        self._fit_implicit(
            interactions,
            lambda implicit: implicit.cpu.bpr.BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=1,
            ),
        )


__all__ = ["ALSRecommender", "BPRRecommender"]
