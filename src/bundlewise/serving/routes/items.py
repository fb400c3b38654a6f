"""``GET /v1/items/{item_id}/bundles``: an item's bundles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bundlewise.serving.deps import Reader, SnapshotDep, StateDep
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.routes._common import ItemPath, priced_bundles
from bundlewise.serving.schemas import ERRORS, NOT_FOUND, BundlesOut

router = APIRouter(tags=["items"])


@router.get(
    "/v1/items/{item_id:path}/bundles",
    response_model=BundlesOut,
    responses={**ERRORS, **NOT_FOUND},
)
async def item_bundles(
    item_id: ItemPath,
    _: Reader,
    snapshot: SnapshotDep,
    state: StateDep,
    n: Annotated[int, Query(ge=1, le=20, description="At most this many bundles.")] = 5,
) -> dict[str, Any]:
    """Bundles of an item with its strongest co-purchase partners."""
    if item_id not in snapshot.items:
        raise ApiError(404, "not_found", f"unknown item id: {item_id}")
    pairs = [[item_id, p["item_id"]] for p in snapshot.partners.get(item_id, [])]
    return {"bundles": priced_bundles(snapshot, pairs, n, state.quotes_for(snapshot))}
