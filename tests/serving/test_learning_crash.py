"""A learning server killed (SIGKILL) in the middle of feedback loses no acknowledged update:
after a restart its posterior is the replay of every stored learning event, and those include
every acknowledged one (issue 10). On SQLite and on PostgreSQL (``BUNDLEWISE_TEST_POSTGRES_URL``,
as in ``test_crash.py``)."""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from served import Served

from bundlewise.data import Workspace
from bundlewise.learning.logged import LoggedLearner, logged_events
from bundlewise.pricing import Pricer
from bundlewise.serving.loadgen import feedback_until_killed, running_server
from bundlewise.serving.store import FeedbackStore

pytestmark = pytest.mark.integration


def _crash_and_restart(served: Served, feedback_url: str) -> None:
    customer = next(
        r["customer_id"]
        for r in Workspace(served.workspace).table("offers").to_pylist()
        if r["customer_id"] != "__anonymous__"
    )
    headers = {"X-API-Key": served.read_key}
    args = (served.workspace, feedback_url, served.keys_file)
    with running_server(*args, extra=["--learn"]) as server:
        r = httpx.get(
            f"{server.url}/v1/customers/{quote(customer, safe='')}/offers", headers=headers
        )
        offer = r.json()["offers"][0]
        acked, sent = feedback_until_killed(
            server,
            served.read_key,
            (offer["offer_id"], customer),
            kill_after_acks=300,
            outcomes=("accepted", "rejected", "rejected"),
            policy_version=offer["decision"]["policy_version"],
        )
        assert server.process.returncode == -9  # really killed, not stopped
    store = FeedbackStore(feedback_url)
    try:
        rows = list(store.learning_events())
    finally:
        store.close()
    stored = {row["event_id"] for row in rows}
    assert len(acked) >= 300 and sent >= len(acked)
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost"
    with running_server(*args, extra=["--learn"]) as again:
        state = httpx.get(f"{again.url}/v1/learning", headers=headers).json()
    assert state["events_used"] == len(rows) >= len(acked)
    pricer = Pricer.load(Workspace(served.workspace))
    replay = LoggedLearner(pricer, pricer.config.learning).observe_all(logged_events(rows))
    assert state["posterior"] == replay.posterior.to_dict()
    assert state["policy_version"] == replay.learner.version
    assert state["posterior"]["n_updates"] == len(rows)


def test_a_killed_learning_server_loses_no_acknowledged_update(served: Served) -> None:
    _crash_and_restart(served, served.feedback_url)


def test_a_killed_learning_server_on_postgres_loses_nothing(served: Served) -> None:
    url = os.environ.get("BUNDLEWISE_TEST_POSTGRES_URL")
    if url is None and os.environ.get("CI"):
        pytest.fail("CI must provide BUNDLEWISE_TEST_POSTGRES_URL (.ci/run starts PostgreSQL)")
    if url is None:
        pytest.skip("BUNDLEWISE_TEST_POSTGRES_URL is not set (set by .ci/run)")
    name = f"bw_learn_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        _crash_and_restart(served, url.rsplit("/", 1)[0] + "/" + name)
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
