"""The price-response posterior against independent Laplace references and known answers."""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learnworld import SENSITIVITY, make_pricer
from scipy.optimize import minimize
from scipy.special import expit

from bundlewise.config import LearningConfig
from bundlewise.learning.posterior import ResponsePosterior

FloatArray = npt.NDArray[np.float64]
BUNDLE = ("mug", "tea")


def _posterior(forgetting: float = 1.0, **prior: float) -> ResponsePosterior:
    return ResponsePosterior(
        prior_sensitivity={"g": 6.0, "h": 10.0},
        default_sensitivity=8.0,
        prior_sd_appeal=prior.get("sd_appeal", 1.0),
        prior_sd_sensitivity=prior.get("sd_sensitivity", 4.0),
        bundle_sd=prior.get("bundle_sd", 0.5),
        forgetting=forgetting,
    )


def _joint(
    post: ResponsePosterior, segment: str, bundle: tuple[str, ...]
) -> tuple[FloatArray, FloatArray]:
    """Mean and block-diagonal covariance of (delta, beta, omega) as the posterior holds them."""
    m, S, _ = post.segment_state(segment)
    w, v, _ = post.bundle_state(bundle)
    cov = np.zeros((3, 3))
    cov[:2, :2] = S
    cov[2, 2] = v
    return np.array([m[0], m[1], w]), cov


def _laplace_reference(
    mean: FloatArray, cov: FloatArray, a: float, r: float, y: bool
) -> tuple[FloatArray, FloatArray]:
    """MAP of the exact one-event log posterior by scipy, covariance = inverse of a
    finite-difference Hessian of the negative log posterior there."""
    precision = np.linalg.inv(cov)
    x = np.array([1.0, -r, 1.0])

    def nlp(t: FloatArray) -> float:
        eta = a + x @ t
        return float(
            -(float(y) * eta - np.logaddexp(0.0, eta)) + 0.5 * (t - mean) @ precision @ (t - mean)
        )

    def grad(t: FloatArray) -> FloatArray:
        return np.asarray(-(float(y) - expit(a + x @ t)) * x + precision @ (t - mean))

    res = minimize(nlp, mean, jac=grad, method="BFGS", options={"gtol": 1e-11, "maxiter": 1000})
    t = res.x
    eps = 1e-5
    H = np.zeros((3, 3))
    for i in range(3):
        e = np.zeros(3)
        e[i] = eps
        H[i] = (grad(t + e) - grad(t - e)) / (2 * eps)
    return t, np.linalg.inv(0.5 * (H + H.T))


@pytest.mark.parametrize(
    ("appeal", "rel_price", "accepted"),
    [
        (6.0, 0.85, True),
        (6.0, 0.85, False),
        (-1.5, 0.7, True),
        (9.0, 1.0, False),
        (0.0, 0.95, True),
    ],
)
def test_one_event_is_the_exact_laplace_step(
    appeal: float, rel_price: float, accepted: bool
) -> None:
    post = _posterior()
    mean0, cov0 = _joint(post, "g", BUNDLE)
    post.update("g", BUNDLE, appeal, rel_price, accepted)
    ref_mean, ref_cov = _laplace_reference(mean0, cov0, appeal, rel_price, accepted)
    mean1, cov1 = _joint(post, "g", BUNDLE)
    np.testing.assert_allclose(mean1, ref_mean, atol=1e-6)
    # the marginals of the Laplace covariance are kept (the cross terms are dropped)
    np.testing.assert_allclose(cov1[:2, :2], ref_cov[:2, :2], atol=1e-6)
    assert cov1[2, 2] == pytest.approx(ref_cov[2, 2], abs=1e-6)
    assert post.n_updates == 1


def test_a_later_event_starts_from_the_kept_marginals() -> None:
    post = _posterior()
    post.update("g", BUNDLE, 6.0, 0.8, True)
    post.update("g", ("pot",), 5.0, 0.9, False)  # another bundle, same segment
    mean0, cov0 = _joint(post, "g", BUNDLE)
    post.update("g", BUNDLE, 6.0, 0.95, False)
    ref_mean, ref_cov = _laplace_reference(mean0, cov0, 6.0, 0.95, False)
    mean1, cov1 = _joint(post, "g", BUNDLE)
    np.testing.assert_allclose(mean1, ref_mean, atol=1e-6)
    np.testing.assert_allclose(np.diag(cov1), np.diag(ref_cov), atol=1e-6)


def test_forgetting_mixes_with_the_prior_before_the_update() -> None:
    """With forgetting f the prior of an event is p^f p0^(1-f): precision f P + (1 - f) P0."""
    f = 0.9
    post = _posterior(forgetting=f)
    for k in range(20):
        post.update("g", BUNDLE, 6.0, 0.7 + 0.015 * k, k % 3 == 0)
    mean, cov = _joint(post, "g", BUNDLE)
    prior_mean = np.array([0.0, 6.0, 0.0])
    prior_precision = np.diag([1.0, 1 / 16.0, 4.0])
    precision = f * np.linalg.inv(cov) + (1 - f) * prior_precision
    mixed_cov = np.linalg.inv(precision)
    mixed_mean = mixed_cov @ (
        f * np.linalg.inv(cov) @ mean + (1 - f) * prior_precision @ prior_mean
    )
    post.update("g", BUNDLE, 6.0, 0.9, True)
    ref_mean, ref_cov = _laplace_reference(mixed_mean, mixed_cov, 6.0, 0.9, True)
    mean1, cov1 = _joint(post, "g", BUNDLE)
    np.testing.assert_allclose(mean1, ref_mean, atol=1e-6)
    np.testing.assert_allclose(np.diag(cov1), np.diag(ref_cov), atol=1e-6)


def _simulate(
    rng: np.random.Generator, n: int, truth: dict[str, float], bundles: list[tuple[str, ...]]
) -> tuple[list[str], list[tuple[str, ...]], FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    segments = ["g", "h"]
    g = rng.integers(0, 2, n)
    b = rng.integers(0, len(bundles), n)
    appeal = rng.normal(7.0, 1.0, n)
    rel = rng.choice(np.linspace(0.7, 1.0, 5), n)
    beta = np.array([truth[segments[i]] for i in g])
    omega = np.array([0.3, -0.3, 0.0])[b]
    y = rng.random(n) < expit(appeal + omega - beta * rel)
    return [segments[i] for i in g], [bundles[i] for i in b], appeal, rel, y


def test_many_events_agree_with_the_full_batch_laplace() -> None:
    """Online updates (no forgetting) against the joint MAP and Laplace covariance of all 7
    parameters (two segments, three bundles) computed at once from every event."""
    rng = np.random.default_rng(3)
    bundles = [("a",), ("b",), ("c",)]
    seg, bun, appeal, rel, y = _simulate(rng, 3000, {"g": 8.0, "h": 7.0}, bundles)
    post = _posterior()
    for k in range(len(y)):
        post.update(seg[k], bun[k], float(appeal[k]), float(rel[k]), bool(y[k]))
    # the batch problem
    n = len(y)
    X = np.zeros((n, 7))
    gi = np.array([0 if s == "g" else 1 for s in seg])
    bi = np.array([bundles.index(b) for b in bun])
    X[np.arange(n), 2 * gi] = 1.0
    X[np.arange(n), 2 * gi + 1] = -rel
    X[np.arange(n), 4 + bi] = 1.0
    m0 = np.array([0.0, 6.0, 0.0, 10.0, 0.0, 0.0, 0.0])
    P0 = np.diag([1.0, 1 / 16.0, 1.0, 1 / 16.0, 4.0, 4.0, 4.0])

    def nlp(t: FloatArray) -> float:
        e = appeal + X @ t
        return float(-(y * e - np.logaddexp(0, e)).sum() + 0.5 * (t - m0) @ P0 @ (t - m0))

    def grad(t: FloatArray) -> FloatArray:
        return np.asarray(-X.T @ (y - expit(appeal + X @ t)) + P0 @ (t - m0))

    def hess(t: FloatArray) -> FloatArray:
        p = expit(appeal + X @ t)
        return np.asarray(X.T @ (X * (p * (1 - p))[:, None]) + P0)

    res = minimize(nlp, m0, jac=grad, hess=hess, method="trust-exact")
    batch_cov = np.linalg.inv(hess(res.x))
    online = np.array(
        [*post.mean("g", ("a",))[:2], *post.mean("h", ("a",))[:2]]
        + [post.bundle_state(b)[0] for b in bundles]
    )
    online_cov = np.zeros((7, 7))
    online_cov[:2, :2] = post.segment_state("g")[1]
    online_cov[2:4, 2:4] = post.segment_state("h")[1]
    for j, b in enumerate(bundles):
        online_cov[4 + j, 4 + j] = post.bundle_state(b)[1]
    # What the data identify: the acceptance logit of every (segment, bundle, price) cell and
    # the sensitivities, within 0.3 batch standard deviations; the split of a cell's
    # intercept between segment and bundle (only the prior tells them apart) within one.
    rows = []
    for gi in range(2):
        for bj in range(3):
            for r in (0.7, 1.0):
                row = np.zeros(7)
                row[2 * gi], row[2 * gi + 1], row[4 + bj] = 1.0, -r, 1.0
                rows.append(row)
    for gi in range(2):
        row = np.zeros(7)
        row[2 * gi + 1] = 1.0
        rows.append(row)
    L = np.array(rows)
    batch_sd = np.sqrt(np.einsum("ij,jk,ik->i", L, batch_cov, L))
    online_sd = np.sqrt(np.einsum("ij,jk,ik->i", L, online_cov, L))
    gap = np.abs(L @ online - L @ res.x)
    assert np.all(gap <= 0.3 * batch_sd), (gap, batch_sd)
    assert np.all(np.abs(online - res.x) <= np.sqrt(np.diag(batch_cov)))
    # and so are the standard deviations (the kept marginals drop the negative correlation of
    # segment and bundle intercepts: slightly wider cells)
    assert np.all((online_sd > 0.9 * batch_sd) & (online_sd < 1.25 * batch_sd)), (
        online_sd,
        batch_sd,
    )
    # and the sensitivities are well inside their intervals of the truth
    assert abs(online[1] - 8.0) < 3 * online_sd[-2] and abs(online[3] - 7.0) < 3 * online_sd[-1]


@pytest.mark.parametrize("true_beta", [3.0, 12.0])  # half and twice the prior of segment g
def test_the_posterior_recovers_a_true_sensitivity(true_beta: float) -> None:
    rng = np.random.default_rng(int(true_beta))
    post = _posterior()
    appeal = 6.0 if true_beta < 6 else 9.0
    for _ in range(6000):
        r = float(rng.choice([0.7, 0.775, 0.85, 0.925, 1.0]))
        post.update("g", BUNDLE, appeal, r, bool(rng.random() < expit(appeal - true_beta * r)))
    mean, cov, n = post.segment_state("g")
    sd = float(np.sqrt(cov[1, 1]))
    assert n == 6000
    assert abs(mean[1] - true_beta) < 3 * sd
    assert sd < 0.25 * true_beta  # the data, not the prior (sd 4), decides


def test_forgetting_follows_a_shift() -> None:
    """Sensitivity 4 for 4000 events, then 12: with forgetting the posterior moves to 12, without
    it stays near the average of the two regimes."""
    rng = np.random.default_rng(5)
    events = []
    for k in range(8000):
        beta = 4.0 if k < 4000 else 12.0
        r = float(rng.choice([0.7, 0.85, 1.0]))
        events.append((r, bool(rng.random() < expit(8.0 - beta * r))))
    forgetful, stubborn = _posterior(forgetting=0.995), _posterior(forgetting=1.0)
    for r, y in events[:4000]:
        forgetful.update("g", BUNDLE, 8.0, r, y)
    assert abs(forgetful.mean("g", BUNDLE)[1] - 4.0) < 1.5
    for post in (forgetful, stubborn):
        for r, y in events[4000:] if post is forgetful else events:
            post.update("g", BUNDLE, 8.0, r, y)
    b_forgetful = forgetful.mean("g", BUNDLE)[1]
    b_stubborn = stubborn.mean("g", BUNDLE)[1]
    assert abs(b_forgetful - 12.0) < 1.5
    assert b_stubborn < 10.0
    # the covariance stays bounded by the prior's
    assert forgetful.segment_state("g")[1][1, 1] < 16.0


def test_replaying_the_same_events_gives_the_same_json_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    seg, bun, appeal, rel, y = _simulate(rng, 500, {"g": 5.0, "h": 9.0}, [("a",), ("b", "c")])
    texts = []
    for _ in range(2):
        post = _posterior(forgetting=0.99)
        for k in range(len(y)):
            post.update(seg[k], bun[k], float(appeal[k]), float(rel[k]), bool(y[k]))
        texts.append(post.to_json())
    assert texts[0] == texts[1]
    back = ResponsePosterior.from_json(texts[0])
    assert back.to_json() == texts[0]
    # and the restored posterior keeps learning exactly like the original
    original = ResponsePosterior.from_json(texts[0])
    for post in (back, original):
        post.update("g", ("a",), 7.0, 0.8, True)
    assert back.to_json() == original.to_json()
    assert json.loads(texts[0])["n_updates"] == 500


def test_a_copy_is_independent() -> None:
    post = _posterior()
    post.update("g", BUNDLE, 6.0, 0.8, True)
    snapshot = post.copy()
    before = snapshot.to_json()
    post.update("g", BUNDLE, 6.0, 0.8, False)
    assert snapshot.to_json() == before
    assert post.to_json() != before


def test_the_prior_comes_from_the_pricer() -> None:
    cfg = LearningConfig(prior_sd_appeal=0.5, prior_sd_sensitivity=2.0, bundle_sd=0.25)
    post = ResponsePosterior.from_pricer(make_pricer(), cfg)
    assert post.mean("high", BUNDLE) == (0.0, SENSITIVITY["high"], 0.0)
    assert post.mean("unknown", BUNDLE) == (0.0, 8.0, 0.0)  # pricing.sensitivity_prior
    mean, cov, n = post.segment_state("low")
    assert n == 0 and np.allclose(cov, np.diag([0.25, 4.0]))
    assert post.bundle_state(BUNDLE) == (0.0, 0.0625, 0)
    assert post.forgetting == cfg.forgetting


def test_samples_have_the_posterior_moments() -> None:
    post = _posterior()
    for k in range(50):
        post.update("g", BUNDLE, 6.0, 0.7 + 0.006 * k, k % 2 == 0)
    delta, beta, omega = post.sample(np.random.default_rng(0), "g", BUNDLE, 40_000)
    mean, cov, _ = post.segment_state("g")
    w, v, _ = post.bundle_state(BUNDLE)
    draws = np.stack([delta, beta])
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 4 * np.sqrt(np.diag(cov) / 40_000))
    np.testing.assert_allclose(np.cov(draws), cov, rtol=0.05, atol=1e-3)
    assert omega.mean() == pytest.approx(w, abs=4 * np.sqrt(v / 40_000))
    assert omega.var() == pytest.approx(v, rel=0.05)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.5, 1.0),
    st.lists(
        st.tuples(st.floats(-10.0, 15.0), st.floats(0.05, 1.5), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_the_covariance_stays_positive_and_below_the_prior(
    forgetting: float, events: list[tuple[float, float, bool]]
) -> None:
    post = _posterior(forgetting=forgetting)
    for a, r, y in events:
        post.update("g", BUNDLE, a, r, y)
    mean, cov, _ = post.segment_state("g")
    w, v, _ = post.bundle_state(BUNDLE)
    assert np.all(np.isfinite(mean)) and np.isfinite(w)
    assert np.all(np.linalg.eigvalsh(cov) > 0) and 0 < v <= 0.25 + 1e-12
    assert np.all(np.linalg.eigvalsh(np.diag([1.0, 16.0]) - cov) > -1e-9)


@pytest.mark.parametrize(
    ("appeal", "rel", "accepted", "message"),
    [
        (float("nan"), 0.9, True, "appeal=nan must be finite"),
        (1.0, 0.0, True, "rel_price=0.0 must be finite and > 0"),
        (1.0, float("inf"), True, "rel_price=inf"),
        (1.0, 0.9, 2, "accepted=2 must be true or false"),
    ],
)
def test_bad_events_are_refused(appeal: float, rel: float, accepted: object, message: str) -> None:
    post = _posterior()
    with pytest.raises(ValueError, match=message):
        post.update("g", BUNDLE, appeal, rel, accepted)  # type: ignore[arg-type]
    assert post.n_updates == 0


def test_a_foreign_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not a bundlewise response posterior"):
        ResponsePosterior.from_json('{"format": "other"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        ResponsePosterior.from_json("{")
    text = _posterior().to_json().replace('"version":1', '"version":99')
    with pytest.raises(ValueError, match="version 99"):
        ResponsePosterior.from_json(text)
