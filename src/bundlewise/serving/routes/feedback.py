"""``POST /v1/feedback``: what happened to an offer (shown, accepted, rejected)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from bundlewise.pipeline import ANONYMOUS
from bundlewise.serving.deps import Reader, StateDep
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.privacy import pseudonym
from bundlewise.serving.schemas import BUSY, CONFLICT, ERRORS, FeedbackIn, FeedbackOut
from bundlewise.serving.state import ServingState, StoreBusy
from bundlewise.serving.store import EventConflict, FeedbackEvent, StoreUnavailable

logger = logging.getLogger("bundlewise.serving")

router = APIRouter(tags=["feedback"])

#: More offers than any customer has: all of them.
_ALL = 1_000_000


def check_served(state: ServingState, event: FeedbackIn) -> None:
    """The event's offer was served to its customer by the model in force (a personal offer of
    this customer, or a popular offer, which any shopper may have seen), or is an offer of the
    model served before the last reload.

    Raises
    ------
    ApiError
        422 naming the offer id and the customer.
    """
    model = state.model
    snap = model.snapshot
    if event.offer_id in model.offer_ids:
        served = {o["offer_id"] for o in snap.customer_offers(event.customer_id, _ALL)[0]}
        served |= {o["offer_id"] for o in snap.customer_offers(ANONYMOUS, _ALL)[0]}
        if event.offer_id not in served:
            raise ApiError(
                422,
                "invalid",
                f"offer_id: offer {event.offer_id} was not served to customer_id "
                f"{event.customer_id!r} (it is another customer's offer)",
            )
        return
    previous = state.previous_offer_ids
    if previous is not None and event.offer_id in previous:
        return
    raise ApiError(
        422,
        "invalid",
        f"offer_id: {event.offer_id!r} is not an offer this server served (model "
        f"{model.offer_ids.model_version})",
    )


@router.post("/v1/feedback", response_model=FeedbackOut, responses={**ERRORS, **CONFLICT, **BUSY})
async def record_feedback(event: FeedbackIn, _: Reader, state: StateDep) -> dict[str, Any]:
    """Record shown / accepted / rejected for an offer the API served; idempotent by
    ``event_id``. The answer comes only after the event is committed to the feedback store; a
    store that does not commit within the timeout answers 503 with ``Retry-After`` (send the
    same event again: a duplicate is acknowledged as such)."""
    check_served(state, event)
    record = FeedbackEvent(**event.model_dump())
    try:
        status = await state.in_writer(lambda: state.store.record(record))
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
