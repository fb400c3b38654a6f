"""Price sensitivity per customer segment, estimated from observed prices and purchases.

Online Retail sells many items at several unit prices over time. For segment :math:`s`, item
:math:`i` and week :math:`w`, let :math:`N_{sw}` be the segment's customers who ordered anything
that week and :math:`k_{isw}` those who bought item :math:`i`. With :math:`r_{iw}` the item's
price that week relative to its reference (median) price,

.. math::

    k_{isw} \\sim \\text{Binomial}\\big(N_{sw},\\ \\sigma(\\alpha_{is} - b_s\\, r_{iw})\\big),

the same logit in relative price that prices the offers (:mod:`bundlewise.pricing.response`),
with an appeal :math:`\\alpha_{is}` per item and one sensitivity :math:`b_s` per segment.
Fitted by maximum likelihood (block Newton: all :math:`\\alpha` given :math:`b`, then :math:`b`);
the standard error of :math:`b_s` comes from the profile information with the :math:`\\alpha`
profiled out. Each :math:`b_s` is then combined with the configured prior
:math:`N(b_0, \\tau^2)` restricted to :math:`b > 0` (a demand curve does not slope up): the
posterior is the normal precision-weighted one truncated at zero, and pricing uses its mean
(:func:`shrink`). That mean is smooth in the estimate, so an estimate near or below zero (a wrong
sign is confounding, such as quantity-tier prices, not demand) pulls the sensitivity down by as
much as its standard error allows, never jumps to the prior; an estimate that is not credibly
positive (``estimate - 2 se <= 0``) is labelled so. Only a segment with too few items whose price
varied keeps the prior itself.

Segments are tiers of the customer's median order value in the training weeks (small, medium,
large buyers); no protected attribute is used. A week's price of an item is the median unit
price of its order lines that week, carried forward over weeks without sales (within the item's
selling span). Prices respond to quantity tiers in this data, so the estimate is a descriptive
association, not an experiment; the report says so.

Calibration on held-out weeks: Brier score of the implied per-customer purchase events,
a reliability table, and RMSE / MAE / R² of predicted vs observed buyer counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy.special import expit, log_ndtr

from bundlewise.data import _sql

FloatArray = npt.NDArray[np.float64]
SEGMENTS: tuple[str, ...] = ("small", "medium", "large")


def _norm_logpdf(z: float) -> float:
    return -0.5 * z * z - 0.5 * math.log(2.0 * math.pi)


def _norm_logcdf(z: float) -> float:
    return float(log_ndtr(z))


@dataclass(frozen=True)
class SegmentSensitivity:
    """The sensitivity of one segment: estimate, standard error, and what pricing uses."""

    segment: str
    n_customers: int
    n_items: int
    n_cells: int
    estimate: float | None
    std_error: float | None
    posterior: float
    posterior_sd: float
    source: str  # "data (shrunk toward the prior)" or "prior (too little price variation)"


@dataclass(frozen=True)
class ResponseFit:
    """Sensitivities per segment, the segment of each customer, and held-out calibration."""

    segments: list[SegmentSensitivity]
    customer_segment: dict[str, str]
    cutoff: str
    prior: float
    prior_sd: float
    calibration: dict[str, Any] = field(default_factory=dict)

    def sensitivity_of(self, customer_id: str | None) -> float:
        """The posterior sensitivity of a customer's segment (the prior for unknown ones)."""
        seg = self.customer_segment.get(customer_id or "")
        for s in self.segments:
            if s.segment == seg:
                return s.posterior
        return self.prior

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "prior": self.prior,
            "prior_sd": self.prior_sd,
            "segments": [s.__dict__ for s in self.segments],
            "calibration": self.calibration,
        }


def _panel(
    order_lines: pa.Table, cutoff: datetime, end: datetime, min_item_weeks: int = 8
) -> dict[str, Any]:
    con = _sql.connect()
    try:
        con.register("ol", order_lines)
        con.execute(
            """
            CREATE TEMP TABLE lines AS
            SELECT customer_id, item_id, order_id, unit_price_minor, quantity,
                   CAST(floor(date_diff('day', TIMESTAMP '2000-01-03', ts) / 7) AS BIGINT) AS week,
                   ts < $cutoff AS is_train
            FROM ol
            WHERE customer_id IS NOT NULL AND quantity > 0 AND unit_price_minor > 0
              AND ts < $end
            """,
            {"cutoff": cutoff, "end": end},
        ).fetchall()
        seg_rows = con.sql(
            """
            WITH orders AS (
                SELECT customer_id, order_id, sum(unit_price_minor * quantity) AS value
                FROM lines WHERE is_train GROUP BY 1, 2
            ), cust AS (SELECT customer_id, median(value) AS v FROM orders GROUP BY 1)
            SELECT customer_id, ntile(3) OVER (ORDER BY v, customer_id) AS tier FROM cust
            """
        ).fetchall()
        customer_segment = {str(c): SEGMENTS[int(t) - 1] for c, t in seg_rows}
        con.register(
            "segs",
            pa.table(
                {
                    "customer_id": list(customer_segment),
                    "segment": list(customer_segment.values()),
                }
            ),
        )
        # Reference price: median over training lines; weekly price: median that week.
        weekly = con.sql(
            """
            WITH ref AS (
                SELECT item_id, median(unit_price_minor) AS ref, count(DISTINCT week) AS n_weeks
                FROM lines WHERE is_train GROUP BY 1
            ), wk AS (
                SELECT item_id, week, median(unit_price_minor) AS price FROM lines GROUP BY 1, 2
            )
            SELECT w.item_id, w.week, w.price / r.ref AS rel
            FROM wk w JOIN ref r USING (item_id) WHERE r.n_weeks >= $min_weeks
            ORDER BY w.item_id, w.week
            """,
            params={"min_weeks": min_item_weeks},
        ).fetchall()
        active = con.sql(
            """
            SELECT s.segment, l.week, l.is_train, count(DISTINCT l.customer_id) AS n
            FROM lines l JOIN segs s USING (customer_id) GROUP BY 1, 2, 3
            """
        ).fetchall()
        bought = con.sql(
            """
            SELECT s.segment, l.item_id, l.week, count(DISTINCT l.customer_id) AS k
            FROM lines l JOIN segs s USING (customer_id) GROUP BY 1, 2, 3
            """
        ).fetchall()
        first_test_week = con.sql("SELECT min(week) FROM lines WHERE NOT is_train").fetchall()[0][0]
    finally:
        con.close()
    return {
        "customer_segment": customer_segment,
        "weekly": weekly,
        "active": active,
        "bought": bought,
        "first_test_week": first_test_week,
    }


def _cells(panel: dict[str, Any], segment: str) -> dict[str, Any]:
    """Item x week cells of one segment over each item's selling span, price carried forward."""
    n_active = {(w, bool(t)): n for s, w, t, n in panel["active"] if s == segment}
    weeks_active = {w: n for (w, _t), n in n_active.items()}
    k_of = {(i, w): k for s, i, w, k in panel["bought"] if s == segment}
    items: list[int] = []
    weeks: list[int] = []
    rel: list[float] = []
    by_item: dict[str, list[tuple[int, float]]] = {}
    for item, week, r in panel["weekly"]:
        by_item.setdefault(item, []).append((int(week), float(r)))
    names = sorted(by_item)
    for idx, item in enumerate(names):
        obs = by_item[item]
        first, last = obs[0][0], obs[-1][0]
        j = 0
        current = obs[0][1]
        for w in range(first, last + 1):
            while j < len(obs) and obs[j][0] <= w:
                current = obs[j][1]
                j += 1
            if w in weeks_active:
                items.append(idx)
                weeks.append(w)
                rel.append(current)
    item_arr = np.asarray(items, dtype=np.int64)
    week_arr = np.asarray(weeks, dtype=np.int64)
    n = np.array([weeks_active[w] for w in weeks], dtype=np.float64)
    k = np.array([k_of.get((names[i], w), 0) for i, w in zip(items, weeks, strict=True)], float)
    return {
        "item": item_arr,
        "week": week_arr,
        "rel": np.asarray(rel, dtype=np.float64),
        "n": n,
        "k": k,
        "n_items": np.asarray([len(names)]),
    }


def fit_binomial_logit(
    item: npt.NDArray[np.int64],
    rel: FloatArray,
    n: FloatArray,
    k: FloatArray,
    n_items: int,
    ridge: float = 1.0 / 9.0,
    n_iter: int = 50,
) -> tuple[FloatArray, float, float]:
    """Maximum likelihood of ``k ~ Binomial(n, sigmoid(alpha[item] - b * rel))``.

    A weak ridge ``ridge * (alpha - mean(alpha))^2 / 2`` keeps items that were never bought in a
    segment finite. Fitted by Newton's method on all parameters jointly (the appeals' block of
    the Hessian is diagonal, so each step costs one pass over the cells). Returns
    ``(alpha, b, std_error_of_b)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> item = np.repeat(np.arange(50), 40)
    >>> rel = rng.uniform(0.7, 1.3, item.size)
    >>> n = np.full(item.size, 400.0)
    >>> alpha = rng.normal(-3, 0.5, 50)
    >>> k = rng.binomial(400, 1 / (1 + np.exp(-(alpha[item] - 4.0 * rel)))).astype(float)
    >>> round(fit_binomial_logit(item, rel, n, k, 50)[1], 0)
    4.0
    """
    rate = float(np.clip(k.sum() / max(n.sum(), 1.0), 1e-6, 1 - 1e-6))
    alpha = np.full(n_items, math.log(rate / (1 - rate)) + rel.mean())
    b = 0.0

    def objective(alpha_: FloatArray, b_: float) -> float:
        eta = alpha_[item] - b_ * rel
        ll = float((k * eta - n * np.logaddexp(0.0, eta)).sum())
        return ll - 0.5 * ridge * float(((alpha_ - alpha_.mean()) ** 2).sum())

    current = objective(alpha, b)
    for _ in range(n_iter):
        # Newton step on (alpha, b): the Hessian's alpha block is diagonal, so the b step uses
        # its Schur complement and the alpha steps follow; halved until the objective improves.
        p = expit(alpha[item] - b * rel)
        w = n * p * (1 - p)
        g_a = np.bincount(item, k - n * p, n_items) - ridge * (alpha - alpha.mean())
        g_b = float(-(rel * (k - n * p)).sum())
        h_aa = np.bincount(item, w, n_items) + ridge
        h_ab = -np.bincount(item, w * rel, n_items)
        h_bb = float((w * rel * rel).sum())
        schur = h_bb - float((h_ab**2 / h_aa).sum())
        step_b = (g_b - float((h_ab * g_a / h_aa).sum())) / max(schur, 1e-12)
        step_a = (g_a - h_ab * step_b) / h_aa
        scale = 1.0
        while scale > 1e-6:
            trial = objective(alpha + scale * step_a, b + scale * step_b)
            if trial >= current:
                break
            scale *= 0.5
        alpha = alpha + scale * step_a
        b += scale * step_b
        improvement = trial - current
        current = trial
        if abs(step_b) * scale < 1e-8 or improvement < 1e-9 * (1.0 + abs(current)):
            break
    p = expit(alpha[item] - b * rel)
    w = n * p * (1 - p)
    i_aa = np.bincount(item, w, n_items) + ridge
    i_ab = np.bincount(item, w * rel, n_items)
    info = float((w * rel * rel).sum() - (i_ab**2 / i_aa).sum())
    se = 1.0 / math.sqrt(info) if info > 0 else float("inf")
    return alpha, float(b), se


def shrink(estimate: float, std_error: float, prior: float, prior_sd: float) -> tuple[float, float]:
    """Posterior mean and sd of a sensitivity :math:`b > 0` from a normal estimate and a normal
    prior: the precision-weighted normal :math:`N(m, s^2)` truncated to :math:`b > 0`.

    With :math:`z = m / s` and :math:`\\lambda = \\varphi(z) / \\Phi(z)` the mean is
    :math:`m + s \\lambda` and the variance :math:`s^2 (1 - \\lambda (\\lambda + z))`. Why this and
    not a switch to the prior for a doubtful estimate: the mean is a smooth, increasing function
    of the estimate (no jump at any threshold, so a small change in the data moves the prices a
    little), always positive, and equal to the usual precision weighting when the estimate is
    far from zero; a wrong-sign estimate with a small standard error pulls the sensitivity
    toward zero, which is what the data say within the constraint.

    Examples
    --------
    >>> [round(x, 4) for x in shrink(4.0, 1.0, 8.0, 1.0)]
    [6.0, 0.7071]
    >>> 0 < shrink(-3.0, 1.0, 8.0, 4.0)[0] < 1.0
    True
    """
    if not math.isfinite(std_error) or std_error <= 0:
        return prior, prior_sd
    w_data, w_prior = 1.0 / std_error**2, 1.0 / prior_sd**2
    m = (w_data * estimate + w_prior * prior) / (w_data + w_prior)
    s = 1.0 / math.sqrt(w_data + w_prior)
    z = m / s
    # lambda = phi(z) / Phi(z), computed in logs so it stays finite far in the left tail.
    lam = math.exp(float(_norm_logpdf(z) - _norm_logcdf(z)))
    mean = m + s * lam
    var = s * s * max(1.0 - lam * (lam + z), 0.0)
    return max(mean, 0.0), math.sqrt(var)


def estimate_price_response(
    order_lines: pa.Table,
    prior: float = 8.0,
    prior_sd: float = 4.0,
    holdout_weeks: int | None = None,
    min_items: int = 20,
    floor: float = 0.5,
) -> ResponseFit:
    """Fit per-segment sensitivities on all but the last ``holdout_weeks`` weeks; calibrate on them.

    Parameters
    ----------
    order_lines
        The cleaned ``order_lines`` table.
    prior, prior_sd
        The prior :math:`N(b_0, \\tau^2)` every segment is shrunk toward.
    holdout_weeks
        Weeks at the end held out for calibration (0: no calibration). By default a quarter of
        the history, at most 8 weeks (a 13-week history holds out 3 and fits on 10). Items enter
        the fit when they sold in at least half the training weeks, at most 8 (at least 3).
    min_items
        Segments with fewer items whose price varied keep the prior.
    floor
        The smallest sensitivity pricing may use (the posterior is clipped to it).

    Raises
    ------
    ValueError
        When the table has no dated order lines.
    """
    ts = order_lines.column("ts")
    if order_lines.num_rows == 0 or ts.null_count == order_lines.num_rows:
        raise ValueError("order_lines has no dated rows to estimate a price response from.")
    dated = [v for v in ts.to_pylist() if v is not None]
    end = max(dated) + timedelta(seconds=1)
    n_weeks = max(1, math.ceil((end - min(dated)) / timedelta(weeks=1)))
    if holdout_weeks is None:
        holdout_weeks = min(8, n_weeks // 4)
    min_item_weeks = min(8, max(3, (n_weeks - holdout_weeks) // 2))
    cutoff = end - timedelta(weeks=holdout_weeks) if holdout_weeks > 0 else end
    if holdout_weeks > 0:  # start of that week (Monday), so no week straddles the cutoff
        cutoff = datetime(cutoff.year, cutoff.month, cutoff.day) - timedelta(days=cutoff.weekday())
    panel = _panel(order_lines, cutoff, end, min_item_weeks)
    first_test = panel["first_test_week"]
    segments = []
    calibration_parts: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    counts = {s: 0 for s in SEGMENTS}
    for seg in panel["customer_segment"].values():
        counts[seg] += 1
    for seg in SEGMENTS:
        cells = _cells(panel, seg)
        n_items = int(cells["n_items"][0])
        train = cells["week"] < (first_test if first_test is not None else np.iinfo(np.int64).max)
        varied = _items_with_variation(cells["item"][train], cells["rel"][train], n_items)
        if n_items == 0 or varied < min_items or not train.any():
            segments.append(
                SegmentSensitivity(
                    seg, counts[seg], varied, int(train.sum()), None, None, prior, prior_sd,
                    "prior (too little price variation)",
                )
            )  # fmt: skip
            continue
        alpha, b, se = fit_binomial_logit(
            cells["item"][train], cells["rel"][train], cells["n"][train], cells["k"][train],
            n_items,
        )  # fmt: skip
        post, post_sd = shrink(b, se, prior, prior_sd)
        if b - 2.0 * se > 0:
            source = "data (shrunk toward the prior)"
        else:  # smooth in the estimate, but say the data alone do not show a price response
            source = "data and prior (the estimate is not credibly positive)"
        segments.append(
            SegmentSensitivity(
                seg, counts[seg], varied, int(train.sum()), b, se, max(post, floor), post_sd,
                source,
            )
        )  # fmt: skip
        test = ~train
        if test.any():
            p = expit(alpha[cells["item"][test]] - b * cells["rel"][test])
            calibration_parts.append((p, cells["n"][test], cells["k"][test]))
    return ResponseFit(
        segments=segments,
        customer_segment=panel["customer_segment"],
        cutoff=cutoff.isoformat(),
        prior=prior,
        prior_sd=prior_sd,
        calibration=_calibration(calibration_parts),
    )


def response_table(fit: ResponseFit) -> pa.Table:
    """One row per segment: the estimate, its standard error, and what pricing uses."""
    rows = [s.__dict__ for s in fit.segments]
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("segment", pa.string()),
                ("n_customers", pa.int64()),
                ("n_items", pa.int64()),
                ("n_cells", pa.int64()),
                ("estimate", pa.float64()),
                ("std_error", pa.float64()),
                ("posterior", pa.float64()),
                ("posterior_sd", pa.float64()),
                ("source", pa.string()),
            ]
        ),
    )


def _items_with_variation(item: npt.NDArray[np.int64], rel: FloatArray, n_items: int) -> int:
    if item.size == 0:
        return 0
    lo = np.full(n_items, np.inf)
    hi = np.full(n_items, -np.inf)
    np.minimum.at(lo, item, rel)
    np.maximum.at(hi, item, rel)
    return int(((hi - lo) > 0.01).sum())


def _calibration(parts: list[tuple[FloatArray, FloatArray, FloatArray]]) -> dict[str, Any]:
    """Brier score, reliability bins and count errors of held-out predictions."""
    if not parts:
        return {}
    p = np.concatenate([x[0] for x in parts])
    n = np.concatenate([x[1] for x in parts])
    k = np.concatenate([x[2] for x in parts])
    brier = float((k * (1 - p) ** 2 + (n - k) * p**2).sum() / n.sum())
    base_rate = float(k.sum() / n.sum())
    brier_base = float((k * (1 - base_rate) ** 2 + (n - k) * base_rate**2).sum() / n.sum())
    predicted = n * p
    err = predicted - k
    ss_res = float((err**2).sum())
    ss_tot = float(((k - k.mean()) ** 2).sum())
    order = np.argsort(p)
    cum = np.cumsum(n[order]) / n.sum()
    bins = []
    for j in range(10):
        sel = order[(cum > j / 10) & (cum <= (j + 1) / 10)]
        if sel.size:
            bins.append(
                {
                    "predicted": float((p[sel] * n[sel]).sum() / n[sel].sum()),
                    "observed": float(k[sel].sum() / n[sel].sum()),
                    "trials": float(n[sel].sum()),
                }
            )
    return {
        "n_cells": int(p.size),
        "n_trials": float(n.sum()),
        "brier": brier,
        "brier_base_rate": brier_base,
        "rmse_count": math.sqrt(ss_res / p.size),
        "mae_count": float(np.abs(err).mean()),
        "r2_count": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "reliability": bins,
    }


__all__ = [
    "SEGMENTS",
    "ResponseFit",
    "SegmentSensitivity",
    "estimate_price_response",
    "response_table",
    "fit_binomial_logit",
    "shrink",
]
