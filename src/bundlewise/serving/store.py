"""The durable feedback store (SQLAlchemy): SQLite in WAL mode by default, PostgreSQL by URL.

An event is acknowledged only after its transaction has committed; with SQLite the database
runs with ``journal_mode=WAL`` and ``synchronous=FULL``, so a committed event survives a crash
of the process (and of the machine). Events are idempotent by ``event_id``: the same event sent
again is acknowledged as a duplicate; a different event under a known id is a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

OUTCOMES: tuple[str, ...] = ("shown", "accepted", "rejected")

metadata = sa.MetaData()
feedback_events = sa.Table(
    "feedback_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("offer_id", sa.String(128), nullable=False),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("price_paid_minor", sa.BigInteger, nullable=True),
    sa.Column("occurred_at", sa.String(40), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
)

_FIELDS = ("offer_id", "customer_id", "outcome", "price_paid_minor", "occurred_at")


@dataclass(frozen=True)
class FeedbackEvent:
    """One outcome of one offer."""

    event_id: str
    offer_id: str
    customer_id: str
    outcome: str
    occurred_at: str
    price_paid_minor: int | None = None


class EventConflict(Exception):
    """A different event was already stored under the same event id."""


class FeedbackStore:
    """Append-only, idempotent event store.

    Examples
    --------
    >>> store = FeedbackStore("sqlite://")
    >>> e = FeedbackEvent("e1", "o1", "c1", "shown", "2026-01-01T00:00:00Z")
    >>> store.record(e), store.record(e), store.count()
    ('stored', 'duplicate', 1)
    """

    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
        if url.startswith("sqlite"):

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.close()

        metadata.create_all(self.engine)

    def record(self, event: FeedbackEvent) -> str:
        """Store an event; returns ``stored`` or ``duplicate`` once committed.

        Raises
        ------
        EventConflict
            When another event with the same id but different content exists.
        """
        row = {
            "event_id": event.event_id,
            "offer_id": event.offer_id,
            "customer_id": event.customer_id,
            "outcome": event.outcome,
            "price_paid_minor": event.price_paid_minor,
            "occurred_at": event.occurred_at,
            "received_at": datetime.now(UTC).isoformat(),
        }
        try:
            with self.engine.begin() as con:
                con.execute(feedback_events.insert().values(**row))
            return "stored"
        except IntegrityError:
            with self.engine.connect() as con:
                old = (
                    con.execute(
                        sa.select(feedback_events).where(
                            feedback_events.c.event_id == event.event_id
                        )
                    )
                    .mappings()
                    .first()
                )
            if old is not None and all(old[f] == row[f] for f in _FIELDS):
                return "duplicate"
            raise EventConflict(event.event_id) from None

    def count(self) -> int:
        with self.engine.connect() as con:
            return int(
                con.execute(sa.select(sa.func.count()).select_from(feedback_events)).scalar_one()
            )

    def event_ids(self) -> set[str]:
        with self.engine.connect() as con:
            return {r[0] for r in con.execute(sa.select(feedback_events.c.event_id))}

    def ping(self) -> bool:
        try:
            with self.engine.connect() as con:
                con.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["OUTCOMES", "EventConflict", "FeedbackEvent", "FeedbackStore"]
