"""Ranking, ``keep``, estimated sensitivities and the portfolio rules of :func:`price_offers`."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_offers import build_items, small_world_candidates

from bundlewise.composer.offers import price_offers
from bundlewise.config import PricingConfig
from bundlewise.exceptions import ConfigError
from bundlewise.pricing.estimation import SEGMENTS, ResponseFit, SegmentSensitivity
from bundlewise.pricing.guardrails import Guardrails, violated_rules


@pytest.fixture(scope="module")
def candidates() -> pa.Table:
    return small_world_candidates()


CUSTOMER_SEGMENT = {"u1": "small", "u2": "medium", "u3": "large"}  # "ghost" is unknown


def make_fit(
    small: float,
    medium: float,
    large: float,
    prior: float = 8.0,
    customer_segment: dict[str, str] | None = None,
) -> ResponseFit:
    """A hand-built fit: one posterior per segment, ``prior`` for customers without a segment."""
    segments = [
        SegmentSensitivity(
            segment=name,
            n_customers=1,
            n_items=30,
            n_cells=100,
            estimate=b,
            std_error=0.5,
            posterior=b,
            posterior_sd=0.5,
            source="data (shrunk toward the prior)",
        )
        for name, b in zip(SEGMENTS, (small, medium, large), strict=True)
    ]
    mapping = dict(CUSTOMER_SEGMENT if customer_segment is None else customer_segment)
    return ResponseFit(segments, mapping, "2024-01-01T00:00:00", prior, 4.0)


SHARED = {"u1": "small", "u2": "small", "u3": "large"}  # u1 and u2 share a segment


def _by_customer(offers: pa.Table) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in offers.to_pylist():
        out[r["customer_id"]].append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["offer_rank"])
    return dict(out)


def _key(r: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    return r["customer_id"], tuple(r["item_ids"])


def _assert_guardrails(offers: pa.Table, config: PricingConfig) -> None:
    g = Guardrails.from_config(config)
    assert offers.num_rows > 0
    for r in offers.to_pylist():
        assert violated_rules(r["price_minor"], r["list_total_minor"], r["cost_minor"], g) == []
        assert r["discount_minor"] == r["list_total_minor"] - r["price_minor"]
        assert 0.0 < r["p_accept"] < 1.0


# --------------------------------------------------------------------------------------------
# Ranking and keep
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("response", [None, make_fit(2.0, 4.0, 6.0)])
def test_rank_by_expected_profit(candidates: pa.Table, response: ResponseFit | None) -> None:
    config = PricingConfig(rank_by="expected_profit")
    offers = price_offers(candidates, build_items(), config, response=response).offers
    by_customer = _by_customer(offers)
    assert set(by_customer) == {"u1", "u2", "u3", "ghost"}
    for rows in by_customer.values():
        assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
        profits = [r["expected_profit_minor"] for r in rows]
        assert profits == sorted(profits, reverse=True)
    _assert_guardrails(offers, config)


def test_rank_by_expected_profit_reorders_some_customer(candidates: pa.Table) -> None:
    # Otherwise the test above would not tell the two orders apart.
    config = PricingConfig(rank_by="expected_profit")
    offers = price_offers(candidates, build_items(), config).offers
    composer_rank = {_key(c): c["offer_rank"] for c in candidates.to_pylist()}
    assert any(
        [composer_rank[_key(r)] for r in rows] != sorted(composer_rank[_key(r)] for r in rows)
        for rows in _by_customer(offers).values()
    )


def test_rank_by_score_follows_composer_order(candidates: pa.Table) -> None:
    config = PricingConfig(rank_by="score")
    offers = price_offers(candidates, build_items(), config).offers
    composer_rank = {_key(c): c["offer_rank"] for c in candidates.to_pylist()}
    for rows in _by_customer(offers).values():
        assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
        original = [composer_rank[_key(r)] for r in rows]
        assert original == sorted(original)
    # the same offers, only ordered differently
    by_profit = price_offers(candidates, build_items(), PricingConfig()).offers
    assert sorted(map(_key, offers.to_pylist())) == sorted(map(_key, by_profit.to_pylist()))
    _assert_guardrails(offers, config)


@pytest.mark.parametrize("keep", [1, 2, 3, 10])
def test_keep_top_k_by_expected_profit(candidates: pa.Table, keep: int) -> None:
    config = PricingConfig()
    full = _by_customer(price_offers(candidates, build_items(), config).offers)
    kept = _by_customer(price_offers(candidates, build_items(), config, keep=keep).offers)
    assert set(kept) == set(full)
    for customer, rows in kept.items():
        assert len(rows) == min(keep, len(full[customer]))
        assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
        assert rows == full[customer][:keep]
        dropped = full[customer][keep:]
        if dropped:
            assert min(r["expected_profit_minor"] for r in rows) >= max(
                r["expected_profit_minor"] for r in dropped
            )


def test_keep_with_rank_by_score_keeps_composer_top_k(candidates: pa.Table) -> None:
    config = PricingConfig(rank_by="score")
    full = _by_customer(price_offers(candidates, build_items(), config).offers)
    kept = _by_customer(price_offers(candidates, build_items(), config, keep=2).offers)
    for customer, rows in kept.items():
        assert rows == full[customer][:2]


# --------------------------------------------------------------------------------------------
# Estimated sensitivities per segment
# --------------------------------------------------------------------------------------------


def test_response_sensitivity_and_segment_in_reason(candidates: pa.Table) -> None:
    fit = make_fit(2.0, 4.0, 6.0, prior=7.0)
    offers = price_offers(candidates, build_items(), PricingConfig(), response=fit).offers
    expected = {"u1": (2.0, "small"), "u2": (4.0, "medium"), "u3": (6.0, "large")}
    for r in offers.to_pylist():
        b, segment = expected.get(r["customer_id"], (7.0, "unknown"))
        assert f"(price sensitivity {b:.2f}, {segment} segment)" in r["reason"], r["reason"]
    # without a fit everyone gets the configured prior
    plain = price_offers(candidates, build_items(), PricingConfig(sensitivity_prior=5.0)).offers
    for r in plain.to_pylist():
        assert "(price sensitivity 5.00, all segment)" in r["reason"], r["reason"]


def test_response_changes_prices_and_acceptance(candidates: pa.Table) -> None:
    config = PricingConfig(fairness_band=-1.0)
    base = price_offers(candidates, build_items(), config, response=make_fit(8.0, 8.0, 8.0))
    moved = price_offers(candidates, build_items(), config, response=make_fit(2.0, 8.0, 8.0))
    before = {_key(r): r for r in base.offers.to_pylist()}
    after = {_key(r): r for r in moved.offers.to_pylist()}
    assert set(before) == set(after)
    for key, r in after.items():
        if key[0] == "u1":
            continue
        # other customers are priced independently when the fairness band is off
        assert r["price_minor"] == before[key]["price_minor"]
        assert r["p_accept"] == before[key]["p_accept"]
    u1 = [k for k in after if k[0] == "u1"]
    assert u1
    for key in u1:
        assert after[key]["price_minor"] >= before[key]["price_minor"]
        assert after[key]["p_accept"] <= before[key]["p_accept"]
    assert any(after[k]["price_minor"] > before[k]["price_minor"] for k in u1)


@settings(max_examples=15, deadline=None)
@given(b_low=st.floats(0.5, 8.0), gap=st.floats(0.05, 7.5))
def test_more_sensitive_never_higher_price(candidates: pa.Table, b_low: float, gap: float) -> None:
    # Everything else equal: the same customers, bundles and scores; only b changes. Holds for
    # the sensitivities the prior and shrinkage produce in practice (up to the default prior).
    b_high = min(b_low + gap, 8.0)
    config = PricingConfig(fairness_band=-1.0)
    low = price_offers(candidates, build_items(), config, response=make_fit(b_low, b_low, b_low))
    high = price_offers(
        candidates, build_items(), config, response=make_fit(b_high, b_high, b_high)
    )
    before = {_key(r): r for r in low.offers.to_pylist()}
    for r in high.offers.to_pylist():
        if r["customer_id"] == "ghost":  # the fit's prior, unchanged
            continue
        other = before[_key(r)]
        assert r["price_minor"] <= other["price_minor"]
        assert r["p_accept"] >= other["p_accept"] - 1e-12


@pytest.mark.parametrize("fairness_band", [-1.0, 0.25])
def test_more_sensitive_segment_priced_lower_in_one_run(
    candidates: pa.Table, fairness_band: float
) -> None:
    # Same bundle and same score (so the same acceptance at list): only the segment differs.
    config = PricingConfig(fairness_band=fairness_band)
    fit = make_fit(2.0, 4.0, 6.0, prior=8.0)
    offers = price_offers(candidates, build_items(), config, response=fit).offers.to_pylist()
    groups: dict[tuple[tuple[str, ...], float], list[dict[str, Any]]] = defaultdict(list)
    for r in offers:
        groups[(tuple(sorted(r["item_ids"])), r["score"])].append(r)
    n_pairs = 0
    for rows in groups.values():
        for x in rows:
            for y in rows:
                bx, by = fit.sensitivity_of(x["customer_id"]), fit.sensitivity_of(y["customer_id"])
                if bx > by:
                    n_pairs += 1
                    assert x["price_minor"] <= y["price_minor"], (x["reason"], y["reason"])
                    assert x["p_accept"] >= y["p_accept"]
    assert n_pairs >= 4


@pytest.mark.parametrize(
    "response", [None, make_fit(2.0, 4.0, 6.0), make_fit(2.0, 4.0, 6.0, customer_segment=SHARED)]
)
def test_segment_only_one_price_per_segment_and_bundle(
    candidates: pa.Table, response: ResponseFit | None
) -> None:
    config = PricingConfig(segment_only=True)
    offers = price_offers(candidates, build_items(), config, response=response).offers
    prices: dict[tuple[str, tuple[str, ...]], set[int]] = defaultdict(set)
    customers: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for r in offers.to_pylist():
        segment = (
            "all"
            if response is None
            else response.customer_segment.get(r["customer_id"], "unknown")
        )
        key = (segment, tuple(sorted(r["item_ids"])))
        prices[key].add(r["price_minor"])
        customers[key].add(r["customer_id"])
        assert f"{segment} segment" in r["reason"]
    assert all(len(p) == 1 for p in prices.values()), prices
    if response is None or response.customer_segment == SHARED:
        # some (segment, bundle) is quoted to several customers, so the rule is not vacuous
        assert any(len(c) > 1 for c in customers.values())
    _assert_guardrails(offers, config)


@pytest.mark.parametrize("response", [None, make_fit(2.0, 4.0, 6.0), make_fit(0.5, 8.0, 3.0)])
@pytest.mark.parametrize("band", [0.0, 0.05, 0.25])
def test_fairness_band_across_customers(
    candidates: pa.Table, response: ResponseFit | None, band: float
) -> None:
    config = PricingConfig(fairness_band=band)
    offers = price_offers(candidates, build_items(), config, response=response).offers
    prices: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for r in offers.to_pylist():
        prices[tuple(sorted(r["item_ids"]))].append(r["price_minor"])
    assert any(len(p) > 1 for p in prices.values())
    for bundle, p in prices.items():
        assert max(p) <= (1.0 + band) * min(p) + 1e-9, (bundle, p)
    _assert_guardrails(offers, config)


def test_fairness_band_binds_without_it(candidates: pa.Table) -> None:
    # The band above is not vacuous: unconstrained prices spread wider than 5%.
    offers = price_offers(
        candidates,
        build_items(),
        PricingConfig(fairness_band=-1.0),
        response=make_fit(2.0, 4.0, 6.0),
    ).offers
    prices: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for r in offers.to_pylist():
        prices[tuple(sorted(r["item_ids"]))].append(r["price_minor"])
    assert any(max(p) > 1.05 * min(p) for p in prices.values())


def _spend(offers: pa.Table) -> float:
    return sum(r["p_accept"] * r["discount_minor"] for r in offers.to_pylist())


@pytest.mark.parametrize("response", [None, make_fit(2.0, 4.0, 6.0)])
@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 0.9])
def test_discount_budget_caps_expected_spend(
    candidates: pa.Table, response: ResponseFit | None, share: float
) -> None:
    free = price_offers(candidates, build_items(), PricingConfig(), response=response).offers
    unconstrained = _spend(free)
    assert unconstrained > 0
    budget = round(share * unconstrained / 100.0, 2)  # major units
    config = PricingConfig(discount_budget=budget)
    offers = price_offers(candidates, build_items(), config, response=response).offers
    assert offers.num_rows == free.num_rows
    spend = _spend(offers)
    assert spend <= budget * 100 + 1e-6
    assert spend <= unconstrained + 1e-6
    if budget * 100 < unconstrained:
        assert "discount_budget" in offers.column("binding_rule").to_pylist() or spend == 0
    if budget == 0:
        assert all(r["discount_minor"] == 0 for r in offers.to_pylist())
    _assert_guardrails(offers, config)


def test_generous_discount_budget_changes_nothing(candidates: pa.Table) -> None:
    free = price_offers(candidates, build_items(), PricingConfig()).offers
    rich = price_offers(candidates, build_items(), PricingConfig(discount_budget=1e9)).offers
    assert free.equals(rich)


# --------------------------------------------------------------------------------------------
# Guardrails in every mode
# --------------------------------------------------------------------------------------------

MODES: list[dict[str, Any]] = [
    {},
    {"rank_by": "score"},
    {"segment_only": True},
    {"fairness_band": 0.0},
    {"fairness_band": 0.05},
    {"fairness_band": -1.0},
    {"discount_budget": 0.0},
    {"discount_budget": 1.5},
    {"objective_profit": 0.0, "objective_revenue": 1.0},
    {"objective_profit": 1.0, "objective_revenue": 0.5, "objective_surplus": 2.0},
    {"segment_only": True, "fairness_band": 0.05, "discount_budget": 2.0},
    {"max_discount": 0.1, "min_margin": 0.3, "fairness_band": 0.05},
]


@pytest.mark.parametrize("mode", MODES, ids=[str(m) for m in MODES])
@pytest.mark.parametrize("response", [None, make_fit(0.5, 4.0, 20.0)])
@pytest.mark.parametrize("keep", [None, 2])
def test_every_mode_respects_guardrails(
    candidates: pa.Table, mode: dict[str, Any], response: ResponseFit | None, keep: int | None
) -> None:
    config = PricingConfig(**mode)
    result = price_offers(candidates, build_items(), config, response=response, keep=keep)
    _assert_guardrails(result.offers, config)
    for rows in _by_customer(result.offers).values():
        assert [r["offer_rank"] for r in rows] == list(range(1, len(rows) + 1))
        if keep is not None:
            assert len(rows) <= keep
    if config.fairness_band >= 0:
        prices: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for r in result.offers.to_pylist():
            prices[tuple(sorted(r["item_ids"]))].append(r["price_minor"])
        for p in prices.values():
            assert max(p) <= (1.0 + config.fairness_band) * min(p) + 1e-9
    if config.discount_budget >= 0:  # every term is >= 0, so a kept subset spends no more
        assert _spend(result.offers) <= config.discount_budget * 100 + 1e-6


# --------------------------------------------------------------------------------------------
# Config validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rank_by": "profit"},
        {"rank_by": ""},
        {"sensitivity_source": "data"},
        {"sensitivity_source": "Estimated"},
        {"objective_profit": -0.1},
        {"objective_revenue": -1.0},
        {"objective_surplus": -0.5},
        {"objective_profit": float("nan")},
        {"objective_profit": 0.0, "objective_revenue": 0.0},
        {"objective_profit": 0.0, "objective_revenue": 0.0, "objective_surplus": 1.0},
        {"segment_only": 1},
        {"segment_only": "yes"},
        {"segment_only": None},
        {"fairness_band": -2.0},
        {"discount_budget": -5.0},
        {"sensitivity_prior_sd": 0.0},
    ],
    ids=str,
)
def test_pricing_config_rejects(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PricingConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rank_by": "score"},
        {"rank_by": "expected_profit"},
        {"sensitivity_source": "prior"},
        {"objective_profit": 0.0, "objective_revenue": 1.0},
        {"segment_only": True},
        {"fairness_band": -1.0, "discount_budget": 0.0},
    ],
    ids=str,
)
def test_pricing_config_accepts(kwargs: dict[str, Any]) -> None:
    config = PricingConfig(**kwargs)
    for name, value in kwargs.items():
        assert getattr(config, name) == value
