"""The Youshu bundle-recommendation dataset and its evaluation protocol.

Files (tab-separated dense id pairs): ``user_bundle_train.txt``, ``user_bundle_tune.txt``,
optionally ``user_bundle_test.txt``, ``user_item.txt``, ``bundle_item.txt``, and
``Youshu_data_size.txt`` (n_users, n_bundles, n_items).

Protocol (CrossCBR / BGCN reference code): rank all bundles for every user with at least one
positive in the evaluated split; mask only the user's train bundles; Recall@K = hits@K /
#positives; NDCG@K with binary gains and IDCG over min(#positives, K); mean over those users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise.evaluation.metrics import (
    hit_rate_at_k,
    hits_from_rankings,
    mean_reciprocal_rank,
    ndcg_at_k,
    recall_at_k,
)
from bundlewise.exceptions import DataValidationError

#: A scorer maps dense user indices to a score matrix of shape (len(users), n_bundles).
Scorer = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class YoushuData:
    """The Youshu matrices (CSR, binary float32).

    Attributes
    ----------
    user_bundle_train, user_bundle_tune, user_bundle_test
        Shape (n_users, n_bundles); ``user_bundle_test`` is ``None`` when the file is absent.
    user_item
        Shape (n_users, n_items).
    bundle_item
        Shape (n_bundles, n_items).
    """

    n_users: int
    n_bundles: int
    n_items: int
    user_bundle_train: sp.csr_matrix
    user_bundle_tune: sp.csr_matrix
    user_bundle_test: sp.csr_matrix | None
    user_item: sp.csr_matrix
    bundle_item: sp.csr_matrix

    def split(self, name: str) -> sp.csr_matrix:
        """``"tune"`` or ``"test"``.

        Raises
        ------
        KeyError
            Unknown split, or ``"test"`` when the folder has no test file.
        """
        if name == "tune":
            return self.user_bundle_tune
        if name == "test" and self.user_bundle_test is not None:
            return self.user_bundle_test
        raise KeyError(f"no split {name!r} in this dataset (have: {self.splits()})")

    def splits(self) -> list[str]:
        """Evaluable splits present: ``["tune"]`` or ``["tune", "test"]``."""
        return ["tune"] + (["test"] if self.user_bundle_test is not None else [])


def _read_pairs(path: Path, shape: tuple[int, int]) -> sp.csr_matrix:
    try:
        pairs = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise DataValidationError(str(path), f"not tab-separated integer pairs: {exc}") from None
    if pairs.size == 0:
        pairs = np.zeros((0, 2), dtype=np.int64)
    if pairs.shape[1] != 2:
        raise DataValidationError(str(path), f"expected 2 columns, found {pairs.shape[1]}")
    for axis, limit in enumerate(shape):
        bad = np.flatnonzero((pairs[:, axis] < 0) | (pairs[:, axis] >= limit))
        if bad.size:
            raise DataValidationError(
                str(path),
                f"id out of range [0, {limit}) (Youshu_data_size.txt)",
                column=str(axis + 1),
                row=int(bad[0]) + 1,
                value=int(pairs[bad[0], axis]),
                n_more=int(bad.size) - 1,
            )
    matrix = sp.csr_matrix(
        (np.ones(len(pairs), dtype=np.float32), (pairs[:, 0], pairs[:, 1])), shape=shape
    )
    matrix.data[:] = 1.0  # duplicates count once
    return matrix


def load_youshu(folder: str | Path) -> YoushuData:
    """Load a Youshu folder (with or without ``user_bundle_test.txt``).

    Raises
    ------
    DataValidationError
        A file is missing or malformed.
    """
    folder = Path(folder)
    size_file = folder / "Youshu_data_size.txt"
    if not size_file.is_file():
        raise DataValidationError(str(size_file), "no such file")
    try:
        n_users, n_bundles, n_items = (int(v) for v in size_file.read_text().split()[:3])
    except ValueError:
        raise DataValidationError(
            str(size_file), "expected three integers: n_users, n_bundles, n_items"
        ) from None
    required = ["user_bundle_train.txt", "user_bundle_tune.txt", "user_item.txt",
                "bundle_item.txt"]  # fmt: skip
    for name in required:
        if not (folder / name).is_file():
            raise DataValidationError(str(folder / name), "no such file")
    test_path = folder / "user_bundle_test.txt"
    return YoushuData(
        n_users=n_users,
        n_bundles=n_bundles,
        n_items=n_items,
        user_bundle_train=_read_pairs(folder / "user_bundle_train.txt", (n_users, n_bundles)),
        user_bundle_tune=_read_pairs(folder / "user_bundle_tune.txt", (n_users, n_bundles)),
        user_bundle_test=(
            _read_pairs(test_path, (n_users, n_bundles)) if test_path.is_file() else None
        ),
        user_item=_read_pairs(folder / "user_item.txt", (n_users, n_items)),
        bundle_item=_read_pairs(folder / "bundle_item.txt", (n_bundles, n_items)),
    )


def evaluate_ranking(
    scorer: Scorer,
    train: sp.csr_matrix,
    truth: sp.csr_matrix,
    ks: tuple[int, ...] = (20, 40),
    batch_size: int = 2048,
) -> dict[str, float]:
    """All-ranking evaluation with train items masked.

    Parameters
    ----------
    scorer
        Dense user indices -> scores of shape (len(users), n_bundles).
    train
        Shape (n_users, n_bundles); these entries are masked (never counted as hits).
    truth
        Shape (n_users, n_bundles); users with no positive here are skipped.
    ks
        Cut-offs; the result has ``recall@k``, ``ndcg@k``, ``hr@k`` per k, ``mrr`` (at max k)
        and ``n_users``.
    """
    users = np.flatnonzero(np.asarray(truth.sum(axis=1)).ravel() > 0)
    k_max = max(ks)
    tops: list[npt.NDArray[np.int64]] = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = np.array(scorer(batch), dtype=np.float64, copy=True)
        mask = train[batch].toarray() > 0
        scores[mask] = -np.inf
        k_part = min(k_max, scores.shape[1])  # K may exceed a small catalog
        part = np.argpartition(-scores, k_part - 1, axis=1)[:, :k_part]
        rows = np.arange(len(batch))[:, None]
        order = np.argsort(-scores[rows, part], axis=1, kind="stable")
        ranked = part[rows, order]
        # a masked (train) bundle can only reach the top when too few others are left
        ranked = np.where(mask[rows, ranked], -1, ranked)
        tops.append(np.pad(ranked, ((0, 0), (0, k_max - k_part)), constant_values=-1))
    top = np.vstack(tops) if tops else np.zeros((0, k_max), dtype=np.int64)
    hits = hits_from_rankings(top, truth[users])
    n_relevant = np.asarray(truth[users].sum(axis=1)).ravel()
    result: dict[str, float] = {"n_users": float(len(users))}
    for k in ks:
        result[f"recall@{k}"] = recall_at_k(hits, n_relevant, k)
        result[f"ndcg@{k}"] = ndcg_at_k(hits, n_relevant, k)
        result[f"hr@{k}"] = hit_rate_at_k(hits, k)
    result["mrr"] = mean_reciprocal_rank(hits)
    return result


__all__ = ["Scorer", "YoushuData", "evaluate_ranking", "load_youshu"]
