from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from bundlewise.evaluation.youshu import YoushuData, evaluate_ranking, load_youshu
from bundlewise.exceptions import DataValidationError

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_YOUSHU = REPO_ROOT.parent / "shared" / "data" / "youshu"

D2 = 1 / math.log2(3)
D3 = 1 / math.log2(4)
D4 = 1 / math.log2(5)

# A 3-user world: 5 bundles, 4 items. User 2 has no tune positive.
FILES = {
    "Youshu_data_size.txt": "3\t5\t4\n",
    "user_bundle_train.txt": "0\t0\n0\t1\n1\t2\n2\t0\n",
    # (0, 2) is listed twice: duplicates count once
    "user_bundle_tune.txt": "0\t2\n0\t3\n0\t2\n1\t0\n",
    "user_item.txt": "0\t0\n0\t1\n1\t2\n2\t3\n2\t3\n",
    "bundle_item.txt": "0\t0\n0\t1\n1\t1\n2\t2\n3\t3\n4\t0\n4\t3\n",
}
TEST_FILE = "0\t4\n2\t1\n"

#: Fixed scores (3 users x 5 bundles). The scorer likes train bundles best: they must be masked.
SCORES = np.array(
    [
        [9.0, 8.0, 7.0, 1.0, 5.0],  # train {0, 1} -> ranking 2, 4, 3
        [1.0, 2.0, 9.0, 3.0, 4.0],  # train {2}    -> ranking 4, 3, 1, 0
        [9.0, 4.0, 3.0, 2.0, 1.0],  # train {0}    -> ranking 1, 2, 3, 4
    ]
)


def write_world(folder: Path, *, test: bool = False, **overrides: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**FILES, **overrides}.items():
        (folder / name).write_text(text)
    if test:
        (folder / "user_bundle_test.txt").write_text(TEST_FILE)
    return folder


def fixed_scorer(
    scores: npt.NDArray[np.float64], calls: list[list[int]] | None = None
) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]]:
    def scorer(users: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        if calls is not None:
            calls.append([int(u) for u in users])
        return scores[users]

    return scorer


def dense(matrix: sp.csr_matrix | None) -> npt.NDArray[np.float32]:
    assert matrix is not None
    return np.asarray(matrix.toarray())


@pytest.fixture
def world(tmp_path: Path) -> YoushuData:
    return load_youshu(write_world(tmp_path / "youshu"))


# -- loading --------------------------------------------------------------------------------
def test_load_reads_sizes_and_matrices(world: YoushuData) -> None:
    assert (world.n_users, world.n_bundles, world.n_items) == (3, 5, 4)
    assert world.user_bundle_train.shape == (3, 5)
    assert world.user_bundle_tune.shape == (3, 5)
    assert world.user_item.shape == (3, 4)
    assert world.bundle_item.shape == (5, 4)
    np.testing.assert_array_equal(
        dense(world.user_bundle_train),
        [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(
        dense(world.bundle_item),
        [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]],
    )
    for matrix in (world.user_bundle_train, world.user_item, world.bundle_item):
        assert sp.issparse(matrix)
        assert matrix.format == "csr"
        assert matrix.dtype == np.float32


def test_duplicate_pairs_count_once(world: YoushuData) -> None:
    np.testing.assert_array_equal(
        dense(world.user_bundle_tune),
        [[0, 0, 1, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    )
    assert world.user_bundle_tune.nnz == 3
    assert set(world.user_bundle_tune.data.tolist()) == {1.0}
    assert world.user_item[2, 3] == 1.0
    assert world.user_item.sum() == 4


def test_load_without_test_file(world: YoushuData) -> None:
    assert world.user_bundle_test is None
    assert world.splits() == ["tune"]
    assert world.split("tune") is world.user_bundle_tune
    with pytest.raises(KeyError, match="test"):
        world.split("test")
    with pytest.raises(KeyError):
        world.split("valid")


def test_load_with_test_file(tmp_path: Path) -> None:
    data = load_youshu(write_world(tmp_path, test=True))
    assert data.splits() == ["tune", "test"]
    assert data.split("test") is data.user_bundle_test
    np.testing.assert_array_equal(
        dense(data.split("test")), [[0, 0, 0, 0, 1], [0] * 5, [0, 1, 0, 0, 0]]
    )
    with pytest.raises(KeyError):
        data.split("train")


def test_load_accepts_a_string_path(tmp_path: Path) -> None:
    assert load_youshu(str(write_world(tmp_path))).n_bundles == 5


@pytest.mark.parametrize(
    "name",
    [
        "Youshu_data_size.txt",
        "user_bundle_train.txt",
        "user_bundle_tune.txt",
        "user_item.txt",
        "bundle_item.txt",
    ],
)
def test_missing_file_names_the_file(tmp_path: Path, name: str) -> None:
    folder = write_world(tmp_path)
    (folder / name).unlink()
    with pytest.raises(DataValidationError, match=name) as info:
        load_youshu(folder)
    assert info.value.path.endswith(name)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="Youshu_data_size.txt"):
        load_youshu(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "text", "bad_value"),
    [
        ("user_bundle_train.txt", "0\t0\n1\t5\n", 5),  # bundle id == n_bundles
        ("user_bundle_tune.txt", "0\t2\n3\t1\n", 3),  # user id == n_users
        ("user_bundle_tune.txt", "0\t2\n0\t-1\n", -1),  # negative id
        ("user_item.txt", "0\t0\n1\t4\n", 4),  # item id == n_items
        ("bundle_item.txt", "0\t0\n5\t1\n", 5),  # bundle id on the first column
    ],
)
def test_out_of_range_ids_name_the_file(
    tmp_path: Path, name: str, text: str, bad_value: int
) -> None:
    folder = write_world(tmp_path, **{name: text})
    with pytest.raises(DataValidationError, match=name) as info:
        load_youshu(folder)
    assert info.value.value == bad_value
    assert info.value.row == 2
    assert "out of range" in str(info.value)


def test_out_of_range_test_split_names_the_file(tmp_path: Path) -> None:
    folder = write_world(tmp_path)
    (folder / "user_bundle_test.txt").write_text("0\t7\n")
    with pytest.raises(DataValidationError, match="user_bundle_test.txt"):
        load_youshu(folder)


@pytest.mark.parametrize("text", ["0\t1\t2\n1\t2\t3\n", "0\tx\n", "0\t1.5\n"])
def test_malformed_pairs_name_the_file(tmp_path: Path, text: str) -> None:
    folder = write_world(tmp_path, **{"user_item.txt": text})
    with pytest.raises(DataValidationError, match="user_item.txt"):
        load_youshu(folder)


@pytest.mark.parametrize("text", ["3\t5\n", "three\tfive\tfour\n", ""])
def test_malformed_size_file(tmp_path: Path, text: str) -> None:
    folder = write_world(tmp_path, **{"Youshu_data_size.txt": text})
    with pytest.raises(DataValidationError, match="Youshu_data_size.txt"):
        load_youshu(folder)


# -- the protocol ---------------------------------------------------------------------------
def test_evaluate_hand_computed(world: YoushuData) -> None:
    calls: list[list[int]] = []
    result = evaluate_ranking(
        fixed_scorer(SCORES, calls),
        world.user_bundle_train,
        world.split("tune"),
        ks=(1, 2, 3, 4),
    )
    # user 2 has no tune positive: skipped, never scored
    assert result["n_users"] == 2.0
    assert calls == [[0, 1]]
    # user 0: tune {2, 3}, ranking 2, 4, 3 | user 1: tune {0}, ranking 4, 3, 1, 0
    assert result["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert result["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert result["recall@3"] == pytest.approx((1 + 0) / 2)
    assert result["recall@4"] == pytest.approx((1 + 1) / 2)
    assert result["ndcg@1"] == pytest.approx((1 + 0) / 2)
    assert result["ndcg@2"] == pytest.approx((1 / (1 + D2) + 0) / 2)
    assert result["ndcg@3"] == pytest.approx(((1 + D3) / (1 + D2) + 0) / 2)
    assert result["ndcg@4"] == pytest.approx(((1 + D3) / (1 + D2) + D4) / 2)
    assert result["hr@1"] == pytest.approx(0.5)
    assert result["hr@3"] == pytest.approx(0.5)
    assert result["hr@4"] == pytest.approx(1.0)
    assert result["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    expected_keys = {"n_users", "mrr"} | {
        f"{m}@{k}" for m in ("recall", "ndcg", "hr") for k in (1, 2, 3, 4)
    }
    assert set(result) == expected_keys


def test_train_bundles_are_masked_even_when_ranked_first(world: YoushuData) -> None:
    masked = evaluate_ranking(
        fixed_scorer(SCORES), world.user_bundle_train, world.split("tune"), ks=(1,)
    )
    unmasked = evaluate_ranking(
        fixed_scorer(SCORES), sp.csr_matrix((3, 5)), world.split("tune"), ks=(1,)
    )
    assert masked["recall@1"] == pytest.approx(0.25)
    assert unmasked["recall@1"] == 0.0  # both users' first choice is a train bundle


def test_masked_bundle_in_the_truth_is_never_a_hit() -> None:
    # One user, 4 bundles; bundle 0 is both a train bundle and a positive (overlapping splits).
    # Only one bundle is left unmasked, so masked ones fill the rest of the top 2.
    train = sp.csr_matrix(np.array([[1, 1, 1, 0]], dtype=np.float32))
    truth = sp.csr_matrix(np.array([[1, 0, 0, 1]], dtype=np.float32))
    result = evaluate_ranking(fixed_scorer(np.array([[4.0, 3, 2, 1]])), train, truth, ks=(2,))
    assert result["recall@2"] == pytest.approx(0.5)
    assert result["ndcg@2"] == pytest.approx(1 / (1 + D2))
    assert result["mrr"] == pytest.approx(1.0)


def test_batch_size_does_not_change_the_result(world: YoushuData) -> None:
    calls: list[list[int]] = []
    whole = evaluate_ranking(
        fixed_scorer(SCORES), world.user_bundle_train, world.split("tune"), ks=(2, 4)
    )
    batched = evaluate_ranking(
        fixed_scorer(SCORES, calls),
        world.user_bundle_train,
        world.split("tune"),
        ks=(2, 4),
        batch_size=1,
    )
    assert calls == [[0], [1]]
    assert batched == whole


def test_evaluate_the_test_split(tmp_path: Path) -> None:
    data = load_youshu(write_world(tmp_path, test=True))
    calls: list[list[int]] = []
    result = evaluate_ranking(
        fixed_scorer(SCORES, calls), data.user_bundle_train, data.split("test"), ks=(1, 2)
    )
    # test positives: user 0 -> {4} at rank 2, user 2 -> {1} at rank 1; user 1 skipped
    assert calls == [[0, 2]]
    assert result["n_users"] == 2.0
    assert result["recall@1"] == pytest.approx(0.5)
    assert result["recall@2"] == pytest.approx(1.0)
    assert result["ndcg@2"] == pytest.approx((D2 + 1) / 2)
    assert result["mrr"] == pytest.approx((1 / 2 + 1) / 2)


def test_a_split_without_positives_evaluates_nobody() -> None:
    calls: list[list[int]] = []
    result = evaluate_ranking(
        fixed_scorer(SCORES, calls), sp.csr_matrix((3, 5)), sp.csr_matrix((3, 5)), ks=(2,)
    )
    assert calls == []
    assert result["n_users"] == 0.0
    assert result["recall@2"] == 0.0
    assert result["ndcg@2"] == 0.0


def test_scorer_output_is_not_modified(world: YoushuData) -> None:
    scores = SCORES.copy()
    evaluate_ranking(fixed_scorer(scores), world.user_bundle_train, world.split("tune"), ks=(2,))
    np.testing.assert_array_equal(scores, SCORES)


# -- the real dataset -----------------------------------------------------------------------
@pytest.mark.skipif(not REAL_YOUSHU.is_dir(), reason="shared Youshu data not available")
def test_real_youshu_folder() -> None:
    data = load_youshu(REAL_YOUSHU)
    assert (data.n_users, data.n_bundles, data.n_items) == (8039, 4771, 32770)
    assert "test" not in data.splits()
    assert data.splits() == ["tune"]
    with pytest.raises(KeyError):
        data.split("test")
    assert data.user_bundle_train.shape == (8039, 4771)
    assert data.user_item.shape == (8039, 32770)
    assert data.bundle_item.shape == (4771, 32770)
    assert 0 < data.user_bundle_tune.nnz < data.user_bundle_train.nnz
    # popularity from train: a sanity check of the protocol on real data
    popularity = np.asarray(data.user_bundle_train.sum(axis=0), dtype=np.float64).ravel()
    result = evaluate_ranking(
        lambda users: np.tile(popularity, (len(users), 1)),
        data.user_bundle_train,
        data.split("tune"),
        ks=(20,),
    )
    n_tune_users = int((np.diff(data.user_bundle_tune.indptr) > 0).sum())
    assert result["n_users"] == n_tune_users
    assert 0.0 < result["recall@20"] < 1.0
    assert 0.0 < result["ndcg@20"] < result["hr@20"] <= 1.0
