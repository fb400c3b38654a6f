"""``POST /v1/feedback``: what happened to an offer (shown, accepted, rejected)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from bundlewise.pipeline import ANONYMOUS
from bundlewise.serving.deps import Reader, StateDep
from bundlewise.serving.learning import UnknownVersion
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.privacy import pseudonym
from bundlewise.serving.schemas import (
    BUSY,
    CONFLICT,
    ERRORS,
    MISDIRECTED,
    FeedbackIn,
    FeedbackOut,
)
from bundlewise.serving.state import ServingState, StoreBusy
from bundlewise.serving.store import EventConflict, FeedbackEvent, StoreUnavailable

logger = logging.getLogger("bundlewise.serving")

router = APIRouter(tags=["feedback"])

#: More offers than any customer has: all of them.
_ALL = 1_000_000


def served_offer(state: ServingState, event: FeedbackIn) -> dict[str, Any] | None:
    """The event's offer as the model in force served it to its customer (a personal offer of
    this customer, or a popular offer, which any shopper may have seen); ``None`` for an offer
    of the model served before the last reload.

    Raises
    ------
    ApiError
        422 naming the offer id and the customer; 421 for a customer of another server's
        buckets (a server of a fleet).
    """
    model = state.model
    snap = model.snapshot
    if not snap.serves(event.customer_id):
        assert snap.buckets is not None
        raise ApiError(
            421,
            "misdirected",
            f"customer_id {event.customer_id!r} is in another server's buckets (this server "
            f"answers buckets {snap.buckets})",
        )
    if event.offer_id in model.offer_ids:
        for customer in (event.customer_id, ANONYMOUS):
            for offer in snap.customer_offers(customer, _ALL)[0]:
                if offer["offer_id"] == event.offer_id:
                    return offer
        raise ApiError(
            422,
            "invalid",
            f"offer_id: offer {event.offer_id} was not served to customer_id "
            f"{event.customer_id!r} (it is another customer's offer)",
        )
    previous = state.previous_offer_ids
    if previous is not None and event.offer_id in previous:
        return None
    raise ApiError(
        422,
        "invalid",
        f"offer_id: {event.offer_id!r} is not an offer this server served (model "
        f"{model.offer_ids.model_version})",
    )


def _writer(
    state: ServingState, event: FeedbackIn, offer: dict[str, Any] | None
) -> Callable[[], str]:
    """What the writer thread runs: recompute the decision (a learning event), then store
    the event (and learn from it)."""
    record = FeedbackEvent(**event.model_dump())
    loop = state.learning
    version = event.policy_version
    if version is None or loop is None:
        return lambda: state.store.record(record)
    if offer is None:
        raise ApiError(
            422,
            "invalid",
            f"policy_version: offer {event.offer_id} was served by the model before the last "
            "reload, whose policies this server no longer has: send the event without "
            "policy_version",
        )
    items = [str(i) for i in offer["item_ids"]]

    def write() -> str:
        served = loop.service.recompute(event.customer_id, items, event.offer_id, version)
        d = served.decision
        decided = dataclasses.replace(
            record,
            item_ids=tuple(items),
            arm=d.arm,
            price_offered_minor=d.price_minor,
            propensity=d.propensity,
            explore=d.explore,
            variant=served.variant,
            expected_profit_minor=d.expected_profit_minor,
            profit_given_up_minor=d.profit_given_up_minor,
        )
        return loop.record(decided)

    return write


@router.post(
    "/v1/feedback",
    response_model=FeedbackOut,
    responses={**ERRORS, **CONFLICT, **BUSY, **MISDIRECTED},
)
async def record_feedback(event: FeedbackIn, _: Reader, state: StateDep) -> dict[str, Any]:
    """Record shown / accepted / rejected for an offer the API served; idempotent by
    ``event_id``. The answer comes only after the event is committed to the feedback store; a
    store that does not commit within the timeout answers 503 with ``Retry-After`` (send the
    same event again: a duplicate is acknowledged as such).

    On a learning server, send the offer's ``decision.policy_version`` as ``policy_version``:
    the server recomputes the decision (arm, price, propensity, variant) from the offer id and
    that version, stores it with the event, and learns from accepted and rejected events. An
    unknown version (or one of a model replaced by a reload) answers 422."""
    offer = served_offer(state, event)
    if event.policy_version is not None and state.learning is None:
        raise ApiError(
            422,
            "invalid",
            "policy_version: this server does not learn (start it with --learn or "
            "`[learning] enabled = true`); send the event without policy_version",
        )
    write = _writer(state, event, offer)
    try:
        status = await state.in_writer(write)
    except UnknownVersion as exc:
        raise ApiError(422, "invalid", f"policy_version: {exc}") from None
    except EventConflict:
        raise ApiError(
            409, "conflict", f"event_id {event.event_id} was already used for another event"
        ) from None
    except StoreBusy as exc:
        logger.warning(
            "feedback from %s not stored: store busy (%s)",
            pseudonym(event.customer_id, state.secret),
            exc,
        )
        raise ApiError(
            503,
            "store_busy",
            f"the feedback store is busy ({exc}); nothing was stored: send the same event again",
            headers={"Retry-After": "1"},
        ) from None
    except StoreUnavailable as exc:
        logger.warning(
            "feedback from %s not stored: %s", pseudonym(event.customer_id, state.secret), exc
        )
        raise ApiError(
            503,
            "store_unavailable",
            f"the feedback store cannot take writes ({exc}); nothing was stored: send the "
            "same event again later",
            headers={"Retry-After": "5"},
        ) from None
    state.metrics.feedback.labels(status).inc()
    return {"event_id": event.event_id, "status": status}
