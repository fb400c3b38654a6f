"""The Pricer on a tiny world: opportunity costs, and saving/loading keeps every price."""

from __future__ import annotations

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
