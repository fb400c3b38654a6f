from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from bundlewise.composer.candidates import compose_candidates
from bundlewise.composer.offers import OFFER_COLUMNS, price_offers, weekly_units
from bundlewise.config import ComposerConfig, PricingConfig
from bundlewise.data.schemas import ITEMS
from bundlewise.mining.cooccurrence import PairMiner
from bundlewise.pricing.guardrails import BINDING_RULES, Guardrails, violated_rules
from bundlewise.pricing.response import acceptance_probability

T0 = dt.datetime(2024, 1, 1)

# item: (list price, unit cost or None); E is so costly that no bundle with it can be priced,
# C has no known cost (assumed_cost_share applies).
CATALOG: dict[str, tuple[int, int | None]] = {
    "A": (1000, 400),
    "B": (800, 300),
    "C": (1200, None),
    "D": (500, 200),
    "E": (700, 5000),
    "F": (900, 100),
}


def build_lines() -> pa.Table:
    rows: list[tuple[str, str | None, dt.datetime, str]] = []
    k = 0
    for count, items in [(15, "ABC"), (5, "AB"), (10, "DE"), (30, "F")]:
        for _ in range(count):
            for item in items:
                rows.append((f"x{k}", None, T0 + dt.timedelta(days=k % 30), item))
            k += 1
    for customer, orders in {"u1": ["A", "A", "A"], "u2": ["D"], "u3": ["C", "C"]}.items():
        for j, items in enumerate(orders):
            for item in items:
                rows.append((f"{customer}-{j}", customer, T0 + dt.timedelta(days=40 + j), item))
    return pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "item_id": pa.array([r[3] for r in rows], pa.string()),
        }
    )


def build_items(catalog: dict[str, tuple[int, int | None]] = CATALOG) -> pa.Table:
    ids = sorted(catalog)
    return pa.table(
        {
            "item_id": ids,
            "title": [f"Title {i}" for i in ids],
            "category": ["misc"] * len(ids),
            "list_price_minor": [catalog[i][0] for i in ids],
            "unit_cost_minor": [catalog[i][1] for i in ids],
            "currency": ["GBP"] * len(ids),
            "stock": [10] * len(ids),
        },
        schema=ITEMS,
    )


def small_world_candidates() -> pa.Table:
    """Candidate bundles of the small world (also used by the ranking tests)."""
    lines = build_lines()
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    return compose_candidates(
        lines, miner.pairs_, miner.partners_, ComposerConfig(n_offers=4), ["ghost"]
    )


@pytest.fixture(scope="module")
def candidates() -> pa.Table:
    return small_world_candidates()


def _expected_cost(item_ids: list[str], share: float) -> int:
    total = 0
    for i in item_ids:
        price, cost = CATALOG[i]
        total += cost if cost is not None else round(price * share)
    return total


def test_candidates_cover_the_cases_we_test(candidates: pa.Table) -> None:
    bundles = [(r["customer_id"], r["item_ids"]) for r in candidates.to_pylist()]
    assert ("u1", ["A", "B"]) in bundles
    assert ("u1", ["A", "C"]) in bundles  # C has no cost
    assert ("u2", ["D", "E"]) in bundles  # E makes it infeasible
    assert any(c == "ghost" for c, _ in bundles)
    # u3's anchor C is not the first item of its bundles (the reason must still name C)
    u3 = [r for r in candidates.to_pylist() if r["customer_id"] == "u3"]
    assert u3[0]["source"] == "history"
    assert u3[0]["anchor_id"] == "C"
    assert u3[0]["item_ids"][0] != "C"


def test_every_offer_satisfies_guardrails_and_accounting(candidates: pa.Table) -> None:
    config = PricingConfig()
    result = price_offers(candidates, build_items(), config)
    offers = result.offers
    assert offers.column_names == list(OFFER_COLUMNS)
    assert offers.num_rows > 0
    g = Guardrails.from_config(config)
    for r in offers.to_pylist():
        ids = r["item_ids"]
        assert r["list_total_minor"] == sum(CATALOG[i][0] for i in ids)
        assert r["cost_minor"] == _expected_cost(ids, config.assumed_cost_share)
        price = r["price_minor"]
        assert violated_rules(price, r["list_total_minor"], r["cost_minor"], g) == []
        assert price >= math.ceil(r["cost_minor"] * (1 + config.min_margin))
        assert price >= math.ceil(round(r["list_total_minor"] * (1 - config.max_discount), 6))
        assert price <= r["list_total_minor"]
        assert r["discount_minor"] == r["list_total_minor"] - price
        assert r["discount_pct"] == pytest.approx(r["discount_minor"] / r["list_total_minor"])
        assert 0.0 < r["p_accept"] < 1.0
        assert r["expected_profit_minor"] == pytest.approx(
            (price - r["cost_minor"]) * r["p_accept"], rel=1e-12
        )
        assert r["expected_profit_minor"] >= 0
        assert r["binding_rule"] in BINDING_RULES
        assert r["currency"] == "GBP"
        assert r["model_version"] == "dev"
        assert r["titles"] == [f"Title {i}" for i in ids]
        assert price % 10 == 9  # default ending; always reachable within a 30% band here
        assert len(r["offer_id"]) == 16
        reason = r["reason"]
        assert reason
        if r["source"] == "history":
            anchor = candidate_anchor(candidates, r)
            others = " + ".join(f"Title {i}" for i in ids if i != anchor)
            verb = "is" if len(ids) == 2 else "are"
            assert reason.startswith(f"You bought Title {anchor} ("), reason
            assert f"; {others} {verb} bought with it in " in reason, reason
        else:
            assert r["source"] == "popular"
            assert all(t in reason for t in r["titles"])
        assert f"GBP {price // 100}.{price % 100:02d}" in reason
    assert len(set(offers.column("offer_id").to_pylist())) == offers.num_rows


def candidate_anchor(candidates: pa.Table, offer: dict[str, object]) -> str:
    match = [
        c["anchor_id"]
        for c in candidates.to_pylist()
        if c["customer_id"] == offer["customer_id"] and c["item_ids"] == offer["item_ids"]
    ]
    assert len(match) == 1
    return str(match[0])


def test_p_accept_matches_response_model(candidates: pa.Table) -> None:
    # At the list total acceptance lies in [accept_at_list_low, accept_at_list_high]; the
    # offered price is at most the list total so acceptance is at least the low end.
    config = PricingConfig(accept_at_list_low=0.02, accept_at_list_high=0.2)
    offers = price_offers(candidates, build_items(), config).offers.to_pylist()
    for r in offers:
        assert r["p_accept"] >= 0.02 * (1 - 1e-9)
        b = config.sensitivity_prior
        # recover a from p_accept and check it implies acceptance at list in range
        logit = math.log(r["p_accept"] / (1 - r["p_accept"]))
        a = logit + b * r["price_minor"] / r["list_total_minor"]
        at_list = float(acceptance_probability(1, 1, a, b))
        assert 0.02 * (1 - 1e-9) <= at_list <= 0.2 * (1 + 1e-9)


def test_infeasible_bundle_not_offered_with_reason(candidates: pa.Table) -> None:
    result = price_offers(candidates, build_items(), PricingConfig())
    assert result.not_offered.column_names == ["customer_id", "item_ids", "reason"]
    dropped = result.not_offered.to_pylist()
    assert {"customer_id": "u2", "item_ids": ["D", "E"]} in [
        {"customer_id": d["customer_id"], "item_ids": d["item_ids"]} for d in dropped
    ]
    for d in dropped:
        assert "E" in d["item_ids"]
        assert "no feasible price" in d["reason"]
        assert "GBP" in d["reason"]
    assert all("E" not in r["item_ids"] for r in result.offers.to_pylist())
    # nothing is lost: every candidate is either offered or explained
    assert result.offers.num_rows + result.not_offered.num_rows == candidates.num_rows


def test_ranks_are_contiguous_after_dropping(candidates: pa.Table) -> None:
    offers = price_offers(candidates, build_items(), PricingConfig()).offers.to_pylist()
    by_customer: dict[str, list[int]] = {}
    for r in offers:
        by_customer.setdefault(r["customer_id"], []).append(r["offer_rank"])
    assert set(by_customer) == {"u1", "u2", "u3", "ghost"}
    for ranks in by_customer.values():
        assert ranks == list(range(1, len(ranks) + 1))
    # u2's top candidate D+E was dropped: its first offer is what was rank 2
    u2_cands = [r for r in candidates.to_pylist() if r["customer_id"] == "u2"]
    assert u2_cands[0]["item_ids"] == ["D", "E"]
    u2_offers = [r for r in offers if r["customer_id"] == "u2"]
    assert u2_offers[0]["item_ids"] == u2_cands[1]["item_ids"]


@pytest.mark.parametrize("share", [0.3, 0.6, 0.9])
def test_assumed_cost_share_used_when_cost_missing(candidates: pa.Table, share: float) -> None:
    result = price_offers(candidates, build_items(), PricingConfig(assumed_cost_share=share))
    rows = [r for r in result.offers.to_pylist() if "C" in r["item_ids"]]
    assert rows
    for r in rows:
        assert r["cost_minor"] == _expected_cost(r["item_ids"], share)
    ac = [r for r in rows if r["item_ids"] == ["A", "C"]]
    assert ac and ac[0]["cost_minor"] == 400 + round(1200 * share)
    assert result.n_cost_assumed == len(rows)


def test_item_missing_from_the_catalog_is_not_offered(candidates: pa.Table) -> None:
    catalog = {k: v for k, v in CATALOG.items() if k != "B"}
    result = price_offers(candidates, build_items(catalog), PricingConfig())
    assert all("B" not in r["item_ids"] for r in result.offers.to_pylist())
    with_b = [d for d in result.not_offered.to_pylist() if "B" in d["item_ids"]]
    assert with_b
    for d in with_b:
        assert d["reason"] == "unknown item id(s): B"


def test_missing_list_price_is_not_offered(candidates: pa.Table) -> None:
    items = build_items()
    prices = [None if i == "B" else p for i, p in zip(
        items.column("item_id").to_pylist(), items.column("list_price_minor").to_pylist(),
        strict=True,
    )]  # fmt: skip
    items = items.set_column(
        items.column_names.index("list_price_minor"),
        "list_price_minor",
        pa.array(prices, pa.int64()),
    )
    result = price_offers(candidates, items, PricingConfig())
    with_b = [d for d in result.not_offered.to_pylist() if "B" in d["item_ids"]]
    assert with_b
    assert all(d["reason"] == "an item has no list price" for d in with_b)


def test_stricter_guardrails_raise_prices(candidates: pa.Table) -> None:
    loose = price_offers(candidates, build_items(), PricingConfig(max_discount=0.5))
    tight = price_offers(candidates, build_items(), PricingConfig(max_discount=0.05))
    lp = {(r["customer_id"], tuple(r["item_ids"])): r for r in loose.offers.to_pylist()}
    for r in tight.offers.to_pylist():
        other = lp[(r["customer_id"], tuple(r["item_ids"]))]
        assert r["price_minor"] >= other["price_minor"]
        assert r["discount_pct"] <= 0.05 + 1e-12


def test_offer_ids_depend_on_model_version(candidates: pa.Table) -> None:
    v1 = price_offers(candidates, build_items(), model_version="v1").offers
    v1_again = price_offers(candidates, build_items(), model_version="v1").offers
    v2 = price_offers(candidates, build_items(), model_version="v2").offers
    assert v1.equals(v1_again)
    assert set(v1.column("model_version").to_pylist()) == {"v1"}
    assert set(v1.column("offer_id").to_pylist()).isdisjoint(v2.column("offer_id").to_pylist())


def test_empty_candidates(candidates: pa.Table) -> None:
    result = price_offers(candidates.slice(0, 0), build_items())
    assert result.offers.num_rows == 0
    assert result.not_offered.num_rows == 0
    assert result.n_cost_assumed == 0


def test_an_item_out_of_stock_is_never_offered(candidates: pa.Table) -> None:
    items = build_items()
    stock = [0 if i == "B" else 10 for i in items.column("item_id").to_pylist()]
    items = items.set_column(items.schema.get_field_index("stock"), "stock", pa.array(stock))
    assert any("B" in r["item_ids"] for r in candidates.to_pylist())
    result = price_offers(candidates, items, PricingConfig(), weekly_units={})
    assert result.offers.num_rows > 0
    assert not any("B" in ids for ids in result.offers.column("item_ids").to_pylist())
    reasons = [r["reason"] for r in result.not_offered.to_pylist() if "B" in r["item_ids"]]
    assert reasons and all(r == "out of stock: B" for r in reasons)


def test_weekly_units_over_the_history() -> None:
    lines = pa.table(
        {
            "item_id": ["A", "A", "B"],
            "quantity": pa.array([3, 1, 2], pa.int64()),
            "ts": pa.array(
                [T0, T0 + dt.timedelta(days=14), T0 + dt.timedelta(days=28)], pa.timestamp("us")
            ),
        }
    )
    assert weekly_units(lines) == {"A": 1.0, "B": 0.5}  # 4 weeks of history
