"""``POST /v1/quotes``: price one bundle."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bundlewise.serving.deps import Reader, SnapshotDep, StateDep
from bundlewise.serving.learning import LearningService, apply_decision
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.model import Snapshot
from bundlewise.serving.schemas import ERRORS, NOT_FOUND, LearningQuoteOut, QuoteIn, QuoteOut

router = APIRouter(tags=["quotes"])

#: More offers than any customer has: all of them.
_ALL = 1_000_000


def quote_key(model_version: str, customer_id: str, item_ids: list[str]) -> str:
    """The decision key of a quote that is no served offer: a hash of the model, the customer
    and the (sorted) items, so the same quote gets the same decision under a policy version.

    Examples
    --------
    >>> quote_key("v1", "c1", ["b", "a"]) == quote_key("v1", "c1", ["a", "b"])
    True
    """
    key = "\x1f".join([model_version, "quote", customer_id, *sorted(item_ids)]).encode()
    return "q" + hashlib.blake2b(key, digest_size=8).hexdigest()


def learned_quote(
    service: LearningService, snapshot: Snapshot, customer_id: str, quote: dict[str, Any]
) -> dict[str, Any]:
    """A customer's quote priced by the learning loop: keyed by the served offer with the same
    items when there is one (so it gets that offer's decision), else by :func:`quote_key`."""
    items = [str(i) for i in quote["item_ids"]]
    wanted = sorted(items)
    offer_id = next(
        (
            o["offer_id"]
            for o in snapshot.customer_offers(customer_id, _ALL)[0]
            if sorted(o["item_ids"]) == wanted
        ),
        None,
    )
    key = offer_id or quote_key(snapshot.model_version, customer_id, items)
    fields = service.offer_decision(customer_id, items, key)
    if fields is None:
        return quote
    return {**apply_decision(quote, fields), "offer_id": offer_id}


@router.post("/v1/quotes", response_model=QuoteOut, responses={**ERRORS, **NOT_FOUND})
async def quote_bundle(
    body: QuoteIn, _: Reader, snapshot: SnapshotDep, state: StateDep
) -> dict[str, Any] | JSONResponse:
    """Price a given bundle for a given customer (or anonymously) inside the guardrails. On a
    learning server a customer's quote is priced by the learning policy and carries
    ``decision`` (and ``offer_id`` when it is one of the customer's served offers)."""
    if len(set(body.item_ids)) != len(body.item_ids):
        raise ApiError(422, "invalid", "item_ids: an item appears twice")
    try:
        quote = snapshot.quote(body.customer_id, body.item_ids)
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    loop = state.learning
    if (
        loop is None
        or body.customer_id is None
        or not quote["feasible"]
        or loop.service.model_version != snapshot.model_version
    ):
        return quote
    learned = learned_quote(loop.service, snapshot, body.customer_id, quote)
    return JSONResponse(LearningQuoteOut.model_validate(learned).model_dump(mode="json"))
