"""The durable feedback store (SQLAlchemy): SQLite in WAL mode by default, PostgreSQL by URL.

An event is acknowledged only after its transaction has committed; with SQLite the database
runs with ``journal_mode=WAL`` and ``synchronous=FULL``, so a committed event survives a crash
of the process (and of the machine). Events are idempotent by ``event_id``: the same event sent
again is acknowledged as a duplicate; a different event under a known id is a conflict.

SQL parameters (customer ids among them) never reach logs or error messages: the engine is
created with ``hide_parameters=True``. A store that is locked, read-only or unreachable raises
:class:`StoreUnavailable` (the server answers 503) after at most ``busy_timeout_seconds``.
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

#: Driver errors that mean "not now" (locked, read-only, connection lost), not a bad request.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError)

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


class StoreUnavailable(Exception):
    """The store cannot take a write now (locked, read-only, unreachable); says why."""


class FeedbackStore:
    """Append-only, idempotent event store.

    Examples
    --------
    >>> store = FeedbackStore("sqlite://")
    >>> e = FeedbackEvent("e1", "o1", "c1", "shown", "2026-01-01T00:00:00Z")
    >>> store.record(e), store.record(e), store.count()
    ('stored', 'duplicate', 1)
    """

    def __init__(self, url: str, busy_timeout_seconds: float = 30.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_seconds}
        elif url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": max(1, round(busy_timeout_seconds))}
        self.engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True, **kwargs)
        if self.is_sqlite:

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
        StoreUnavailable
            When the store is locked, read-only or unreachable.
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
            pass
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None
        try:
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
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None
        if old is not None and all(old[f] == row[f] for f in _FIELDS):
            return "duplicate"
        raise EventConflict(event.event_id)

    def count(self) -> int:
        with self.engine.connect() as con:
            return int(
                con.execute(sa.select(sa.func.count()).select_from(feedback_events)).scalar_one()
            )

    def event_ids(self) -> set[str]:
        with self.engine.connect() as con:
            return {r[0] for r in con.execute(sa.select(feedback_events.c.event_id))}

    def ping(self) -> bool:
        """True when the store answers a read."""
        try:
            with self.engine.connect() as con:
                con.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def check_writable(self) -> str | None:
        """None when the store would take a write now; otherwise why not (locked, read-only,
        unreachable). Writes nothing: an update of no row, rolled back, which still needs the
        write lock and write permission."""
        try:
            with self.engine.connect() as con:
                con.execute(
                    feedback_events.update()
                    .where(sa.false())
                    .values(outcome=feedback_events.c.outcome)
                )
                con.rollback()
        except sa.exc.SQLAlchemyError as exc:
            return _why(exc)
        return None

    def close(self) -> None:
        self.engine.dispose()


def _why(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's own words (no SQL, no parameters), e.g. ``database is locked``."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else 'unknown error'}"


__all__ = ["OUTCOMES", "EventConflict", "FeedbackEvent", "FeedbackStore", "StoreUnavailable"]
