from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from bundlewise.exceptions import NotFittedError
from bundlewise.models import EASERecommender


def closed_form(
    features: npt.NDArray[np.float64], l2: float, n_items: int
) -> npt.NDArray[np.float64]:
    """Steck's EASE, written directly: B = I - P diag(1 / diag P), diag(B) = 0."""
    gram = features.T @ features + l2 * np.eye(features.shape[1])
    p = np.linalg.inv(gram)
    b = np.eye(features.shape[1]) - p @ np.diag(1.0 / np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b[:, :n_items]


@pytest.fixture
def world() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(42)
    interactions = (rng.random((40, 9)) < 0.3).astype(np.float64)
    side = (rng.random((40, 5)) < 0.4) * rng.integers(1, 4, size=(40, 5)).astype(np.float64)
    return interactions, side


def checker_board(size: int) -> sp.csr_matrix:
    parity = np.add.outer(np.arange(size), np.arange(size)) % 2 == 0
    return sp.csr_matrix(parity.astype(np.float32) - np.eye(size, dtype=np.float32))


@pytest.mark.parametrize("l2", [0.5, 10.0, 300.0])
def test_matches_the_closed_form(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], l2: float
) -> None:
    x, _ = world
    model = EASERecommender(l2=l2).fit(sp.csr_matrix(x))
    b = closed_form(x, l2, x.shape[1])
    assert model.weights_.shape == (9, 9)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(model.weights_) == 0.0)
    np.testing.assert_allclose(model.score(np.arange(40)), x @ b, rtol=1e-4, atol=1e-6)


def test_hand_computed_two_items() -> None:
    # G = [[2 + l, 1], [1, 1 + l]]; B_01 = -P_01 / P_11 = G_01 / G_00, B_10 = G_10 / G_11
    x = np.array([[1, 1], [1, 0], [0, 0]], dtype=np.float64)
    model = EASERecommender(l2=1.0).fit(x)
    np.testing.assert_allclose(model.weights_, [[0.0, 1 / 3], [1 / 2, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("side_weight", [0.05, 1.0, 2.5])
def test_side_features_match_the_closed_form_on_stacked_features(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], side_weight: float
) -> None:
    x, side = world
    model = EASERecommender(l2=2.0, side_weight=side_weight).fit(x, side=sp.csr_matrix(side))
    stacked = np.hstack([x, side_weight * side])
    b = closed_form(stacked, 2.0, x.shape[1])
    assert model.weights_.shape == (14, 9)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.score(np.arange(40)), stacked @ b, rtol=1e-4, atol=1e-6)
    # the side view changes the scores
    plain = EASERecommender(l2=2.0).fit(x)
    assert not np.allclose(plain.score(np.arange(40)), model.score(np.arange(40)))


def test_zero_side_weight_equals_no_side(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    x, side = world
    with_side = EASERecommender(l2=3.0, side_weight=0.0).fit(x, side=side)
    without = EASERecommender(l2=3.0, side_weight=0.0).fit(x)
    np.testing.assert_allclose(
        with_side.score(np.arange(40)), without.score(np.arange(40)), rtol=1e-5, atol=1e-6
    )


def test_side_features_survive_save_and_load(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], tmp_path: Path
) -> None:
    x, side = world
    model = EASERecommender(l2=2.0, side_weight=0.5).fit(x, side=side)
    model.save(tmp_path / "ease")
    loaded = EASERecommender.load(tmp_path / "ease")
    assert loaded.user_side_.shape == (40, 5)
    np.testing.assert_array_equal(loaded.score(np.arange(40)), model.score(np.arange(40)))
    np.testing.assert_array_equal(
        loaded.recommend(np.arange(40), n=4)[0], model.recommend(np.arange(40), n=4)[0]
    )


def test_side_with_other_number_of_users_is_rejected(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    x, side = world
    model = EASERecommender()
    with pytest.raises(ValueError, match="rows"):
        model.fit(x, side=side[:-1])
    with pytest.raises(NotFittedError):
        model.recommend(0)


def test_refit_without_side_drops_the_old_side(
    world: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> None:
    x, side = world
    model = EASERecommender(l2=2.0).fit(x, side=side)
    model.fit(x)
    np.testing.assert_allclose(
        model.score(np.arange(40)), EASERecommender(l2=2.0).fit(x).score(np.arange(40))
    )


def test_checker_board_held_out_item_ranks_first() -> None:
    size = 50
    board = checker_board(size)
    for params in ({}, EASERecommender._unit_test_params()):
        model = EASERecommender(**params).fit(board)  # type: ignore[arg-type]
        ids, scores = model.recommend(np.arange(size), n=2)
        np.testing.assert_array_equal(ids[:, 0], np.arange(size))
        assert np.all(scores[:, 0] > scores[:, 1] + 1e-6)


@pytest.mark.parametrize(
    ("params", "name"),
    [({"l2": 0.0}, "l2"), ({"l2": -5.0}, "l2"), ({"side_weight": -1.0}, "side_weight")],
)
def test_invalid_params(params: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        EASERecommender(**params).fit(np.eye(3))


def test_very_sparse_input_matches_the_closed_form() -> None:
    # under 1% of the cells filled: the sparse Gram product is used
    rng = np.random.default_rng(8)
    x = np.zeros((300, 40))
    x[rng.integers(0, 300, size=90), rng.integers(0, 40, size=90)] = 1.0
    assert np.count_nonzero(x) <= 0.01 * x.size
    model = EASERecommender(l2=1.5).fit(sp.csr_matrix(x))
    b = closed_form(x, 1.5, 40)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-4, atol=1e-6)
