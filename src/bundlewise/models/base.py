"""The Recommender base class: fit on a user x item matrix, recommend in batches.

Every recommender works on dense indices (``user_idx``, ``item_idx``); mapping external ids is
the caller's job (see :class:`bundlewise.data.id_map.IdMap`). "Items" may be bundles, as on
Youshu.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise._version import __version__
from bundlewise.exceptions import NotFittedError

SCHEMA_VERSION = 1

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def check_random_state(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed, a Generator (returned as is) or ``None`` (fresh entropy).

    Examples
    --------
    >>> bool(check_random_state(3).integers(100) == check_random_state(3).integers(100))
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def as_interactions(
    matrix: sp.spmatrix | npt.ArrayLike, name: str = "interactions"
) -> sp.csr_matrix:
    """Validate and convert a user x item matrix to binary-valued float32 CSR (a copy).

    Raises
    ------
    TypeError
        Not a 2-D matrix.
    ValueError
        Negative or non-finite values.
    """
    csr = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    if csr.ndim != 2:
        raise TypeError(f"`{name}` must be a 2-D (n_users, n_items) matrix.")
    if csr.nnz and (not np.all(np.isfinite(csr.data)) or csr.data.min() < 0):
        raise ValueError(f"`{name}` must hold finite, non-negative values.")
    csr.eliminate_zeros()
    return csr


class Recommender(ABC):
    """Base class of user -> item recommenders.

    Subclasses implement :meth:`_fit` and :meth:`_score`, declare their hyperparameters as
    keyword arguments with defaults (stored unchanged by ``__init__``), and list their fitted
    array attributes in ``_fitted_arrays`` so that :meth:`save` / :meth:`load` round-trip
    without pickle.
    """

    _fitted_arrays: ClassVar[tuple[str, ...]] = ()
    _fitted_sparse: ClassVar[tuple[str, ...]] = ("user_items_",)

    # -- hyperparameters -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to the constructor."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """A new, unfitted recommender with the same hyperparameters."""
        return type(self)(**self.get_params())

    @classmethod
    def _unit_test_params(cls) -> dict[str, Any]:
        """Small, fast hyperparameters for the contract tests."""
        return {}

    def _validate_params(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Raise ValueError/TypeError on invalid hyperparameters (called by :meth:`fit`)."""

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, interactions: sp.spmatrix | npt.ArrayLike) -> Self:
        """Learn from a user x item interaction matrix.

        Parameters
        ----------
        interactions
            Array-like or sparse matrix of shape (n_users, n_items); non-zero = interaction.

        Returns
        -------
        Recommender
            ``self``, fitted.

        Raises
        ------
        ValueError, TypeError
            Invalid hyperparameters or input.
        """
        self._validate_params()
        matrix = as_interactions(interactions)
        self.user_items_ = matrix
        self.n_users_, self.n_items_ = matrix.shape
        self._fit(matrix)
        return self

    @abstractmethod
    def _fit(self, interactions: sp.csr_matrix) -> None:
        """Guts of fit; input already validated."""

    @abstractmethod
    def _score(self, user_idx: IntArray) -> FloatMatrix:
        """Guts of score: dense scores of shape (len(user_idx), n_items); no validation."""

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "user_items_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(interactions) first."
            )

    def _check_users(self, user_idx: npt.ArrayLike) -> IntArray:
        users = np.atleast_1d(np.asarray(user_idx))
        if users.dtype.kind not in "iu":
            raise TypeError(f"user indices must be integers, got dtype {users.dtype}.")
        users = users.astype(np.int64)
        bad = users[(users < 0) | (users >= self.n_users_)]
        if bad.size:
            raise KeyError(
                f"user index {int(bad[0])} is not in the model (n_users={self.n_users_})."
            )
        return users

    # -- inference -------------------------------------------------------------------------
    def score(self, user_idx: npt.ArrayLike) -> FloatMatrix:
        """Scores of every item for the given users, shape (n_users_given, n_items).

        Raises
        ------
        NotFittedError, KeyError
        """
        self._check_is_fitted()
        return self._score(self._check_users(user_idx))

    def recommend(
        self,
        user_idx: npt.ArrayLike,
        *,
        n: int = 10,
        candidates: npt.ArrayLike | None = None,
        exclude_seen: bool = True,
    ) -> tuple[IntArray, FloatMatrix]:
        """Top-``n`` items per user.

        Parameters
        ----------
        user_idx
            One dense user index or an array of them.
        n
            List length; fewer items than ``n`` eligible gives -1 ids with -inf scores.
        candidates
            Restrict to these item indices.
        exclude_seen
            Drop items the user interacted with in the training data.

        Returns
        -------
        ids, scores
            Arrays of shape (n_users_given, n); a single user gives shape (1, n) too.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        KeyError
            Unknown user or candidate index.
        ValueError
            ``n < 1``.
        """
        if n < 1:
            raise ValueError(f"n={n} should be >= 1.")
        self._check_is_fitted()
        users = self._check_users(user_idx)
        scores = np.array(self._score(users), dtype=np.float64, copy=True)
        if candidates is not None:
            cand = np.asarray(candidates, dtype=np.int64).ravel()
            bad = cand[(cand < 0) | (cand >= self.n_items_)]
            if bad.size:
                raise KeyError(
                    f"item index {int(bad[0])} is not in the model (n_items={self.n_items_})."
                )
            allowed = np.zeros(self.n_items_, dtype=bool)
            allowed[cand] = True
            scores[:, ~allowed] = -np.inf
        if exclude_seen:
            seen = self.user_items_[users]
            rows = np.repeat(np.arange(len(users)), np.diff(seen.indptr))
            scores[rows, seen.indices] = -np.inf
        k = min(n, self.n_items_)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        rows_idx = np.arange(len(users))[:, None]
        # stable tie-break on the item index so batch and single calls agree exactly
        order = np.lexsort((part, -scores[rows_idx, part]), axis=1)
        ids = part[rows_idx, order]
        top = scores[rows_idx, ids]
        ids = np.where(np.isfinite(top), ids, -1)
        if k < n:
            ids = np.hstack([ids, np.full((len(users), n - k), -1)])
            top = np.hstack([top, np.full((len(users), n - k), -np.inf)])
        return ids.astype(np.int64), top

    # -- persistence -----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (class, params, schema version)."""
        self._check_is_fitted()
        path = Path(path)
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name in self._fitted_arrays:
            arrays[name] = np.asarray(getattr(self, name))
        for name in self._fitted_sparse:
            matrix = sp.csr_matrix(getattr(self, name))
            arrays[f"{name}__data"] = matrix.data
            arrays[f"{name}__indices"] = matrix.indices
            arrays[f"{name}__indptr"] = matrix.indptr
            arrays[f"{name}__shape"] = np.asarray(matrix.shape)
        np.savez(path.with_suffix(".npz"), **arrays)  # type: ignore[arg-type]
        meta = {
            "class": type(self).__name__,
            "params": self.get_params(),
            "schema_version": SCHEMA_VERSION,
            "bundlewise_version": __version__,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load what :meth:`save` wrote (no pickle).

        Raises
        ------
        ValueError
            The files were written by another class or schema version.
        """
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if meta["class"] != cls.__name__:
            raise ValueError(f"{path} holds a {meta['class']}, not a {cls.__name__}.")
        if meta["schema_version"] != SCHEMA_VERSION:
            raise ValueError(
                f"{path}: schema version {meta['schema_version']}, expected {SCHEMA_VERSION}."
            )
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"].items()}
        model = cls(**params)
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
            for name in cls._fitted_arrays:
                setattr(model, name, data[name])
            for name in cls._fitted_sparse:
                shape = tuple(int(v) for v in data[f"{name}__shape"])
                setattr(
                    model,
                    name,
                    sp.csr_matrix(
                        (data[f"{name}__data"], data[f"{name}__indices"], data[f"{name}__indptr"]),
                        shape=shape,
                    ),
                )
        model.n_users_, model.n_items_ = model.user_items_.shape
        return model


__all__ = ["Recommender", "as_interactions", "check_random_state"]
