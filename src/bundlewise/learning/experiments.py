"""Experiments: sticky assignment of customers to variants and the experiment report.

**Assignment.** A customer's variant is a function of ``sha256(experiment_id, customer_id)``
alone: the first 8 bytes, read as a number in [0, 1), fall into one of the variants' shares
(variants in sorted name order). The same customer always gets the same variant of an experiment
(sticky), different experiments assign independently, and the shares are met in expectation.
The ``holdout`` variant sees list prices (the control); ``learning`` sees the learning policy.

**Report.** Per variant: offers, customers, take rate, revenue and profit per offer, each mean
with a 95% confidence interval; the lift of every other variant against the control, as a
difference of means (Welch's t interval) and as a relative lift (ratio minus one, delta-method
interval on the ratio of the two means); and a sample-ratio-mismatch check, a chi-square test
of the customers per variant (offers, when the rows have no customer id) against the expected
shares, with a warning below p = 0.001 (the assignment or the logging is broken: the lifts are
not to be trusted).

The intervals treat offers as independent; offers to one customer are correlated, so with many
offers per customer they are somewhat too narrow.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from bundlewise.config import LearningConfig

HOLDOUT = "holdout"
LEARNING = "learning"
#: p-value below which the report warns of a sample-ratio mismatch.
SRM_ALPHA = 0.001
#: The metrics of the report (per offer).
METRICS: tuple[str, ...] = ("take_rate", "revenue_per_offer", "profit_per_offer")


def _check_weights(weights: Mapping[str, float]) -> list[tuple[str, float]]:
    if not weights:
        raise ValueError("an experiment needs at least one variant weight.")
    items = sorted((str(k), float(v)) for k, v in weights.items())
    for name, w in items:
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"variant {name!r} has weight {w!r}; weights must be finite, >= 0.")
    total = sum(w for _, w in items)
    if total <= 0:
        raise ValueError("variant weights must not all be 0.")
    return [(name, w / total) for name, w in items]


def unit_hash(customer_id: str, experiment_id: str) -> float:
    """The customer's number in [0, 1) for this experiment (``sha256``, first 8 bytes).

    Examples
    --------
    >>> 0.0 <= unit_hash("13085", "pricing") < 1.0
    True
    """
    digest = hashlib.sha256(f"{experiment_id}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(customer_id: str, experiment_id: str, weights: Mapping[str, float]) -> str:
    """The variant of one customer in one experiment (sticky: always the same).

    ``weights`` maps each variant to its share (normalized; a 0 weight gets no customer).

    Raises
    ------
    ValueError
        For no variants, a negative or non-finite weight, or all weights 0.

    Examples
    --------
    >>> v = assign("13085", "pricing", {"holdout": 0.1, "learning": 0.9})
    >>> v == assign("13085", "pricing", {"learning": 0.9, "holdout": 0.1})
    True
    """
    shares = _check_weights(weights)
    u = unit_hash(str(customer_id), str(experiment_id))
    edge = 0.0
    for name, share in shares:
        edge += share
        if u < edge and share > 0:
            return name
    return next(name for name, share in reversed(shares) if share > 0)


def variant_weights(cfg: LearningConfig) -> dict[str, float]:
    """The variants of the ``[learning]`` section: the holdout and the learning policy.

    Examples
    --------
    >>> variant_weights(LearningConfig(holdout_share=0.1))
    {'holdout': 0.1, 'learning': 0.9}
    """
    out = {HOLDOUT: cfg.holdout_share, LEARNING: 1.0 - cfg.holdout_share}
    return {k: v for k, v in out.items() if v > 0}


def _mean_ci(x: npt.NDArray[np.float64]) -> dict[str, float | None]:
    n = x.size
    if n == 0:
        return {"estimate": None, "lower": None, "upper": None}
    m = float(x.mean())
    if n < 2:
        return {"estimate": m, "lower": None, "upper": None}
    se = float(x.std(ddof=1)) / math.sqrt(n)
    t = float(stats.t.ppf(0.975, n - 1))
    return {"estimate": m, "lower": m - t * se, "upper": m + t * se}


def welch_interval(
    treatment: npt.ArrayLike, control: npt.ArrayLike, level: float = 0.95
) -> dict[str, float | None]:
    """Difference of means ``treatment - control`` with Welch's t interval.

    Examples
    --------
    >>> r = welch_interval([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0])
    >>> r["estimate"], round(r["lower"], 3), round(r["upper"], 3)
    (1.0, -1.234, 3.234)
    """
    a = np.asarray(treatment, dtype=np.float64)
    b = np.asarray(control, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        est = float(a.mean() - b.mean()) if a.size and b.size else None
        return {"estimate": est, "lower": None, "upper": None}
    va = float(a.var(ddof=1)) / a.size
    vb = float(b.var(ddof=1)) / b.size
    est = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return {"estimate": est, "lower": est, "upper": est}
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = float(stats.t.ppf(0.5 + level / 2, df))
    return {"estimate": est, "lower": est - t * se, "upper": est + t * se}


def relative_lift_interval(
    treatment: npt.ArrayLike, control: npt.ArrayLike, level: float = 0.95
) -> dict[str, float | None]:
    """Relative lift ``mean(treatment) / mean(control) - 1`` with a delta-method interval
    (``None`` estimate when the control's mean is 0).

    Examples
    --------
    >>> r = relative_lift_interval([2.0, 2.2, 1.8, 2.0], [1.0, 1.1, 0.9, 1.0])
    >>> round(r["estimate"], 6), r["lower"] < 1.0 < r["upper"]
    (1.0, True)
    """
    a = np.asarray(treatment, dtype=np.float64)
    b = np.asarray(control, dtype=np.float64)
    if a.size < 2 or b.size < 2 or float(b.mean()) == 0.0:
        return {"estimate": None, "lower": None, "upper": None}
    ma, mb = float(a.mean()), float(b.mean())
    ratio = ma / mb
    va = float(a.var(ddof=1)) / a.size
    vb = float(b.var(ddof=1)) / b.size
    se = abs(ratio) * math.sqrt(va / ma**2 + vb / mb**2) if ma != 0 else math.sqrt(va) / abs(mb)
    z = float(stats.norm.ppf(0.5 + level / 2))
    return {"estimate": ratio - 1.0, "lower": ratio - 1.0 - z * se, "upper": ratio - 1.0 + z * se}


def srm_check(observed: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, Any]:
    """Sample-ratio-mismatch chi-square test of counts per variant against the weights.

    Raises
    ------
    ValueError
        For a variant with counts but no weight, or invalid weights.

    Examples
    --------
    >>> srm_check({"a": 500, "b": 500}, {"a": 0.5, "b": 0.5})["p_value"]
    1.0
    """
    shares = dict(_check_weights(weights))
    unknown = sorted(set(observed) - set(shares))
    if unknown:
        raise ValueError(f"variant(s) {', '.join(unknown)} have rows but no weight.")
    total = int(sum(int(observed.get(n, 0)) for n in shares))
    counts = {n: int(observed.get(n, 0)) for n in sorted(shares)}
    expected = {n: shares[n] * total for n in sorted(shares)}
    positive = [n for n in sorted(shares) if shares[n] > 0]
    chi2: float | None = 0.0
    if any(counts[n] > 0 for n in shares if shares[n] == 0):
        chi2, p_value = None, 0.0  # rows in a variant that should have none
    elif total == 0 or len(positive) < 2:
        p_value = 1.0
    else:
        obs = np.array([counts[n] for n in positive], dtype=np.float64)
        exp = np.array([expected[n] for n in positive])
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        p_value = float(stats.chi2.sf(chi2, len(positive) - 1))
    return {
        "chi2": chi2,
        "df": max(len(positive) - 1, 0),
        "p_value": p_value,
        "observed": counts,
        "expected": expected,
    }


def _get(row: Any, name: str, default: Any = None) -> Any:
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def experiment_report(
    rows: Iterable[Any],
    weights: Mapping[str, float] | None = None,
    *,
    control: str = HOLDOUT,
) -> dict[str, Any]:
    """The experiment report of logged offers.

    Parameters
    ----------
    rows
        One per offer (mappings or objects) with ``variant``, ``accepted`` (bool),
        ``price_minor`` and ``cost_minor``, and optionally ``customer_id`` (the unit the
        sample-ratio check counts). An accepted offer earns ``price`` revenue and
        ``price - cost`` profit, a declined one 0.
    weights
        The variants' expected shares (the assignment's weights) for the sample-ratio check;
        ``None`` skips it.
    control
        The variant the others are compared with.

    Returns
    -------
    dict
        ``variants`` (per variant ``n_offers``, ``n_customers`` and, per metric, ``estimate``,
        ``lower``, ``upper``), ``control``, ``lift`` (per other variant and metric, ``diff`` and
        ``relative`` intervals), ``srm`` (or ``None``) and ``warnings`` (one line each).

    Raises
    ------
    ValueError
        For a row without a variant, or a variant with rows but no weight.
    """
    columns: dict[str, dict[str, list[Any]]] = {}
    for k, row in enumerate(rows):
        variant = _get(row, "variant")
        if variant is None:
            raise ValueError(f"row {k + 1} of the experiment has no variant.")
        col = columns.setdefault(str(variant), {"y": [], "p": [], "c": [], "id": []})
        col["y"].append(bool(_get(row, "accepted", False)))
        col["p"].append(float(_get(row, "price_minor", 0)))
        col["c"].append(float(_get(row, "cost_minor", 0)))
        col["id"].append(_get(row, "customer_id"))
    metrics: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
    variants: dict[str, Any] = {}
    for name in sorted(columns):
        col = columns[name]
        y = np.asarray(col["y"], dtype=np.float64)
        price = np.asarray(col["p"], dtype=np.float64)
        cost = np.asarray(col["c"], dtype=np.float64)
        m = {
            "take_rate": y,
            "revenue_per_offer": y * price,
            "profit_per_offer": y * (price - cost),
        }
        metrics[name] = m
        ids = [c for c in col["id"] if c is not None]
        variants[name] = {
            "n_offers": int(y.size),
            "n_customers": len(set(ids)) if ids else None,
            **{metric: _mean_ci(values) for metric, values in m.items()},
        }
    warnings: list[str] = []
    lift: dict[str, Any] = {}
    if control in metrics:
        for name in sorted(metrics):
            if name == control:
                continue
            lift[name] = {
                metric: {
                    "diff": welch_interval(metrics[name][metric], metrics[control][metric]),
                    "relative": relative_lift_interval(
                        metrics[name][metric], metrics[control][metric]
                    ),
                }
                for metric in METRICS
            }
    elif metrics:
        warnings.append(f"no offers in the control variant {control!r}: no lift is reported.")
    srm = None
    if weights is not None:
        have_ids = all(variants[n]["n_customers"] is not None for n in variants)
        counts = {
            n: int(variants[n]["n_customers"] if have_ids else variants[n]["n_offers"])
            for n in variants
        }
        srm = srm_check(counts, weights)
        srm["unit"] = "customers" if have_ids else "offers"
        if srm["p_value"] < SRM_ALPHA:
            warnings.append(
                f"sample ratio mismatch: {srm['unit']} per variant {srm['observed']} against "
                f"expected {srm['expected']} (chi-square p = {srm['p_value']:.2g} < {SRM_ALPHA}); "
                "the assignment or the logging is broken, do not trust the lifts."
            )
    return {
        "control": control,
        "variants": variants,
        "lift": lift,
        "srm": srm,
        "warnings": warnings,
    }


__all__ = [
    "HOLDOUT",
    "LEARNING",
    "METRICS",
    "SRM_ALPHA",
    "assign",
    "experiment_report",
    "relative_lift_interval",
    "srm_check",
    "unit_hash",
    "variant_weights",
    "welch_interval",
]
