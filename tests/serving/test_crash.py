"""No acknowledged feedback event is lost when the server is killed (SIGKILL) mid-load,
on SQLite and on PostgreSQL (``BUNDLEWISE_TEST_POSTGRES_URL``; required when ``CI`` is set)."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from served import Served

from bundlewise.data import Workspace
from bundlewise.serving.loadgen import feedback_until_killed, running_server
from bundlewise.serving.store import FeedbackStore

pytestmark = pytest.mark.integration


def _served_offer(served: Served) -> tuple[str, str]:
    """An offer id and the customer it is served to (feedback is checked against them)."""
    row = next(
        r
        for r in Workspace(served.workspace).table("offers").to_pylist()
        if r["customer_id"] != "__anonymous__"
    )
    return row["offer_id"], row["customer_id"]


def _crash(served: Served, feedback_url: str) -> tuple[int, int, int]:
    offer = _served_offer(served)
    with running_server(served.workspace, feedback_url, served.keys_file) as server:
        acked, sent = feedback_until_killed(server, served.read_key, offer, kill_after_acks=300)
        assert server.process.returncode == -9  # it really was killed, not stopped
    store = FeedbackStore(feedback_url)
    try:
        stored = store.event_ids()
    finally:
        store.close()
    lost = acked - stored
    assert len(acked) >= 300
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {sorted(lost)[:3]}"
    return sent, len(acked), len(stored)


def test_sqlite_loses_no_acknowledged_event(served: Served) -> None:
    sent, acked, stored = _crash(served, served.feedback_url)
    assert sent >= acked and stored >= acked


def _postgres_url() -> str | None:
    url = os.environ.get("BUNDLEWISE_TEST_POSTGRES_URL")
    if url is None and os.environ.get("CI"):
        pytest.fail("CI must provide BUNDLEWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
    return url


def test_postgres_loses_no_acknowledged_event(served: Served) -> None:
    url = _postgres_url()
    if url is None:
        pytest.skip("BUNDLEWISE_TEST_POSTGRES_URL is not set (set by .ci/run)")
    schema_db = f"bw_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f"CREATE DATABASE {schema_db}"))
    try:
        db_url = url.rsplit("/", 1)[0] + "/" + schema_db
        sent, acked, stored = _crash(served, db_url)
        assert sent >= acked and stored >= acked
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f"DROP DATABASE IF EXISTS {schema_db} WITH (FORCE)"))
        admin.dispose()
