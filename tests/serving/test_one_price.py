"""One price per customer, bundle and model version on every route (issue 9, item 1), and the
server's refusal of guardrails that differ from the trained model's.

On the serving tests' workspace (December 2009 of the bundled data): every stored offer, the
quote route and the pricer agree to the minor unit; cart offers are the anonymous quotes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from served import Served

from bundlewise.config import Config, PricingConfig
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError
from bundlewise.pricing import ANONYMOUS, Pricer
from bundlewise.pricing.guardrails import Guardrails, violated_rules
from bundlewise.serving.model import load_snapshot

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stored_offers(trained_workspace: Path) -> list[dict[str, object]]:
    offers: list[dict[str, object]] = Workspace(trained_workspace).table("offers").to_pylist()
    return offers


@pytest.fixture(scope="module")
def api(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from bundlewise.serving.app import create_app
    from bundlewise.serving.keys import KeyStore
    from bundlewise.serving.settings import ServeSettings

    tmp = tmp_path_factory.mktemp("one_price")
    keys = tmp / "keys.json"
    key = KeyStore(keys).create(("read",), "test")
    settings = ServeSettings(
        workspace=trained_workspace,
        keys_file=keys,
        feedback_url=f"sqlite:///{tmp / 'feedback.db'}",
        rate_limit_per_minute=10_000_000,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = key
        yield c


def test_every_stored_offer_is_what_the_pricer_quotes(
    trained_workspace: Path, stored_offers: list[dict[str, object]]
) -> None:
    pricer = Pricer.load(Workspace(trained_workspace))
    assert len(stored_offers) > 1000
    customers = [str(o["customer_id"]) for o in stored_offers]
    bundles = [list(o["item_ids"]) for o in stored_offers]  # type: ignore[call-overload]
    many = pricer.quote_many(customers, bundles)
    for offer, quote in zip(stored_offers, many, strict=True):
        assert quote.price_minor == offer["price_minor"], offer["offer_id"]
        assert quote.p_accept == offer["p_accept"], offer["offer_id"]
        assert quote.binding_rule == offer["binding_rule"], offer["offer_id"]
        assert quote.appeal == offer["appeal"] and quote.sensitivity == offer["sensitivity"]
        assert quote.segment == offer["segment"]
    # One at a time gives the same as the batch.
    for offer in stored_offers[:: max(1, len(stored_offers) // 300)]:
        one = pricer.quote(
            None if offer["customer_id"] == ANONYMOUS else str(offer["customer_id"]),
            list(offer["item_ids"]),  # type: ignore[call-overload]
        )
        assert (one.price_minor, one.binding_rule) == (offer["price_minor"], offer["binding_rule"])


def test_quote_route_gives_every_stored_offers_price(
    api: TestClient, stored_offers: list[dict[str, object]]
) -> None:
    differing = []
    for offer in stored_offers:
        customer = None if offer["customer_id"] == ANONYMOUS else offer["customer_id"]
        r = api.post("/v1/quotes", json={"customer_id": customer, "item_ids": offer["item_ids"]})
        assert r.status_code == 200, r.text
        body = r.json()
        if (body["price_minor"], body["binding_rule"]) != (
            offer["price_minor"],
            offer["binding_rule"],
        ):
            differing.append((offer["offer_id"], body["price_minor"], offer["price_minor"]))
        assert body["p_accept"] == pytest.approx(offer["p_accept"], rel=1e-12)
    assert differing == []


def test_offers_route_prices_are_the_stored_ones(
    api: TestClient, stored_offers: list[dict[str, object]]
) -> None:
    from urllib.parse import quote

    by_customer: dict[str, dict[str, int]] = {}
    for o in stored_offers:
        by_customer.setdefault(str(o["customer_id"]), {})[str(o["offer_id"])] = int(
            o["price_minor"]  # type: ignore[call-overload]
        )
    for customer in list(by_customer)[:200]:
        r = api.get(f"/v1/customers/{quote(customer, safe='')}/offers?n=50")
        assert r.status_code == 200, r.text
        for served_offer in r.json()["offers"]:
            assert served_offer["price_minor"] == by_customer[customer][served_offer["offer_id"]]


def test_cart_offers_are_anonymous_quotes(
    api: TestClient, stored_offers: list[dict[str, object]]
) -> None:
    anonymous = [o for o in stored_offers if o["customer_id"] == ANONYMOUS]
    assert anonymous
    checked = 0
    for offer in anonymous[:10]:
        items = list(offer["item_ids"])  # type: ignore[call-overload]
        cart = api.post("/v1/carts/offers", json={"item_ids": items[:1], "n": 10})
        assert cart.status_code == 200, cart.text
        for bundle in cart.json()["bundles"]:
            quoted = api.post(
                "/v1/quotes", json={"customer_id": None, "item_ids": bundle["item_ids"]}
            )
            assert quoted.json()["price_minor"] == bundle["quote"]["price_minor"]
            # An unknown customer is priced as the anonymous one (the popular offers they see).
            stranger = api.post(
                "/v1/quotes", json={"customer_id": "never-seen-42", "item_ids": bundle["item_ids"]}
            )
            assert stranger.json()["price_minor"] == bundle["quote"]["price_minor"]
            checked += 1
    assert checked > 0


def test_quotes_keep_the_trained_guardrails(
    trained_workspace: Path, stored_offers: list[dict[str, object]]
) -> None:
    pricer = Pricer.load(Workspace(trained_workspace))
    g = Guardrails.from_config(pricer.config.pricing)
    for o in stored_offers[:500]:
        q = pricer.quote(str(o["customer_id"]), list(o["item_ids"]))  # type: ignore[call-overload]
        assert violated_rules(q.price_minor, q.list_total_minor, q.cost_minor, g) == []


def test_pricer_saves_the_full_config_and_version(trained_workspace: Path) -> None:
    pricer = Pricer.load(Workspace(trained_workspace))
    assert pricer.config == Config()
    runs = Workspace(trained_workspace).table("runs").column("model_version").to_pylist()
    assert pricer.model_version == runs[0]


def test_load_snapshot_defaults_to_the_trained_config(trained_workspace: Path) -> None:
    snap = load_snapshot(trained_workspace)
    assert snap.config == Config()
    assert snap.model_version == Pricer.load(Workspace(trained_workspace)).model_version


def test_different_guardrails_are_refused_naming_each_setting(trained_workspace: Path) -> None:
    config = Config(pricing=PricingConfig(max_discount=0.25, price_ending_residues=(5, 9)))
    with pytest.raises(ConfigError) as err:
        load_snapshot(trained_workspace, config)
    message = str(err.value)
    assert "max_discount 0.25 (trained 0.3)" in message
    assert "price_ending_residues [5, 9] (trained [9])" in message
    assert "--reprice" in message and "retrain" in message


def test_rank_by_alone_is_not_a_guardrail_change(trained_workspace: Path) -> None:
    config = Config(pricing=PricingConfig(rank_by="score"))
    assert load_snapshot(trained_workspace, config).config.pricing.rank_by == "score"


def test_reprice_prices_every_offer_with_the_new_guardrails(
    trained_workspace: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "ws"
    shutil.copytree(trained_workspace, copy)
    trained = Config()
    config = replace(trained, pricing=replace(trained.pricing, max_discount=0.05))
    snap = load_snapshot(copy, config, reprice=True)
    g = Guardrails.from_config(config.pricing)
    n = 0
    for customer in snap.customer_ids(100):
        for offer in snap.customer_offers(customer, 50)[0]:
            assert offer["price_minor"] >= offer["list_total_minor"] * 0.95 - 1e-9
            quote = snap.quote(customer, offer["item_ids"])
            assert quote["price_minor"] == offer["price_minor"]
            assert (
                violated_rules(
                    offer["price_minor"], offer["list_total_minor"], quote["cost_minor"], g
                )
                == []
            )
            assert f"{offer['discount_pct']:.0%} off" in offer["explanation"]["text"]
            n += 1
    assert n > 0
    # The stored model is untouched: without --reprice the same config is still refused.
    with pytest.raises(ConfigError):
        load_snapshot(copy, config)


def test_server_refuses_different_guardrails(served: Served, tmp_path: Path) -> None:
    from bundlewise.serving.settings import ServeSettings
    from bundlewise.serving.state import load_model

    config_file = tmp_path / "strict.toml"
    config_file.write_text("[pricing]\nmin_margin = 0.2\n", encoding="utf-8")
    settings = ServeSettings(
        workspace=served.workspace, keys_file=served.keys_file, feedback_url=served.feedback_url
    )
    from bundlewise.config import load_config

    with pytest.raises(ConfigError, match=r"min_margin 0\.2 \(trained 0\.1\)"):
        load_model(settings, load_config(config_file))


def test_a_batch_priced_worst_case_cart_is_the_single_quote_route(api: TestClient) -> None:
    """A cart's bundles are priced in one batch of the pricer; each is, field for field, what
    ``POST /v1/quotes`` answers for its items alone (anonymous)."""
    snapshot = api.app.state.serving.snapshot  # type: ignore[attr-defined]
    items = sorted(snapshot.partners, key=lambda i: (-len(snapshot.partners[i]), i))[:50]
    cart = api.post("/v1/carts/offers", json={"item_ids": items, "n": 50})
    assert cart.status_code == 200, cart.text
    bundles = cart.json()["bundles"]
    assert len(bundles) == 50
    for bundle in bundles:
        quoted = api.post("/v1/quotes", json={"item_ids": bundle["item_ids"]})
        assert quoted.status_code == 200, quoted.text
        assert bundle["quote"] == quoted.json(), bundle["item_ids"]


def test_snapshot_batch_quotes_are_the_single_quotes(trained_workspace: Path) -> None:
    """:meth:`Snapshot.quote_many` over every partner pair of the model (and bundles that
    cannot be priced) gives what :meth:`Snapshot.quote` gives one by one."""
    snapshot = load_snapshot(trained_workspace)
    pairs = [[a, p["item_id"]] for a, ps in sorted(snapshot.partners.items()) for p in ps]
    assert len(pairs) > 1000
    bundles = [*pairs, ["NO-SUCH-ITEM", pairs[0][0]], [pairs[0][1], pairs[0][0], pairs[1][1]]]
    batch = snapshot.quote_many(None, bundles)
    assert batch[-2] is None
    for ids, got in zip(bundles, batch, strict=True):
        if got is None:
            with pytest.raises((KeyError, ValueError)):
                snapshot.quote(None, ids)
            continue
        assert got == snapshot.quote(None, ids), ids
    assert sum(q is not None for q in batch) == len(bundles) - 1
