"""Serving that a slow database cannot stall, and the other findings of issue 9 item 7, in
process (``TestClient``): a locked or read-only feedback store, logs without customer ids, the
per-workspace pseudonym secret, ``?n=``, key changes without a reload, rate-limit headers, 405
with ``Allow``, feedback checked against served offers, reload failures, dashboard headers and
offline docs."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from served import Served

from bundlewise.data import Workspace
from bundlewise.serving.app import create_app
from bundlewise.serving.deps import get_snapshot
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.model import Snapshot
from bundlewise.serving.privacy import SECRET_FILE, pseudonym, workspace_secret
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.store import FeedbackStore

pytestmark = pytest.mark.integration

ANONYMOUS = "__anonymous__"


def _offers(workspace: Path) -> list[dict[str, Any]]:
    return sorted(
        Workspace(workspace).table("offers").to_pylist(),
        key=lambda r: (r["customer_id"], r["offer_rank"]),
    )


@pytest.fixture(scope="module")
def stored(trained_workspace: Path) -> list[dict[str, Any]]:
    return _offers(trained_workspace)


def _known(stored: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    customer = next(r["customer_id"] for r in stored if r["customer_id"] != ANONYMOUS)
    return customer, [r for r in stored if r["customer_id"] == customer]


def _event(offer: dict[str, Any], event_id: str = "e-1", **change: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "offer_id": offer["offer_id"],
        "customer_id": offer["customer_id"],
        "outcome": "shown",
        "occurred_at": "2026-01-05T10:00:00Z",
    } | change


def _app(served: Served, **settings: Any) -> TestClient:
    values: dict[str, Any] = {
        "workspace": served.workspace,
        "feedback_url": served.feedback_url,
        "keys_file": served.keys_file,
    } | settings
    return TestClient(create_app(ServeSettings(**values)), raise_server_exceptions=False)


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message: str = body["error"]["message"]
    return message


# --------------------------------------------------------------------------------------------
# A locked or read-only feedback store stalls nothing but feedback
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def locked(served: Served) -> Iterator[None]:
    """The feedback store's write lock held by another connection for the test's duration."""
    FeedbackStore(served.feedback_url).close()  # the database and its table exist
    con = sqlite3.connect(served.feedback_url.removeprefix("sqlite:///"), isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        con.execute("ROLLBACK")
        con.close()


def test_locked_store_never_delays_offers_or_401s(
    served: Served, stored: list[dict[str, Any]], locked: None
) -> None:
    customer, offers = _known(stored)
    key = {"X-API-Key": served.read_key}
    with _app(served, feedback_timeout_seconds=1.5, feedback_threads=2) as client:
        # Many writers block on the lock: more than there are writer threads.
        answers: list[Any] = []

        def post(i: int) -> None:
            answers.append(
                client.post("/v1/feedback", json=_event(offers[0], f"busy-{i}"), headers=key)
            )

        writers = [threading.Thread(target=post, args=(i,)) for i in range(8)]
        for w in writers:
            w.start()
        time.sleep(0.2)  # the writes are waiting on the lock now
        slowest = 0.0
        for _ in range(20):
            start = time.perf_counter()
            ok = client.get(f"/v1/customers/{customer}/offers", headers=key)
            refused = client.get(f"/v1/customers/{customer}/offers", headers={"X-API-Key": "x"})
            slowest = max(slowest, time.perf_counter() - start)
            assert ok.status_code == 200 and refused.status_code == 401
        assert slowest < 0.5, f"offers + 401 took {slowest:.2f} s while the store was locked"
        start = time.perf_counter()
        health = client.get("/health").json()
        assert time.perf_counter() - start < 1.5
        assert health["status"] == "degraded" and health["feedback_store"] is False
        assert health["feedback_store_detail"]
        for w in writers:
            w.join(timeout=30)
        assert len(answers) == 8
        for response in answers:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"].isdigit()
            assert "send the same event again" in response.json()["error"]["message"]


def test_read_only_store_is_degraded_and_feedback_is_503(
    served: Served, stored: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    FeedbackStore(served.feedback_url).close()
    path = served.feedback_url.removeprefix("sqlite:///")
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    _, offers = _known(stored)
    with _app(served, feedback_url=read_only) as client:
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert "readonly" in health["feedback_store_detail"]
        with caplog.at_level("DEBUG"):
            response = client.post(
                "/v1/feedback", json=_event(offers[0]), headers={"X-API-Key": served.read_key}
            )
        assert "read" in _error(response, 503) and response.headers["Retry-After"] == "5"
    # Regression (issue 9): the failed write's SQL parameters, customer id among them, are
    # nowhere in the logs; the customer appears as its pseudonym.
    logged = "\n".join(
        rec.getMessage() + (rec.exc_text or "") + str(rec.exc_info or "") for rec in caplog.records
    )
    customer = offers[0]["customer_id"]
    assert customer not in logged
    assert pseudonym(customer, (served.workspace / SECRET_FILE).read_text().strip()) in logged


def test_store_failure_messages_hide_sql_parameters(tmp_path: Path) -> None:
    store = FeedbackStore(f"sqlite:///{tmp_path / 'f.db'}")
    assert store.engine.hide_parameters is True
    store.close()


def test_pseudonym_secret_is_generated_per_workspace(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    secret_a, secret_b = workspace_secret(a), workspace_secret(b)
    assert secret_a != secret_b and len(secret_a) == 64
    assert workspace_secret(a) == secret_a  # kept in the workspace
    assert (a / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert pseudonym("12346", secret_a) != pseudonym("12346", secret_b)


# --------------------------------------------------------------------------------------------
# ?n=, keys, limits, methods
# --------------------------------------------------------------------------------------------


class EightOffers:
    """A snapshot whose customers have eight stored offers (``composer.n_offers = 8``)."""

    buckets = None  # every customer's (not one server of a fleet)

    def __init__(self, real: Snapshot) -> None:
        self.real = real

    def offers_json(self, customer_id: str, n: int) -> tuple[bytes, bool]:
        body, _ = self.real.offers_json(customer_id, 50)
        offers = json.loads(body)
        eight = [offers[i % len(offers)] | {"offer_rank": i + 1} for i in range(8)]
        text = json.dumps(eight, separators=(",", ":")).encode()
        return (text if n >= 5 else json.dumps(eight[:n]).encode()), True


def test_n_caps_the_offers_whatever_the_stored_count(
    served: Served, stored: list[dict[str, Any]]
) -> None:
    customer, _ = _known(stored)
    with _app(served) as client:
        real = client.app.state.serving.snapshot  # type: ignore[attr-defined]

        async def eight() -> Any:
            return EightOffers(real)

        client.app.dependency_overrides[get_snapshot] = eight  # type: ignore[attr-defined]
        for n, expected in ((5, 5), (1, 1), (7, 7), (8, 8), (50, 8)):
            response = client.get(
                f"/v1/customers/{customer}/offers",
                params={"n": n},
                headers={"X-API-Key": served.read_key},
            )
            assert response.status_code == 200
            offers = response.json()["offers"]
            assert [o["offer_rank"] for o in offers] == list(range(1, expected + 1)), n


def test_key_changes_take_effect_without_a_reload(
    served: Served, stored: list[dict[str, Any]]
) -> None:
    customer, _ = _known(stored)
    path = f"/v1/customers/{customer}/offers"
    with _app(served) as client:
        version = client.get("/health").json()["model_version"]
        assert client.get(path, headers={"X-API-Key": served.read_key}).status_code == 200
        keys = KeyStore(served.keys_file)  # as `bundlewise keys` would, in another process
        new_key = keys.create(("read",), "new")
        keys.revoke(served.read_key.split("_")[1])

        def settled() -> tuple[int, int]:
            deadline = time.monotonic() + 5
            while True:
                new = client.get(path, headers={"X-API-Key": new_key}).status_code
                old = client.get(path, headers={"X-API-Key": served.read_key}).status_code
                if (new, old) == (200, 401) or time.monotonic() > deadline:
                    return new, old
                time.sleep(0.1)

        start = time.monotonic()
        assert settled() == (200, 401)
        assert time.monotonic() - start < 3.0
        assert client.get("/health").json()["model_version"] == version


def test_429_says_when_to_retry_and_200_carries_the_limit(
    served: Served, stored: list[dict[str, Any]]
) -> None:
    customer, _ = _known(stored)
    path = f"/v1/customers/{customer}/offers"
    key = {"X-API-Key": served.read_key}
    with _app(served, rate_limit_per_minute=2) as client:
        first = client.get(path, headers=key)
        assert first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert int(first.headers["X-RateLimit-Reset"]) > 0
        client.get(path, headers=key)
        refused = client.get(path, headers=key)
        assert "rate limit" in _error(refused, 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["X-RateLimit-Limit"] == "2"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/quotes", "POST"),
        ("GET", "/v1/feedback", "POST"),
        ("PUT", "/v1/customers/a/offers", "GET"),
        ("POST", "/health", "GET"),
    ],
)
def test_405_names_the_allowed_methods(served: Served, method: str, path: str, allow: str) -> None:
    with _app(served) as client:
        response = client.request(method, path, headers={"X-API-Key": served.read_key})
        _error(response, 405)
        assert set(response.headers["Allow"].split(", ")) == set(allow.split(", "))


# --------------------------------------------------------------------------------------------
# Feedback is checked against what was served
# --------------------------------------------------------------------------------------------


def test_feedback_must_be_for_an_offer_served_to_the_customer(
    served: Served, stored: list[dict[str, Any]]
) -> None:
    customer, offers = _known(stored)
    other = next(r for r in stored if r["customer_id"] not in (customer, ANONYMOUS))
    popular = next(r for r in stored if r["customer_id"] == ANONYMOUS)
    key = {"X-API-Key": served.read_key}
    with _app(served) as client:
        unknown = client.post(
            "/v1/feedback", json=_event(offers[0], offer_id="0123456789abcdef"), headers=key
        )
        message = _error(unknown, 422)
        assert "offer_id" in message and "0123456789abcdef" in message
        assert "not an offer this server served" in message
        wrong = client.post("/v1/feedback", json=_event(other, customer_id=customer), headers=key)
        message = _error(wrong, 422)
        assert other["offer_id"] in message and customer in message
        assert "was not served to" in message
        naive = client.post(
            "/v1/feedback", json=_event(offers[0], occurred_at="2026-01-05T10:00:00"), headers=key
        )
        message = _error(naive, 422)
        assert "occurred_at" in message and "time zone" in message
        # Own offers, and popular offers for a shopper the model does not know, are stored.
        assert client.post("/v1/feedback", json=_event(offers[0]), headers=key).status_code == 200
        anonymous = _event(
            popular, "e-2", customer_id="walk-in-7", occurred_at="2026-01-05T11:00:00+01:00"
        )
        assert client.post("/v1/feedback", json=anonymous, headers=key).status_code == 200
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.event_ids() == {"e-1", "e-2"}
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# Reload of a missing or corrupt model
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "corrupt", "untrained"])
def test_failed_reload_says_why_and_keeps_serving(
    served: Served, stored: list[dict[str, Any]], tmp_path: Path, damage: str
) -> None:
    workspace = tmp_path / "copy"
    shutil.copytree(served.workspace, workspace)
    customer, offers = _known(stored)
    path = f"/v1/customers/{customer}/offers"
    key = {"X-API-Key": served.admin_key}
    with _app(served, workspace=workspace) as client:
        version = client.get("/health").json()["model_version"]
        db = workspace / "bundlewise.duckdb"
        if damage == "missing":
            db.unlink()
        elif damage == "corrupt":
            db.write_bytes(b"not a database" * 1000)
        else:
            import duckdb

            with duckdb.connect(str(db)) as con:
                con.execute("DROP TABLE offers")
                con.execute("DROP TABLE IF EXISTS served_offers")
        response = client.post("/v1/admin/reload", headers=key)
        message = _error(response, 409)
        assert response.json()["error"]["code"] == "reload_failed"
        assert f"still serving {version}" in message
        reason = {"missing": "no workspace", "corrupt": "could not be read", "untrained": "train"}
        assert reason[damage] in message, message
        assert "Traceback" not in response.text
        assert client.get("/health").json()["model_version"] == version
        answer = client.get(path, headers=key)
        assert answer.status_code == 200
        assert [o["offer_id"] for o in answer.json()["offers"]] == [
            r["offer_id"] for r in offers[:5]
        ]


# --------------------------------------------------------------------------------------------
# Dashboard, /, offline docs
# --------------------------------------------------------------------------------------------


def test_dashboard_has_security_headers(served: Served) -> None:
    with _app(served) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        csp = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        assert "connect-src 'self'" in csp and "'sha256-" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"


def test_root_redirects_to_the_dashboard(served: Served) -> None:
    with _app(served) as client:
        response = client.get("/", follow_redirects=False)
        assert response.status_code in (302, 307)
        assert response.headers["location"] == "/dashboard"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_work_offline(served: Served, page: str) -> None:
    with _app(served) as client:
        html = client.get(page)
        assert html.status_code == 200
        refs = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert refs, html.text
        assert not [r for r in refs if "//" in r], refs  # no CDN, no other host
        for ref in refs:
            asset = client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 1000, ref
        assert "/openapi.json" in html.text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs/assets/../../etc/passwd").status_code == 404


# --------------------------------------------------------------------------------------------
# Per-request cost of carts
# --------------------------------------------------------------------------------------------


def _worst_case_cart(snap: Snapshot) -> dict[str, Any]:
    """50 items with the most partners, ``n`` = 50: the most expensive cart."""
    items = sorted(snap.partners, key=lambda i: (-len(snap.partners[i]), i))[:50]
    return {"item_ids": items, "n": 50}


def _count_batches(snap: Snapshot) -> list[int]:
    """Record the size of every pricing batch of ``snap`` (``quote_many`` wrapped)."""
    sizes: list[int] = []
    real = snap.quote_many

    def counting(customer_id: str | None, bundles: list[list[str]]) -> Any:
        sizes.append(len(bundles))
        return real(customer_id, bundles)

    snap.quote_many = counting  # type: ignore[method-assign]
    return sizes


def test_worst_case_cart_is_priced_once_per_model(served: Served) -> None:
    """A 50-item cart with n=50 is the most expensive request: its 50 bundles are priced in one
    batch (not its hundreds of candidates), and its anonymous quotes are kept for the model in
    force, so repeating it costs no pricing (and a reload starts afresh)."""
    key = {"X-API-Key": served.admin_key}
    with _app(served) as client:
        state = client.app.state.serving  # type: ignore[attr-defined]
        snap = state.snapshot
        body = _worst_case_cart(snap)
        candidates = sum(len(snap.partners[i]) for i in body["item_ids"])
        assert candidates > 100
        batches = _count_batches(snap)
        first = client.post("/v1/carts/offers", json=body, headers=key)
        assert first.status_code == 200 and len(first.json()["bundles"]) == 50
        assert batches == [50]  # all feasible: exactly the 50 that fill the answer, at once
        again = client.post("/v1/carts/offers", json=body, headers=key)
        assert again.json() == first.json()
        assert batches == [50]  # all from the model's quote cache
        assert client.post("/v1/admin/reload", headers=key).status_code == 200
        assert state.snapshot is not snap and not state.model.quotes
        # The merchant's unit costs never reach the storefront.
        assert "cost_minor" not in first.text


class _FakeSnapshot:
    """Prices a pair ``[a, b]`` as infeasible when ``b`` ends in 0, 3 or 6 (a third of them),
    recording every batch."""

    def __init__(self) -> None:
        self.batches: list[list[list[str]]] = []

    def quote_many(self, customer_id: str | None, bundles: list[list[str]]) -> list[Any]:
        assert customer_id is None
        self.batches.append(bundles)
        return [
            None
            if ids[1] == "unpriced"
            else {"item_ids": ids, "feasible": ids[1][-1] not in "036", "explanation": {}}
            for ids in bundles
        ]


def test_cart_prices_only_what_can_fill_n_when_some_bundles_are_infeasible() -> None:
    from bundlewise.serving.routes._common import priced_bundles

    candidates = [["a", f"p{k:03d}"] for k in range(300)]
    candidates[5:5] = [["p001", "a"], ["a", "unpriced"]]  # a duplicate, one without a price
    for n in (1, 5, 20, 50):
        fake = _FakeSnapshot()
        cache: dict[tuple[str, ...], dict[str, Any]] = {}
        got = priced_bundles(fake, candidates, n, cache)  # type: ignore[arg-type]
        want = [c for c in candidates if c[0] == "a" and c[1] != "unpriced"]
        want = [c for c in want if c[1][-1] not in "036"][:n]
        assert [b["item_ids"] for b in got] == want
        priced = sum(len(b) for b in fake.batches)
        assert len(fake.batches[0]) == n  # the first batch: the n that could fill the answer
        assert priced <= 1.5 * n + 3, (n, [len(b) for b in fake.batches])
        assert ["p001", "a"] not in [ids for b in fake.batches for ids in b]
        again = _FakeSnapshot()
        assert priced_bundles(again, candidates, n, cache) == got  # type: ignore[arg-type]
        assert all(ids == ["a", "unpriced"] for b in again.batches for ids in b)


def test_cart_costs_rate_limit_tokens_in_proportion_to_its_bundles(served: Served) -> None:
    key = {"X-API-Key": served.read_key}
    with _app(served, rate_limit_per_minute=60) as client:
        snap = client.app.state.serving.snapshot  # type: ignore[attr-defined]
        worst = _worst_case_cart(snap)
        one = worst["item_ids"][:1]
        assert len(snap.partners[one[0]]) == 10
        remaining = [60]
        for body, tokens in [
            (worst, 10),  # 50 bundles
            ({"item_ids": one}, 1),  # n=5
            ({"item_ids": one, "n": 12}, 2),  # 10 bundles: the item's 10 partners
            ({"item_ids": one, "n": 50}, 2),
            ({"item_ids": worst["item_ids"], "n": 23}, 5),
        ]:
            response = client.post("/v1/carts/offers", json=body, headers=key)
            assert response.status_code == 200, response.text
            assert response.headers["X-RateLimit-Limit"] == "60"
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
            assert remaining[-2] - remaining[-1] == tokens, (body, remaining)


def test_a_refused_cart_costs_nothing_and_says_when_to_retry(served: Served) -> None:
    key = {"X-API-Key": served.read_key}
    with _app(served, rate_limit_per_minute=15) as client:
        snap = client.app.state.serving.snapshot  # type: ignore[attr-defined]
        worst = _worst_case_cart(snap)
        first = client.post("/v1/carts/offers", json=worst, headers=key)
        assert first.status_code == 200
        assert first.headers["X-RateLimit-Remaining"] == "5"
        refused = client.post("/v1/carts/offers", json=worst, headers=key)
        message = _error(refused, 429)
        assert "this request costs 10" in message, message
        assert refused.headers["X-RateLimit-Remaining"] == "5"  # the key check's token back
        # 10 tokens needed, 5 there, a token every 4 s.
        assert int(refused.headers["Retry-After"]) in (19, 20)
        assert refused.headers["X-RateLimit-Limit"] == "15"
        cheap = client.post(
            "/v1/carts/offers", json={"item_ids": worst["item_ids"][:1]}, headers=key
        )
        assert cheap.status_code == 200 and cheap.headers["X-RateLimit-Remaining"] == "4"
    with _app(served, rate_limit_per_minute=3) as client:  # a cart never costs more than a bucket
        response = client.post("/v1/carts/offers", json=worst, headers=key)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == "0"


def test_cart_answer_is_built_and_serialized_off_the_event_loop(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from bundlewise.serving.routes import carts
    from bundlewise.serving.schemas import BundlesOut

    loops: list[bool] = []
    real = carts.cart_json

    def recording(*args: Any) -> bytes:
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)
        return real(*args)

    monkeypatch.setattr(carts, "cart_json", recording)
    with _app(served) as client:
        body = _worst_case_cart(client.app.state.serving.snapshot)  # type: ignore[attr-defined]
        response = client.post(
            "/v1/carts/offers", json=body, headers={"X-API-Key": served.read_key}
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert loops == [False]  # no event loop runs in the thread that built the answer
        answer = response.json()
        assert answer == BundlesOut.model_validate(answer).model_dump(mode="json")
        # The documented answer is still the response model.
        doc = client.get("/openapi.json").json()["paths"]["/v1/carts/offers"]["post"]
        schema = doc["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/BundlesOut"}


def test_the_model_is_frozen_out_of_the_collectors_walks(served: Served) -> None:
    """The model's objects are in the collector's permanent generation, so no full collection
    walks them while requests wait; a reload frees the old model (cycles included) and freezes
    the new one; closing the server unfreezes."""
    import gc
    import weakref

    with _app(served) as client:
        state = client.app.state.serving  # type: ignore[attr-defined]
        assert gc.get_freeze_count() > 10_000
        assert id(state.snapshot.partners) not in {id(o) for o in gc.get_objects()}
        old = weakref.ref(state.snapshot)
        state.snapshot.partners["__cycle__"] = [state.snapshot]  # only a collection frees it
        key = {"X-API-Key": served.admin_key}
        assert client.post("/v1/admin/reload", headers=key).status_code == 200
        assert old() is None
        assert id(state.snapshot.partners) not in {id(o) for o in gc.get_objects()}
    assert gc.get_freeze_count() == 0
