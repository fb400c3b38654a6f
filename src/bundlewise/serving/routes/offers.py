"""``GET /v1/customers/{customer_id}/offers``: a customer's ranked offers."""

from __future__ import annotations

import json
import logging
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bundlewise.serving.buckets import bucket_of
from bundlewise.serving.deps import Reader, SnapshotDep, StateDep
from bundlewise.serving.learning import LearningService, apply_decision
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.privacy import pseudonym
from bundlewise.serving.routes._common import CustomerPath
from bundlewise.serving.schemas import ERRORS, MAX_N, MISDIRECTED, OffersOut

logger = logging.getLogger("bundlewise.serving")

router = APIRouter(tags=["offers"])

_RANK = b'"offer_rank":'


def first_offers(body: bytes, n: int) -> bytes:
    """At most ``n`` offers of a JSON array of offers (as stored: compact JSON, one
    ``"offer_rank":`` key per offer; a quote inside a string is escaped, so the count is exact).

    Examples
    --------
    >>> first_offers(b'[{"offer_rank":1},{"offer_rank":2}]', 1)
    b'[{"offer_rank":1}]'
    """
    if body.count(_RANK) <= n:
        return body
    return json.dumps(json.loads(body)[:n], separators=(",", ":")).encode()


def learned_offers(service: LearningService, customer_id: str, body: bytes, n: int) -> bytes:
    """The customer's first ``n`` offers as the learning loop serves them: every stored offer
    priced by the current policy (with its ``decision``) and, when the model ranks by expected
    profit, re-ranked by the expected profit of its best rung under the learned posterior
    (bundle choice learns from acceptances too; ties keep the trained order). An offer whose
    bundle has no allowed price keeps the trained price and rank value."""
    ranked = []
    for offer in json.loads(body):
        got = service.ranked_decision(customer_id, offer["item_ids"], offer["offer_id"])
        if got is None:
            ranked.append((float(offer["expected_profit_minor"]), offer))
            continue
        fields, value = got
        ranked.append((value, apply_decision(offer, fields)))
    if service.pricer.pricing.rank_by == "expected_profit":
        ranked.sort(key=lambda vo: (-vo[0], vo[1]["offer_rank"]))
    out = [{**o, "offer_rank": k} for k, (_, o) in enumerate(ranked[:n], start=1)]
    return json.dumps(out, separators=(",", ":")).encode()


@router.get(
    "/v1/customers/{customer_id:path}/offers",
    response_class=Response,
    responses={
        200: {"model": OffersOut, "description": "Ranked offers."},
        **ERRORS,
        **MISDIRECTED,
    },
)
async def customer_offers(
    customer_id: CustomerPath,
    _: Reader,
    snapshot: SnapshotDep,
    state: StateDep,
    n: Annotated[int, Query(ge=1, le=MAX_N, description="At most this many offers.")] = 5,
) -> Response:
    """Ranked bundles for a customer (at most ``n``), with price, discount, P(accept), expected
    profit and the explanation; popular bundles (``personalized: false``) for unknown
    customers. On a learning server each offer's price comes from the learning policy and the
    offer has a ``decision`` (send its ``policy_version`` with the feedback). A server of a
    fleet (``--buckets``) answers 421 for a customer of another server's buckets."""
    buckets = snapshot.buckets
    if buckets is not None and not buckets.serves(customer_id):
        raise ApiError(
            421,
            "misdirected",
            f"customer {customer_id!r} is in bucket {bucket_of(customer_id, buckets.n_buckets)}"
            f" of {buckets.n_buckets}; this server answers buckets {buckets}",
        )
    loop = state.learning
    if loop is not None and loop.service.model_version == snapshot.model_version:
        body, personal = snapshot.offers_json(customer_id, MAX_N)  # all, to re-rank
        body = learned_offers(loop.service, customer_id, body, n)
    else:
        body, personal = snapshot.offers_json(customer_id, n)
        body = first_offers(body, n)
    logger.debug("offers for %s", pseudonym(customer_id, state.secret))
    head = b'{"customer_id":' + json.dumps(customer_id).encode()
    flag = b',"personalized":true,"offers":' if personal else b',"personalized":false,"offers":'
    return Response(head + flag + body + b"}", media_type="application/json")
