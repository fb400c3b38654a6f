"""``POST /v1/carts/offers``: bundles that complete a cart."""

from __future__ import annotations

import math
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from bundlewise.serving.deps import Reader, SnapshotDep, StateDep, charge
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.model import Snapshot
from bundlewise.serving.routes._common import priced_bundles
from bundlewise.serving.schemas import ERRORS, NOT_FOUND, BundlesOut, CartIn

router = APIRouter(tags=["carts"])

#: Bundles one rate-limit token pays for: a default cart (``n`` = 5) costs one token, as every
#: request does; the worst case (50 items, ``n`` = 50) costs 10.
BUNDLES_PER_TOKEN = 5

_BUNDLES_OUT = TypeAdapter(BundlesOut)


def cart_cost(snap: Snapshot, cart: CartIn) -> int:
    """Rate-limit tokens of a cart, in proportion to its work: one per ``BUNDLES_PER_TOKEN``
    bundles it can answer (``n``, or fewer when the cart's distinct items have fewer
    co-purchase partners), at least one.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> snap = SimpleNamespace(partners={"a": [{}] * 10, "b": [{}] * 3})
    >>> [cart_cost(snap, CartIn(item_ids=ids, n=n)) for ids, n in
    ...  [(["a"], 5), (["a"], 50), (["a", "b", "a"], 50), (["x"], 50)]]
    [1, 2, 3, 1]
    """
    candidates = sum(len(snap.partners.get(i, ())) for i in set(cart.item_ids))
    return max(1, math.ceil(min(cart.n, candidates) / BUNDLES_PER_TOKEN))


def cart_bundles(
    snap: Snapshot, cart: CartIn, cache: dict[tuple[str, ...], dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The cart's bundles: each cart item with each of its partners not in the cart, by
    shrunk lift, priced (:func:`priced_bundles`: only about ``n`` of them)."""
    in_cart = set(cart.item_ids)
    candidates = []
    for item in dict.fromkeys(cart.item_ids):
        for p in snap.partners.get(item, []):
            if p["item_id"] not in in_cart:
                candidates.append((p["lift_shrunk"], item, p["item_id"]))
    candidates.sort(key=lambda x: (-x[0], x[1], x[2]))
    return priced_bundles(snap, [[a, b] for _, a, b in candidates], cart.n, cache)


def cart_json(
    snap: Snapshot, cart: CartIn, cache: dict[tuple[str, ...], dict[str, Any]] | None = None
) -> bytes:
    """The JSON answer of a cart (:class:`BundlesOut`, validated and serialized as the route's
    response model would be), built whole on the calling thread."""
    bundles = _BUNDLES_OUT.validate_python({"bundles": cart_bundles(snap, cart, cache)})
    return _BUNDLES_OUT.dump_json(bundles)


@router.post("/v1/carts/offers", response_model=BundlesOut, responses={**ERRORS, **NOT_FOUND})
async def cart_offers(
    cart: CartIn, key: Reader, request: Request, snapshot: SnapshotDep, state: StateDep
) -> Response:
    """Bundles that complete a cart (anonymous shoppers): a cart item plus its strongest
    co-purchase partners not already in the cart, priced at the anonymous rate.

    A cart costs one rate-limit token per 5 bundles it can answer: `n`, or fewer when its
    distinct items have fewer co-purchase partners (at most 10 each); at least 1, at most 10
    (50 items, `n` = 50), never more than the key's limit per minute. A refused cart costs
    nothing; `Retry-After` says when its tokens will be there, and `X-RateLimit-Remaining`
    counts the bucket after the cart's charge."""
    charge(request, state, key, cart_cost(snapshot, cart))
    unknown = [i for i in cart.item_ids if i not in snapshot.items]
    if len(unknown) == len(cart.item_ids):
        raise ApiError(404, "not_found", f"unknown item id(s): {', '.join(unknown)}")
    # Off the event loop, two carts at a time, from the candidates to the JSON bytes: a large
    # cart costs milliseconds of CPU, which must not delay the offers answered meanwhile.
    body = await anyio.to_thread.run_sync(
        cart_json, snapshot, cart, state.quotes_for(snapshot), limiter=state.cart_limiter()
    )
    return Response(body, media_type="application/json")
