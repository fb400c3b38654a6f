"""The durable feedback store (SQLAlchemy): SQLite in WAL mode by default, PostgreSQL by URL.

An event is acknowledged only after its transaction has committed; with SQLite the database
runs with ``journal_mode=WAL`` and ``synchronous=FULL``, so a committed event survives a crash
of the process (and of the machine). Events are idempotent by ``event_id``: the same event sent
again is acknowledged as a duplicate; a different event under a known id is a conflict.

SQL parameters (customer ids among them) never reach logs or error messages: the engine is
created with ``hide_parameters=True``. A store that is locked, read-only or unreachable raises
:class:`StoreUnavailable` (the server answers 503) after at most ``busy_timeout_seconds``.

**Learning columns.** An event sent with a ``policy_version`` (a server that learns) also keeps
the decision the server recomputed for it: the offer's items, the arm and price offered, its
propensity, whether it explored, the experiment variant and the expected profit (given up).
Those columns are nullable; a store made by an older bundlewise gets them added on open
(``ALTER TABLE ... ADD COLUMN``), its rows untouched. Learning reads the accepted and rejected
events with a decision in the order ``received_at, event_id`` (:meth:`FeedbackStore.
learning_events`); the server assigns ``received_at`` in that order under its learning lock.
``policy_versions`` keeps every policy version a learning server froze (explore rate and
posterior), so a decision can be recomputed after the version has left the server's memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    # The decision behind the offer (events sent with a policy_version; NULL otherwise).
    sa.Column("item_ids", sa.Text, nullable=True),  # JSON list of the offer's items
    sa.Column("policy_version", sa.String(64), nullable=True),
    sa.Column("arm", sa.Integer, nullable=True),
    sa.Column("price_offered_minor", sa.BigInteger, nullable=True),
    sa.Column("propensity", sa.Float, nullable=True),
    sa.Column("explore", sa.Boolean, nullable=True),
    sa.Column("variant", sa.String(32), nullable=True),
    sa.Column("expected_profit_minor", sa.Float, nullable=True),
    sa.Column("profit_given_up_minor", sa.Float, nullable=True),
)
sa.Index("ix_feedback_events_received", feedback_events.c.received_at, feedback_events.c.event_id)

#: Columns added after the first release: added to an older store when it is opened.
DECISION_COLUMNS: tuple[str, ...] = (
    "item_ids",
    "policy_version",
    "arm",
    "price_offered_minor",
    "propensity",
    "explore",
    "variant",
    "expected_profit_minor",
    "profit_given_up_minor",
)

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("explore_rate", sa.Float, nullable=False),
    sa.Column("posterior_json", sa.Text, nullable=False),
)

#: Outcomes the learner learns from.
LEARNED_OUTCOMES: tuple[str, ...] = ("accepted", "rejected")

#: Driver errors that mean "not now" (locked, read-only, connection lost), not a bad request.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError)

#: What the client sent: the same event id with another value of one of these is a conflict.
_FIELDS = (
    "offer_id",
    "customer_id",
    "outcome",
    "price_paid_minor",
    "occurred_at",
    "policy_version",
)


@dataclass(frozen=True)
class FeedbackEvent:
    """One outcome of one offer, with the decision behind it when the server learns."""

    event_id: str
    offer_id: str
    customer_id: str
    outcome: str
    occurred_at: str
    price_paid_minor: int | None = None
    policy_version: str | None = None
    item_ids: tuple[str, ...] | None = None
    arm: int | None = None
    price_offered_minor: int | None = None
    propensity: float | None = None
    explore: bool | None = None
    variant: str | None = None
    expected_profit_minor: float | None = None
    profit_given_up_minor: float | None = None

    def row(self, received_at: str) -> dict[str, Any]:
        """The stored row (``item_ids`` as JSON)."""
        return {
            "event_id": self.event_id,
            "offer_id": self.offer_id,
            "customer_id": self.customer_id,
            "outcome": self.outcome,
            "price_paid_minor": self.price_paid_minor,
            "occurred_at": self.occurred_at,
            "received_at": received_at,
            "item_ids": None if self.item_ids is None else json.dumps(list(self.item_ids)),
            "policy_version": self.policy_version,
            "arm": self.arm,
            "price_offered_minor": self.price_offered_minor,
            "propensity": self.propensity,
            "explore": self.explore,
            "variant": self.variant,
            "expected_profit_minor": self.expected_profit_minor,
            "profit_given_up_minor": self.profit_given_up_minor,
        }


def received_now() -> datetime:
    """Now, in UTC (the clock ``received_at`` is read from)."""
    return datetime.now(UTC)


def iso_received(when: datetime) -> str:
    """``received_at`` as stored: ISO 8601 in UTC with microseconds (sorts as it orders)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


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
        self._migrate()

    def _migrate(self) -> None:
        """Add the decision columns (and the replay index) to a store made before them."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns("feedback_events")}
        for name in DECISION_COLUMNS:
            if name in have:
                continue
            column = feedback_events.c[name]
            kind = column.type.compile(dialect=self.engine.dialect)
            try:
                with self.engine.begin() as con:
                    con.execute(sa.text(f"ALTER TABLE feedback_events ADD COLUMN {name} {kind}"))
            except sa.exc.SQLAlchemyError:
                # Another process added it meanwhile; anything else is still missing below.
                again = {c["name"] for c in sa.inspect(self.engine).get_columns("feedback_events")}
                if name not in again:
                    raise
        for index in feedback_events.indexes:
            try:
                index.create(self.engine, checkfirst=True)
            except sa.exc.SQLAlchemyError:
                pass  # made by another process at the same moment (or lacking rights: slower)

    def record(self, event: FeedbackEvent, received_at: datetime | None = None) -> str:
        """Store an event; returns ``stored`` or ``duplicate`` once committed.

        ``received_at`` defaults to now (a learning server passes its own, increasing, clock).

        Raises
        ------
        EventConflict
            When another event with the same id but different content exists.
        StoreUnavailable
            When the store is locked, read-only or unreachable.
        """
        row = event.row(iso_received(received_at or received_now()))
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

    def last_received_at(self) -> str | None:
        """The latest ``received_at`` stored (None for an empty store)."""
        try:
            with self.engine.connect() as con:
                value = con.execute(sa.select(sa.func.max(feedback_events.c.received_at)))
                return value.scalar_one_or_none()
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None

    def learning_events(
        self, after: tuple[str, str] | None = None, *, batch: int = 10_000
    ) -> Iterator[dict[str, Any]]:
        """Accepted and rejected events that carry a decision, in learning order
        (``received_at, event_id``), as dicts (``item_ids`` decoded to a tuple); ``after``
        (a ``(received_at, event_id)``) starts after that event. Read in batches.
        """
        t = feedback_events
        cursor = after
        while True:
            query = sa.select(t).where(
                t.c.policy_version.is_not(None),
                t.c.outcome.in_(LEARNED_OUTCOMES),
            )
            if cursor is not None:
                query = query.where(
                    sa.or_(
                        t.c.received_at > cursor[0],
                        sa.and_(t.c.received_at == cursor[0], t.c.event_id > cursor[1]),
                    )
                )
            query = query.order_by(t.c.received_at, t.c.event_id).limit(batch)
            try:
                with self.engine.connect() as con:
                    rows = [dict(r) for r in con.execute(query).mappings()]
            except UNAVAILABLE as exc:
                raise StoreUnavailable(_why(exc)) from None
            for row in rows:
                row["item_ids"] = tuple(json.loads(row["item_ids"])) if row["item_ids"] else ()
                yield row
            if len(rows) < batch:
                return
            cursor = (rows[-1]["received_at"], rows[-1]["event_id"])

    def count_learning_events(self) -> int:
        """How many events :meth:`learning_events` yields."""
        t = feedback_events
        query = (
            sa.select(sa.func.count())
            .select_from(t)
            .where(t.c.policy_version.is_not(None), t.c.outcome.in_(LEARNED_OUTCOMES))
        )
        try:
            with self.engine.connect() as con:
                return int(con.execute(query).scalar_one())
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None

    def policy_version_names(self, model_version: str) -> set[str]:
        """The stored policy versions of one model."""
        with self.engine.connect() as con:
            return {
                r[0]
                for r in con.execute(
                    sa.select(policy_versions.c.version).where(
                        policy_versions.c.model_version == model_version
                    )
                )
            }

    def save_policy_versions(self, rows: list[dict[str, Any]]) -> None:
        """Store policy versions (``version, model_version, created_at, explore_rate,
        posterior_json``) not stored yet; one already stored is kept as it is.

        Raises
        ------
        StoreUnavailable
            When the store is locked, read-only or unreachable.
        """
        if not rows:
            return
        try:
            with self.engine.begin() as con:
                have = {
                    r[0]
                    for r in con.execute(
                        sa.select(policy_versions.c.version).where(
                            policy_versions.c.version.in_([r["version"] for r in rows])
                        )
                    )
                }
                new = [r for r in rows if r["version"] not in have]
                if new:
                    con.execute(policy_versions.insert(), new)
        except IntegrityError:
            pass  # stored meanwhile by another writer: the same version, kept
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None

    def delete_policy_versions(self, versions: list[str]) -> None:
        """Delete these stored policy versions (the server's retention).

        Raises
        ------
        StoreUnavailable
            When the store is locked, read-only or unreachable.
        """
        try:
            with self.engine.begin() as con:
                for k in range(0, len(versions), 500):
                    chunk = versions[k : k + 500]
                    con.execute(
                        policy_versions.delete().where(policy_versions.c.version.in_(chunk))
                    )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None

    def policy_version(self, version: str) -> dict[str, Any] | None:
        """One stored policy version, or None."""
        try:
            with self.engine.connect() as con:
                row = (
                    con.execute(
                        sa.select(policy_versions).where(policy_versions.c.version == version)
                    )
                    .mappings()
                    .first()
                )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(_why(exc)) from None
        return dict(row) if row is not None else None

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


__all__ = [
    "DECISION_COLUMNS",
    "LEARNED_OUTCOMES",
    "OUTCOMES",
    "EventConflict",
    "FeedbackEvent",
    "FeedbackStore",
    "StoreUnavailable",
    "iso_received",
    "received_now",
]
