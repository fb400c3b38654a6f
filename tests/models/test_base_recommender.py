from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bundlewise.models import EASERecommender, PopularityRecommender
from bundlewise.models.base import as_interactions, check_random_state


def test_as_interactions_copies_and_converts() -> None:
    original = sp.csr_matrix(np.array([[0, 2], [1, 0]], dtype=np.int64))
    original.data = np.append(original.data[:1], 0)  # an explicitly stored zero
    converted = as_interactions(original)
    assert converted.format == "csr"
    assert converted.dtype == np.float32
    assert converted.nnz == 1  # the explicit zero is dropped
    converted.data[:] = 9
    assert original.data.tolist() == [2, 0]  # the input is untouched


@pytest.mark.parametrize("bad", [[[1.0, -1.0]], [[np.nan, 1.0]], [[np.inf, 0.0]]])
def test_as_interactions_rejects_negative_or_non_finite(bad: list[list[float]]) -> None:
    with pytest.raises(ValueError, match="interactions"):
        as_interactions(np.array(bad))


def test_check_random_state() -> None:
    gen = np.random.default_rng(1)
    assert check_random_state(gen) is gen
    a = check_random_state(5).random(4)
    b = check_random_state(5).random(4)
    np.testing.assert_array_equal(a, b)
    assert isinstance(check_random_state(None), np.random.Generator)


def test_ties_are_ordered_by_item_index() -> None:
    # every item equally popular: within the returned list equal scores go by item index
    model = PopularityRecommender().fit(np.ones((3, 6)))
    ids, scores = model.recommend([0, 1], n=6, exclude_seen=False)
    assert ids.tolist() == [list(range(6))] * 2
    assert np.all(scores == 3.0)


def test_load_of_another_class_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "popularity"
    PopularityRecommender().fit(np.eye(3)).save(path)
    with pytest.raises(ValueError, match="PopularityRecommender"):
        EASERecommender.load(path)
