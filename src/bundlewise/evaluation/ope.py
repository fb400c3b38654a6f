"""Off-policy evaluation: a candidate policy's value estimated from logged bandit feedback.

Each logged row ``i`` is an offer: the logging policy chose action ``a_i`` with probability
``p_i`` (the logged propensity) and observed reward ``r_i`` (profit, revenue, or 1/0 for
accepted). A target policy ``pi`` would have chosen ``a_i`` with probability ``pi_i``; the
importance weight of the row is ``w_i = pi_i / p_i``. With ``n`` rows:

.. math::

    \\hat V_{\\mathrm{IPS}} = \\frac{1}{n} \\sum_i w_i r_i, \\qquad
    \\hat V_{\\mathrm{SNIPS}} = \\frac{\\sum_i w_i r_i}{\\sum_i w_i}, \\qquad
    \\hat V_{\\mathrm{DR}} = \\frac{1}{n} \\sum_i \\Big[ \\sum_k \\pi(k \\mid x_i)\\,
        \\hat q(x_i, k) + w_i \\big(r_i - \\hat q(x_i, a_i)\\big) \\Big]

IPS and DR are unbiased when every action the target may take had a positive logging
probability; DR stays unbiased with a wrong reward model ``q_hat`` and has a lower variance when
the model is good. SNIPS is biased by O(1/n) but bounded by the observed rewards, which makes it
the steadier one when a few weights are large.

Intervals are normal approximations: IPS and DR on the per-row terms (their sample standard
deviation over ``sqrt(n)``), SNIPS by the delta method on the ratio,
``Var ~ sum_i w_i^2 (r_i - V)^2 / (n (n - 1) mean(w)^2)``. :func:`bootstrap_interval` gives a
percentile bootstrap interval for any of the estimators.

The effective sample size ``(sum w)^2 / sum w^2`` says how many on-policy rows the logs are
worth for this target. A warning (``"the logs do not support this policy: ..."``) is attached
when it is below 100 or below 1% of ``n``, and when the target puts probability on actions the
logging policy never took (known exactly from ``logged_probs``, or else read from the logs as
the arms never chosen): no weighting can recover the reward of an action that was never shown,
so IPS and SNIPS leave that mass out and DR fills it from ``q_hat`` alone.

References
----------
Horvitz & Thompson (1952), "A generalization of sampling without replacement".
Swaminathan & Joachims (2015), "The self-normalized estimator for counterfactual learning".
Dudik, Langford & Li (2011), "Doubly robust policy evaluation and learning".
Saito et al. (2021), "Open Bandit Dataset and Pipeline" (how to test estimators on a simulator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Below this effective sample size the logs do not support the policy.
MIN_ESS = 100.0
#: ... nor below this share of the logged rows.
MIN_ESS_SHARE = 0.01
#: Probability rows may miss 1 by this much (float32 or rounded inputs).
PROB_ATOL = 1e-6
#: Start of every support warning.
UNSUPPORTED = "the logs do not support this policy"


@dataclass(frozen=True)
class Estimate:
    """A policy value with its confidence interval.

    Attributes
    ----------
    value
        The estimate (NaN when it is undefined: SNIPS with every weight 0).
    lower, upper
        Confidence interval (95% unless another ``level`` was asked for).
    n
        Logged rows used.
    ess
        Effective sample size of the importance weights, ``(sum w)^2 / sum w^2`` (0 when every
        weight is 0).
    warning
        Why the logs do not support the policy, or None when they do.
    """

    value: float
    lower: float
    upper: float
    n: int
    ess: float
    warning: str | None = None

    @property
    def supported(self) -> bool:
        """True when no support warning was raised."""
        return self.warning is None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON reports)."""
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _first_bad(name: str, arr: npt.NDArray[Any], bad: npt.NDArray[np.bool_], problem: str) -> None:
    idx = np.argwhere(bad)
    if idx.size == 0:
        return
    where = ", ".join(str(int(i)) for i in idx[0])
    more = f" (and {idx.shape[0] - 1} more)" if idx.shape[0] > 1 else ""
    raise ValueError(f"{name}[{where}] = {arr[tuple(idx[0])]:g} {problem}{more}.")


def _floats(
    name: str, values: npt.ArrayLike, shape: tuple[int, ...] | None, ndim: int
) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim != ndim:
        want = "(n,) with one value per logged row" if ndim == 1 else "(n, n_actions)"
        raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}.")
    if shape is not None and arr.shape != shape:
        raise ValueError(
            f"{name} has shape {arr.shape}, expected {shape} (one row per logged row)."
        )
    _first_bad(name, arr, ~np.isfinite(arr), "is not a finite number")
    return arr


def _rewards(name: str, values: npt.ArrayLike, n: int | None = None) -> FloatArray:
    r = _floats(name, values, None if n is None else (n,), 1)
    if r.shape[0] < 2:
        raise ValueError(f"{name} has {r.shape[0]} rows; off-policy evaluation needs at least 2.")
    return r


def _logged_propensity(values: npt.ArrayLike, n: int) -> FloatArray:
    p = _floats("logged_propensity", values, (n,), 1)
    _first_bad(
        "logged_propensity",
        p,
        (p <= 0) | (p > 1),
        "is outside (0, 1]: each row needs the probability (> 0) with which its action was chosen",
    )
    return p


def _target_propensity(values: npt.ArrayLike, n: int) -> FloatArray:
    p = _floats("target_propensity", values, (n,), 1)
    _first_bad("target_propensity", p, (p < 0) | (p > 1), "is outside [0, 1]")
    return p


def _probs(name: str, values: npt.ArrayLike, n: int) -> FloatArray:
    probs = _floats(name, values, None, 2)
    if probs.shape[0] != n:
        raise ValueError(f"{name} has {probs.shape[0]} rows, expected {n} (one per logged row).")
    if probs.shape[1] < 1:
        raise ValueError(f"{name} has no action columns.")
    _first_bad(name, probs, (probs < 0) | (probs > 1), "is outside [0, 1]")
    sums = probs.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > PROB_ATOL)
    if off.size:
        more = f" (and {off.size - 1} more rows)" if off.size > 1 else ""
        raise ValueError(f"{name} row {off[0]} sums to {sums[off[0]]:.9g}, not 1{more}.")
    return probs


def _actions(values: npt.ArrayLike, n: int, n_actions: int) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"actions has shape {arr.shape}, expected ({n},) (one per logged row).")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"actions must be integer action indices, got dtype {arr.dtype}.")
    a = arr.astype(np.int64)
    _first_bad(
        "actions", a, (a < 0) | (a >= n_actions), f"is not an action index in [0, {n_actions})"
    )
    return a


def _level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level = {level} should be in (0, 1), e.g. 0.95.")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


# --------------------------------------------------------------------------- estimators


def effective_sample_size(weights: npt.ArrayLike) -> float:
    """``(sum w)^2 / sum w^2``; 0 when every weight is 0."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float(np.dot(w, w))
    return 0.0 if sq == 0.0 else float(w.sum()) ** 2 / sq


def _ess_reason(ess: float, n: int) -> str | None:
    if ess < MIN_ESS:
        return f"effective sample size {ess:.1f} is below {MIN_ESS:.0f}"
    if ess < MIN_ESS_SHARE * n:
        return (
            f"effective sample size {ess:.1f} is below {MIN_ESS_SHARE:.0%} of the {n} logged rows"
        )
    return None


def _warning(reasons: list[str | None]) -> str | None:
    kept = [r for r in reasons if r]
    return f"{UNSUPPORTED}: " + "; ".join(kept) if kept else None


def _from_terms(terms: FloatArray, w: FloatArray, z: float, support: str | None) -> Estimate:
    n = terms.shape[0]
    value = float(terms.mean())
    half = z * float(terms.std(ddof=1)) / math.sqrt(n)
    ess = effective_sample_size(w)
    return Estimate(
        value, value - half, value + half, n, ess, _warning([_ess_reason(ess, n), support])
    )


def _ips(r: FloatArray, w: FloatArray, z: float, support: str | None) -> Estimate:
    return _from_terms(w * r, w, z, support)


def _snips(r: FloatArray, w: FloatArray, z: float, support: str | None) -> Estimate:
    n = r.shape[0]
    ess = effective_sample_size(w)
    total = float(w.sum())
    reasons = [_ess_reason(ess, n), support]
    if total == 0.0:
        reasons.insert(0, "the target gives probability 0 to every logged action")
        return Estimate(math.nan, math.nan, math.nan, n, ess, _warning(reasons))
    value = float(np.dot(w, r)) / total
    resid = w * (r - value)
    se = math.sqrt(float(np.dot(resid, resid)) / (n - 1) / n) / (total / n)
    return Estimate(value, value - z * se, value + z * se, n, ess, _warning(reasons))


def _dr(
    r: FloatArray,
    a: IntArray,
    w: FloatArray,
    target_probs: FloatArray,
    q_hat: FloatArray,
    z: float,
    support: str | None,
) -> Estimate:
    rows = np.arange(r.shape[0])
    direct = np.einsum("ik,ik->i", target_probs, q_hat)
    terms = direct + w * (r - q_hat[rows, a])
    return _from_terms(terms, w, z, support)


def ips(
    rewards: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_propensity: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> Estimate:
    """Inverse propensity scoring: ``mean(w * r)`` with ``w = target / logged propensity``.

    ``target_propensity[i]`` is the probability that the target policy takes row ``i``'s logged
    action. Only the weights are seen here, so the warning covers the effective sample size;
    use :func:`doubly_robust` or :func:`evaluate_policy` (which see the target's whole
    distribution) to also detect actions the logs never took.

    Examples
    --------
    >>> est = ips([1.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5])
    >>> est.value, est.ess
    (0.75, 4.0)
    """
    z = _level(level)
    r = _rewards("rewards", rewards)
    n = r.shape[0]
    w = _target_propensity(target_propensity, n) / _logged_propensity(logged_propensity, n)
    return _ips(r, w, z, None)


def snips(
    rewards: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_propensity: npt.ArrayLike,
    *,
    level: float = 0.95,
) -> Estimate:
    """Self-normalized IPS: ``sum(w * r) / sum(w)``, interval by the delta method.

    Equal to :func:`ips` when the weights average to 1. NaN (with a warning) when every weight
    is 0.
    """
    z = _level(level)
    r = _rewards("rewards", rewards)
    n = r.shape[0]
    w = _target_propensity(target_propensity, n) / _logged_propensity(logged_propensity, n)
    return _snips(r, w, z, None)


def _support_reason(
    actions: IntArray, target_probs: FloatArray, logged_probs: FloatArray | None
) -> str | None:
    n = target_probs.shape[0]
    if logged_probs is not None:
        mask = (logged_probs == 0.0) & (target_probs > 0.0)
        rows = int(mask.any(axis=1).sum())
        if rows == 0:
            return None
        share = float(target_probs[mask].sum()) / n
        return (
            f"the target puts {share:.2%} of its probability on actions the logging policy "
            f"never takes ({rows} of {n} rows)"
        )
    never = np.setdiff1d(np.arange(target_probs.shape[1]), actions)
    mass = target_probs[:, never].sum(axis=0)
    never = never[mass > 0]
    if never.size == 0:
        return None
    share = float(mass[mass > 0].sum()) / n
    listed = ", ".join(str(int(k)) for k in never[:10]) + (", ..." if never.size > 10 else "")
    noun = "action" if never.size == 1 else "actions"
    return (
        f"the target puts {share:.2%} of its probability on {never.size} {noun} "
        f"the logs never chose ({listed})"
    )


def _checked_logged_probs(
    values: npt.ArrayLike | None, actions: IntArray, p0: FloatArray, n_actions: int
) -> FloatArray | None:
    if values is None:
        return None
    probs = _probs("logged_probs", values, p0.shape[0])
    if probs.shape[1] != n_actions:
        raise ValueError(
            f"logged_probs has {probs.shape[1]} actions, target_probs has {n_actions}."
        )
    at = probs[np.arange(p0.shape[0]), actions]
    off = np.flatnonzero(np.abs(at - p0) > PROB_ATOL)
    if off.size:
        i = int(off[0])
        raise ValueError(
            f"logged_probs[{i}, {int(actions[i])}] = {at[i]:g} differs from "
            f"logged_propensity[{i}] = {p0[i]:g}."
        )
    return probs


def doubly_robust(
    rewards: npt.ArrayLike,
    actions: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    q_hat: npt.ArrayLike,
    *,
    logged_probs: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> Estimate:
    """Doubly robust estimate (Dudik et al. 2011).

    Parameters
    ----------
    rewards, actions, logged_propensity
        One per logged row: the reward, the action index taken and its logging probability.
    target_probs
        ``(n, n_actions)``: the target policy's action probabilities in each row's context
        (rows sum to 1).
    q_hat
        ``(n, n_actions)``: a reward model's prediction for every action in each row's context.
    logged_probs
        Optional ``(n, n_actions)`` logging distribution: when given, the support check is
        exact (actions with logging probability 0); otherwise it counts the actions never
        chosen in the logs.
    level
        Confidence level of the interval.
    """
    z = _level(level)
    r = _rewards("rewards", rewards)
    n = r.shape[0]
    p0 = _logged_propensity(logged_propensity, n)
    pi = _probs("target_probs", target_probs, n)
    k = pi.shape[1]
    a = _actions(actions, n, k)
    q = _floats("q_hat", q_hat, (n, k), 2)
    lp = _checked_logged_probs(logged_probs, a, p0, k)
    w = pi[np.arange(n), a] / p0
    return _dr(r, a, w, pi, q, z, _support_reason(a, pi, lp))


def evaluate_policy(
    rewards: Mapping[str, npt.ArrayLike],
    actions: npt.ArrayLike,
    logged_propensity: npt.ArrayLike,
    target_probs: npt.ArrayLike,
    q_hat: Mapping[str, npt.ArrayLike] | None = None,
    *,
    logged_probs: npt.ArrayLike | None = None,
    level: float = 0.95,
) -> dict[str, dict[str, Estimate]]:
    """Estimate several reward columns (e.g. profit, revenue, take rate) at once.

    Returns ``{reward name: {"ips": ..., "snips": ..., "dr": ...}}`` in the order of
    ``rewards``; ``"dr"`` only when ``q_hat`` gives a reward model for every column. Every
    estimate carries the support warning of the target's whole distribution (actions the logs
    never took) besides its effective-sample-size check.
    """
    z = _level(level)
    if not rewards:
        raise ValueError("rewards is empty: give at least one reward column, e.g. {'profit': ...}.")
    if q_hat is not None and set(q_hat) != set(rewards):
        missing = sorted(set(rewards) - set(q_hat))
        extra = sorted(set(q_hat) - set(rewards))
        raise ValueError(
            f"q_hat must have a model for each reward column: missing {missing}, extra {extra}."
        )
    cols = {name: _rewards(f"rewards[{name!r}]", values) for name, values in rewards.items()}
    n = next(iter(cols.values())).shape[0]
    for name, col in cols.items():
        if col.shape[0] != n:
            first = next(iter(cols))
            raise ValueError(f"rewards[{name!r}] has {col.shape[0]} rows, rewards[{first!r}] {n}.")
    p0 = _logged_propensity(logged_propensity, n)
    pi = _probs("target_probs", target_probs, n)
    k = pi.shape[1]
    a = _actions(actions, n, k)
    lp = _checked_logged_probs(logged_probs, a, p0, k)
    models = (
        None
        if q_hat is None
        else {name: _floats(f"q_hat[{name!r}]", q_hat[name], (n, k), 2) for name in cols}
    )
    w = pi[np.arange(n), a] / p0
    support = _support_reason(a, pi, lp)
    out: dict[str, dict[str, Estimate]] = {}
    for name, r in cols.items():
        row = {"ips": _ips(r, w, z, support), "snips": _snips(r, w, z, support)}
        if models is not None:
            row["dr"] = _dr(r, a, w, pi, models[name], z, support)
        out[name] = row
    return out


def bootstrap_interval(
    estimator: Callable[..., Estimate],
    *arrays: npt.ArrayLike,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``estimator(*arrays).value``, resampling logged rows.

    ``arrays`` are the estimator's positional arguments, each with one entry (or row) per
    logged row, e.g. ``bootstrap_interval(ips, rewards, logged, target)``. Deterministic for a
    given ``seed``. Resamples whose estimate is undefined (NaN) are left out.

    Examples
    --------
    >>> lo, hi = bootstrap_interval(ips, [1.0, 0.0] * 50, [0.5] * 100, [0.5] * 100, n_boot=200)
    >>> bool(lo < 0.5 < hi)
    True
    """
    _level(level)
    if n_boot < 2:
        raise ValueError(f"n_boot = {n_boot} should be >= 2.")
    if not arrays:
        raise ValueError("bootstrap_interval needs the estimator's arrays.")
    data = [np.asarray(x) for x in arrays]
    n = data[0].shape[0] if data[0].ndim else 0
    for i, x in enumerate(data):
        if x.ndim == 0 or x.shape[0] != n:
            raise ValueError(f"array {i} has shape {x.shape}; every array needs {n} rows.")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        values[b] = estimator(*(x[idx] for x in data)).value
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)
