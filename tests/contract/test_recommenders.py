"""The contract every concrete :class:`Recommender` in ``bundlewise.models`` must honour.

Classes are discovered, not listed: every module of the ``bundlewise.models`` package is
imported and the subclass tree of ``Recommender`` is walked. A class that needs more than the
interaction matrix to fit may define a classmethod ``_contract_fit_kwargs(cls, interactions)``
returning the extra keyword arguments of ``fit``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import bundlewise.models
from bundlewise.exceptions import NotFittedError
from bundlewise.models.base import Recommender

N_USERS, N_ITEMS = 30, 20
SEED_PARAMS = ("random_state", "seed")

#: Hyperparameter values that classes which validate them must reject at fit.
INVALID_PARAMS: dict[str, list[dict[str, Any]]] = {
    "EASERecommender": [{"l2": 0}, {"l2": -1.0}, {"side_weight": -0.1}],
    "ItemKNNRecommender": [{"n_neighbors": 0}, {"n_neighbors": 2.5}, {"shrinkage": -1.0}],
    "ALSRecommender": [{"factors": 0}, {"iterations": 0}, {"regularization": -1.0}],
    "BPRRecommender": [{"factors": 0}, {"iterations": 0}, {"regularization": -1.0}],
    "SASRecRecommender": [{"max_len": 1}, {"d_model": 15, "n_heads": 2}, {"dropout": 1.0}],
}


def _import_all_model_modules() -> None:
    for module in pkgutil.iter_modules(bundlewise.models.__path__):
        importlib.import_module(f"{bundlewise.models.__name__}.{module.name}")


def _concrete_recommenders() -> list[type[Recommender]]:
    _import_all_model_modules()
    found: dict[str, type[Recommender]] = {}
    stack = list(Recommender.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        # only the package's own classes, not helpers defined by other test modules
        if inspect.isabstract(cls) or not cls.__module__.startswith("bundlewise."):
            continue
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [found[name] for name in sorted(found)]


RECOMMENDERS = _concrete_recommenders()


def test_the_known_recommenders_are_discovered() -> None:
    names = {cls.__name__ for cls in RECOMMENDERS}
    assert {"PopularityRecommender", "ItemKNNRecommender", "EASERecommender"} <= names
    assert Recommender not in RECOMMENDERS


@pytest.fixture(params=RECOMMENDERS, ids=lambda cls: cls.__name__)
def model_class(request: pytest.FixtureRequest) -> type[Recommender]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def interactions() -> sp.csr_matrix:
    rng = np.random.default_rng(20240611)
    dense = (rng.random((N_USERS, N_ITEMS)) < 0.2).astype(np.float32)
    dense[0, :] = 0.0
    dense[0, [1, 4, 7]] = 1.0  # user 0 has a known history
    dense[1, :] = 0.0  # user 1 has none
    return sp.csr_matrix(dense)


def params_of(cls: type[Recommender]) -> dict[str, Any]:
    params = dict(cls._unit_test_params())
    for name in SEED_PARAMS:
        if name in inspect.signature(cls.__init__).parameters and params.get(name) is None:
            params[name] = 0
    return params


def make(cls: type[Recommender], **overrides: Any) -> Recommender:
    return cls(**{**params_of(cls), **overrides})


def fit_kwargs(cls: type[Recommender], matrix: sp.csr_matrix) -> dict[str, Any]:
    hook = getattr(cls, "_contract_fit_kwargs", None)
    return dict(hook(matrix)) if hook is not None else {}


def fit(model: Recommender, matrix: Any) -> Recommender:
    """``model.fit`` with the class's extra inputs; skip when an optional library is missing."""
    try:
        return model.fit(matrix, **fit_kwargs(type(model), sp.csr_matrix(matrix)))
    except ImportError as exc:  # optional dependency (e.g. an extra) not installed
        pytest.skip(f"{type(model).__name__}: {exc}")


@pytest.fixture
def fitted(model_class: type[Recommender], interactions: sp.csr_matrix) -> Recommender:
    return fit(make(model_class), interactions)


ALL_USERS = np.arange(N_USERS)


# -- fit ------------------------------------------------------------------------------------
def test_fit_returns_self_and_records_shape(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    model = make(model_class)
    assert fit(model, interactions) is model
    assert (model.n_users_, model.n_items_) == (N_USERS, N_ITEMS)


def test_fit_does_not_mutate_the_input(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    before = interactions.copy()
    dense = interactions.toarray()
    dense_before = dense.copy()
    fit(make(model_class), interactions)
    fit(make(model_class), dense)
    assert interactions.format == "csr"
    np.testing.assert_array_equal(interactions.data, before.data)
    np.testing.assert_array_equal(interactions.indices, before.indices)
    np.testing.assert_array_equal(interactions.indptr, before.indptr)
    assert interactions.dtype == before.dtype
    np.testing.assert_array_equal(dense, dense_before)


def test_dense_and_sparse_input_agree(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    from_sparse = fit(make(model_class), interactions)
    from_dense = fit(make(model_class), interactions.toarray())
    np.testing.assert_allclose(
        from_sparse.score(ALL_USERS), from_dense.score(ALL_USERS), rtol=1e-5, atol=1e-6
    )


def test_two_fits_with_the_same_params_agree(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    first = fit(make(model_class), interactions)
    second = fit(make(model_class), interactions)
    ids1, scores1 = first.recommend(ALL_USERS, n=5)
    ids2, scores2 = second.recommend(ALL_USERS, n=5)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(scores1, scores2)
    # refitting the same object gives the same result too
    fit(first, interactions)
    np.testing.assert_array_equal(first.recommend(ALL_USERS, n=5)[0], ids1)


def test_refit_on_another_shape(model_class: type[Recommender]) -> None:
    rng = np.random.default_rng(7)
    small = sp.csr_matrix((rng.random((12, 9)) < 0.3).astype(np.float32))
    bigger = sp.csr_matrix((rng.random((15, 11)) < 0.3).astype(np.float32))
    model = fit(make(model_class), small)
    fit(model, bigger)
    assert (model.n_users_, model.n_items_) == (15, 11)
    assert model.score(np.arange(15)).shape == (15, 11)


def test_invalid_params_raise_value_error_at_fit(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    cases = INVALID_PARAMS.get(model_class.__name__)
    if not cases:
        pytest.skip(f"no invalid hyperparameters listed for {model_class.__name__}")
    for override in cases:
        model = make(model_class, **override)  # construction stores, never validates
        with pytest.raises(ValueError):
            fit(model, interactions)
        with pytest.raises(NotFittedError):
            model.recommend(0)


def test_fit_rejects_negative_values(
    model_class: type[Recommender], interactions: sp.csr_matrix
) -> None:
    bad = interactions.toarray()
    bad[2, 3] = -1.0
    with pytest.raises(ValueError):
        fit(make(model_class), bad)


# -- score and recommend --------------------------------------------------------------------
def test_score_shape_and_finiteness(fitted: Recommender) -> None:
    scores = fitted.score(ALL_USERS)
    assert scores.shape == (N_USERS, N_ITEMS)
    assert np.all(np.isfinite(scores))
    assert fitted.score(3).shape == (1, N_ITEMS)
    np.testing.assert_allclose(fitted.score([3]), scores[[3]], rtol=1e-6, atol=1e-7)


def test_recommend_shapes_order_and_scores(fitted: Recommender) -> None:
    ids, scores = fitted.recommend(ALL_USERS, n=6)
    assert ids.shape == scores.shape == (N_USERS, 6)
    assert ids.dtype == np.int64
    assert scores.dtype == np.float64
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must be sorted, best first"
    full = fitted.score(ALL_USERS)
    for u in range(N_USERS):
        row = ids[u][ids[u] >= 0]
        assert len(set(row.tolist())) == len(row), "no item twice in a list"
        np.testing.assert_allclose(scores[u, : len(row)], full[u, row], rtol=1e-6, atol=1e-7)
    single_ids, single_scores = fitted.recommend(4, n=6)
    assert single_ids.shape == (1, 6)
    np.testing.assert_array_equal(single_ids[0], ids[4])


def test_recommend_returns_the_best_unseen_items(fitted: Recommender) -> None:
    n = 5
    ids, _ = fitted.recommend(ALL_USERS, n=n)
    full = fitted.score(ALL_USERS)
    seen = fitted.user_items_.toarray() > 0
    for u in range(N_USERS):
        row = ids[u][ids[u] >= 0]
        eligible = full[u][~seen[u]]
        expected = np.sort(eligible)[::-1][: len(row)]
        np.testing.assert_allclose(full[u, row], expected, rtol=1e-6, atol=1e-7)


def test_batch_recommend_equals_single_calls(fitted: Recommender) -> None:
    users = np.array([5, 0, 29, 1, 5, 13])
    for kwargs in (
        {"n": 4},
        {"n": 7, "exclude_seen": False},
        {"n": 3, "candidates": [2, 4, 6, 8, 10, 19]},
    ):
        ids, scores = fitted.recommend(users, **kwargs)  # type: ignore[arg-type]
        for row, user in enumerate(users):
            one_ids, one_scores = fitted.recommend(int(user), **kwargs)  # type: ignore[arg-type]
            np.testing.assert_array_equal(one_ids[0], ids[row])
            np.testing.assert_allclose(one_scores[0], scores[row], rtol=1e-6, atol=1e-7)


def test_exclude_seen(fitted: Recommender, interactions: sp.csr_matrix) -> None:
    seen = interactions.toarray() > 0
    ids, _ = fitted.recommend(ALL_USERS, n=N_ITEMS)
    for u in range(N_USERS):
        row = ids[u][ids[u] >= 0]
        assert not seen[u, row].any(), f"user {u} got an item from training"
        # every unseen item is eligible (scores are finite), and padding fills the rest
        assert set(row.tolist()) == set(np.flatnonzero(~seen[u]).tolist())
        assert np.all(ids[u][len(row) :] == -1)
    # without exclusion, the whole catalog is ranked, training items included
    ids, _ = fitted.recommend(ALL_USERS, n=N_ITEMS, exclude_seen=False)
    for u in range(N_USERS):
        assert sorted(ids[u].tolist()) == list(range(N_ITEMS))
    assert {1, 4, 7} <= set(ids[0].tolist())


def test_recommend_more_than_the_catalog_pads(fitted: Recommender) -> None:
    ids, scores = fitted.recommend([0, 1], n=N_ITEMS + 5, exclude_seen=False)
    assert ids.shape == (2, N_ITEMS + 5)
    assert np.all(ids[:, N_ITEMS:] == -1)
    assert np.all(scores[:, N_ITEMS:] == -np.inf)
    assert np.all(ids[:, :N_ITEMS] >= 0)


def test_candidates_are_respected(fitted: Recommender, interactions: sp.csr_matrix) -> None:
    candidates = np.array([0, 3, 4, 9, 15])
    ids, scores = fitted.recommend(ALL_USERS, n=8, candidates=candidates)
    assert np.all(np.isin(ids, np.append(candidates, -1)))
    assert np.all(ids[:, 5:] == -1), "at most len(candidates) real items"
    assert np.all(np.isneginf(scores[ids == -1]))
    seen = interactions.toarray() > 0
    for u in range(N_USERS):
        row = ids[u][ids[u] >= 0]
        assert set(row.tolist()) == {int(c) for c in candidates if not seen[u, c]}
    ids, _ = fitted.recommend(ALL_USERS, n=8, candidates=candidates, exclude_seen=False)
    assert np.all(np.sort(ids[:, :5], axis=1) == candidates)
    assert np.all(ids[:, 5:] == -1)
    # a single candidate, given as a list
    ids, _ = fitted.recommend(0, n=2, candidates=[4], exclude_seen=False)
    assert ids.tolist() == [[4, -1]]


def test_unknown_users_raise_key_error(fitted: Recommender) -> None:
    for bad in (N_USERS, -1, [0, N_USERS + 3]):
        with pytest.raises(KeyError):
            fitted.recommend(bad)
        with pytest.raises(KeyError):
            fitted.score(bad)


def test_unknown_candidates_raise_key_error(fitted: Recommender) -> None:
    for bad in ([0, N_ITEMS], [-1], [N_ITEMS + 10]):
        with pytest.raises(KeyError):
            fitted.recommend(0, candidates=bad)


@pytest.mark.parametrize("n", [0, -3])
def test_n_below_one_raises_value_error(fitted: Recommender, n: int) -> None:
    with pytest.raises(ValueError):
        fitted.recommend(0, n=n)


def test_non_integer_users_are_rejected(fitted: Recommender) -> None:
    with pytest.raises(TypeError):
        fitted.recommend(1.5)


# -- unfitted, params, clone ----------------------------------------------------------------
def test_unfitted_model_raises(model_class: type[Recommender], tmp_path: Path) -> None:
    model = make(model_class)
    with pytest.raises(NotFittedError):
        model.recommend(0)
    with pytest.raises(NotFittedError):
        model.score([0])
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model")


def test_get_params_returns_the_constructor_arguments(model_class: type[Recommender]) -> None:
    params = params_of(model_class)
    model = model_class(**params)
    got = model.get_params()
    expected = set(inspect.signature(model_class.__init__).parameters) - {"self"}
    assert set(got) == expected
    for name, value in params.items():
        assert got[name] == value
    # the parameters rebuild an equal model
    assert model_class(**got).get_params() == got


def test_clone_is_unfitted_with_equal_params(fitted: Recommender) -> None:
    twin = fitted.clone()
    assert type(twin) is type(fitted)
    assert twin is not fitted
    assert twin.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        twin.recommend(0)
    with pytest.raises(NotFittedError):
        twin.score([0])
    fitted.recommend(0)  # the original stays fitted


def test_clone_refits_to_the_same_model(fitted: Recommender, interactions: sp.csr_matrix) -> None:
    twin = fit(fitted.clone(), interactions)
    np.testing.assert_array_equal(
        twin.recommend(ALL_USERS, n=5)[0], fitted.recommend(ALL_USERS, n=5)[0]
    )


# -- persistence ----------------------------------------------------------------------------
def test_save_load_round_trip(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "model"
    fitted.save(path)
    npz, meta_path = path.with_suffix(".npz"), path.with_suffix(".json")
    assert npz.is_file() and meta_path.is_file()

    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["class"] == type(fitted).__name__
    assert meta["params"] == json.loads(json.dumps(fitted.get_params()))

    # no pickle anywhere: every array loads with allow_pickle=False and none is an object
    with np.load(npz, allow_pickle=False) as data:
        assert data.files
        for name in data.files:
            assert data[name].dtype != object, name
    with zipfile.ZipFile(npz) as archive:
        for name in archive.namelist():
            assert name.endswith(".npy")

    loaded = type(fitted).load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    assert (loaded.n_users_, loaded.n_items_) == (fitted.n_users_, fitted.n_items_)
    np.testing.assert_array_equal(loaded.score(ALL_USERS), fitted.score(ALL_USERS))
    for kwargs in ({"n": 5}, {"n": 7, "exclude_seen": False}, {"n": 3, "candidates": [1, 2, 3]}):
        ids, scores = fitted.recommend(ALL_USERS, **kwargs)  # type: ignore[arg-type]
        ids2, scores2 = loaded.recommend(ALL_USERS, **kwargs)  # type: ignore[arg-type]
        np.testing.assert_array_equal(ids2, ids)
        np.testing.assert_array_equal(scores2, scores)


def test_load_rejects_another_class(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "model"
    fitted.save(path)
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    meta["class"] = "SomethingElse"
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="SomethingElse"):
        type(fitted).load(path)


def test_load_rejects_another_schema_version(fitted: Recommender, tmp_path: Path) -> None:
    path = tmp_path / "model"
    fitted.save(path)
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    meta["schema_version"] = 999
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="schema"):
        type(fitted).load(path)
