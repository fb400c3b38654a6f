"""Every route prices with the one trained pricer: the stored offers, ``POST /v1/quotes`` and the
cart route agree to the minor unit; a changed guardrail config is refused or re-priced."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError
from bundlewise.pricing import Guardrails, violated_rules
from bundlewise.pricing.pricer import ANONYMOUS, Pricer
from bundlewise.serving.model import load_snapshot


def test_every_stored_offer_is_the_quote_of_its_customer_and_items(
    trained_workspace: Path,
) -> None:
    """December 2009 of the bundled data: all stored offers (personal and anonymous)."""
    workspace = Workspace(trained_workspace)
    offers = workspace.table("offers").to_pylist()
    assert len(offers) > 100
    assert any(o["customer_id"] == ANONYMOUS for o in offers)
    snapshot = load_snapshot(trained_workspace)
    mismatches = []
    for o in offers:
        customer = None if o["customer_id"] == ANONYMOUS else o["customer_id"]
        q = snapshot.quote(customer, list(o["item_ids"]))
        got = (q["price_minor"], q["binding_rule"], round(q["p_accept"], 12))
        want = (o["price_minor"], o["binding_rule"], round(o["p_accept"], 12))
        if got != want:
            mismatches.append((o["customer_id"], o["item_ids"], want, got))
    assert not mismatches, mismatches[:5]


def test_quote_route_and_reversed_items_give_the_stored_price(
    trained_workspace: Path, client: TestClient, served: object
) -> None:
    key = {"X-API-Key": served.read_key}  # type: ignore[attr-defined]
    offers = Workspace(trained_workspace).table("offers").to_pylist()
    personal = [o for o in offers if o["customer_id"] != ANONYMOUS][:20]
    anonymous = [o for o in offers if o["customer_id"] == ANONYMOUS][:10]
    for o in personal + anonymous:
        body: dict[str, object] = {"item_ids": list(reversed(o["item_ids"]))}
        if o["customer_id"] != ANONYMOUS:
            body["customer_id"] = o["customer_id"]
        response = client.post("/v1/quotes", json=body, headers=key)
        assert response.status_code == 200, response.text
        assert response.json()["price_minor"] == o["price_minor"], o


def test_unknown_customer_is_priced_as_anonymous(trained_workspace: Path) -> None:
    pricer = Pricer.load(Workspace(trained_workspace))
    anon = [o for o in Workspace(trained_workspace).table("offers").to_pylist()]
    items = next(o["item_ids"] for o in anon if o["customer_id"] == ANONYMOUS)
    assert pricer.quote("no-such-customer", items) == dataclasses.replace(
        pricer.quote(None, items), item_ids=list(items)
    )
    assert pricer.quote(None, items).personalized is False


def test_pricer_saves_the_full_config_and_version(trained_workspace: Path) -> None:
    workspace = Workspace(trained_workspace)
    pricer = Pricer.load(workspace)
    assert pricer.config == Config()
    runs = workspace.table("runs")
    assert pricer.model_version == runs.column("model_version")[0].as_py()


def test_changed_guardrails_are_refused_naming_each_setting(trained_workspace: Path) -> None:
    base = Config()
    config = dataclasses.replace(
        base,
        pricing=dataclasses.replace(base.pricing, max_discount=0.2, min_margin=0.15),
    )
    with pytest.raises(ConfigError) as err:
        load_snapshot(trained_workspace, config)
    message = str(err.value)
    assert "max_discount 0.2 (trained 0.3)" in message
    assert "min_margin 0.15 (trained 0.1)" in message
    assert "--reprice" in message and "retrain" in message
    # Settings that set no price (the ranking) and other sections load fine.
    same = dataclasses.replace(base, pricing=dataclasses.replace(base.pricing, rank_by="score"))
    assert load_snapshot(trained_workspace, same).config == same


def test_reprice_uses_the_new_guardrails(trained_workspace: Path) -> None:
    base = Config()
    pricing = dataclasses.replace(base.pricing, max_discount=0.05)
    snapshot = load_snapshot(
        trained_workspace, dataclasses.replace(base, pricing=pricing), reprice=True
    )
    guardrails = Guardrails.from_config(pricing)
    offers = Workspace(trained_workspace).table("offers").to_pylist()
    cheaper = 0
    for o in offers[:200]:
        customer = None if o["customer_id"] == ANONYMOUS else o["customer_id"]
        q = snapshot.quote(customer, list(o["item_ids"]))
        if not q["feasible"]:
            continue
        assert not violated_rules(
            q["price_minor"], q["list_total_minor"], q["cost_minor"], guardrails
        ), q
        assert q["discount_pct"] <= 0.05 + 1e-9
        cheaper += q["price_minor"] > o["price_minor"]
    assert cheaper > 0  # some trained offers were discounted by more than 5%
    # The served offer lists carry the re-priced prices too.
    customer = next(c for c in snapshot.customer_ids(50))
    listed, _ = snapshot.customer_offers(customer, 5)
    for offer in listed:
        assert offer["price_minor"] == snapshot.quote(customer, offer["item_ids"])["price_minor"]
