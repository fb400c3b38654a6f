from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bundlewise.models import PopularityRecommender

# item popularity (distinct users): item 2 -> 4, item 0 -> 3, item 4 -> 2, item 1 -> 1, item 3 -> 0
WORLD = np.array(
    [
        [1, 0, 1, 0, 0],
        [1, 0, 1, 0, 1],
        [1, 1, 1, 0, 0],
        [0, 0, 1, 0, 1],
        [0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)


def test_item_counts_are_distinct_users() -> None:
    weighted = WORLD.copy()
    weighted[0, 0] = 7.0  # a repeated purchase still counts one user
    model = PopularityRecommender().fit(sp.csr_matrix(weighted))
    np.testing.assert_array_equal(model.item_counts_, [3, 1, 4, 0, 2])


def test_most_popular_unseen_item_first() -> None:
    model = PopularityRecommender().fit(WORLD)
    ids, scores = model.recommend(np.arange(5), n=2)
    assert ids[4].tolist() == [2, 0]  # a user without history gets the top items
    np.testing.assert_array_equal(scores[4], [4.0, 3.0])
    assert ids[0].tolist() == [4, 1]  # has seen 0 and 2
    assert ids[3].tolist() == [0, 1]  # has seen 2 and 4
    assert ids[2].tolist() == [4, 3]  # has seen 0, 1 and 2


def test_same_ranking_for_everybody_without_exclusion() -> None:
    model = PopularityRecommender().fit(WORLD)
    ids, _ = model.recommend(np.arange(5), n=5, exclude_seen=False)
    assert all(row == [2, 0, 4, 1, 3] for row in ids.tolist())


def test_never_consumed_items_are_still_eligible() -> None:
    model = PopularityRecommender().fit(WORLD)
    ids, scores = model.recommend(2, n=3)
    assert ids.tolist() == [[4, 3, -1]]
    assert scores[0, 1] == 0.0
    assert scores[0, 2] == -np.inf


def test_has_no_hyperparameters() -> None:
    assert PopularityRecommender().get_params() == {}
    with pytest.raises(TypeError):
        PopularityRecommender(alpha=1.0)  # type: ignore[call-arg]
