"""The HTTP API (FastAPI): offers, cart bundles, quotes, feedback, item bundles, health, metrics,
reload, the merchant dashboard and offline API docs.

Every ``/v1`` route needs an API key (header ``X-API-Key``, declared in OpenAPI as the ``ApiKey``
security scheme) with the ``read`` scope; reload needs ``admin``. Keys are stored hashed
(:mod:`bundlewise.serving.keys`) and re-read within a second of a change; each key has a
token-bucket rate limit for the whole server (:mod:`bundlewise.serving.ratelimit`). Bodies over
``max_body_bytes`` are refused with 413. Errors are JSON ``{"error": {"code", "message"}}`` and
never carry a stack trace. Customer ids appear in logs only as keyed pseudonyms
(:mod:`bundlewise.serving.privacy`). Routes live in :mod:`bundlewise.serving.routes`, one router
per resource; what they answer from comes by dependency injection
(:mod:`bundlewise.serving.deps`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from bundlewise._version import __version__
from bundlewise.config import Config
from bundlewise.serving.middleware import ApiError, GuardMiddleware, error_response
from bundlewise.serving.privacy import pseudonym
from bundlewise.serving.routes import ROUTERS
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.state import Metrics, ServingState

TAGS = [
    {"name": "offers", "description": "A customer's ranked, priced, explained offers."},
    {"name": "carts", "description": "Bundles that complete an anonymous shopper's cart."},
    {"name": "quotes", "description": "The price of a given bundle for a given shopper."},
    {"name": "feedback", "description": "What happened to an offer; durable and idempotent."},
    {"name": "items", "description": "An item's bundles with its co-purchase partners."},
    {"name": "learning", "description": "What the learning loop has learned (when on)."},
    {"name": "admin", "description": "Reload the model (admin scope)."},
    {"name": "dashboard", "description": "Data of the merchant dashboard (/dashboard)."},
    {"name": "operations", "description": "Health and metrics (no key)."},
]


def _operation_id(route: APIRoute) -> str:
    """Readable operation ids: the route function's name (``customer_offers``...)."""
    return route.name


def create_app(
    settings: ServeSettings,
    config: Config | None = None,
    *,
    state: ServingState | None = None,
) -> FastAPI:
    """Build the app over a trained workspace.

    Parameters
    ----------
    settings
        Where the workspace, store and keys are, and the server's limits.
    config
        The config to price with; default: ``settings.config_file``, else the trained one.
    state
        Already opened serving state (the CLI opens it first, to report a bad workspace in one
        line); by default the app's lifespan opens it at startup.
    """
    metrics = state.metrics if state is not None else Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = state if state is not None else ServingState(settings, config)
        opened.metrics = metrics
        app.state.serving = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="bundlewise",
        version=__version__,
        description=(
            "Personalized product bundles with guard-railed prices. Every /v1 route needs an "
            "API key in the X-API-Key header. Money is in integer minor units (e.g. pence) "
            "with the currency beside it. Path ids are percent-encoded: any customer or item "
            "id of the data is served."
        ),
        openapi_tags=TAGS,
        generate_unique_id_function=_operation_id,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(
        GuardMiddleware, max_body_bytes=settings.max_body_bytes, observe=metrics.observe
    )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        message = str(first.get("msg", "invalid input")).removeprefix("Value error, ")
        return error_response(422, "invalid", f"{where}: {message}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keeps the exception's headers: ``Allow`` on a 405.
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, "http", str(exc.detail), headers)

    for router in ROUTERS:
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``bundlewise serve --workers N`` (settings from the
    ``BUNDLEWISE_*`` environment variables)."""
    return create_app(ServeSettings())


__all__ = ["app_from_environment", "create_app", "pseudonym"]
