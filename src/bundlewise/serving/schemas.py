"""Request and response models of the HTTP API (separate from the domain dataclasses)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Longest customer or item id the API takes (the feedback store's column is as wide).
MAX_ID_CHARS = 256

CustomerId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
MAX_CART_ITEMS = 50
MAX_N = 50

ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class PairEvidenceOut(BaseModel):
    item_a: str
    item_b: str
    orders_together: int = Field(description="Orders that contain both items.")
    lift_shrunk: float | None = Field(description="Co-purchase lift shrunk toward 1.")
    npmi: float | None = Field(description="Normalized pointwise mutual information.")
    text_similarity: float | None = Field(
        default=None, description="Cosine similarity of the two titles (pretrained encoder)."
    )


class HistoryItemOut(BaseModel):
    item_id: str
    orders: int = Field(description="The customer's orders with this item.")


class PriceResponseOut(BaseModel):
    segment: str
    sensitivity: float = Field(description="Logit price sensitivity b of the segment.")


class ExplanationOut(BaseModel):
    history_items: list[HistoryItemOut]
    pairs: list[PairEvidenceOut]
    price_response: PriceResponseOut
    binding_rule: str = Field(description="The rule that set the price.")
    personalized_price: bool = Field(
        description="True when the price was set for this customer (disclosure)."
    )
    compared_with_list_total_minor: int = Field(
        description="The list total the personalized price is compared with."
    )
    text: str = ""


class DecisionOut(BaseModel):
    """How the learning loop priced an offer (only on a server that learns)."""

    policy_version: str = Field(
        description="The policy that decided; send it back as the feedback's policy_version."
    )
    arm: int = Field(description="Index of the price on the ladder (0: the lowest).")
    price_minor: int = Field(description="The price shown (the offer's price_minor).")
    propensity: float = Field(description="Probability with which this price was chosen.")
    explore: bool = Field(description="True when the price is not the policy's best guess.")
    variant: str = Field(description="The customer's experiment variant: learning or holdout.")
    ladder: list[int] = Field(description="The bundle's allowed prices (minor units).")


class OfferOut(BaseModel):
    offer_id: str
    offer_rank: int
    item_ids: list[str]
    titles: list[str]
    currency: str
    list_total_minor: int
    price_minor: int
    discount_minor: int
    discount_pct: float
    p_accept: float
    expected_profit_minor: float
    binding_rule: str
    is_cost_assumed: bool
    source: str
    model_version: str
    explanation: ExplanationOut
    decision: DecisionOut | None = Field(
        default=None, description="Only on a learning server: how the price was chosen."
    )


class OffersOut(BaseModel):
    customer_id: str
    personalized: bool = Field(description="False: the customer is unknown; popular bundles.")
    offers: list[OfferOut]


class CartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_ids: list[ItemId] = Field(min_length=1, max_length=MAX_CART_ITEMS)
    n: int = Field(default=5, ge=1, le=MAX_N)


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: CustomerId | None = None
    item_ids: list[ItemId] = Field(min_length=2, max_length=10)


class QuoteOut(BaseModel):
    item_ids: list[str]
    feasible: bool
    reason: str | None = None
    titles: list[str] | None = None
    currency: str | None = None
    list_total_minor: int | None = None
    price_minor: int | None = None
    discount_minor: int | None = None
    discount_pct: float | None = None
    p_accept: float | None = None
    expected_profit_minor: float | None = None
    binding_rule: str | None = None
    is_cost_assumed: bool | None = None


class LearningQuoteOut(QuoteOut):
    """A quote for a customer from a learning server."""

    offer_id: str | None = Field(
        default=None,
        description="The served offer with these items (feedback may name it), if any.",
    )
    decision: DecisionOut | None = None


class BundleOut(BaseModel):
    item_ids: list[str]
    quote: QuoteOut
    evidence: list[PairEvidenceOut]


class BundlesOut(BaseModel):
    bundles: list[BundleOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[\w.\-:]+$")
    offer_id: str = Field(
        min_length=1, max_length=128, description="An offer id the API served to this customer."
    )
    customer_id: CustomerId
    outcome: Literal["shown", "accepted", "rejected"]
    occurred_at: str = Field(
        min_length=10,
        max_length=40,
        description="ISO 8601 time with a time zone (Z or an offset such as +01:00).",
        json_schema_extra={"format": "date-time"},
    )
    price_paid_minor: int | None = Field(default=None, ge=0, le=10**12, strict=True)
    policy_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[\w.+\-:]+$",
        description="On a learning server: the offer's decision.policy_version (the server "
        "recomputes and stores the decision, and learns from accepted and rejected events).",
    )

    @field_validator("occurred_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"{value!r} has no time zone: add Z (UTC) or an offset such as +01:00")
        return value


class FeedbackOut(BaseModel):
    event_id: str
    status: Literal["stored", "duplicate"]


class LearningOut(BaseModel):
    enabled: bool = Field(description="Whether this server runs the learning loop.")
    model_version: str
    policy_version: str | None = Field(default=None, description="The policy now serving.")
    explore_rate: float | None = None
    events_used: int | None = Field(default=None, description="Feedback events learned from.")
    events_skipped: int | None = Field(
        default=None, description="Events that could not be learned from (item gone...)."
    )
    budget: dict[str, float] | None = Field(
        default=None, description="What exploring has cost so far."
    )
    experiment: dict[str, Any] | None = None
    segments: list[dict[str, Any]] | None = Field(
        default=None, description="Per segment: prior and learned sensitivity, events."
    )
    bundles: list[dict[str, Any]] | None = Field(
        default=None,
        description="The bundles with the most feedback: price ladder, posterior acceptance and "
        "expected profit per rung (anonymous shopper), the rung now preferred, the bundle's "
        "appeal offset, events, take rate, explored offers and the profit exploring gave up.",
    )
    posterior: dict[str, Any] | None = Field(
        default=None, description="The whole posterior (the JSON `bundlewise learn` saves)."
    )


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: the feedback store cannot take writes now (offers still answer)."
    )
    version: str
    model_version: str
    customers: int
    feedback_store: bool = Field(description="True when the feedback store takes writes now.")
    feedback_store_detail: str | None = Field(
        default=None, description="Why the feedback store cannot take writes (locked, read-only)."
    )


class ReloadOut(BaseModel):
    model_version: str
    customers: int
    seconds: float


class ErrorOut(BaseModel):
    error: dict[str, str]


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer"}}


RATE_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": _header("Requests per minute this key may make (whole server)."),
    "X-RateLimit-Remaining": _header("Requests left in the key's bucket now."),
    "X-RateLimit-Reset": _header("Seconds until the key's bucket is full again."),
}
RETRY_AFTER: dict[str, Any] = {"Retry-After": _header("Seconds to wait before trying again.")}

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be parsed (not JSON or UTF-8)."},
    401: {"model": ErrorOut, "description": "Missing or invalid API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    422: {"model": ErrorOut, "description": "Invalid input (names the field)."},
    429: {
        "model": ErrorOut,
        "description": "Rate limit exceeded for this key.",
        "headers": RETRY_AFTER | RATE_HEADERS,
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Unknown item id (named in the message)."}
}
MISDIRECTED: dict[int | str, dict[str, Any]] = {
    421: {
        "model": ErrorOut,
        "description": "This server (started with `--buckets`) answers other customer buckets: "
        "send the request to the server of the customer's bucket.",
    }
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The event id was already used for another event."}
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorOut,
        "description": "The feedback store did not commit in time (locked, read-only or "
        "unreachable); nothing was acknowledged: send the same event again later.",
        "headers": RETRY_AFTER,
    }
}
RELOAD_FAILED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "The model could not be loaded (missing or corrupt; the message says "
        "why); the server goes on serving the model it had.",
    }
}
