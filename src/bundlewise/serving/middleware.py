"""ASGI middleware and the JSON error shape of the HTTP API."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

logger = logging.getLogger("bundlewise.serving")

#: Where the key check leaves the rate-limit decision for the middleware (``scope["state"]``).
RATE_DECISION = "rate_limit"


class ApiError(Exception):
    """An answer with an error status: ``{"error": {"code", "message"}}`` and headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class GuardMiddleware:
    """Pure ASGI middleware: body-size limit (declared or streamed), a JSON 500 instead of any
    stack trace, per-route request counts and latency, the ``X-RateLimit-*`` headers of the
    request's key (set by the key check in ``scope["state"]``) and ``nosniff`` on every
    answer."""

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
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                decision = scope.get("state", {}).get(RATE_DECISION)
                extra = decision.headers() if decision is not None else {}
                extra["X-Content-Type-Options"] = "nosniff"
                for name, value in extra.items():
                    if name.lower().encode() not in names:
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:  # never a stack trace to the client
            if not refused:
                logger.exception("unhandled error on %s", scope.get("path"))
            if not status["started"]:
                status["code"] = 500
                await _send_json(send, 500, "internal", "internal error")
        route = getattr(scope.get("route"), "path_format", None) or "unmatched"
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


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


__all__ = ["RATE_DECISION", "ApiError", "GuardMiddleware", "error_response"]
