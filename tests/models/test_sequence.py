"""The SASRec-style sequence model learns an obvious next item."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bundlewise.models.sequence import SASRecRecommender

N_ITEMS = 6


def _cycle_world(n_users: int = 60, seed: int = 0) -> tuple[sp.csr_matrix, list[list[int]]]:
    """Every user walks the cycle 0 -> 1 -> ... -> 5 -> 0 from a random start."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_users):
        start, length = int(rng.integers(0, N_ITEMS)), int(rng.integers(3, 8))
        sequences.append([(start + k) % N_ITEMS for k in range(length)])
    rows = [u for u, seq in enumerate(sequences) for _ in seq]
    cols = [i for seq in sequences for i in seq]
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, N_ITEMS))
    return matrix, sequences


def _model() -> SASRecRecommender:
    return SASRecRecommender(
        max_len=8, d_model=16, n_layers=1, epochs=30, batch_size=16, learning_rate=5e-3,
        dropout=0.0,
    )  # fmt: skip


def test_learns_the_obvious_next_item() -> None:
    matrix, sequences = _cycle_world()
    model = _model().fit(matrix, sequences=sequences)
    ids, _ = model.recommend(np.arange(20), n=1, exclude_seen=False)
    expected = [(seq[-1] + 1) % N_ITEMS for seq in sequences[:20]]
    assert ids.ravel().tolist() == expected


def test_text_initialisation_and_round_trip(tmp_path: object) -> None:
    matrix, sequences = _cycle_world(n_users=20)
    embeddings = np.random.default_rng(1).normal(size=(N_ITEMS, 32))
    model = _model().fit(matrix, sequences=sequences, item_embeddings=embeddings)
    path = tmp_path / "sasrec"  # type: ignore[operator]
    model.save(path)
    loaded = SASRecRecommender.load(path)
    np.testing.assert_allclose(loaded.score([0, 1, 2]), model.score([0, 1, 2]), rtol=1e-5)


def test_bad_sequences_raise() -> None:
    matrix, sequences = _cycle_world(n_users=5)
    with pytest.raises(ValueError, match="sequences for 5 users"):
        _model().fit(matrix, sequences=sequences[:3])
    with pytest.raises(ValueError, match="outside"):
        _model().fit(matrix, sequences=[[0, 99]] * 5)
    with pytest.raises(ValueError, match="item_embeddings has 2 rows"):
        _model().fit(matrix, sequences=sequences, item_embeddings=np.zeros((2, 4)))
