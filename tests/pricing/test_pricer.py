"""The Pricer on a tiny world: opportunity costs, and saving/loading keeps every price."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bundlewise.config import Config, PricingConfig
from bundlewise.data import Workspace
from bundlewise.exceptions import WorkspaceError
from bundlewise.pricing.pricer import CatalogItem, Pricer

CATALOG = {
    "mug": CatalogItem("mug", "Tea mug", 1000, 400, "GBP"),
    "tea": CatalogItem("tea", "Green tea", 600, 240, "GBP"),
}
BUNDLE = ["mug", "tea"]


def _pricer(opportunities: list[float] | None) -> Pricer:
    return Pricer.from_batch(
        model_version="v1",
        # no coupling guardrail, no price endings: the closed form is exact to the minor unit
        config=Config(
            pricing=PricingConfig(
                fairness_band=-1.0, price_ending_modulus=1, price_ending_residues=(0,)
            )
        ),
        catalog=CATALOG,
        customer_segment={"ann": "low", "bob": "high"},
        sensitivity={"low": 2.0, "high": 6.0},
        customer_ids=["ann", "bob"],
        bundles=[BUNDLE, BUNDLE],
        appeals=[1.0, 5.0],
        opportunities=opportunities,
    )


def test_no_opportunity_cost_is_the_default() -> None:
    assert _pricer(None).quote("bob", BUNDLE) == _pricer([0.0, 0.0]).quote("bob", BUNDLE)


def test_an_opportunity_cost_raises_the_price_by_the_closed_form() -> None:
    """With P(accept) = sigmoid(a - b p / L), profit (p - c - o) P is maximal where
    p = c + o + L / (b (1 - P)); an opportunity cost o shifts the optimum up."""
    plain = _pricer(None).quote("bob", BUNDLE)
    costly = _pricer([0.0, 300.0]).quote("bob", BUNDLE)
    assert plain.binding_rule == costly.binding_rule == "optimum"
    assert costly.price_minor > plain.price_minor
    for q, o in ((plain, 0.0), (costly, 300.0)):
        expected = q.cost_minor + o + q.list_total_minor / (q.sensitivity * (1 - q.p_accept))
        assert q.price_minor == pytest.approx(expected, abs=1.0)
    # ann's price does not depend on bob's opportunity cost
    assert _pricer([0.0, 300.0]).quote("ann", BUNDLE) == _pricer(None).quote("ann", BUNDLE)


def test_save_and_load_keep_every_price(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    pricer = _pricer([120.0, 300.0])
    pricer.save(workspace)
    loaded = Pricer.load(workspace)
    assert loaded.opportunities == pricer.opportunities
    for customer in ("ann", "bob", None, "stranger"):
        assert loaded.quote(customer, BUNDLE) == pricer.quote(customer, BUNDLE)


def test_a_pricer_saved_without_opportunity_costs_asks_to_retrain(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    _pricer(None).save(workspace)
    with workspace.connect() as con:
        con.execute("ALTER TABLE pricer_appeals DROP COLUMN opportunity_minor")
    with pytest.raises(WorkspaceError, match=r"older bundlewise: run `bundlewise train` again"):
        Pricer.load(workspace)


def _stock_pricer(stock: dict[str, int | None], weekly: dict[str, float] | None) -> Pricer:
    catalog = {
        i: dataclasses.replace(
            item,
            stock=stock.get(i),
            weekly_units=None if weekly is None else weekly.get(i, 0.0),
        )
        for i, item in CATALOG.items()
    }
    return Pricer.from_batch(
        model_version="v1",
        config=Config(
            pricing=PricingConfig(
                fairness_band=-1.0, price_ending_modulus=1, price_ending_residues=(0,)
            )
        ),
        catalog=catalog,
        customer_segment={"bob": "high"},
        sensitivity={"high": 6.0},
        customer_ids=["bob"],
        bundles=[BUNDLE],
        appeals=[5.0],
    )


def test_an_item_out_of_stock_is_never_priced() -> None:
    q = _stock_pricer({"mug": 0, "tea": 40}, {"mug": 3.0, "tea": 1.0}).quote("bob", BUNDLE)
    assert not q.feasible and q.reason == "out of stock: mug"


def test_excess_stock_earns_a_deeper_discount_inside_the_guardrails() -> None:
    """Tea: 400 units against 1 a week (excess over 12 weeks); the stock-clearing term counts
    half its cost (120) as recovered, which moves the optimum down by exactly that much."""
    plain = _stock_pricer({}, None).quote("bob", BUNDLE)
    normal = _stock_pricer({"mug": 20, "tea": 10}, {"mug": 3.0, "tea": 1.0}).quote("bob", BUNDLE)
    excess = _stock_pricer({"mug": 20, "tea": 400}, {"mug": 3.0, "tea": 1.0}).quote("bob", BUNDLE)
    assert normal == plain  # 10 units of tea are under 12 weeks of sales: no excess
    assert excess.price_minor < plain.price_minor
    bonus = 0.5 * CATALOG["tea"].unit_cost_minor  # type: ignore[operator]
    expected = (
        excess.cost_minor
        - bonus
        + excess.list_total_minor / (excess.sensitivity * (1 - excess.p_accept))
    )
    assert excess.price_minor == pytest.approx(expected, abs=1.0)
    # the reported expected profit is on the true cost; the margin floor holds
    assert excess.expected_profit_minor == pytest.approx(
        (excess.price_minor - excess.cost_minor) * excess.p_accept
    )
    assert excess.price_minor >= excess.cost_minor * 1.1


def test_stock_that_never_sold_is_excess_and_unknown_sales_are_not() -> None:
    item = CatalogItem("x", "x", 100, 50, "GBP", stock=5, weekly_units=0.0)
    assert item.has_excess_stock(12.0)
    assert not dataclasses.replace(item, weekly_units=None).has_excess_stock(12.0)
    assert not dataclasses.replace(item, stock=0).has_excess_stock(12.0)


def test_stock_is_saved_with_the_pricer(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    pricer = _stock_pricer({"mug": 20, "tea": 400}, {"mug": 3.0, "tea": 1.0})
    pricer.save(workspace)
    loaded = Pricer.load(workspace)
    assert loaded.catalog == pricer.catalog
    assert loaded.quote("bob", BUNDLE) == pricer.quote("bob", BUNDLE)
