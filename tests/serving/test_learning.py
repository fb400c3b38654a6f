"""The learning loop in the server (issue 10): decisions on offers and quotes, feedback with a
policy version, learning after the commit, replay at start, and the `learn` command's equal
posterior. On the serving tests' workspace (December 2009 of the bundled data)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from scipy.special import expit
from served import Served
from typer.testing import CliRunner

from bundlewise.cli.main import app as cli
from bundlewise.data import Workspace
from bundlewise.exceptions import BundlewiseError
from bundlewise.learning import build_ladder
from bundlewise.learning.logged import served_decision
from bundlewise.pricing import Guardrails, Pricer, violated_rules
from bundlewise.serving import learning as serving_learning
from bundlewise.serving.app import create_app
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.state import ServingState
from bundlewise.serving.store import FeedbackEvent, FeedbackStore

pytestmark = pytest.mark.integration

ANONYMOUS = "__anonymous__"


def _app(served: Served, workspace: Path | None = None, **settings: Any) -> TestClient:
    s = ServeSettings(
        workspace=workspace or served.workspace,
        feedback_url=served.feedback_url,
        keys_file=served.keys_file,
        rate_limit_per_minute=10_000_000,
        **settings,
    )
    client = TestClient(create_app(s), raise_server_exceptions=False)
    client.headers["X-API-Key"] = served.read_key
    return client


@pytest.fixture()
def learning(served: Served) -> Iterator[TestClient]:
    with _app(served, learn=True) as c:
        yield c


@pytest.fixture(scope="module")
def customers(trained_workspace: Path) -> list[str]:
    offers = Workspace(trained_workspace).table("offers")
    ids = sorted({c for c in offers.column("customer_id").to_pylist() if c != ANONYMOUS})
    return ids[:: max(1, len(ids) // 150)][:150]


@pytest.fixture(scope="module")
def pricer(trained_workspace: Path) -> Pricer:
    return Pricer.load(Workspace(trained_workspace))


def _offers(client: TestClient, customer: str, n: int = 5) -> list[dict[str, Any]]:
    r = client.get(f"/v1/customers/{quote(customer, safe='')}/offers?n={n}")
    assert r.status_code == 200, r.text
    offers: list[dict[str, Any]] = r.json()["offers"]
    return offers


def _event(offer: dict[str, Any], customer: str, k: int, outcome: str, **extra: Any) -> Any:
    return {
        "event_id": f"learn-{k}",
        "offer_id": offer["offer_id"],
        "customer_id": customer,
        "outcome": outcome,
        "occurred_at": "2026-11-23T12:00:00Z",
        "policy_version": offer["decision"]["policy_version"],
        **extra,
    }


def _simulate(
    client: TestClient, customers: list[str], n: int, beta: float, seed: int = 0
) -> list[tuple[dict[str, Any], str, bool]]:
    """``n`` offers served and answered by shoppers whose sensitivity is ``beta`` (their
    appeal the trained one), the outcomes posted with the offers' policy versions."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        customer = customers[k % len(customers)]
        offer = _offers(client, customer, n=1)[0]
        appeal = offer["explanation"]["price_response"]["appeal"]
        p = float(expit(appeal - beta * offer["price_minor"] / offer["list_total_minor"]))
        accepted = bool(rng.random() < p)
        outcome = "accepted" if accepted else "rejected"
        r = client.post("/v1/feedback", json=_event(offer, customer, k, outcome))
        assert r.status_code == 200 and r.json()["status"] == "stored", r.text
        out.append((offer, customer, accepted))
    return out


# -- decisions ------------------------------------------------------------------------------


def test_offers_are_priced_on_the_guarded_ladder(
    learning: TestClient, customers: list[str], pricer: Pricer
) -> None:
    guardrails = Guardrails.from_config(pricer.pricing)
    band = pricer.pricing.fairness_band
    n_rungs = pricer.config.learning.n_rungs
    variants = set()
    seen = 0
    for customer in customers:
        for offer in _offers(learning, customer):
            d = offer["decision"]
            items = offer["item_ids"]
            ladder = build_ladder(pricer, items, n_rungs)
            assert ladder is not None
            assert d["ladder"] == ladder.rungs.tolist()
            assert offer["price_minor"] == d["price_minor"] == d["ladder"][d["arm"]]
            cost = ladder.cost_minor
            assert violated_rules(d["price_minor"], ladder.list_total_minor, cost, guardrails) == []
            assert max(d["ladder"]) <= (1 + band) * min(d["ladder"])
            assert 0.0 < d["propensity"] <= 1.0
            assert d["policy_version"] == f"{pricer.model_version}.L0"
            assert offer["discount_minor"] == offer["list_total_minor"] - offer["price_minor"]
            if d["variant"] == "holdout":
                assert d["propensity"] == 1.0 and d["arm"] == len(d["ladder"]) - 1
                assert offer["binding_rule"] == "holdout_list_price"
            else:
                assert d["variant"] == "learning"
                assert offer["binding_rule"] == "learning_policy"
            assert "Price " in offer["explanation"]["text"]
            variants.add(d["variant"])
            seen += 1
    assert seen > 300
    assert variants == {"learning", "holdout"}


def test_the_same_offer_and_version_give_the_same_decision(
    served: Served, learning: TestClient, customers: list[str], pricer: Pricer
) -> None:
    first = {c: _offers(learning, c) for c in customers[:40]}
    again = {c: _offers(learning, c) for c in customers[:40]}
    assert first == again
    # A fresh server (a restart) and a recomputation from (offer id, version) agree.
    state: ServingState = learning.app.state.serving  # type: ignore[attr-defined]
    assert state.learning is not None
    policy = state.learning.service.policy
    for customer, offers in first.items():
        for offer in offers:
            d = served_decision(policy, customer, offer["item_ids"], offer["offer_id"])
            assert d.to_dict() == offer["decision"]
    with _app(served, learn=True) as other:
        assert {c: _offers(other, c) for c in customers[:40]} == first


def test_quotes_of_a_customer_get_the_offers_decision(
    learning: TestClient, customers: list[str]
) -> None:
    checked = 0
    for customer in customers[:30]:
        for offer in _offers(learning, customer):
            r = learning.post(
                "/v1/quotes", json={"customer_id": customer, "item_ids": offer["item_ids"][::-1]}
            )
            assert r.status_code == 200, r.text
            q = r.json()
            assert q["offer_id"] == offer["offer_id"]
            assert q["decision"] == offer["decision"]
            assert q["price_minor"] == offer["price_minor"]
            checked += 1
    assert checked > 50
    # An anonymous quote keeps the trained price (no decision).
    offer = _offers(learning, customers[0])[0]
    anonymous = learning.post("/v1/quotes", json={"item_ids": offer["item_ids"]}).json()
    assert "decision" not in anonymous


def test_learning_off_serves_exactly_as_before(
    client: TestClient, served: Served, customers: list[str], trained_workspace: Path
) -> None:
    stored = {
        (o["customer_id"], o["offer_id"]): o["price_minor"]
        for o in Workspace(trained_workspace).table("offers").to_pylist()
    }
    headers = {"X-API-Key": served.read_key}
    for customer in customers[:30]:
        r = client.get(f"/v1/customers/{quote(customer, safe='')}/offers", headers=headers)
        for offer in r.json()["offers"]:
            assert "decision" not in offer
            assert offer["price_minor"] == stored[(customer, offer["offer_id"])]
        items = r.json()["offers"][0]["item_ids"]
        q = client.post(
            "/v1/quotes", json={"customer_id": customer, "item_ids": items}, headers=headers
        )
        assert "decision" not in q.json() and "offer_id" not in q.json()
    state = client.get("/v1/learning", headers=headers).json()
    assert state == {
        "enabled": False,
        "model_version": state["model_version"],
        "policy_version": None,
        "explore_rate": None,
        "events_used": None,
        "events_skipped": None,
        "budget": None,
        "experiment": None,
        "segments": None,
        "bundles": None,
        "posterior": None,
    }
    offer = r.json()["offers"][0]
    event = {
        "event_id": "off-1",
        "offer_id": offer["offer_id"],
        "customer_id": customers[29],
        "outcome": "accepted",
        "occurred_at": "2026-11-23T12:00:00Z",
        "policy_version": "x.L0",
    }
    refused = client.post("/v1/feedback", json=event, headers=headers)
    assert refused.status_code == 422
    assert "does not learn" in refused.json()["error"]["message"]


# -- feedback -------------------------------------------------------------------------------


def test_feedback_with_a_version_stores_the_decision(
    served: Served, learning: TestClient, customers: list[str]
) -> None:
    customer = customers[3]
    offer = _offers(learning, customer)[1]
    r = learning.post("/v1/feedback", json=_event(offer, customer, 1, "accepted"))
    assert r.status_code == 200 and r.json()["status"] == "stored", r.text
    again = learning.post("/v1/feedback", json=_event(offer, customer, 1, "accepted"))
    assert again.json()["status"] == "duplicate"
    shown = learning.post(
        "/v1/feedback", json={**_event(offer, customer, 2, "shown"), "policy_version": None}
    )
    assert shown.json()["status"] == "stored"
    engine = sa.create_engine(served.feedback_url)
    with engine.connect() as con:
        rows = {
            r["event_id"]: r
            for r in con.execute(sa.text("SELECT * FROM feedback_events")).mappings()
        }
    engine.dispose()
    row, d = rows["learn-1"], offer["decision"]
    assert row["policy_version"] == d["policy_version"]
    assert row["propensity"] == d["propensity"]
    assert row["arm"] == d["arm"] and row["price_offered_minor"] == d["price_minor"]
    assert bool(row["explore"]) == d["explore"] and row["variant"] == d["variant"]
    assert json.loads(row["item_ids"]) == offer["item_ids"]
    assert rows["learn-2"]["policy_version"] is None and rows["learn-2"]["propensity"] is None
    state = learning.get("/v1/learning").json()
    assert state["events_used"] == 1  # the accepted one; shown events are not learned from


@pytest.mark.parametrize(
    ("version", "says"),
    [("other-model.L0", "not a policy version of the model"), (None, "unknown policy version")],
)
def test_an_unknown_version_is_refused(
    learning: TestClient, customers: list[str], pricer: Pricer, version: str | None, says: str
) -> None:
    customer = customers[5]
    offer = _offers(learning, customer)[0]
    bad = version or f"{pricer.model_version}.L999"
    r = learning.post(
        "/v1/feedback", json=_event(offer, customer, 9, "accepted", policy_version=bad)
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("policy_version: ") and says in message and bad in message
    assert learning.get("/v1/learning").json()["events_used"] == 0


def test_online_posterior_equals_the_learn_replay(
    served: Served, trained_workspace: Path, customers: list[str], tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(trained_workspace, workspace)
    with _app(served, workspace, learn=True) as c:
        _simulate(c, customers, 130, beta=8.0)
        online = c.get("/v1/learning").json()
    assert online["events_used"] == 130
    assert online["policy_version"].endswith(".L2")  # refreshed every 50 events
    result = CliRunner().invoke(
        cli, ["learn", "-w", str(workspace), "--feedback-url", served.feedback_url, "--json"]
    )
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)
    assert batch["posterior"] == online["posterior"]
    assert batch["policy_version"] == online["policy_version"]
    assert batch["events_used"] == 130 and batch["segments"] == online["segments"]
    with Workspace(workspace).connect(read_only=True) as con:
        saved = con.execute(
            "SELECT posterior_version, posterior_json FROM learned_posterior"
        ).fetchall()
    assert saved == [
        (batch["posterior_version"], json.dumps(batch["posterior"], separators=(",", ":")))
    ]
    plain = CliRunner().invoke(
        cli, ["learn", "-w", str(workspace), "--feedback-url", served.feedback_url]
    )
    assert plain.exit_code == 0, plain.output
    assert "Learned from 130 feedback events" in plain.output
    assert " -> " in plain.output and "events)" in plain.output
    # A restart replays the store into the same posterior and policy.
    with _app(served, workspace, learn=True) as again:
        assert again.get("/v1/learning").json() == online


@pytest.mark.parametrize("true_beta", [3.0, 16.0])
def test_the_posterior_moves_toward_the_true_sensitivity(
    served: Served, customers: list[str], pricer: Pricer, true_beta: float
) -> None:
    with _app(served, learn=True) as c:
        _simulate(c, customers, 240, beta=true_beta, seed=1)
        state = c.get("/v1/learning").json()
    moved = [s for s in state["segments"] if s["events"] >= 30]
    assert moved
    for s in moved:
        prior = s["prior_sensitivity"]
        if true_beta < prior:
            assert s["sensitivity"] < prior, s
        else:
            assert s["sensitivity"] > prior, s
        assert s["sensitivity_sd"] < 4.0  # narrower than the prior


def test_a_version_no_longer_in_memory_is_rebuilt_from_the_store(
    served: Served, customers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving_learning, "KEEP_VERSIONS", 1)
    with _app(served, learn=True) as c:
        customer = customers[7]
        early = _offers(c, customer)[0]
        _simulate(c, customers, 110, beta=8.0)
        state: ServingState = c.app.state.serving  # type: ignore[attr-defined]
        assert state.learning is not None
        version = early["decision"]["policy_version"]
        with pytest.raises(KeyError):
            state.learning.service.logged.learner.policy(version)
        r = c.post("/v1/feedback", json=_event(early, customer, 500, "rejected"))
        assert r.status_code == 200, r.text
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.policy_version(version) is not None
        row = next(e for e in store.learning_events() if e["event_id"] == "learn-500")
    finally:
        store.close()
    assert row["price_offered_minor"] == early["decision"]["price_minor"]
    assert row["propensity"] == early["decision"]["propensity"]


def test_an_old_store_is_migrated(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE feedback_events (event_id VARCHAR(128) PRIMARY KEY, offer_id VARCHAR(128) "
        "NOT NULL, customer_id VARCHAR(256) NOT NULL, outcome VARCHAR(16) NOT NULL, "
        "price_paid_minor BIGINT, occurred_at VARCHAR(40) NOT NULL, received_at VARCHAR(40) "
        "NOT NULL)"
    )
    con.execute(
        "INSERT INTO feedback_events VALUES ('old-1', 'o1', 'c1', 'shown', NULL, "
        "'2026-01-01T00:00:00Z', '2026-01-01T00:00:01+00:00')"
    )
    con.commit()
    con.close()
    store = FeedbackStore(f"sqlite:///{path}")
    try:
        assert store.event_ids() == {"old-1"}
        event = FeedbackEvent(
            "new-1", "o1", "c1", "accepted", "2026-01-02T00:00:00Z", None, "v.L0", ("a", "b"),
            2, 900, 0.25, True, "learning", 10.5, 1.5,
        )  # fmt: skip
        assert store.record(event) == "stored"
        assert store.record(event) == "duplicate"
        (row,) = list(store.learning_events())
        assert row["item_ids"] == ("a", "b") and row["propensity"] == 0.25 and row["explore"]
    finally:
        store.close()
    columns = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(feedback_events)")}
    assert {"policy_version", "propensity", "variant", "item_ids"} <= columns


def test_learning_needs_one_worker(served: Served, tmp_path: Path) -> None:
    settings = ServeSettings(
        workspace=served.workspace,
        feedback_url=served.feedback_url,
        keys_file=served.keys_file,
        workers=2,
        rate_limit_file=tmp_path / "buckets",
        learn=True,
    )
    from bundlewise.serving.ratelimit import SharedTokenBucket

    SharedTokenBucket.create(tmp_path / "buckets")
    with pytest.raises(BundlewiseError, match="learning runs in one server process, not 2"):
        ServingState(settings)


def test_learning_is_switched_by_config_flag_and_environment(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "learn.toml"
    config.write_text("[learning]\nenabled = true\nholdout_share = 0.5\n", encoding="utf-8")
    base = {
        "workspace": served.workspace,
        "feedback_url": served.feedback_url,
        "keys_file": served.keys_file,
    }

    def learns(**settings: Any) -> bool:
        state = ServingState(ServeSettings(**{**base, **settings}))
        try:
            return state.learning is not None
        finally:
            state.close()

    assert not learns()
    assert learns(config_file=config)
    assert not learns(config_file=config, learn=False)
    assert learns(learn=True)
    monkeypatch.setenv("BUNDLEWISE_LEARN", "true")
    assert learns()
    state = ServingState(ServeSettings(**base, config_file=config))
    try:
        assert state.learning is not None
        assert state.learning.service.cfg.holdout_share == 0.5
    finally:
        state.close()


def test_a_reload_keeps_what_was_learned(
    served: Served, learning: TestClient, customers: list[str]
) -> None:
    _simulate(learning, customers, 60, beta=8.0)
    before = learning.get("/v1/learning").json()
    r = learning.post("/v1/admin/reload", headers={"X-API-Key": served.admin_key})
    assert r.status_code == 200, r.text
    after = learning.get("/v1/learning").json()
    assert after == before and after["events_used"] == 60
    # Offers and feedback go on with the rebuilt learner.
    customer = customers[11]
    offer = _offers(learning, customer)[0]
    assert offer["decision"]["policy_version"] == before["policy_version"]
    posted = learning.post("/v1/feedback", json=_event(offer, customer, 999, "accepted"))
    assert posted.status_code == 200, posted.text
    assert learning.get("/v1/learning").json()["events_used"] == 61


def test_versions_beyond_the_stored_window_expire(
    served: Served, customers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serving_learning, "KEEP_VERSIONS", 1)
    monkeypatch.setattr(serving_learning, "STORED_VERSIONS", 2)
    with _app(served, learn=True) as c:
        customer = customers[8]
        early = _offers(c, customer)[0]
        _simulate(c, customers, 160, beta=8.0)  # versions L0..L3
        r = c.post("/v1/feedback", json=_event(early, customer, 600, "accepted"))
        assert r.status_code == 422, r.text
        assert "has expired" in r.json()["error"]["message"]
        version = c.get("/v1/learning").json()["policy_version"]
    assert version.endswith(".L3")
    store = FeedbackStore(served.feedback_url)
    try:
        kept = store.policy_version_names(version.rpartition(".L")[0])
    finally:
        store.close()
    assert sorted(kept) == sorted({version, version[:-1] + "2"})
    # A restart rewrites none of the pruned versions.
    with _app(served, learn=True) as again:
        assert again.get("/v1/learning").json()["policy_version"] == version
    store = FeedbackStore(served.feedback_url)
    try:
        assert store.policy_version_names(version.rpartition(".L")[0]) == kept
    finally:
        store.close()


def test_the_learning_summary_shows_each_bundles_ladder_and_what_exploring_cost(
    served: Served, customers: list[str]
) -> None:
    with _app(served, learn=True) as c:
        answered = _simulate(c, customers, 150, beta=8.0, seed=2)
        state = c.get("/v1/learning").json()
    bundles = state["bundles"]
    assert bundles
    seen: dict[tuple[str, ...], list[tuple[dict[str, Any], bool]]] = {}
    for offer, _, accepted in answered:
        seen.setdefault(tuple(sorted(offer["item_ids"])), []).append((offer, accepted))
    assert [b["events"] for b in bundles] == sorted((b["events"] for b in bundles), reverse=True)
    assert sum(b["explored"] for b in bundles) > 0  # the run explored: its cost is shown
    for b in bundles:
        events = seen[tuple(b["item_ids"])]
        assert b["events"] == len(events)
        assert b["accepted"] == sum(a for _, a in events)
        assert b["explored"] == sum(o["decision"]["explore"] for o, _ in events)
        # exploring gives up expected profit; the preferred rung gives up none
        assert (b["profit_given_up_minor"] > 0) == (b["explored"] > 0)
        assert len(b["rungs"]) == len(b["p_accept"]) == len(b["expected_profit_minor"]) >= 2
        assert b["rungs"] == sorted(b["rungs"]) and b["rungs"][-1] <= b["list_total_minor"]
        assert all(0 < p < 1 for p in b["p_accept"])
        assert b["p_accept"] == sorted(b["p_accept"], reverse=True)  # dearer, less taken
        g = b["greedy_arm"]
        assert b["expected_profit_minor"][g] == max(b["expected_profit_minor"])
        assert b["appeal_offset_sd"] > 0
        for offer, _ in events:
            assert offer["price_minor"] in b["rungs"] or offer["decision"]["variant"] == "holdout"


def test_bundle_choice_learns_from_acceptances(served: Served, customers: list[str]) -> None:
    """A customer's last-ranked bundle accepted again and again, the others declined: once the
    policy refreshes, that bundle leads the customer's offers (ranks stay 1..n)."""
    with _app(served, learn=True) as c:
        customer = next(x for x in customers if len(_offers(c, x, n=5)) >= 3)
        offers = _offers(c, customer, n=5)
        last = offers[-1]
        k = 0
        for _ in range(40):
            for offer in offers:
                outcome = "accepted" if offer["offer_id"] == last["offer_id"] else "rejected"
                fresh = next(
                    o for o in _offers(c, customer, 5) if o["offer_id"] == offer["offer_id"]
                )
                r = c.post("/v1/feedback", json=_event(fresh, customer, k, outcome))
                assert r.status_code == 200, r.text
                k += 1
        after = _offers(c, customer, n=5)
    assert [o["offer_rank"] for o in after] == list(range(1, len(after) + 1))
    assert after[0]["offer_id"] == last["offer_id"]
    assert {o["offer_id"] for o in after} == {o["offer_id"] for o in offers}
    with _app(served, learn=True) as c:  # the same store replayed: n is honoured
        two = _offers(c, customer, n=2)
    assert [o["offer_id"] for o in two] == [o["offer_id"] for o in after[:2]]
