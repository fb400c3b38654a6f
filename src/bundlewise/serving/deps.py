"""Dependencies of the routes: the serving state, snapshot, store and settings, and the API-key
checks (typed ``Annotated`` aliases).

Every dependency here is ``async`` on purpose: a sync dependency runs on the shared thread pool,
and a feedback write blocked on a locked store must never make an offer (or a 401) wait for a
thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from bundlewise.serving.keys import KeyRecord
from bundlewise.serving.middleware import RATE_DECISION, ApiError
from bundlewise.serving.model import Snapshot
from bundlewise.serving.ratelimit import Decision
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.state import ServingState
from bundlewise.serving.store import FeedbackStore

api_key_header = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="An API key made by `bundlewise keys create --scope read` (or `admin`).",
    auto_error=False,
)


async def get_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


StateDep = Annotated[ServingState, Depends(get_state)]


async def get_snapshot(state: StateDep) -> Snapshot:
    return state.snapshot


async def get_store(state: StateDep) -> FeedbackStore:
    return state.store


async def get_settings(state: StateDep) -> ServeSettings:
    return state.settings


SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
StoreDep = Annotated[FeedbackStore, Depends(get_store)]
SettingsDep = Annotated[ServeSettings, Depends(get_settings)]


def _check_key(request: Request, state: ServingState, key: str | None, scope: str) -> KeyRecord:
    record = state.keys.verify(key)
    if record is None:
        raise ApiError(401, "unauthorized", "missing or invalid API key")
    if scope not in record.scopes:
        raise ApiError(403, "forbidden", f"this key lacks the '{scope}' scope")
    decision = state.limiter.take(record.key_id)
    request.scope.setdefault("state", {})[RATE_DECISION] = decision
    if not decision.allowed:
        raise _rate_limited(decision, "")
    return record


def _rate_limited(decision: Decision, cost: str) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"rate limit exceeded for this key ({decision.limit_per_minute} requests per "
        f"minute{cost}); retry in {decision.retry_after_seconds} s",
    )


def charge(request: Request, state: ServingState, record: KeyRecord, tokens: int) -> None:
    """Charge a request that costs ``tokens`` rate-limit tokens in all (a cart, whose cost its
    body sets): the key check took one, this takes the rest (``tokens`` is capped at the
    bucket's size, so that any request can pass on a full bucket). Refused: 429 and the token
    of the key check is given back; either way the ``X-RateLimit-*`` headers tell the bucket
    after this charge.

    Raises
    ------
    ApiError
        429 when the key's bucket does not hold the rest.
    """
    tokens = min(tokens, state.limiter.per_minute)
    if tokens <= 1:
        return
    decision = state.limiter.take(record.key_id, tokens - 1, held=1)
    request.scope.setdefault("state", {})[RATE_DECISION] = decision
    if not decision.allowed:
        raise _rate_limited(decision, f"; this request costs {tokens}")


async def read_scope(
    request: Request, state: StateDep, key: Annotated[str | None, Security(api_key_header)]
) -> KeyRecord:
    return _check_key(request, state, key, "read")


async def admin_scope(
    request: Request, state: StateDep, key: Annotated[str | None, Security(api_key_header)]
) -> KeyRecord:
    return _check_key(request, state, key, "admin")


Reader = Annotated[KeyRecord, Depends(read_scope)]
Admin = Annotated[KeyRecord, Depends(admin_scope)]

__all__ = [
    "Admin",
    "Reader",
    "SettingsDep",
    "SnapshotDep",
    "StateDep",
    "StoreDep",
    "api_key_header",
    "charge",
    "get_settings",
    "get_snapshot",
    "get_state",
    "get_store",
]
