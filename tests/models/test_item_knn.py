from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from bundlewise.models import ItemKNNRecommender


def checker_board(size: int) -> sp.csr_matrix:
    """implicit's ``get_checker_board``: even users like even items, odd users odd items, and
    user ``i`` has not consumed item ``i`` (the held-out item)."""
    parity = np.add.outer(np.arange(size), np.arange(size)) % 2 == 0
    dense = parity.astype(np.float32) - np.eye(size, dtype=np.float32)
    return sp.csr_matrix(dense)


def shrunk_cosine(dense: npt.NDArray[np.float64], shrinkage: float) -> npt.NDArray[np.float64]:
    binary = (dense > 0).astype(np.float64)
    co = binary.T @ binary
    np.fill_diagonal(co, 0.0)
    counts = binary.sum(axis=0)
    return co / (np.sqrt(np.outer(counts, counts)) + shrinkage)


def test_co_consumed_item_is_recommended() -> None:
    # items 0 and 1 always go together; the last user has only item 0
    world = np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [1, 1, 0, 1, 0],
            [0, 0, 1, 1, 1],
            [0, 0, 1, 0, 1],
            [1, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
    for params in ({}, ItemKNNRecommender._unit_test_params(), {"n_neighbors": 1}):
        model = ItemKNNRecommender(**params).fit(world)  # type: ignore[arg-type]
        ids, scores = model.recommend(5, n=2)
        assert ids[0, 0] == 1
        assert scores[0, 0] > scores[0, 1]


def test_similarity_is_shrunk_cosine() -> None:
    rng = np.random.default_rng(3)
    dense = (rng.random((25, 8)) < 0.4).astype(np.float64)
    dense[:, 7] = 0.0  # an item nobody consumed
    model = ItemKNNRecommender(n_neighbors=100, shrinkage=2.0).fit(dense)
    expected = shrunk_cosine(dense, 2.0)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-12)
    np.testing.assert_allclose(model.score(np.arange(25)), dense @ expected, rtol=1e-10)
    assert model.similarity_[7].nnz == 0
    assert np.all(model.similarity_.diagonal() == 0)


def test_hand_computed_similarity() -> None:
    # item 0: users {0, 1}; item 1: users {0, 1, 2}; item 2: user {2}
    dense = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float64)
    model = ItemKNNRecommender(shrinkage=1.0).fit(dense)
    sim = model.similarity_.toarray()
    assert sim[0, 1] == pytest.approx(2 / (np.sqrt(2 * 3) + 1))
    assert sim[1, 2] == pytest.approx(1 / (np.sqrt(3 * 1) + 1))
    assert sim[0, 2] == 0.0
    no_shrink = ItemKNNRecommender(shrinkage=0.0).fit(dense).similarity_.toarray()
    assert no_shrink[0, 1] == pytest.approx(2 / np.sqrt(6))
    # user 2 has items 1 and 2: score of item 0 = sim(1, 0) + sim(2, 0)
    assert model.score(2)[0, 0] == pytest.approx(sim[1, 0] + sim[2, 0])


def test_neighbours_are_truncated_to_the_most_similar() -> None:
    rng = np.random.default_rng(11)
    dense = (rng.random((40, 12)) < 0.35).astype(np.float64)
    full = shrunk_cosine(dense, 1.0)
    for k in (1, 3, 5):
        model = ItemKNNRecommender(n_neighbors=k, shrinkage=1.0).fit(dense)
        sim = model.similarity_.toarray()
        for i in range(12):
            kept = sim[i][sim[i] > 0]
            assert len(kept) <= k
            expected = np.sort(full[i][full[i] > 0])[::-1][: len(kept)]
            np.testing.assert_allclose(np.sort(kept)[::-1], expected, rtol=1e-12)
            assert len(kept) == min(k, int((full[i] > 0).sum()))


def test_interaction_strength_does_not_change_similarity() -> None:
    rng = np.random.default_rng(5)
    dense = (rng.random((20, 6)) < 0.4).astype(np.float64)
    weighted = dense * rng.integers(1, 5, size=dense.shape)
    a = ItemKNNRecommender().fit(dense).similarity_.toarray()
    b = ItemKNNRecommender().fit(weighted).similarity_.toarray()
    np.testing.assert_allclose(a, b)


def test_checker_board_held_out_item_ranks_first() -> None:
    size = 50
    board = checker_board(size)
    for params in ({}, {"n_neighbors": 30, "shrinkage": 0.0}):
        model = ItemKNNRecommender(**params).fit(board)  # type: ignore[arg-type]
        ids, scores = model.recommend(np.arange(size), n=3)
        np.testing.assert_array_equal(ids[:, 0], np.arange(size))
        # the other parity is never co-consumed: it scores zero
        assert np.all(scores[:, 1:] == 0.0)


@pytest.mark.parametrize(
    "params",
    [{"n_neighbors": 0}, {"n_neighbors": -2}, {"n_neighbors": 3.0}, {"shrinkage": -0.5}],
)
def test_invalid_params(params: dict[str, float]) -> None:
    model = ItemKNNRecommender(**params)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=next(iter(params))):
        model.fit(np.eye(3))
