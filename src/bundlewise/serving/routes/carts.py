"""``POST /v1/carts/offers``: bundles that complete a cart."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from bundlewise.serving.deps import Reader, SnapshotDep, StateDep
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.model import Snapshot
from bundlewise.serving.routes._common import priced_bundles
from bundlewise.serving.schemas import ERRORS, NOT_FOUND, BundlesOut, CartIn

router = APIRouter(tags=["carts"])


def cart_bundles(
    snap: Snapshot, cart: CartIn, cache: dict[tuple[str, ...], dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    in_cart = set(cart.item_ids)
    candidates = []
    for item in dict.fromkeys(cart.item_ids):
        for p in snap.partners.get(item, []):
            if p["item_id"] not in in_cart:
                candidates.append((p["lift_shrunk"], item, p["item_id"]))
    candidates.sort(key=lambda x: (-x[0], x[1], x[2]))
    return priced_bundles(snap, [[a, b] for _, a, b in candidates], cart.n, cache)


@router.post("/v1/carts/offers", response_model=BundlesOut, responses={**ERRORS, **NOT_FOUND})
async def cart_offers(
    cart: CartIn, _: Reader, snapshot: SnapshotDep, state: StateDep
) -> dict[str, Any]:
    """Bundles that complete a cart (anonymous shoppers): a cart item plus its strongest
    co-purchase partners not already in the cart, priced at the anonymous rate."""
    unknown = [i for i in cart.item_ids if i not in snapshot.items]
    if len(unknown) == len(cart.item_ids):
        raise ApiError(404, "not_found", f"unknown item id(s): {', '.join(unknown)}")
    # Off the event loop, two carts at a time: a large cart costs milliseconds of CPU, which
    # must not delay the offers answered meanwhile.
    bundles = await anyio.to_thread.run_sync(
        cart_bundles, snapshot, cart, state.quotes_for(snapshot), limiter=state.cart_limiter()
    )
    return {"bundles": bundles}
