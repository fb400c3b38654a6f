"""Off-policy estimators against the ground truth of a simulated contextual bandit."""

from __future__ import annotations

import dataclasses
import math
from functools import cache

import numpy as np
import pytest

from bundlewise.evaluation.ope import (
    UNSUPPORTED,
    Estimate,
    bootstrap_interval,
    doubly_robust,
    effective_sample_size,
    evaluate_policy,
    ips,
    snips,
)

# A priced bandit: 6 customer contexts, 4 price levels (arms). Arm k earns MARGIN[k] when the
# offer is accepted, which happens with probability ACCEPT[c, k] (falling with the price).
N_CONTEXTS, N_ARMS = 6, 4
CONTEXT_P = np.array([0.25, 0.2, 0.2, 0.15, 0.1, 0.1])
MARGIN = np.array([2.0, 4.0, 6.0, 8.0])
_base = np.random.default_rng(12345)
ACCEPT = np.sort(_base.uniform(0.1, 0.9, size=(N_CONTEXTS, N_ARMS)), axis=1)[:, ::-1].copy()


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


#: Logging policy: every arm has probability >= 0.1 in every context.
LOGGING = 0.6 * _softmax(_base.normal(size=(N_CONTEXTS, N_ARMS))) + 0.1
#: Target policy: mostly the most profitable arm of each context.
_best = np.argmax(MARGIN * ACCEPT, axis=1)
TARGET = np.full((N_CONTEXTS, N_ARMS), 0.1 / (N_ARMS - 1))
TARGET[np.arange(N_CONTEXTS), _best] = 0.9
#: Exact value of the target policy (expected profit per offer).
TRUE_VALUE = float(CONTEXT_P @ (TARGET * MARGIN * ACCEPT).sum(axis=1))
TRUE_TAKE_RATE = float(CONTEXT_P @ (TARGET * ACCEPT).sum(axis=1))


def _draw(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    cum = np.cumsum(probs, axis=1)
    return np.minimum((rng.random(probs.shape[0])[:, None] > cum).sum(axis=1), probs.shape[1] - 1)


def simulate(
    seed: int, n: int, logging: np.ndarray = LOGGING, target: np.ndarray = TARGET
) -> dict[str, np.ndarray]:
    """n logged offers of ``logging``, with ``target``'s probabilities and the true means."""
    rng = np.random.default_rng(seed)
    ctx = rng.choice(N_CONTEXTS, size=n, p=CONTEXT_P)
    actions = _draw(rng, logging[ctx])
    accepted = (rng.random(n) < ACCEPT[ctx, actions]).astype(np.float64)
    return {
        "actions": actions,
        "logged_propensity": logging[ctx, actions],
        "target_propensity": target[ctx, actions],
        "target_probs": target[ctx],
        "logged_probs": logging[ctx],
        "profit": MARGIN[actions] * accepted,
        "accepted": accepted,
        "q_true": MARGIN * ACCEPT[ctx],
    }


N_SEEDS, N_ROWS = 200, 4000


@cache
def _runs() -> dict[str, list[Estimate]]:
    out: dict[str, list[Estimate]] = {"ips": [], "snips": [], "dr": [], "dr_wrong": []}
    for seed in range(N_SEEDS):
        s = simulate(seed, N_ROWS)
        args = (s["profit"], s["logged_propensity"], s["target_propensity"])
        out["ips"].append(ips(*args))
        out["snips"].append(snips(*args))
        dr_args = (s["profit"], s["actions"], s["logged_propensity"], s["target_probs"])
        out["dr"].append(doubly_robust(*dr_args, s["q_true"]))
        # A badly wrong reward model: DR stays unbiased because the propensities are right.
        wrong = 0.5 * s["q_true"][:, ::-1] + 1.0
        out["dr_wrong"].append(doubly_robust(*dr_args, wrong))
    return out


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "dr_wrong"])
def test_estimators_are_unbiased_over_seeds(name: str) -> None:
    values = np.array([e.value for e in _runs()[name]])
    se_of_mean = values.std(ddof=1) / math.sqrt(N_SEEDS)
    assert abs(values.mean() - TRUE_VALUE) < 4 * se_of_mean
    # ... and the test has teeth: a 2% bias would be caught.
    assert 4 * se_of_mean < 0.02 * TRUE_VALUE


@pytest.mark.parametrize("name", ["ips", "snips", "dr", "dr_wrong"])
def test_95_percent_intervals_cover_the_truth(name: str) -> None:
    runs = _runs()[name]
    covered = np.mean([e.lower <= TRUE_VALUE <= e.upper for e in runs])
    assert 0.88 <= covered <= 0.99
    assert all(e.lower < e.value < e.upper for e in runs)
    assert all(e.n == N_ROWS and e.warning is None for e in runs)


def test_dr_with_a_perfect_reward_model_has_lower_variance_than_ips() -> None:
    runs = _runs()
    spread = {k: np.std([e.value for e in runs[k]]) for k in ("ips", "dr")}
    width = {k: np.mean([e.upper - e.lower for e in runs[k]]) for k in ("ips", "dr")}
    assert spread["dr"] < 0.8 * spread["ips"]
    assert width["dr"] < 0.8 * width["ips"]


def test_ess_matches_the_formula() -> None:
    s = simulate(7, 500)
    w = s["target_propensity"] / s["logged_propensity"]
    est = ips(s["profit"], s["logged_propensity"], s["target_propensity"])
    assert est.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert 0 < est.ess < 500
    assert effective_sample_size(np.ones(10)) == pytest.approx(10.0)
    assert effective_sample_size(np.zeros(10)) == 0.0


def test_snips_equals_ips_when_weights_average_to_one() -> None:
    rng = np.random.default_rng(3)
    n = 400
    rewards = rng.normal(5.0, 2.0, size=n)
    logged = rng.uniform(0.2, 0.6, size=n)
    w = np.tile([0.5, 1.5], n // 2)  # mean exactly 1
    target = logged * w
    a, b = ips(rewards, logged, target), snips(rewards, logged, target)
    assert a.value == pytest.approx(b.value, rel=1e-12)
    # With uneven weights they differ.
    c, d = ips(rewards, logged, target * 0.8), snips(rewards, logged, target * 0.8)
    assert c.value != pytest.approx(d.value, rel=1e-3)
    # SNIPS (value and delta-method interval) is scale-free in w.
    assert (d.value, d.lower, d.upper) == pytest.approx((b.value, b.lower, b.upper), rel=1e-12)


def test_on_policy_ips_is_the_sample_mean() -> None:
    s = simulate(11, 800, target=LOGGING)
    est = ips(s["profit"], s["logged_propensity"], s["target_propensity"])
    r = s["profit"]
    assert est.value == pytest.approx(r.mean(), rel=1e-12)
    half = 1.959963984540054 * r.std(ddof=1) / math.sqrt(r.size)
    assert (est.lower, est.upper) == pytest.approx((r.mean() - half, r.mean() + half))
    assert est.ess == pytest.approx(800.0)
    assert snips(s["profit"], s["logged_propensity"], s["target_propensity"]).value == (
        pytest.approx(r.mean(), rel=1e-12)
    )


def test_warning_when_the_target_uses_an_arm_the_logger_never_chose() -> None:
    logging = LOGGING.copy()
    logging[:, 3] = 0.0
    logging /= logging.sum(axis=1, keepdims=True)
    target = 0.7 * logging
    target[:, 3] = 0.3
    s = simulate(5, 5000, logging=logging, target=target)
    assert not np.any(s["actions"] == 3)
    dr_args = (s["profit"], s["actions"], s["logged_propensity"], s["target_probs"], s["q_true"])
    est = doubly_robust(*dr_args)
    assert est.warning is not None and est.warning.startswith(UNSUPPORTED)
    assert "30.00% of its probability on 1 action the logs never chose (3)" in est.warning
    assert est.ess > 1000  # the warning is the support one, not the ESS one
    assert "effective sample size" not in est.warning
    exact = doubly_robust(*dr_args, logged_probs=s["logged_probs"])
    assert exact.warning is not None and "(5000 of 5000 rows)" in exact.warning
    # Weights alone cannot see it; the whole-policy helper attaches it to every estimator.
    assert ips(s["profit"], s["logged_propensity"], s["target_propensity"]).warning is None
    report = evaluate_policy(
        {"profit": s["profit"]}, s["actions"], s["logged_propensity"], s["target_probs"]
    )
    assert all(e.warning == est.warning for e in report["profit"].values())
    # IPS misses the 30% never shown (biased low); DR fills it in from the reward model.
    ips_value = report["profit"]["ips"].value
    true_value = float(CONTEXT_P @ (target * MARGIN * ACCEPT).sum(axis=1))
    assert ips_value < 0.85 * true_value
    assert est.lower <= true_value <= est.upper


def test_no_support_warning_when_every_arm_was_logged() -> None:
    s = simulate(5, 5000)
    dr_args = (s["profit"], s["actions"], s["logged_propensity"], s["target_probs"], s["q_true"])
    assert doubly_robust(*dr_args).warning is None
    assert doubly_robust(*dr_args, logged_probs=s["logged_probs"]).warning is None


def test_warning_when_the_effective_sample_size_is_low() -> None:
    n = 100_000
    logged = np.full(n, 0.005)
    rewards = np.ones(n)
    target = np.zeros(n)
    target[:500] = 1.0  # ESS 500: above 100 but below 1% of n
    est = ips(rewards, logged, target)
    assert est.ess == pytest.approx(500.0)
    assert est.warning == (
        f"{UNSUPPORTED}: effective sample size 500.0 is below 1% of the 100000 logged rows"
    )
    target[:2000] = 1.0
    assert ips(rewards, logged, target).warning is None
    small = ips(rewards[:50], logged[:50], np.ones(50) * 0.005)
    assert small.ess == pytest.approx(50.0)
    assert small.warning == f"{UNSUPPORTED}: effective sample size 50.0 is below 100"


def test_snips_with_all_weights_zero_is_undefined_and_says_so() -> None:
    est = snips([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0])
    assert math.isnan(est.value) and est.ess == 0.0
    assert est.warning is not None and "probability 0 to every logged action" in est.warning
    assert ips([1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]).value == 0.0


def test_evaluate_policy_reports_every_reward_column() -> None:
    s = simulate(21, 3000)
    revenue = s["profit"] * 1.5
    rewards = {"profit": s["profit"], "revenue": revenue, "take_rate": s["accepted"]}
    q_hat = {
        "profit": s["q_true"],
        "revenue": s["q_true"] * 1.5,
        "take_rate": s["q_true"] / MARGIN,
    }
    args = (s["actions"], s["logged_propensity"], s["target_probs"])
    report = evaluate_policy(rewards, *args, q_hat)
    assert list(report) == ["profit", "revenue", "take_rate"]
    assert all(list(row) == ["ips", "snips", "dr"] for row in report.values())
    for name, r in rewards.items():
        prop = (r, s["logged_propensity"], s["target_propensity"])
        assert report[name]["ips"] == ips(*prop)
        assert report[name]["snips"] == snips(*prop)
        assert report[name]["dr"] == doubly_robust(r, *args, q_hat[name])
    tr = report["take_rate"]["dr"]
    assert tr.lower <= TRUE_TAKE_RATE <= tr.upper
    assert report["revenue"]["ips"].value == pytest.approx(1.5 * report["profit"]["ips"].value)
    without = evaluate_policy(rewards, *args)
    assert all(list(row) == ["ips", "snips"] for row in without.values())
    assert without["profit"]["ips"] == report["profit"]["ips"]


def test_estimate_is_frozen_and_serialisable() -> None:
    est = ips([1.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.value = 2.0  # type: ignore[misc]
    d = est.as_dict()
    assert set(d) == {"value", "lower", "upper", "n", "ess", "warning"}
    assert d["n"] == 3 and d["warning"] == est.warning
    assert est.supported is (est.warning is None)


def test_bootstrap_interval_agrees_with_the_normal_interval() -> None:
    s = simulate(2, 2000)
    args = (s["profit"], s["logged_propensity"], s["target_propensity"])
    est = ips(*args)
    lo, hi = bootstrap_interval(ips, *args, n_boot=400, seed=1)
    assert (lo, hi) == bootstrap_interval(ips, *args, n_boot=400, seed=1)
    assert lo < est.value < hi
    assert hi - lo == pytest.approx(est.upper - est.lower, rel=0.15)
    dr_lo, dr_hi = bootstrap_interval(
        doubly_robust,
        s["profit"],
        s["actions"],
        s["logged_propensity"],
        s["target_probs"],
        s["q_true"],
        n_boot=200,
    )
    assert dr_hi - dr_lo < hi - lo
    with pytest.raises(ValueError, match="every array needs 2000 rows"):
        bootstrap_interval(ips, s["profit"], s["logged_propensity"][:10], s["target_propensity"])


def test_level_changes_the_interval_width() -> None:
    s = simulate(4, 1000)
    args = (s["profit"], s["logged_propensity"], s["target_propensity"])
    e95, e80 = ips(*args), ips(*args, level=0.80)
    ratio = (e80.upper - e80.lower) / (e95.upper - e95.lower)
    assert ratio == pytest.approx(1.2815515655446004 / 1.959963984540054)
    with pytest.raises(ValueError, match="level = 95"):
        ips(*args, level=95)


_R = [1.0, 0.0, 1.0]
_P = [0.5, 0.5, 0.5]
_PI = [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]]
_Q = [[0.5, 0.5]] * 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ips(_R, [0.5, 0.0, 0.5], _P), r"logged_propensity\[1\] = 0 is outside \(0, 1\]"),
        (lambda: ips(_R, [0.5, 1.2, 0.5], _P), r"logged_propensity\[1\] = 1.2 is outside"),
        (lambda: ips(_R, [-1.0, -1.0, 0.5], _P), r"\[0\] = -1 .*\(and 1 more\)"),
        (lambda: ips(_R, _P, [0.5, 1.5, 0.5]), r"target_propensity\[1\] = 1.5 is outside \[0, 1\]"),
        (lambda: ips(_R, _P[:2], _P), r"logged_propensity has shape \(2,\), expected \(3,\)"),
        (lambda: ips([[1.0, 0.0]], _P, _P), r"rewards must have shape \(n,\)"),
        (lambda: ips([1.0], [0.5], [0.5]), "needs at least 2"),
        (lambda: ips([1.0, math.nan, 0.0], _P, _P), r"rewards\[1\] = nan is not a finite number"),
        (lambda: snips(["a", "b", "c"], _P, _P), "rewards must be numeric"),
        (
            lambda: doubly_robust(_R, [0, 1, 0], _P, [[0.5, 0.4], [0.5, 0.5], [1.0, 0.0]], _Q),
            r"target_probs row 0 sums to 0.9, not 1",
        ),
        (
            lambda: doubly_robust(_R, [0, 1, 0], _P, [[1.5, -0.5]] * 3, _Q),
            r"target_probs\[0, 0\] = 1.5 is outside \[0, 1\]",
        ),
        (
            lambda: doubly_robust(_R, [0, 2, 0], _P, _PI, _Q),
            r"actions\[1\] = 2 is not an action index in \[0, 2\)",
        ),
        (
            lambda: doubly_robust(_R, [0.0, 1.0, 0.0], _P, _PI, _Q),
            "actions must be integer action indices",
        ),
        (
            lambda: doubly_robust(_R, [0, 1], _P, _PI, _Q),
            r"actions has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda: doubly_robust(_R, [0, 1, 0], _P, _PI, [[0.5, 0.5, 0.5]] * 3),
            r"q_hat has shape \(3, 3\), expected \(3, 2\)",
        ),
        (
            lambda: doubly_robust(_R, [0, 1, 0], _P, _PI[:2], _Q),
            "target_probs has 2 rows, expected 3",
        ),
        (
            lambda: doubly_robust(_R, [0, 1, 0], _P, _PI, _Q, logged_probs=[[0.9, 0.1]] * 3),
            r"logged_probs\[0, 0\] = 0.9 differs from logged_propensity\[0\] = 0.5",
        ),
        (
            lambda: evaluate_policy({}, [0, 1, 0], _P, _PI),
            "rewards is empty",
        ),
        (
            lambda: evaluate_policy(
                {"profit": _R, "revenue": _R}, [0, 1, 0], _P, _PI, {"profit": _Q}
            ),
            r"missing \['revenue'\], extra \[\]",
        ),
        (
            lambda: evaluate_policy({"profit": _R, "revenue": _R[:2]}, [0, 1, 0], _P, _PI),
            r"rewards\['revenue'\] has 2 rows",
        ),
        (
            lambda: evaluate_policy(
                {"profit": _R}, [0, 1, 0], _P, _PI, {"profit": [[1.0, math.inf]] * 3}
            ),
            r"q_hat\['profit'\]\[0, 1\] = inf is not a finite number",
        ),
    ],
)
def test_validation_errors_are_clear(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
