"""The HTTP API route by route, on a workspace trained from December 2009 of the real data.

Checks authentication and scopes, the answers of every route against the trained workspace
(offers, explanations, guardrails), validation errors that name the field, the body limit, the
rate limit, idempotent feedback, metrics, health and the OpenAPI document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from served import ODD_CUSTOMER_IDS

from bundlewise.config import PricingConfig
from bundlewise.data import Workspace
from bundlewise.pricing import Guardrails, violated_rules
from bundlewise.pricing.guardrails import BINDING_RULES
from bundlewise.serving.app import create_app, pseudonym
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.privacy import SECRET_FILE
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.store import FeedbackStore

pytestmark = pytest.mark.integration

#: What a Python stack trace starts with (a bare "Traceback" may be an echoed input).
TRACEBACK = "Traceback (most recent call last)"

ANONYMOUS = "__anonymous__"


class ServedLike(Protocol):
    """The ``served`` fixture of ``conftest.py``."""

    @property
    def workspace(self) -> Path: ...
    @property
    def keys_file(self) -> Path: ...
    @property
    def read_key(self) -> str: ...
    @property
    def admin_key(self) -> str: ...
    @property
    def feedback_url(self) -> str: ...


@dataclass(frozen=True)
class Facts:
    """What the trained workspace holds, read directly from its tables."""

    customer_id: str
    customer_offers: list[dict[str, Any]]
    partnered_item: str
    partners: list[str]
    lonely_item: str | None
    item_a: str
    item_b: str
    items: dict[str, dict[str, Any]]
    model_version: str
    n_customers: int


@pytest.fixture(scope="module")
def facts(trained_workspace: Path) -> Facts:
    workspace = Workspace(trained_workspace)
    offers = workspace.table("offers").to_pylist()
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for row in offers:
        by_customer.setdefault(row["customer_id"], []).append(row)
    # A customer whose offers all come from their history, so every offer has history items.
    customer_id = next(
        c
        for c, rows in sorted(by_customer.items())
        if c != ANONYMOUS and len(rows) >= 3 and all(r["source"] == "history" for r in rows)
    )
    partners: dict[str, list[str]] = {}
    for row in sorted(workspace.table("partners").to_pylist(), key=lambda r: r["rank"]):
        if row["rank"] <= 20:
            partners.setdefault(row["item_id"], []).append(row["partner_id"])
    items = {r["item_id"]: r for r in workspace.table("items").to_pylist()}
    partnered = max(sorted(partners), key=lambda i: len(partners[i]))
    lonely = next((i for i in sorted(items) if i not in partners), None)
    first = sorted(by_customer[customer_id], key=lambda r: r["offer_rank"])[0]
    return Facts(
        customer_id=customer_id,
        customer_offers=sorted(by_customer[customer_id], key=lambda r: r["offer_rank"]),
        partnered_item=partnered,
        partners=partners[partnered],
        lonely_item=lonely,
        item_a=first["item_ids"][0],
        item_b=first["item_ids"][1],
        items=items,
        model_version=offers[0]["model_version"],
        n_customers=len([c for c in by_customer if c != ANONYMOUS]),
    )


@dataclass(frozen=True)
class Shared:
    workspace: Path
    keys_file: Path
    read_key: str
    admin_key: str
    feedback_url: str


@pytest.fixture(scope="module")
def shared(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Shared:
    """Keys and a feedback store for the tests that leave no state behind (one app per module)."""
    root = tmp_path_factory.mktemp("api")
    store = KeyStore(root / "keys.json")
    return Shared(
        workspace=trained_workspace,
        keys_file=root / "keys.json",
        read_key=store.create(("read",), "storefront"),
        admin_key=store.create(("read", "admin"), "ops"),
        feedback_url=f"sqlite:///{root / 'feedback.db'}",
    )


@pytest.fixture(scope="module")
def api(shared: Shared) -> Iterator[TestClient]:
    """One app for the module; tests that count requests or events use ``client`` instead."""
    settings = ServeSettings(
        workspace=shared.workspace, feedback_url=shared.feedback_url, keys_file=shared.keys_file
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _key(served: ServedLike) -> dict[str, str]:
    return {"X-API-Key": served.read_key}


def _assert_error(response: Response, status: int, code: str | None = None) -> str:
    """The response is a JSON error with ``status``; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    assert TRACEBACK not in response.text
    message: str = body["error"]["message"]
    return message


def _feedback_event(facts: Facts, **overrides: Any) -> dict[str, Any]:
    """A valid event: the first offer served to the known customer."""
    event: dict[str, Any] = {
        "event_id": "evt-0001",
        "offer_id": facts.customer_offers[0]["offer_id"],
        "customer_id": facts.customer_id,
        "outcome": "accepted",
        "occurred_at": "2026-01-05T10:00:00Z",
        "price_paid_minor": 899,
    }
    event.update(overrides)
    return event


def _v1_requests(facts: Facts) -> list[tuple[str, str, dict[str, Any] | None]]:
    """One valid request per /v1 route (method, path, JSON body)."""
    return [
        ("GET", f"/v1/customers/{facts.customer_id}/offers", None),
        ("POST", "/v1/carts/offers", {"item_ids": [facts.partnered_item]}),
        ("POST", "/v1/quotes", {"item_ids": [facts.item_a, facts.item_b]}),
        ("POST", "/v1/feedback", _feedback_event(facts)),
        ("GET", f"/v1/items/{facts.partnered_item}/bundles", None),
        ("GET", "/v1/learning", None),
        ("POST", "/v1/admin/reload", None),
        ("GET", "/v1/dashboard/summary", None),
    ]


V1_ROUTES = [
    "customer_offers",
    "cart_offers",
    "quote",
    "feedback",
    "item_bundles",
    "learning",
    "admin_reload",
    "dashboard_summary",
]


# --------------------------------------------------------------------------------------------
# Authentication and scopes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", range(len(V1_ROUTES)), ids=V1_ROUTES)
def test_every_v1_route_needs_a_valid_key(
    api: TestClient, shared: ServedLike, facts: Facts, route: int
) -> None:
    method, path, body = _v1_requests(facts)[route]
    wrong_keys = [
        None,
        "",
        "not-a-key",
        "bw_deadbeef_secret",
        shared.read_key + "x",
        shared.read_key[:-1],
        shared.admin_key.replace("bw_", "bx_", 1),
    ]
    for key in wrong_keys:
        headers = {} if key is None else {"X-API-Key": key}
        response = api.request(method, path, json=body, headers=headers)
        message = _assert_error(response, 401, "unauthorized")
        assert "API key" in message
    # The key goes in X-API-Key, not in a bearer token.
    response = api.request(
        method, path, json=body, headers={"Authorization": f"Bearer {shared.read_key}"}
    )
    _assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("route", range(len(V1_ROUTES) - 2), ids=V1_ROUTES[:-2])
def test_read_key_reaches_every_read_route(
    api: TestClient, shared: ServedLike, facts: Facts, route: int
) -> None:
    method, path, body = _v1_requests(facts)[route]
    response = api.request(method, path, json=body, headers=_key(shared))
    assert response.status_code == 200, response.text


def test_reload_needs_the_admin_scope(client: TestClient, served: ServedLike) -> None:
    before = client.get("/health").json()["model_version"]
    message = _assert_error(client.post("/v1/admin/reload", headers=_key(served)), 403, "forbidden")
    assert "admin" in message
    response = client.post("/v1/admin/reload", headers={"X-API-Key": served.admin_key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == before
    assert body["customers"] > 0
    assert body["seconds"] >= 0
    assert client.get("/health").json()["model_version"] == before
    # The admin key also has the read scope, and the reloaded snapshot still answers.
    summary = client.get("/v1/dashboard/summary", headers={"X-API-Key": served.admin_key})
    assert summary.status_code == 200
    assert summary.json()["model_version"] == before


def test_health_and_metrics_need_no_key(api: TestClient, facts: Facts) -> None:
    health = api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["model_version"] == facts.model_version
    assert body["customers"] == facts.n_customers
    assert body["feedback_store"] is True
    assert body["version"]
    metrics = api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")


# --------------------------------------------------------------------------------------------
# GET /v1/customers/{id}/offers
# --------------------------------------------------------------------------------------------


def test_known_customer_gets_personalized_offers(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    response = api.get(f"/v1/customers/{facts.customer_id}/offers", headers=_key(shared))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == facts.customer_id
    assert body["personalized"] is True
    offers = body["offers"]
    expected = facts.customer_offers[:5]
    assert [o["offer_id"] for o in offers] == [r["offer_id"] for r in expected]
    assert [o["offer_rank"] for o in offers] == list(range(1, len(offers) + 1))
    for offer, row in zip(offers, expected, strict=True):
        assert offer["item_ids"] == row["item_ids"]
        assert len(offer["titles"]) == len(offer["item_ids"])
        assert offer["model_version"] == facts.model_version
        list_total, price = offer["list_total_minor"], offer["price_minor"]
        assert 0 < price <= list_total
        assert offer["discount_minor"] == list_total - price
        assert offer["discount_pct"] == pytest.approx((list_total - price) / list_total)
        assert 0 < offer["p_accept"] < 1
        assert math.isfinite(offer["expected_profit_minor"])
        assert offer["expected_profit_minor"] == pytest.approx(row["expected_profit_minor"])
        assert offer["binding_rule"] in BINDING_RULES
        assert violated_rules(price, list_total, row["cost_minor"], Guardrails()) == []

        explanation = offer["explanation"]
        assert explanation["binding_rule"] == offer["binding_rule"]
        assert explanation["personalized_price"] is True
        assert explanation["compared_with_list_total_minor"] == list_total
        assert explanation["text"]
        history = explanation["history_items"]
        assert history, offer
        for h in history:
            assert h["item_id"] in offer["item_ids"]
            assert h["orders"] >= 1
        pairs = explanation["pairs"]
        assert {(p["item_a"], p["item_b"]) for p in pairs} == {
            tuple(sorted(pair)) for pair in combinations(offer["item_ids"], 2)
        }
        for p in pairs:
            assert p["orders_together"] >= 0
            assert p["lift_shrunk"] is None or p["lift_shrunk"] > 0
        assert any(p["orders_together"] > 0 and p["lift_shrunk"] for p in pairs)
        response_model = explanation["price_response"]
        assert response_model["segment"]
        assert response_model["sensitivity"] > 0


def test_n_limits_the_offers(api: TestClient, shared: ServedLike, facts: Facts) -> None:
    for n in (1, 2, 50):
        response = api.get(
            f"/v1/customers/{facts.customer_id}/offers", params={"n": n}, headers=_key(shared)
        )
        assert response.status_code == 200
        offers = response.json()["offers"]
        assert len(offers) == min(n, len(facts.customer_offers))
        assert [o["offer_rank"] for o in offers] == list(range(1, len(offers) + 1))


def test_unknown_customer_gets_popular_offers(api: TestClient, shared: ServedLike) -> None:
    response = api.get("/v1/customers/no-such-customer-42/offers", headers=_key(shared))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == "no-such-customer-42"
    assert body["personalized"] is False
    assert body["offers"]
    for offer in body["offers"]:
        assert offer["price_minor"] <= offer["list_total_minor"]
        assert offer["explanation"]["personalized_price"] is False
        assert offer["explanation"]["history_items"] == []
    # The anonymous pseudo-customer is not a customer with personal offers.
    anonymous = api.get(f"/v1/customers/{ANONYMOUS}/offers", headers=_key(shared))
    assert anonymous.status_code == 200
    assert anonymous.json()["offers"] == body["offers"]


@pytest.mark.parametrize("n", ["0", "51", "1000", "-1", "abc", "2.5"])
def test_bad_n_is_422_naming_the_field(
    api: TestClient, shared: ServedLike, facts: Facts, n: str
) -> None:
    response = api.get(
        f"/v1/customers/{facts.customer_id}/offers", params={"n": n}, headers=_key(shared)
    )
    message = _assert_error(response, 422, "invalid")
    assert "n" in re.split(r"[.:\s]", message), message


@pytest.mark.parametrize(
    "customer_id", ["x" * 257, "x" * 5000, "a%00b", "a%0Ab", "a%09b", "%7F", "%20%0D"]
)
def test_bad_customer_ids_are_refused(
    api: TestClient, shared: ServedLike, customer_id: str
) -> None:
    response = api.get(f"/v1/customers/{customer_id}/offers", headers=_key(shared))
    if "%0A" in customer_id:  # a line feed matches no route
        _assert_error(response, 404)
    else:
        assert "customer_id" in _assert_error(response, 422, "invalid")


# Regression (issue 9): ids with @ + # space / or non-ASCII letters train fine and must be served.
ODD_IDS = [
    "ann@example.com",
    "a+b",
    "#42",
    "a b",
    "a/b",
    "a/../b",
    "müller",
    "顾客-7",
    "x" * 256,
    "a;DROP TABLE offers",
    "<script>",
    "100%",
    "a?b=c",
]


@pytest.mark.parametrize("customer_id", ODD_CUSTOMER_IDS)
def test_known_customers_with_odd_ids_get_their_offers(
    api: TestClient, shared: ServedLike, trained_workspace: Path, customer_id: str
) -> None:
    stored = [
        r["offer_id"]
        for r in sorted(
            Workspace(trained_workspace).table("offers").to_pylist(), key=lambda r: r["offer_rank"]
        )
        if r["customer_id"] == customer_id
    ]
    assert stored, f"{customer_id!r} has no stored offers"
    path = f"/v1/customers/{quote(customer_id, safe='')}/offers"
    response = api.get(path, params={"n": 50}, headers=_key(shared))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["personalized"] is True
    assert [o["offer_id"] for o in body["offers"]] == stored


@pytest.mark.parametrize("customer_id", ODD_IDS)
def test_any_data_id_is_served_url_encoded(
    api: TestClient, shared: ServedLike, customer_id: str
) -> None:
    path = f"/v1/customers/{quote(customer_id, safe='')}/offers"
    response = api.get(path, headers=_key(shared))
    assert response.status_code == 200, response.text
    assert response.json()["customer_id"] == customer_id


# --------------------------------------------------------------------------------------------
# POST /v1/carts/offers
# --------------------------------------------------------------------------------------------


def test_cart_bundles_complete_the_cart(api: TestClient, shared: ServedLike, facts: Facts) -> None:
    cart = [facts.partnered_item, facts.partners[0]]
    response = api.post("/v1/carts/offers", json={"item_ids": cart, "n": 4}, headers=_key(shared))
    assert response.status_code == 200, response.text
    bundles = response.json()["bundles"]
    assert 0 < len(bundles) <= 4
    seen = set()
    for bundle in bundles:
        items = bundle["item_ids"]
        in_cart = [i for i in items if i in cart]
        assert len(in_cart) == 1, items
        assert any(i not in cart for i in items), items
        assert tuple(sorted(items)) not in seen
        seen.add(tuple(sorted(items)))
        quote = bundle["quote"]
        assert quote["feasible"] is True
        assert quote["item_ids"] == items
        assert quote["price_minor"] <= quote["list_total_minor"]
        assert bundle["evidence"], bundle
        assert bundle["evidence"][0]["orders_together"] > 0


def test_cart_with_some_unknown_items_still_answers(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    response = api.post(
        "/v1/carts/offers",
        json={"item_ids": ["NO-SUCH-ITEM", facts.partnered_item]},
        headers=_key(shared),
    )
    assert response.status_code == 200
    assert all(facts.partnered_item in b["item_ids"] for b in response.json()["bundles"])


def test_cart_of_unknown_items_is_404(api: TestClient, shared: ServedLike) -> None:
    response = api.post(
        "/v1/carts/offers", json={"item_ids": ["NO-SUCH-1", "NO-SUCH-2"]}, headers=_key(shared)
    )
    message = _assert_error(response, 404, "not_found")
    assert "NO-SUCH-1" in message and "NO-SUCH-2" in message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item_ids": []}, "item_ids"),
        ({}, "item_ids"),
        ({"item_ids": ["A"], "coupon": "FREE"}, "coupon"),
        ({"item_ids": ["A"], "n": 0}, "n"),
        ({"item_ids": [""]}, "item_ids"),
        ({"item_ids": "A"}, "item_ids"),
        ({"item_ids": [f"I{i}" for i in range(51)]}, "item_ids"),
    ],
)
def test_bad_cart_is_422(
    api: TestClient, shared: ServedLike, body: dict[str, Any], field: str
) -> None:
    response = api.post("/v1/carts/offers", json=body, headers=_key(shared))
    assert field in _assert_error(response, 422, "invalid")


# --------------------------------------------------------------------------------------------
# POST /v1/quotes
# --------------------------------------------------------------------------------------------


def _cost(facts: Facts, item_ids: list[str]) -> int:
    share = PricingConfig().assumed_cost_share
    total = 0
    for i in item_ids:
        row = facts.items[i]
        cost = row["unit_cost_minor"]
        total += cost if cost is not None else round(row["list_price_minor"] * share)
    return total


@pytest.mark.parametrize("customer", [None, "known", "unknown"])
def test_quote_is_within_the_guardrails(
    api: TestClient, shared: ServedLike, facts: Facts, customer: str | None
) -> None:
    items = [facts.item_a, facts.item_b]
    body: dict[str, Any] = {"item_ids": items}
    if customer == "known":
        body["customer_id"] = facts.customer_id
    elif customer == "unknown":
        body["customer_id"] = "no-such-customer"
    response = api.post("/v1/quotes", json=body, headers=_key(shared))
    assert response.status_code == 200, response.text
    quote = response.json()
    assert quote["feasible"] is True
    assert quote["item_ids"] == items
    list_total = sum(facts.items[i]["list_price_minor"] for i in items)
    assert quote["list_total_minor"] == list_total
    price = quote["price_minor"]
    assert math.ceil(round(list_total * (1 - 0.3), 6)) <= price <= list_total
    assert violated_rules(price, list_total, _cost(facts, items), Guardrails()) == []
    assert quote["discount_minor"] == list_total - price
    assert 0 < quote["p_accept"] < 1
    assert quote["binding_rule"] in BINDING_RULES
    assert quote["currency"] == "GBP"
    assert quote["titles"] == [facts.items[i]["title"] for i in items]


def test_quote_of_unknown_item_is_404_naming_it(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    response = api.post(
        "/v1/quotes", json={"item_ids": [facts.item_a, "NO-SUCH-ITEM"]}, headers=_key(shared)
    )
    message = _assert_error(response, 404, "not_found")
    assert "NO-SUCH-ITEM" in message
    assert facts.item_a not in message


@pytest.mark.parametrize(
    ("make_body", "field"),
    [
        (lambda a, b: {"item_ids": [a, a]}, "item_ids"),
        (lambda a, b: {"item_ids": [a]}, "item_ids"),
        (lambda a, b: {"item_ids": []}, "item_ids"),
        (lambda a, b: {}, "item_ids"),
        (lambda a, b: {"item_ids": [a, b], "discount": 0.5}, "discount"),
        (lambda a, b: {"item_ids": [a, b], "customer_id": ""}, "customer_id"),
        (lambda a, b: {"item_ids": [a, b], "customer_id": 12346}, "customer_id"),
        (lambda a, b: {"item_ids": [f"I{i}" for i in range(11)]}, "item_ids"),
    ],
    ids=["duplicate", "one", "empty", "missing", "extra", "empty-customer", "int-customer", "11"],
)
def test_bad_quote_is_422(
    api: TestClient, shared: ServedLike, facts: Facts, make_body: Any, field: str
) -> None:
    body = make_body(facts.item_a, facts.item_b)
    response = api.post("/v1/quotes", json=body, headers=_key(shared))
    assert field in _assert_error(response, 422, "invalid")


# --------------------------------------------------------------------------------------------
# POST /v1/feedback
# --------------------------------------------------------------------------------------------


def test_feedback_is_stored_once(client: TestClient, served: ServedLike, facts: Facts) -> None:
    event = _feedback_event(facts)
    first = client.post("/v1/feedback", json=event, headers=_key(served))
    assert first.status_code == 200, first.text
    assert first.json() == {"event_id": event["event_id"], "status": "stored"}
    for _ in range(2):
        again = client.post("/v1/feedback", json=event, headers=_key(served))
        assert again.status_code == 200
        assert again.json() == {"event_id": event["event_id"], "status": "duplicate"}
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.count() == 1
        assert store.event_ids() == {event["event_id"]}
    finally:
        store.close()
    # Events without a price (shown, rejected) are fine too.
    shown = _feedback_event(facts, event_id="evt-0002", outcome="shown", price_paid_minor=None)
    assert client.post("/v1/feedback", json=shown, headers=_key(served)).json()["status"] == (
        "stored"
    )
    metrics = client.get("/metrics").text
    assert 'bundlewise_feedback_events_total{status="stored"} 2.0' in metrics
    assert 'bundlewise_feedback_events_total{status="duplicate"} 2.0' in metrics


def test_feedback_conflict_is_409(client: TestClient, served: ServedLike, facts: Facts) -> None:
    event = _feedback_event(facts)
    assert client.post("/v1/feedback", json=event, headers=_key(served)).status_code == 200
    other_offer = facts.customer_offers[1]["offer_id"]
    for change in ({"outcome": "rejected"}, {"price_paid_minor": 1}, {"offer_id": other_offer}):
        response = client.post(
            "/v1/feedback", json=_feedback_event(facts, **change), headers=_key(served)
        )
        message = _assert_error(response, 409, "conflict")
        assert event["event_id"] in message
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.count() == 1
    finally:
        store.close()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"outcome": "bought"}, "outcome"),
        ({"outcome": None}, "outcome"),
        ({"price_paid_minor": -1}, "price_paid_minor"),
        ({"price_paid_minor": 10**13}, "price_paid_minor"),
        ({"price_paid_minor": "lots"}, "price_paid_minor"),
        ({"event_id": "has space"}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"occurred_at": "2026"}, "occurred_at"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_feedback_is_422(
    client: TestClient, served: ServedLike, facts: Facts, change: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/v1/feedback", json=_feedback_event(facts, **change), headers=_key(served)
    )
    assert field in _assert_error(response, 422, "invalid")


@pytest.mark.parametrize("field", ["event_id", "offer_id", "customer_id", "outcome", "occurred_at"])
def test_feedback_missing_field_is_422(
    client: TestClient, served: ServedLike, facts: Facts, field: str
) -> None:
    event = _feedback_event(facts)
    del event[field]
    response = client.post("/v1/feedback", json=event, headers=_key(served))
    assert field in _assert_error(response, 422, "invalid")
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.count() == 0
    finally:
        store.close()


def test_feedback_occurred_at_must_be_iso_8601(
    client: TestClient, served: ServedLike, facts: Facts
) -> None:
    event = _feedback_event(facts, occurred_at="not a date at all")
    response = client.post("/v1/feedback", json=event, headers=_key(served))
    assert "occurred_at" in _assert_error(response, 422, "invalid")


@pytest.mark.parametrize("price", [True, False])
def test_feedback_boolean_price_is_422(
    client: TestClient, served: ServedLike, facts: Facts, price: bool
) -> None:
    response = client.post(
        "/v1/feedback", json=_feedback_event(facts, price_paid_minor=price), headers=_key(served)
    )
    assert "price_paid_minor" in _assert_error(response, 422, "invalid")


# --------------------------------------------------------------------------------------------
# GET /v1/items/{id}/bundles
# --------------------------------------------------------------------------------------------


def test_item_bundles_contain_the_item(api: TestClient, shared: ServedLike, facts: Facts) -> None:
    item = facts.partnered_item
    response = api.get(f"/v1/items/{item}/bundles", params={"n": 3}, headers=_key(shared))
    assert response.status_code == 200, response.text
    bundles = response.json()["bundles"]
    assert 0 < len(bundles) <= 3
    for bundle in bundles:
        assert bundle["item_ids"][0] == item
        assert bundle["item_ids"][1] in facts.partners
        assert bundle["quote"]["feasible"] is True
        assert bundle["quote"]["price_minor"] <= bundle["quote"]["list_total_minor"]
        assert bundle["evidence"][0]["orders_together"] > 0
    # Ordered by partner rank.
    partners = [b["item_ids"][1] for b in bundles]
    assert partners == [p for p in facts.partners if p in partners]


def test_item_without_partners_has_no_bundles(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    if facts.lonely_item is None:
        pytest.skip("every item has partners")
    response = api.get(f"/v1/items/{facts.lonely_item}/bundles", headers=_key(shared))
    assert response.status_code == 200
    assert response.json() == {"bundles": []}


def test_unknown_item_bundles_is_404(api: TestClient, shared: ServedLike) -> None:
    response = api.get("/v1/items/NO-SUCH-ITEM/bundles", headers=_key(shared))
    assert "NO-SUCH-ITEM" in _assert_error(response, 404, "not_found")
    for n in ("0", "21"):
        response = api.get("/v1/items/NO-SUCH-ITEM/bundles", params={"n": n}, headers=_key(shared))
        _assert_error(response, 422, "invalid")


# --------------------------------------------------------------------------------------------
# Body limit and rate limit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/quotes", "/v1/carts/offers", "/v1/feedback"])
def test_body_over_the_limit_is_413(api: TestClient, shared: ServedLike, path: str) -> None:
    body = b'{"item_ids": ["' + b"x" * 100_000 + b'"]}'
    response = api.post(
        path, content=body, headers=_key(shared) | {"Content-Type": "application/json"}
    )
    message = _assert_error(response, 413, "too_large")
    assert "65536" in message


def test_body_under_the_limit_is_read(api: TestClient, shared: ServedLike, facts: Facts) -> None:
    padding = " " * 60_000
    body = f'{{"item_ids": ["{facts.item_a}", "{facts.item_b}"]{padding}}}'.encode()
    response = api.post(
        "/v1/quotes", content=body, headers=_key(shared) | {"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_chunked_body_over_the_limit_is_413(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    def chunks() -> Iterator[bytes]:
        yield f'{{"item_ids": ["{facts.item_a}", "{facts.item_b}"], "pad": "'.encode()
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = api.post(
        "/v1/quotes", content=chunks(), headers=_key(shared) | {"Content-Type": "application/json"}
    )
    _assert_error(response, 413, "too_large")


def test_rate_limit_is_per_key(served: ServedLike, facts: Facts) -> None:
    settings = ServeSettings(
        workspace=served.workspace,
        feedback_url=served.feedback_url,
        keys_file=served.keys_file,
        rate_limit_per_minute=3,
    )
    path = f"/v1/customers/{facts.customer_id}/offers"
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        for _ in range(3):
            assert c.get(path, headers=_key(served)).status_code == 200
        message = _assert_error(c.get(path, headers=_key(served)), 429, "rate_limited")
        assert "rate limit" in message
        _assert_error(c.get(path, headers=_key(served)), 429, "rate_limited")
        # Other keys have their own bucket; no key and wrong keys are refused before the limit.
        assert c.get(path, headers={"X-API-Key": served.admin_key}).status_code == 200
        _assert_error(c.get(path), 401, "unauthorized")
        # Unauthenticated routes are not limited.
        assert c.get("/health").status_code == 200
        assert 'status="429"' in c.get("/metrics").text


# --------------------------------------------------------------------------------------------
# Metrics, robustness, OpenAPI
# --------------------------------------------------------------------------------------------


def _sample(metrics: str, name: str, **labels: str) -> float:
    for line in metrics.splitlines():
        match = re.fullmatch(re.escape(name) + r"\{(.*)\} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def test_metrics_count_the_requests(client: TestClient, served: ServedLike, facts: Facts) -> None:
    for _ in range(3):
        client.get(f"/v1/customers/{facts.customer_id}/offers", headers=_key(served))
    client.get("/v1/customers/someone-else/offers", headers=_key(served))
    client.get("/v1/customers/someone-else/offers")
    client.get("/v1/items/NO-SUCH-ITEM/bundles", headers=_key(served))
    client.get("/no/such/route")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert "# TYPE bundlewise_requests_total counter" in text
    assert "# TYPE bundlewise_request_seconds histogram" in text
    offers = "/v1/customers/{customer_id}/offers"
    total = "bundlewise_requests_total"
    assert _sample(text, total, route=offers, status="200") == 4.0
    assert _sample(text, total, route=offers, status="401") == 1.0
    assert _sample(text, total, route="/v1/items/{item_id}/bundles", status="404") == 1.0
    assert _sample(text, total, route="unmatched", status="404") == 1.0
    assert _sample(text, "bundlewise_request_seconds_count", route=offers) == 5.0
    # Customer ids never appear in the metrics (routes are templates).
    assert facts.customer_id not in text
    assert "someone-else" not in text


def test_odd_requests_never_crash_or_leak_a_traceback(
    api: TestClient, shared: ServedLike, facts: Facts
) -> None:
    key = _key(shared)
    json_type = {"Content-Type": "application/json"}
    responses = [
        api.post("/v1/quotes", content=b"{not json", headers=key | json_type),
        api.post("/v1/quotes", content=b"", headers=key | json_type),
        api.post("/v1/quotes", content=b"[1, 2]", headers=key | json_type),
        api.post("/v1/quotes", content=b"null", headers=key | json_type),
        api.post("/v1/quotes", content=b"\xff\xfe\x00", headers=key | json_type),
        api.post("/v1/quotes", content=b'{"item_ids": "x"}', headers=key),
        api.post("/v1/quotes", json={"item_ids": [None, None]}, headers=key),
        api.post("/v1/quotes", json={"item_ids": [[1], {"a": 1}]}, headers=key),
        api.post("/v1/quotes", json={"item_ids": ["\x00", "\u2603"]}, headers=key),
        api.post("/v1/quotes", headers=key | {"Content-Length": "abc"}, content=b"{}"),
        api.post("/v1/carts/offers", json={"item_ids": ["x"], "n": 10**30}, headers=key),
        api.post("/v1/feedback", json=_feedback_event(facts, price_paid_minor=1e300), headers=key),
        api.post("/v1/feedback", json=_feedback_event(facts, customer_id="\x00" * 10), headers=key),
        api.get(f"/v1/customers/{facts.customer_id}/offers?n=1e3", headers=key),
        api.get(f"/v1/customers/{facts.customer_id}/offers?n=1&n=2", headers=key),
        api.get("/v1/customers/%C3%A9/offers", headers=key),
        api.get("/v1/customers/%FF/offers", headers=key),
        api.get("/v1/customers//offers", headers=key),
        api.get("/v1/items/%2E%2E/bundles", headers=key),
        api.delete("/v1/quotes", headers=key),
        api.put("/v1/feedback", json=_feedback_event(facts), headers=key),
        api.get("/v1/admin/reload", headers={"X-API-Key": shared.admin_key}),
        api.get("/health", headers={"X-API-Key": "\u00e9".encode("latin-1")}),
        api.get("/v1/dashboard/summary", headers={"X-API-Key": "bw_" + "_" * 500}),
        api.get("/v1/dashboard/summary", headers={"X-API-Key": "bw_\u00e9_x".encode("latin-1")}),
    ]
    for response in responses:
        assert response.status_code < 500, (response.request.url, response.text)
        assert TRACEBACK not in response.text
        if response.status_code >= 400:
            _assert_error(response, response.status_code)


@pytest.mark.parametrize("path", ["/v1/quotes", "/v1/carts/offers", "/v1/feedback"])
def test_undecodable_body_gets_a_documented_status(
    api: TestClient, shared: ServedLike, path: str
) -> None:
    response = api.post(
        path, content=b"\x80", headers=_key(shared) | {"Content-Type": "application/json"}
    )
    _assert_error(response, response.status_code)
    assert response.status_code in (400, 422), response.text
    documented = api.get("/openapi.json").json()["paths"][path]["post"]["responses"]
    assert str(response.status_code) in documented, response.text


def test_dashboard_page_is_served(api: TestClient, shared: ServedLike) -> None:
    page = api.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    summary = api.get("/v1/dashboard/summary", headers=_key(shared))
    assert summary.status_code == 200
    body = summary.json()
    assert body["guardrails"]["max_discount"] == 0.3
    assert body["offers"]
    assert all(o["customer_id"] != ANONYMOUS for o in body["offers"])


DOCUMENTED = [
    ("get", "/v1/customers/{customer_id}/offers"),
    ("post", "/v1/carts/offers"),
    ("post", "/v1/quotes"),
    ("post", "/v1/feedback"),
    ("get", "/v1/items/{item_id}/bundles"),
    ("post", "/v1/admin/reload"),
    ("get", "/v1/dashboard/summary"),
]


def test_openapi_documents_every_route_and_its_errors(api: TestClient) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    for method, path in [*DOCUMENTED, ("get", "/health"), ("get", "/metrics")]:
        assert method in paths.get(path, {}), (method, path)
        operation = paths[path][method]
        assert "200" in operation["responses"]
        assert operation.get("description") or operation.get("summary")
    error_schema = doc["components"]["schemas"]["ErrorOut"]
    assert error_schema["required"] == ["error"]
    for method, path in DOCUMENTED:
        operation = paths[path][method]
        responses = operation["responses"]
        for status in ("401", "403", "413", "422", "429"):
            assert status in responses, (method, path, status)
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }
        # The key is the declared security scheme, not a loose header parameter.
        assert operation["security"] == [{"ApiKey": []}], (method, path)
        assert not [p for p in operation.get("parameters", []) if p["in"] == "header"]
        assert operation["tags"], (method, path)
        assert "429" in responses and set(responses["429"]["headers"]) == {
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        }
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": doc["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    for path in ("/health", "/metrics"):
        assert not paths[path]["get"].get("parameters")
        assert "security" not in paths[path]["get"]
    assert "/dashboard" not in paths and "/docs" not in paths and "/" not in paths
    customer = paths["/v1/customers/{customer_id}/offers"]["get"]["parameters"]
    n = next(p for p in customer if p["name"] == "n")
    assert n["schema"]["minimum"] == 1 and n["schema"]["maximum"] == 50
    # Path ids: any id of the data, percent-encoded; the document says so.
    for path, name in (
        ("/v1/customers/{customer_id}/offers", "customer_id"),
        ("/v1/items/{item_id}/bundles", "item_id"),
    ):
        param = next(p for p in paths[path]["get"]["parameters"] if p["name"] == name)
        assert "percent-encoded" in param["description"]
        assert param["schema"]["maxLength"] == 256
        assert "pattern" in param["schema"] and "a-z" not in param["schema"]["pattern"]


def test_openapi_operation_ids_and_tags_are_readable(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    ids = {(m, path): op["operationId"] for path, ops in paths.items() for m, op in ops.items()}
    assert ids == {
        ("get", "/v1/customers/{customer_id}/offers"): "customer_offers",
        ("post", "/v1/carts/offers"): "cart_offers",
        ("post", "/v1/quotes"): "quote_bundle",
        ("post", "/v1/feedback"): "record_feedback",
        ("get", "/v1/items/{item_id}/bundles"): "item_bundles",
        ("post", "/v1/admin/reload"): "reload_model",
        ("get", "/v1/dashboard/summary"): "dashboard_summary",
        ("get", "/v1/learning"): "learning_state",
        ("get", "/health"): "health",
        ("get", "/metrics"): "metrics",
    }
    tags = {path: ops[next(iter(ops))]["tags"] for path, ops in paths.items()}
    assert tags["/v1/feedback"] == ["feedback"] and tags["/health"] == ["operations"]


def test_openapi_documents_the_route_specific_errors(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for method, path in [
        ("post", "/v1/carts/offers"),
        ("post", "/v1/quotes"),
        ("get", "/v1/items/{item_id}/bundles"),
    ]:
        assert "404" in paths[path][method]["responses"], path
    assert "409" in paths["/v1/feedback"]["post"]["responses"]
    for path in ("/v1/carts/offers", "/v1/quotes", "/v1/feedback"):
        assert "400" in paths[path]["post"]["responses"], path


def test_logs_name_customers_only_by_pseudonym(
    client: TestClient, served: ServedLike, caplog: pytest.LogCaptureFixture
) -> None:
    secret = (served.workspace / SECRET_FILE).read_text().strip()
    assert len(secret) == 64 and secret != "bundlewise"  # generated per workspace, 256 bits

    with caplog.at_level("DEBUG", logger="bundlewise.serving"):
        r = client.get(
            "/v1/customers/secret-customer-42/offers", headers={"X-API-Key": served.read_key}
        )
    assert r.status_code == 200
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert pseudonym("secret-customer-42", secret) in text
    assert pseudonym("secret-customer-42", "bundlewise") not in text
    assert "secret-customer-42" not in text
