"""Property-based tests of the HTTP API from its own OpenAPI document (schemathesis).

Schemathesis generates valid and invalid requests for every documented operation and sends them
in-process to an app over the trained workspace, with a read key. Every answer must be a non-5xx
answer that matches the document; a last test checks that the generated requests really reached
the routes (not only 401s).

The schema must exist when pytest collects the module, but the trained workspace is a fixture
(and ``schemathesis.pytest.from_fixture`` does not work with this pytest), so the document comes
from an app that is never started, and requests go through :class:`Deferred` to the app that
the module fixture starts (its lifespan run by a ``TestClient``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from bundlewise.serving.app import create_app
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.settings import ServeSettings

pytestmark = pytest.mark.integration

#: What a Python stack trace starts with (a bare "Traceback" may be an echoed input).
TRACEBACK = "Traceback (most recent call last)"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Deferred:
    """An ASGI app that forwards HTTP requests to ``target``, set once the real app is started.

    It answers lifespan events itself: the real app's lifespan is run by the module fixture.
    """

    def __init__(self) -> None:
        self.target: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.target is not None, "the `live` fixture has not started the app"
        await self.target(scope, receive, send)


DOCUMENT = create_app(ServeSettings(workspace=Path("never-started"))).openapi()
DEFERRED = Deferred()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.app = DEFERRED  # what schemathesis.openapi.from_asgi does once it has the document

#: (operation, status) of every generated request, to check that they reached the routes.
SEEN: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def live(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Starts the app over the trained workspace behind ``DEFERRED``; yields a read key."""
    root = tmp_path_factory.mktemp("schemathesis")
    key = KeyStore(root / "keys.json").create(("read",), "schemathesis")
    app = create_app(
        ServeSettings(
            workspace=trained_workspace,
            feedback_url=f"sqlite:///{root / 'feedback.db'}",
            keys_file=root / "keys.json",
            rate_limit_per_minute=1_000_000,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        # The document the tests are generated from is the one this app serves.
        assert client.get("/openapi.json").json() == DOCUMENT
        DEFERRED.target = app
        try:
            yield key
        finally:
            DEFERRED.target = None


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Case, live: str) -> None:
    response = case.call_and_validate(
        headers={"X-API-Key": live},
        checks=[
            not_a_server_error,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
    SEEN[(case.operation.label, response.status_code)] += 1
    assert response.status_code < 500, response.text
    assert TRACEBACK not in response.text
    operation = DOCUMENT["paths"][case.path].get(case.method.lower())
    if operation is None:  # a method the path does not have (negative testing)
        allowed = {405}
    else:
        allowed = {int(status) for status in operation["responses"]}
    assert response.status_code in allowed, (case.method, case.path, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body


def test_generated_requests_reached_the_routes() -> None:
    if not SEEN:
        pytest.skip("the schemathesis test did not run")
    operations = {op for op, _ in SEEN}
    assert len(operations) == len([m for p in DOCUMENT["paths"].values() for m in p])
    ok = {op for (op, status), n in SEEN.items() if status == 200 and n > 0}
    # With a read key, these answer 200 for most valid inputs.
    for op in (
        "GET /v1/customers/{customer_id}/offers",
        "GET /v1/dashboard/summary",
        "GET /health",
        "GET /metrics",
    ):
        assert op in ok, SEEN
    assert SEEN[("POST /v1/admin/reload", 403)] > 0, SEEN
    # Generated offer ids were never served: feedback is refused (422), never stored blindly.
    assert SEEN[("POST /v1/feedback", 422)] > 0 and not SEEN[("POST /v1/feedback", 200)], SEEN
    # The document declares the ApiKey scheme, so schemathesis also sends requests without or
    # with a wrong key (401); every operation must still be reached past the key check.
    for op in operations:
        assert any(status != 401 for (o, status) in SEEN if o == op), (op, SEEN)
