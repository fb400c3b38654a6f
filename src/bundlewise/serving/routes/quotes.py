"""``POST /v1/quotes``: price one bundle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bundlewise.serving.deps import Reader, SnapshotDep
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.schemas import ERRORS, NOT_FOUND, QuoteIn, QuoteOut

router = APIRouter(tags=["quotes"])


@router.post("/v1/quotes", response_model=QuoteOut, responses={**ERRORS, **NOT_FOUND})
async def quote_bundle(body: QuoteIn, _: Reader, snapshot: SnapshotDep) -> dict[str, Any]:
    """Price a given bundle for a given customer (or anonymously) inside the guardrails."""
    if len(set(body.item_ids)) != len(body.item_ids):
        raise ApiError(422, "invalid", "item_ids: an item appears twice")
    try:
        return snapshot.quote(body.customer_id, body.item_ids)
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
