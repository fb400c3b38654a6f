"""The HTTP API (FastAPI): offers, cart bundles, quotes, feedback, item bundles, health, metrics,
reload, and the merchant dashboard.

Every ``/v1`` route needs an API key (header ``X-API-Key``) with the ``read`` scope; reload needs
``admin``. Keys are stored hashed (:mod:`bundlewise.serving.keys`); each key has a token-bucket
rate limit. Bodies over ``max_body_bytes`` are refused with 413. Errors are JSON
``{"error": {"code", "message"}}`` and never carry a stack trace. Customer ids appear in logs
only as keyed pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from bundlewise._version import __version__
from bundlewise.config import Config
from bundlewise.serving.keys import KeyRecord, KeyStore
from bundlewise.serving.model import Snapshot, load_snapshot
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.store import EventConflict, FeedbackEvent, FeedbackStore

logger = logging.getLogger("bundlewise.serving")

Id = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[\w.\-:]+$")]


# --------------------------------------------------------------------------------------------
# Schemas (request/response models, separate from the domain)
# --------------------------------------------------------------------------------------------


class PairEvidenceOut(BaseModel):
    item_a: str
    item_b: str
    orders_together: int = Field(description="Orders that contain both items.")
    lift_shrunk: float | None = Field(description="Co-purchase lift shrunk toward 1.")
    npmi: float | None = Field(description="Normalized pointwise mutual information.")
    text_similarity: float | None = Field(
        default=None, description="Cosine similarity of the two titles (pretrained encoder)."
    )


class HistoryItemOut(BaseModel):
    item_id: str
    orders: int = Field(description="The customer's orders with this item.")


class PriceResponseOut(BaseModel):
    segment: str
    sensitivity: float = Field(description="Logit price sensitivity b of the segment.")


class ExplanationOut(BaseModel):
    history_items: list[HistoryItemOut]
    pairs: list[PairEvidenceOut]
    price_response: PriceResponseOut
    binding_rule: str = Field(description="The rule that set the price.")
    personalized_price: bool = Field(
        description="True when the price was set for this customer (disclosure)."
    )
    compared_with_list_total_minor: int = Field(
        description="The list total the personalized price is compared with."
    )
    text: str = ""


class OfferOut(BaseModel):
    offer_id: str
    offer_rank: int
    item_ids: list[str]
    titles: list[str]
    currency: str
    list_total_minor: int
    price_minor: int
    discount_minor: int
    discount_pct: float
    p_accept: float
    expected_profit_minor: float
    binding_rule: str
    is_cost_assumed: bool
    source: str
    model_version: str
    explanation: ExplanationOut


class OffersOut(BaseModel):
    customer_id: str
    personalized: bool = Field(description="False: the customer is unknown; popular bundles.")
    offers: list[OfferOut]


class CartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=50
    )
    n: int = Field(default=5, ge=1, le=50)


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    item_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=2, max_length=10
    )


class QuoteOut(BaseModel):
    item_ids: list[str]
    feasible: bool
    reason: str | None = None
    titles: list[str] | None = None
    currency: str | None = None
    list_total_minor: int | None = None
    price_minor: int | None = None
    discount_minor: int | None = None
    discount_pct: float | None = None
    p_accept: float | None = None
    expected_profit_minor: float | None = None
    binding_rule: str | None = None
    is_cost_assumed: bool | None = None


class BundleOut(BaseModel):
    item_ids: list[str]
    quote: QuoteOut
    evidence: list[PairEvidenceOut]


class BundlesOut(BaseModel):
    bundles: list[BundleOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[\w.\-:]+$")
    offer_id: str = Field(min_length=1, max_length=128)
    customer_id: str = Field(min_length=1, max_length=128)
    outcome: Literal["shown", "accepted", "rejected"]
    occurred_at: str = Field(
        min_length=10,
        max_length=40,
        description="ISO 8601 time.",
        json_schema_extra={"format": "date-time"},
    )
    price_paid_minor: int | None = Field(default=None, ge=0, le=10**12, strict=True)

    @field_validator("occurred_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
        return value


class FeedbackOut(BaseModel):
    event_id: str
    status: Literal["stored", "duplicate"]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    model_version: str
    customers: int
    feedback_store: bool


class ReloadOut(BaseModel):
    model_version: str
    customers: int
    seconds: float


class ErrorOut(BaseModel):
    error: dict[str, str]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be parsed (not JSON or UTF-8)."},
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    422: {"model": ErrorOut, "description": "Invalid input (names the field)."},
    429: {"model": ErrorOut, "description": "Rate limit exceeded for this key."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Unknown item id (named in the message)."}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The event id was already used for another event."}
}


# --------------------------------------------------------------------------------------------
# Plumbing: rate limits, pseudonyms, errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TokenBucket:
    """Per-key token buckets: ``rate`` tokens per minute, burst ``rate``."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            if tokens < 1.0:
                self._state[key] = (tokens, now)
                return False
            self._state[key] = (tokens - 1.0, now)
            return True


def pseudonym(customer_id: str, salt: str) -> str:
    """A keyed, stable pseudonym of a customer id for logs.

    Examples
    --------
    >>> pseudonym("12346", "s") == pseudonym("12346", "s") != pseudonym("12347", "s")
    True
    """
    return "c_" + hmac.new(salt.encode(), customer_id.encode(), hashlib.sha256).hexdigest()[:12]


def _check_key(request: Request, key: str | None, scope: str) -> KeyRecord:
    record: KeyRecord | None = request.app.state.keys.verify(key)
    if record is None:
        raise ApiError(401, "unauthorized", "missing or invalid API key")
    if scope not in record.scopes:
        raise ApiError(403, "forbidden", f"this key lacks the '{scope}' scope")
    if not request.app.state.limiter.take(record.key_id):
        raise ApiError(429, "rate_limited", "rate limit exceeded for this key")
    return record


def _read_scope(
    request: Request, x_api_key: Annotated[str | None, Header(description="API key.")] = None
) -> KeyRecord:
    return _check_key(request, x_api_key, "read")


def _admin_scope(
    request: Request, x_api_key: Annotated[str | None, Header(description="API key.")] = None
) -> KeyRecord:
    return _check_key(request, x_api_key, "admin")


Reader = Annotated[KeyRecord, Depends(_read_scope)]
Admin = Annotated[KeyRecord, Depends(_admin_scope)]


class GuardMiddleware:
    """Pure ASGI middleware: body-size limit (declared or streamed), a JSON 500 instead of any
    stack trace, and per-route request counts and latency."""

    def __init__(
        self, app: Any, max_body_bytes: int, observe: Callable[[str, int, float], None]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.observe = observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (
                not value.isdigit() or int(value) > self.max_body_bytes
            ):
                await _send_json(
                    send, 413, "too_large", f"request body over {self.max_body_bytes} bytes"
                )
                self.observe("unmatched", 413, time.perf_counter() - start)
                return
        received = 0
        refused = False  # a 413 went out for a streamed body: drop the app's own answer

        async def counted_receive() -> Any:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not refused:
                    refused = True
                    status["code"] = 413
                    if not status["started"]:
                        status["started"] = True
                        await _send_json(
                            send, 413, "too_large", f"request body over {self.max_body_bytes} bytes"
                        )
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Any) -> None:
            if refused:
                return
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:  # never a stack trace to the client
            if not refused:
                logger.exception("unhandled error on %s", scope.get("path"))
            if not status["started"]:
                status["code"] = 500
                await _send_json(send, 500, "internal", "internal error")
        route = getattr(scope.get("route"), "path", "unmatched")
        self.observe(route, int(status["code"]), time.perf_counter() - start)


async def _send_json(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------


def create_app(settings: ServeSettings, config: Config | None = None) -> FastAPI:
    """Build the app over a trained workspace (loaded at startup, swapped on reload)."""
    config = config or Config()
    registry = CollectorRegistry()
    requests_total = Counter(
        "bundlewise_requests", "HTTP requests", ["route", "status"], registry=registry
    )
    latency = Histogram(
        "bundlewise_request_seconds",
        "Request latency",
        ["route"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
        registry=registry,
    )
    feedback_total = Counter(
        "bundlewise_feedback_events", "Feedback events", ["status"], registry=registry
    )
    limiter = TokenBucket(settings.rate_limit_per_minute)
    state: dict[str, Any] = {}
    reload_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["snapshot"] = load_snapshot(settings.workspace, config)
        state["store"] = FeedbackStore(settings.resolved_feedback_url)
        app.state.keys = KeyStore(settings.resolved_keys_file)
        app.state.limiter = limiter
        yield
        state["store"].close()

    app = FastAPI(
        title="bundlewise",
        version=__version__,
        description=(
            "Personalized product bundles with guard-railed prices. Every /v1 route needs an "
            "API key in the X-API-Key header. Money is in integer minor units (e.g. pence) "
            "with the currency beside it."
        ),
        lifespan=lifespan,
    )

    def observe(route: str, status: int, seconds: float) -> None:
        requests_total.labels(route, str(status)).inc()
        latency.labels(route).observe(seconds)

    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes, observe=observe)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return _error(422, "invalid", f"{where}: {first.get('msg', 'invalid input')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, "http", str(exc.detail))

    def snapshot() -> Snapshot:
        snap: Snapshot = state["snapshot"]
        return snap

    @app.get(
        "/v1/customers/{customer_id}/offers",
        response_class=Response,
        responses={200: {"model": OffersOut, "description": "Ranked offers."}, **ERRORS},
    )
    async def customer_offers(
        customer_id: Id, _: Reader, n: Annotated[int, Query(ge=1, le=50)] = 5
    ) -> Response:
        """Ranked bundles for a customer, with price, discount, P(accept), expected profit and
        the explanation; popular bundles (``personalized: false``) for unknown customers."""
        body, personal = snapshot().offers_json(customer_id, n)
        logger.debug("offers for %s", pseudonym(customer_id, settings.pseudonym_salt))
        head = b'{"customer_id":' + json.dumps(customer_id).encode()
        flag = b',"personalized":true,"offers":' if personal else b',"personalized":false,"offers":'
        return Response(head + flag + body + b"}", media_type="application/json")

    @app.post("/v1/carts/offers", response_model=BundlesOut, responses={**ERRORS, **NOT_FOUND})
    async def cart_offers(cart: CartIn, _: Reader) -> dict[str, Any]:
        """Bundles that complete a cart (anonymous shoppers): a cart item plus its strongest
        co-purchase partners not already in the cart, priced at the anonymous rate."""
        snap = snapshot()
        in_cart = set(cart.item_ids)
        unknown = [i for i in cart.item_ids if i not in snap.items]
        if len(unknown) == len(cart.item_ids):
            raise ApiError(404, "not_found", f"unknown item id(s): {', '.join(unknown)}")
        candidates = []
        for item in cart.item_ids:
            for p in snap.partners.get(item, []):
                if p["item_id"] not in in_cart:
                    candidates.append((p["lift_shrunk"], item, p["item_id"]))
        candidates.sort(key=lambda x: (-x[0], x[1], x[2]))
        return {"bundles": _priced(snap, [[a, b] for _, a, b in candidates], cart.n)}

    @app.post("/v1/quotes", response_model=QuoteOut, responses={**ERRORS, **NOT_FOUND})
    async def quote(body: QuoteIn, _: Reader) -> dict[str, Any]:
        """Price a given bundle for a given customer (or anonymously) inside the guardrails."""
        if len(set(body.item_ids)) != len(body.item_ids):
            raise ApiError(422, "invalid", "item_ids: an item appears twice")
        try:
            return snapshot().quote(body.customer_id, body.item_ids)
        except KeyError as exc:
            raise ApiError(404, "not_found", str(exc.args[0])) from None
        except ValueError as exc:
            raise ApiError(422, "invalid", str(exc)) from None

    @app.post("/v1/feedback", response_model=FeedbackOut, responses={**ERRORS, **CONFLICT})
    def feedback(event: FeedbackIn, _: Reader) -> dict[str, Any]:
        """Record shown / accepted / rejected; idempotent by ``event_id``. The answer comes only
        after the event is committed to the feedback store."""
        try:
            status = state["store"].record(FeedbackEvent(**event.model_dump()))
        except EventConflict:
            raise ApiError(
                409, "conflict", f"event_id {event.event_id} was already used for another event"
            ) from None
        feedback_total.labels(status).inc()
        return {"event_id": event.event_id, "status": status}

    @app.get(
        "/v1/items/{item_id}/bundles", response_model=BundlesOut, responses={**ERRORS, **NOT_FOUND}
    )
    async def item_bundles(
        item_id: Id, _: Reader, n: Annotated[int, Query(ge=1, le=20)] = 5
    ) -> dict[str, Any]:
        """Bundles of an item with its strongest co-purchase partners."""
        snap = snapshot()
        if item_id not in snap.items:
            raise ApiError(404, "not_found", f"unknown item id: {item_id}")
        pairs = [[item_id, p["item_id"]] for p in snap.partners.get(item_id, [])]
        return {"bundles": _priced(snap, pairs, n)}

    @app.post("/v1/admin/reload", response_model=ReloadOut, responses=ERRORS)
    def reload(_: Admin) -> dict[str, Any]:
        """Load the workspace's newest trained model and switch to it atomically; requests in
        flight finish on the old one."""
        start = time.perf_counter()
        with reload_lock:
            new = load_snapshot(settings.workspace, config)
            state["snapshot"] = new
            app.state.keys = KeyStore(settings.resolved_keys_file)
        return {
            "model_version": new.model_version,
            "customers": new.n_customers,
            "seconds": round(time.perf_counter() - start, 3),
        }

    @app.get("/health", response_model=HealthOut)
    def health() -> dict[str, Any]:
        """Liveness and readiness (no key needed)."""
        snap = snapshot()
        ok = state["store"].ping()
        return {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "model_version": snap.model_version,
            "customers": snap.n_customers,
            "feedback_store": ok,
        }

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics (no key needed)."""
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        text = (resources.files("bundlewise") / "templates" / "dashboard.html").read_text(
            encoding="utf-8"
        )
        return HTMLResponse(text)

    @app.get("/v1/dashboard/summary", responses=ERRORS)
    async def dashboard_summary(_: Reader) -> dict[str, Any]:
        """Guardrails in force and the offers of the first customers, for the dashboard."""
        snap = snapshot()
        pricing = snap.config.pricing
        customers = snap.customer_ids(200)
        return {
            "model_version": snap.model_version,
            "guardrails": {
                "min_margin": pricing.min_margin,
                "max_discount": pricing.max_discount,
                "fairness_band": pricing.fairness_band,
                "price_endings": f"{list(pricing.price_ending_residues)} mod "
                f"{pricing.price_ending_modulus}",
                "discount_budget": pricing.discount_budget,
                "segment_only": pricing.segment_only,
            },
            "offers": [o for c in customers for o in snap.customer_offers(c, 50)[0]],
        }

    return app


def _priced(snap: Snapshot, bundles: list[list[str]], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for items in bundles:
        key = tuple(sorted(items))
        if key in seen:
            continue
        seen.add(key)
        try:
            q = snap.quote(None, items)
        except (KeyError, ValueError):
            continue
        if not q["feasible"]:
            continue
        evidence = q.get("explanation", {}).get("pairs", [])
        out.append({"item_ids": items, "quote": q, "evidence": evidence})
        if len(out) == n:
            break
    return out


__all__ = ["create_app", "pseudonym"]
