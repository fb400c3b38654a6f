"""Sticky, balanced assignment and the experiment report (intervals cover a known lift)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bundlewise.config import LearningConfig
from bundlewise.learning.experiments import (
    HOLDOUT,
    LEARNING,
    assign,
    experiment_report,
    srm_check,
    variant_weights,
)

WEIGHTS = {"a": 0.5, "b": 0.3, "c": 0.2}
CUSTOMERS = [f"customer-{k}" for k in range(30_000)]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=20))
def test_assignment_is_sticky(customer: str, experiment: str) -> None:
    v = assign(customer, experiment, WEIGHTS)
    assert v in WEIGHTS
    assert assign(customer, experiment, WEIGHTS) == v
    assert assign(customer, experiment, dict(reversed(list(WEIGHTS.items())))) == v
    assert assign(customer, experiment, {k: 10 * w for k, w in WEIGHTS.items()}) == v


def test_assignment_is_balanced() -> None:
    counts = Counter(assign(c, "pricing", WEIGHTS) for c in CUSTOMERS)
    observed = np.array([counts[k] for k in WEIGHTS])
    expected = np.array(list(WEIGHTS.values())) * len(CUSTOMERS)
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert abs(observed[0] / len(CUSTOMERS) - 0.5) < 0.01


def test_experiments_assign_independently() -> None:
    table = np.zeros((3, 3))
    names = list(WEIGHTS)
    for c in CUSTOMERS[:12_000]:
        table[
            names.index(assign(c, "pricing", WEIGHTS)), names.index(assign(c, "bundles", WEIGHTS))
        ] += 1
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_a_zero_weight_gets_nobody_and_bad_weights_are_refused() -> None:
    assert {assign(c, "x", {"on": 1.0, "off": 0.0}) for c in CUSTOMERS[:2000]} == {"on"}
    with pytest.raises(ValueError, match="at least one variant"):
        assign("c", "x", {})
    with pytest.raises(ValueError, match="variant 'a' has weight -1.0"):
        assign("c", "x", {"a": -1.0, "b": 2.0})
    with pytest.raises(ValueError, match="must not all be 0"):
        assign("c", "x", {"a": 0.0})


def test_the_configs_variants() -> None:
    assert variant_weights(LearningConfig(holdout_share=0.25)) == {HOLDOUT: 0.25, LEARNING: 0.75}
    assert variant_weights(LearningConfig(holdout_share=0.0)) == {LEARNING: 1.0}
    share = np.mean(
        [assign(c, "pricing", variant_weights(LearningConfig())) == HOLDOUT for c in CUSTOMERS]
    )
    assert share == pytest.approx(0.1, abs=0.01)


def test_a_report_by_hand() -> None:
    rows = [
        {
            "variant": HOLDOUT,
            "accepted": True,
            "price_minor": 1000,
            "cost_minor": 600,
            "customer_id": "x",
        },
        {
            "variant": HOLDOUT,
            "accepted": False,
            "price_minor": 1000,
            "cost_minor": 600,
            "customer_id": "y",
        },
        {
            "variant": LEARNING,
            "accepted": True,
            "price_minor": 900,
            "cost_minor": 600,
            "customer_id": "z",
        },
        {
            "variant": LEARNING,
            "accepted": True,
            "price_minor": 800,
            "cost_minor": 600,
            "customer_id": "z",
        },
    ]
    report = experiment_report(rows)
    hold, learn = report["variants"][HOLDOUT], report["variants"][LEARNING]
    assert (hold["n_offers"], hold["n_customers"], learn["n_customers"]) == (2, 2, 1)
    assert hold["take_rate"]["estimate"] == 0.5 and learn["take_rate"]["estimate"] == 1.0
    assert hold["revenue_per_offer"]["estimate"] == 500.0
    assert learn["profit_per_offer"]["estimate"] == 250.0
    lift = report["lift"][LEARNING]
    assert lift["take_rate"]["diff"]["estimate"] == 0.5
    assert lift["profit_per_offer"]["relative"]["estimate"] == pytest.approx(0.25)
    assert report["srm"] is None and report["warnings"] == []


@dataclass
class Row:
    variant: str
    accepted: bool
    price_minor: int
    cost_minor: int


def test_the_intervals_cover_a_known_lift() -> None:
    """Holdout: list price 1000, take rate 0.10; learning: price 900, take rate 0.14. True lifts
    are known; over 300 simulated experiments the 95% intervals cover them ~95% of the time."""
    rng = np.random.default_rng(7)
    truth = {
        "take_rate": (0.04, 0.14 / 0.10 - 1),
        "revenue_per_offer": (0.14 * 900 - 0.10 * 1000, 0.14 * 900 / 100 - 1),
        "profit_per_offer": (0.14 * 300 - 0.10 * 400, 0.14 * 300 / 40 - 1),
    }
    hits = {(m, kind): 0 for m in truth for kind in ("diff", "relative")}
    reps = 300
    for _ in range(reps):
        hold = rng.random(1500) < 0.10
        learn = rng.random(1500) < 0.14
        rows = [Row(HOLDOUT, bool(y), 1000, 600) for y in hold]
        rows += [Row(LEARNING, bool(y), 900, 600) for y in learn]
        lift = experiment_report(rows)["lift"][LEARNING]
        for metric, (diff, rel) in truth.items():
            for kind, value in (("diff", diff), ("relative", rel)):
                ci = lift[metric][kind]
                hits[(metric, kind)] += int(ci["lower"] <= value <= ci["upper"])
    coverage = {k: v / reps for k, v in hits.items()}
    assert all(0.91 <= c <= 0.985 for c in coverage.values()), coverage


def test_a_sample_ratio_mismatch_warns() -> None:
    weights = {HOLDOUT: 0.5, LEARNING: 0.5}
    balanced = [{"variant": assign(c, "e", weights), "customer_id": c} for c in CUSTOMERS[:4000]]
    report = experiment_report(balanced, weights)
    assert report["srm"]["unit"] == "customers" and report["srm"]["p_value"] > 1e-3
    assert report["warnings"] == []
    # lose a fifth of the learning variant's customers (say, their offers were never logged)
    lost = [r for k, r in enumerate(balanced) if not (r["variant"] == LEARNING and k % 5 == 0)]
    report = experiment_report(lost, weights)
    assert report["srm"]["p_value"] < 1e-3
    (warning,) = report["warnings"]
    assert (
        warning.startswith("sample ratio mismatch: customers per variant") and "\n" not in warning
    )
    # offers are counted where the rows have no customer id
    offers = [{"variant": r["variant"]} for r in balanced]
    assert experiment_report(offers, weights)["srm"]["unit"] == "offers"


def test_srm_check_edge_cases() -> None:
    assert srm_check({"a": 500, "b": 500}, {"a": 0.5, "b": 0.5})["p_value"] == 1.0
    assert srm_check({"a": 10, "b": 3}, {"a": 1.0, "b": 0.0})["p_value"] == 0.0
    assert srm_check({"a": 10}, {"a": 1.0})["p_value"] == 1.0
    with pytest.raises(ValueError, match="have rows but no weight"):
        srm_check({"a": 1, "z": 1}, {"a": 1.0})
    with pytest.raises(ValueError, match="row 1 of the experiment has no variant"):
        experiment_report([{"accepted": True}])


def test_no_control_no_lift() -> None:
    report = experiment_report([{"variant": LEARNING, "accepted": True, "price_minor": 5}])
    assert report["lift"] == {}
    assert report["warnings"] == [
        "no offers in the control variant 'holdout': no lift is reported."
    ]
