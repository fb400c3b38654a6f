from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bundlewise.evaluation.youshu import YoushuData, evaluate_ranking, load_youshu
from bundlewise.models import (
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from bundlewise_bench.runner import (
    ModelResult,
    ModelSpec,
    default_youshu_models,
    item_view,
    run_youshu,
)

# The 3-user world of test_youshu.py: 5 bundles, 4 items.
TINY = {
    "Youshu_data_size.txt": "3\t5\t4\n",
    "user_bundle_train.txt": "0\t0\n0\t1\n1\t2\n2\t0\n",
    "user_bundle_tune.txt": "0\t2\n0\t3\n0\t2\n1\t0\n",
    # (2, 3) twice: duplicates count once
    "user_item.txt": "0\t0\n0\t1\n1\t2\n2\t3\n2\t3\n",
    "bundle_item.txt": "0\t0\n0\t1\n1\t1\n2\t2\n3\t3\n4\t0\n4\t3\n",
}
TINY_TEST = "0\t4\n2\t1\n"

#: |items(u) & items(b)| for the tiny world: user 0 has items {0, 1}, user 1 {2}, user 2 {3};
#: bundles 0 {0, 1}, 1 {1}, 2 {2}, 3 {3}, 4 {0, 3}.
RAW_VIEW = np.array(
    [
        [2, 1, 0, 0, 1],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1],
    ],
    dtype=np.float32,
)


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def pairs_text(pairs: list[tuple[int, int]]) -> str:
    return "".join(f"{a}\t{b}\n" for a, b in pairs)


def clustered_world(seed: int = 0) -> dict[str, str]:
    """60 users in 5 taste groups, 50 bundles (10 per group) of 3 items each, 75 items."""
    rng = np.random.default_rng(seed)
    n_users, n_bundles, n_items = 60, 50, 75
    bundle_items = [(b, (3 * b + j) % n_items) for b in range(n_bundles) for j in range(3)]
    items_of = {b: [i for bb, i in bundle_items if bb == b] for b in range(n_bundles)}
    train, tune, test, user_item = [], [], [], []
    for u in range(n_users):
        group = u % 5
        liked = rng.permutation(np.arange(10 * group, 10 * group + 10))
        train += [(u, int(b)) for b in liked[:4]]
        tune.append((u, int(liked[4])))
        test.append((u, int(liked[5])))
        user_item += [(u, i) for b in liked[:4] for i in items_of[int(b)]]
        user_item.append((u, int(rng.integers(n_items))))  # a little noise
    return {
        "Youshu_data_size.txt": f"{n_users}\t{n_bundles}\t{n_items}\n",
        "user_bundle_train.txt": pairs_text(train),
        "user_bundle_tune.txt": pairs_text(tune),
        "user_bundle_test.txt": pairs_text(test),
        "user_item.txt": pairs_text(user_item),
        "bundle_item.txt": pairs_text(bundle_items),
    }


@pytest.fixture
def tiny(tmp_path: Path) -> YoushuData:
    return load_youshu(write_files(tmp_path / "tiny", TINY))


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> YoushuData:
    return load_youshu(write_files(tmp_path_factory.mktemp("youshu"), clustered_world()))


def small_specs() -> list[ModelSpec]:
    return [
        ModelSpec("popularity", PopularityRecommender),
        ModelSpec("EASE", lambda: EASERecommender(l2=1.0)),
        ModelSpec(
            "EASE two-view + content",
            lambda: EASERecommender(l2=1.0, side_weight=0.5, content_weight=0.3),
            uses_item_view=True,
            uses_content=True,
        ),
    ]


# -- item_view ------------------------------------------------------------------------------
def test_item_view_raw_counts(tiny: YoushuData) -> None:
    view = item_view(tiny, "raw")
    assert view.shape == (3, 5)
    assert view.format == "csr"
    assert view.dtype == np.float32
    np.testing.assert_array_equal(view.toarray(), RAW_VIEW)


def test_item_view_log_and_binary(tiny: YoushuData) -> None:
    np.testing.assert_allclose(item_view(tiny, "log").toarray(), np.log1p(RAW_VIEW), rtol=1e-6)
    np.testing.assert_allclose(item_view(tiny).toarray(), np.log1p(RAW_VIEW), rtol=1e-6)
    binary = item_view(tiny, "binary")
    np.testing.assert_array_equal(binary.toarray(), (RAW_VIEW > 0).astype(np.float32))
    assert binary.dtype == np.float32


def test_item_view_leaves_the_data_alone(tiny: YoushuData) -> None:
    before = (tiny.user_item.toarray().copy(), tiny.bundle_item.toarray().copy())
    item_view(tiny, "binary")
    item_view(tiny, "log")
    np.testing.assert_array_equal(tiny.user_item.toarray(), before[0])
    np.testing.assert_array_equal(tiny.bundle_item.toarray(), before[1])
    np.testing.assert_array_equal(item_view(tiny, "raw").toarray(), RAW_VIEW)


@pytest.mark.parametrize("transform", ["sqrt", "", "Log"])
def test_item_view_unknown_transform(tiny: YoushuData, transform: str) -> None:
    with pytest.raises(ValueError, match="transform"):
        item_view(tiny, transform)


# -- run_youshu -----------------------------------------------------------------------------
METRIC_KEYS = {"n_users", "mrr"} | {f"{m}@{k}" for m in ("recall", "ndcg", "hr") for k in (20, 40)}


def test_run_youshu_one_result_per_model(clustered: YoushuData) -> None:
    seen: list[str] = []
    results = run_youshu(clustered, small_specs(), progress=seen.append)
    names = ["popularity", "EASE", "EASE two-view + content"]
    assert [r.name for r in results] == names
    assert seen == names
    for result in results:
        assert isinstance(result, ModelResult)
        assert result.fit_seconds >= 0.0
        assert set(result.metrics) == {"tune", "test"}
        for metrics in result.metrics.values():
            assert set(metrics) == METRIC_KEYS
            assert metrics["n_users"] == 60.0
            for key, value in metrics.items():
                if key != "n_users":
                    assert 0.0 <= value <= 1.0, (result.name, key, value)
            assert metrics["recall@20"] <= metrics["recall@40"]
        json.dumps(result.to_dict())
    assert results[0].params == {}
    assert results[1].params == {"l2": 1.0, "side_weight": 0.05, "content_weight": 0.3}
    assert results[2].params["side_weight"] == 0.5


def test_run_youshu_models_learn_the_tastes(clustered: YoushuData) -> None:
    popularity, ease, two_view = run_youshu(clustered, small_specs(), ks=(5, 10))
    # the held-out bundle is one of the user's group's 10: the item-item models find it far
    # more often than popularity (the same 50 bundles for everyone)
    for split in ("tune", "test"):
        assert popularity.metrics[split]["recall@10"] < 0.2
        assert ease.metrics[split]["recall@10"] > 0.7
        assert two_view.metrics[split]["recall@10"] > 0.5
        assert ease.metrics[split]["ndcg@5"] > popularity.metrics[split]["ndcg@5"] + 0.2
        assert set(ease.metrics[split]) == {"n_users", "mrr"} | {
            f"{m}@{k}" for m in ("recall", "ndcg", "hr") for k in (5, 10)
        }


def test_run_youshu_matches_direct_evaluation(clustered: YoushuData) -> None:
    results = run_youshu(clustered, small_specs(), ks=(5, 20))
    train = clustered.user_bundle_train
    direct = [
        PopularityRecommender().fit(train),
        EASERecommender(l2=1.0).fit(train),
        EASERecommender(l2=1.0, side_weight=0.5, content_weight=0.3).fit(
            train, side=item_view(clustered, "log"), content=clustered.bundle_item
        ),
    ]
    for result, model in zip(results, direct, strict=True):
        for split in ("tune", "test"):
            expected = evaluate_ranking(model.score, train, clustered.split(split), ks=(5, 20))
            assert result.metrics[split] == pytest.approx(expected)


def test_item_view_transform_reaches_the_model(clustered: YoushuData) -> None:
    def spec(transform: str) -> ModelSpec:
        return ModelSpec(
            transform,
            lambda: EASERecommender(l2=1.0, side_weight=1.0),
            uses_item_view=True,
            item_view_transform=transform,
        )

    raw, binary = run_youshu(clustered, [spec("raw"), spec("binary")], ks=(3,))
    model = EASERecommender(l2=1.0, side_weight=1.0).fit(
        clustered.user_bundle_train, side=item_view(clustered, "raw")
    )
    expected = evaluate_ranking(
        model.score, clustered.user_bundle_train, clustered.split("tune"), ks=(3,)
    )
    assert raw.metrics["tune"] == pytest.approx(expected)
    assert raw.metrics["tune"] != binary.metrics["tune"]


def test_run_youshu_without_a_test_file(tiny: YoushuData) -> None:
    results = run_youshu(tiny, small_specs())
    assert len(results) == 3
    for result in results:
        assert set(result.metrics) == {"tune"}
        tune = result.metrics["tune"]
        assert tune["n_users"] == 2.0
        # 5 bundles < K = 20: every unmasked bundle is ranked, every tune positive found
        assert tune["recall@20"] == 1.0
        assert tune["hr@40"] == 1.0
        assert 0.0 < tune["ndcg@20"] <= 1.0


def test_run_youshu_with_a_test_file(tmp_path: Path) -> None:
    data = load_youshu(write_files(tmp_path, {**TINY, "user_bundle_test.txt": TINY_TEST}))
    (result,) = run_youshu(data, [ModelSpec("EASE", lambda: EASERecommender(l2=1.0))])
    assert set(result.metrics) == {"tune", "test"}
    assert result.metrics["test"]["n_users"] == 2.0
    assert result.metrics["test"]["recall@20"] == 1.0


def test_run_youshu_empty_model_list(tiny: YoushuData) -> None:
    assert run_youshu(tiny, []) == []


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("pop + items", PopularityRecommender, uses_item_view=True),
        ModelSpec("pop + content", PopularityRecommender, uses_content=True),
        ModelSpec("knn + items", lambda: ItemKNNRecommender(n_neighbors=2), uses_item_view=True),
    ],
)
def test_side_views_need_ease(tiny: YoushuData, spec: ModelSpec) -> None:
    with pytest.raises(TypeError, match=re.escape(spec.name)):
        run_youshu(tiny, [ModelSpec("EASE", lambda: EASERecommender(l2=1.0)), spec], ks=(2,))


def test_default_models() -> None:
    specs = default_youshu_models()
    assert len(specs) == 8
    assert len({s.name for s in specs}) == 8
    assert specs[0].name == "popularity"
    kinds = [type(s.build()) for s in specs]
    assert kinds == [
        PopularityRecommender,
        ItemKNNRecommender,
        ALSRecommender,
        BPRRecommender,
        EASERecommender,
        EASERecommender,
        EASERecommender,
        EASERecommender,
    ]
    # side views only where the model takes them
    for spec, kind in zip(specs, kinds, strict=True):
        if spec.uses_item_view or spec.uses_content:
            assert kind is EASERecommender
            assert spec.item_view_transform in ("raw", "log", "binary")
    assert [s.uses_item_view for s in specs[-3:]] == [True, True, True]
    assert [s.uses_content for s in specs[-3:]] == [False, True, True]
    assert specs[-1].build().get_params()["content_weight"] > 0
    assert [s.item_view_blend for s in specs[-2:]] == [0.0, 0.15]


def test_item_view_blend_adds_the_normalized_item_view(clustered: YoushuData) -> None:
    """score = max-norm(model) + w * max-norm(item view), checked against a direct scorer."""
    from bundlewise.composer.interest import max_normalize

    weight = 0.7
    spec = ModelSpec("pop+iv", PopularityRecommender, item_view_blend=weight)
    (result,) = run_youshu(clustered, [spec])
    model = PopularityRecommender().fit(clustered.user_bundle_train)
    view = item_view(clustered, "raw")

    def scorer(users: np.ndarray) -> np.ndarray:
        return max_normalize(model.score(users)) + weight * max_normalize(view[users].toarray())

    expected = evaluate_ranking(scorer, clustered.user_bundle_train, clustered.user_bundle_tune)
    assert result.metrics["tune"] == pytest.approx(expected)
    plain = run_youshu(clustered, [ModelSpec("pop", PopularityRecommender)])[0]
    assert result.metrics["tune"]["recall@20"] != plain.metrics["tune"]["recall@20"]
