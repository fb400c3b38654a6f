from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from bundlewise.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    hits_from_rankings,
    intra_list_diversity,
    mean_reciprocal_rank,
    ndcg_at_k,
    recall_at_k,
)

#: Three users, four ranks. User 1 has five relevant items (more than any k used below).
HITS = np.array(
    [
        [True, False, True, False],
        [False, True, False, False],
        [False, False, False, False],
    ]
)
N_RELEVANT = np.array([2, 5, 1])
D2 = 1 / math.log2(3)  # discount of rank 2
D3 = 1 / math.log2(4)  # discount of rank 3 (= 0.5)


# -- hand-computed values -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "expected"),
    [(1, (1 / 2 + 0 + 0) / 3), (2, (1 / 2 + 1 / 5 + 0) / 3), (3, (1 + 1 / 5 + 0) / 3)],
)
def test_recall_hand_computed(k: int, expected: float) -> None:
    assert recall_at_k(HITS, N_RELEVANT, k) == pytest.approx(expected)


def test_recall_of_a_single_user() -> None:
    assert recall_at_k([[True, False, True, True]], [4], k=4) == pytest.approx(0.75)
    assert recall_at_k([[True, False, True, True]], [4], k=2) == pytest.approx(0.25)


def test_ndcg_hand_computed_with_ideal_over_min_of_n_and_k() -> None:
    # k = 2: user 0 has 2 relevant, user 1 has 5 (> k, so the ideal DCG has only 2 terms).
    user0 = 1 / (1 + D2)
    user1 = D2 / (1 + D2)
    assert ndcg_at_k(HITS, N_RELEVANT, 2) == pytest.approx((user0 + user1 + 0) / 3)
    # k = 3: user 0 hits ranks 1 and 3 out of 2 relevant; user 1 still capped by k.
    user0 = (1 + D3) / (1 + D2)
    user1 = D2 / (1 + D2 + D3)
    assert ndcg_at_k(HITS, N_RELEVANT, 3) == pytest.approx((user0 + user1 + 0) / 3)
    # k = 1: only the first rank counts, ideal DCG = 1 for everybody.
    assert ndcg_at_k(HITS, N_RELEVANT, 1) == pytest.approx(1 / 3)


def test_ndcg_single_relevant_item_at_rank_two() -> None:
    assert ndcg_at_k([[False, True, False]], [1], k=3) == pytest.approx(D2)


def test_ndcg_when_all_relevant_items_are_beyond_k() -> None:
    assert ndcg_at_k([[False, False, True]], [1], k=2) == 0.0


def test_hit_rate_and_mrr_hand_computed() -> None:
    assert hit_rate_at_k(HITS, 1) == pytest.approx(1 / 3)
    assert hit_rate_at_k(HITS, 2) == pytest.approx(2 / 3)
    assert hit_rate_at_k(HITS, 4) == pytest.approx(2 / 3)
    assert mean_reciprocal_rank(HITS) == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert mean_reciprocal_rank([[False, False, False, True]]) == pytest.approx(0.25)


def test_extra_ranks_beyond_k_are_ignored() -> None:
    wide = np.hstack([HITS, np.ones((3, 5), dtype=bool)])
    for k in (1, 2, 3, 4):
        assert recall_at_k(wide, N_RELEVANT, k) == recall_at_k(HITS, N_RELEVANT, k)
        assert ndcg_at_k(wide, N_RELEVANT, k) == ndcg_at_k(HITS, N_RELEVANT, k)
        assert hit_rate_at_k(wide, k) == hit_rate_at_k(HITS, k)


def test_metrics_accept_integer_hits_and_lists() -> None:
    as_int = HITS.astype(int).tolist()
    assert recall_at_k(as_int, N_RELEVANT.tolist(), 3) == recall_at_k(HITS, N_RELEVANT, 3)
    assert ndcg_at_k(as_int, N_RELEVANT.tolist(), 3) == ndcg_at_k(HITS, N_RELEVANT, 3)


def test_no_users_gives_zero() -> None:
    empty = np.zeros((0, 3), dtype=bool)
    assert recall_at_k(empty, np.zeros(0), 2) == 0.0
    assert ndcg_at_k(empty, np.zeros(0), 2) == 0.0
    assert hit_rate_at_k(empty, 2) == 0.0
    assert mean_reciprocal_rank(empty) == 0.0


def test_catalog_coverage_ignores_padding() -> None:
    assert catalog_coverage([[0, 1, -1], [1, 2, -1]], n_catalog=4) == pytest.approx(0.75)
    assert catalog_coverage([[3, 3], [3, 3]], n_catalog=4) == pytest.approx(0.25)
    assert catalog_coverage([[-1, -1]], n_catalog=4) == 0.0
    assert catalog_coverage(np.zeros((0, 2), dtype=int), n_catalog=4) == 0.0


def test_intra_list_diversity_hand_computed() -> None:
    emb = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    assert intra_list_diversity([[0, 1]], emb) == pytest.approx(1.0)
    assert intra_list_diversity([[0, 2]], emb) == pytest.approx(1 - 1 / math.sqrt(2))
    both = (1.0 + 1 - 1 / math.sqrt(2)) / 2
    assert intra_list_diversity([[0, 1], [0, 2]], emb) == pytest.approx(both)
    # three items: pairs (0,1)=1, (0,2)=(1,2)=1-1/sqrt2
    three = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    assert intra_list_diversity([[0, 1, 2]], emb) == pytest.approx(three)
    assert intra_list_diversity([[0, 0]], emb) == pytest.approx(0.0)
    assert intra_list_diversity([[0, 3]], emb) == pytest.approx(1.0)  # zero vector
    # scale does not matter (cosine)
    assert intra_list_diversity([[0, 2]], [[5.0, 0.0], [0, 1], [3.0, 3.0]]) == pytest.approx(
        1 - 1 / math.sqrt(2)
    )


def test_hits_from_rankings_hand_computed() -> None:
    top = [[2, 0, 1], [-1, 4, 3]]
    relevant = [{0, 5}, {3, 4}]
    expected = [[False, True, False], [False, True, True]]
    assert hits_from_rankings(top, relevant).tolist() == expected
    csr = sp.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 0, 1, 1], [0, 5, 3, 4])), shape=(2, 6))
    assert hits_from_rankings(top, csr).tolist() == expected


def test_hits_from_rankings_padding_is_never_a_hit() -> None:
    # -1 would wrap around to the last column if it were used as an index.
    dense = np.array([[0, 0, 0, 1], [1, 1, 1, 1]], dtype=np.float32)
    top = [[-1, -1], [-1, 0]]
    assert hits_from_rankings(top, sp.csr_matrix(dense)).tolist() == [
        [False, False],
        [False, True],
    ]
    assert hits_from_rankings(top, [{3}, {0, 1, 2, 3}]).tolist() == [
        [False, False],
        [False, True],
    ]


def test_hits_from_rankings_ignores_explicit_zeros() -> None:
    csr = sp.csr_matrix((np.array([0.0, 1.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    assert csr.nnz == 2  # an explicitly stored zero
    assert hits_from_rankings([[0, 1, 2]], csr).tolist() == [[False, True, False]]


def test_hits_from_rankings_without_users() -> None:
    empty = np.zeros((0, 3), dtype=np.int64)
    assert hits_from_rankings(empty, sp.csr_matrix((0, 5))).shape == (0, 3)
    assert hits_from_rankings(empty, []).shape == (0, 3)


# -- invalid input --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_rejected(k: int) -> None:
    with pytest.raises(ValueError, match="k="):
        recall_at_k(HITS, N_RELEVANT, k)
    with pytest.raises(ValueError, match="k="):
        ndcg_at_k(HITS, N_RELEVANT, k)
    with pytest.raises(ValueError, match="k="):
        hit_rate_at_k(HITS, k)


def test_k_above_the_number_of_ranks_is_rejected() -> None:
    with pytest.raises(ValueError, match="fewer than k"):
        recall_at_k(HITS, N_RELEVANT, 5)
    with pytest.raises(ValueError, match="fewer than k"):
        ndcg_at_k(HITS, N_RELEVANT, 5)
    with pytest.raises(ValueError, match="fewer than k"):
        hit_rate_at_k(HITS, 5)


@pytest.mark.parametrize("n_relevant", [[2, 0, 1], [2, -1, 1]])
def test_users_without_relevant_items_are_rejected(n_relevant: list[int]) -> None:
    with pytest.raises(ValueError, match="n_relevant"):
        recall_at_k(HITS, n_relevant, 2)
    with pytest.raises(ValueError, match="n_relevant"):
        ndcg_at_k(HITS, n_relevant, 2)


@pytest.mark.parametrize("n_relevant", [[2, 5], [2, 5, 1, 1], [[2, 5, 1]], 3])
def test_n_relevant_of_the_wrong_shape_is_rejected(n_relevant: object) -> None:
    with pytest.raises(ValueError, match="shape"):
        recall_at_k(HITS, n_relevant, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        ndcg_at_k(HITS, n_relevant, 2)  # type: ignore[arg-type]


@pytest.mark.parametrize("hits", [[True, False, True], [[[True, False]]], True])
def test_hits_that_are_not_2d_are_rejected(hits: object) -> None:
    with pytest.raises(ValueError, match="2-D"):
        recall_at_k(hits, [1], 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        ndcg_at_k(hits, [1], 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        hit_rate_at_k(hits, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2-D"):
        mean_reciprocal_rank(hits)  # type: ignore[arg-type]


def test_catalog_coverage_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_catalog"):
        catalog_coverage([[0, 1]], n_catalog=0)
    with pytest.raises(ValueError, match="n_catalog"):
        catalog_coverage([[0, 4]], n_catalog=4)


def test_intra_list_diversity_rejects_bad_input() -> None:
    emb = np.eye(3)
    with pytest.raises(ValueError, match="shape"):
        intra_list_diversity([0, 1], emb)
    with pytest.raises(ValueError, match="shape"):
        intra_list_diversity([[0], [1]], emb)
    with pytest.raises(ValueError, match="dense indices"):
        intra_list_diversity([[0, -1]], emb)  # padding must not wrap to the last item
    with pytest.raises(ValueError, match="dense indices"):
        intra_list_diversity([[0, 3]], emb)


def test_intra_list_diversity_without_users_is_zero() -> None:
    assert intra_list_diversity(np.zeros((0, 2), dtype=int), np.eye(3)) == 0.0


def test_hits_from_rankings_rejects_1d_ids() -> None:
    with pytest.raises(ValueError, match="2-D"):
        hits_from_rankings([0, 1], [{0}])


# -- properties -----------------------------------------------------------------------------
@st.composite
def hit_worlds(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A boolean hit matrix and a consistent n_relevant (>= the hits in each row, >= 1)."""
    n_users = draw(st.integers(1, 6))
    n_ranks = draw(st.integers(1, 10))
    flat = draw(st.lists(st.booleans(), min_size=n_users * n_ranks, max_size=n_users * n_ranks))
    hits = np.array(flat, dtype=bool).reshape(n_users, n_ranks)
    extra = np.array(draw(st.lists(st.integers(0, 5), min_size=n_users, max_size=n_users)))
    n_relevant = np.maximum(hits.sum(axis=1) + extra, 1)
    return hits, n_relevant


@settings(max_examples=150, deadline=None)
@given(world=hit_worlds(), data=st.data())
def test_every_metric_lies_in_unit_interval(
    world: tuple[np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    hits, n_relevant = world
    k = data.draw(st.integers(1, hits.shape[1]))
    for value in (
        recall_at_k(hits, n_relevant, k),
        ndcg_at_k(hits, n_relevant, k),
        hit_rate_at_k(hits, k),
        mean_reciprocal_rank(hits),
    ):
        assert 0.0 <= value <= 1.0 + 1e-12
    # hit rate is 1 exactly when every user has a hit in the top k
    assert (hit_rate_at_k(hits, k) == 1.0) == bool(hits[:, :k].any(axis=1).all())


@settings(max_examples=100, deadline=None)
@given(world=hit_worlds())
def test_recall_and_hit_rate_are_non_decreasing_in_k(
    world: tuple[np.ndarray, np.ndarray],
) -> None:
    hits, n_relevant = world
    recalls = [recall_at_k(hits, n_relevant, k) for k in range(1, hits.shape[1] + 1)]
    rates = [hit_rate_at_k(hits, k) for k in range(1, hits.shape[1] + 1)]
    assert all(a <= b + 1e-12 for a, b in zip(recalls, recalls[1:], strict=False))
    assert all(a <= b for a, b in zip(rates, rates[1:], strict=False))
    # at the full list length every hit counts
    assert recalls[-1] == pytest.approx(float(np.mean(hits.sum(axis=1) / n_relevant)))


@settings(max_examples=100, deadline=None)
@given(
    n_relevant=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    n_ranks=st.integers(1, 10),
    data=st.data(),
)
def test_ndcg_of_a_perfect_ranking_is_one(
    n_relevant: list[int], n_ranks: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, n_ranks))
    hits = np.arange(n_ranks)[None, :] < np.array(n_relevant)[:, None]
    assert ndcg_at_k(hits, n_relevant, k) == pytest.approx(1.0)
    assert mean_reciprocal_rank(hits) == pytest.approx(1.0)
    # moving the first hit behind a miss (when there is room) makes it imperfect
    worse = hits.copy()
    worse[:, 0] = False
    assert ndcg_at_k(worse, n_relevant, k) < 1.0


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_hits_from_rankings_csr_equals_sets(data: st.DataObject) -> None:
    n_users = data.draw(st.integers(1, 5))
    n_catalog = data.draw(st.integers(1, 8))
    k = data.draw(st.integers(1, 6))
    ids = data.draw(
        st.lists(
            st.lists(st.integers(-1, n_catalog - 1), min_size=k, max_size=k),
            min_size=n_users,
            max_size=n_users,
        )
    )
    sets = [
        data.draw(st.sets(st.integers(0, n_catalog - 1), max_size=n_catalog))
        for _ in range(n_users)
    ]
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in s]
    csr = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_catalog))
    from_csr = hits_from_rankings(ids, csr)
    from_sets = hits_from_rankings(ids, sets)
    assert from_csr.dtype == bool
    assert from_csr.shape == (n_users, k)
    np.testing.assert_array_equal(from_csr, from_sets)
    assert not from_csr[np.array(ids) < 0].any()
    expected = [[i >= 0 and i in sets[u] for i in row] for u, row in enumerate(ids)]
    assert from_csr.tolist() == expected


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_coverage_and_diversity_lie_in_unit_interval(data: st.DataObject) -> None:
    n_catalog = data.draw(st.integers(1, 8))
    n_users = data.draw(st.integers(1, 4))
    k = data.draw(st.integers(2, 5))
    ids = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, n_catalog - 1), min_size=k, max_size=k),
                min_size=n_users,
                max_size=n_users,
            )
        )
    )
    assert 0.0 < catalog_coverage(ids, n_catalog) <= 1.0
    emb = np.array(
        data.draw(
            st.lists(
                st.lists(st.floats(0, 10, allow_nan=False), min_size=3, max_size=3),
                min_size=n_catalog,
                max_size=n_catalog,
            )
        )
    )
    # non-negative embeddings: cosine similarity in [0, 1], so the distance too
    assert -1e-9 <= intra_list_diversity(ids, emb) <= 1.0 + 1e-9
