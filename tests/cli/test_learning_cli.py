"""``bundlewise learn``, ``evaluate-policy`` and ``experiment-report`` on the logs of a learning
server (issue 10): the small store trained, served with learning on, its offers answered by
simulated shoppers whose price sensitivity is known."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.special import expit
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.data import Workspace
from bundlewise.serving.app import create_app
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.store import FeedbackStore

pytestmark = pytest.mark.integration

runner = CliRunner()
N_EVENTS = 240


@dataclass(frozen=True)
class Logged:
    workspace: Path
    url: str
    online: dict[str, Any]
    variants: dict[str, int]


@pytest.fixture(scope="module")
def logged(small_trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    """A copy of the small trained workspace whose learning server got ``N_EVENTS`` answers
    from shoppers with sensitivity 4 (the prior's is 8)."""
    root = tmp_path_factory.mktemp("learning")
    workspace = root / "ws"
    shutil.copytree(small_trained, workspace)
    url = f"sqlite:///{root / 'feedback.db'}"
    key = KeyStore(root / "keys.json").create(("read",), "test")
    settings = ServeSettings(
        workspace=workspace,
        feedback_url=url,
        keys_file=root / "keys.json",
        learn=True,
        rate_limit_per_minute=10_000_000,
    )
    customers = sorted(
        {c for c in Workspace(workspace).table("offers").column("customer_id").to_pylist()}
        - {"__anonymous__"}
    )
    rng = np.random.default_rng(0)
    variants: dict[str, int] = {}
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        c.headers["X-API-Key"] = key
        for k in range(N_EVENTS):
            customer = customers[k % len(customers)]
            offers = c.get(f"/v1/customers/{customer}/offers").json()["offers"]
            offer = offers[(k // len(customers)) % len(offers)]
            appeal = offer["explanation"]["price_response"]["appeal"]
            p = float(expit(appeal - 4.0 * offer["price_minor"] / offer["list_total_minor"]))
            event = {
                "event_id": f"cli-{k}",
                "offer_id": offer["offer_id"],
                "customer_id": customer,
                "outcome": "accepted" if rng.random() < p else "rejected",
                "occurred_at": "2026-11-23T12:00:00Z",
                "policy_version": offer["decision"]["policy_version"],
            }
            assert c.post("/v1/feedback", json=event).status_code == 200
            variant = offer["decision"]["variant"]
            variants[variant] = variants.get(variant, 0) + 1
        online = c.get("/v1/learning").json()
    return Logged(workspace, url, online, variants)


def _run(logged: Logged, command: str, *args: str) -> Any:
    return runner.invoke(
        app, [command, "-w", str(logged.workspace), "--feedback-url", logged.url, *args]
    )


def test_learn_replays_the_online_posterior(logged: Logged) -> None:
    result = _run(logged, "learn", "--json")
    assert result.exit_code == 0, result.output
    batch = json.loads(result.stdout)
    assert batch["posterior"] == logged.online["posterior"]
    assert batch["events_used"] == N_EVENTS == logged.online["events_used"]
    assert batch["policy_version"] == logged.online["policy_version"]
    # (the direction the posterior moves is tested with more events per segment in
    # tests/serving/test_learning.py; a few dozen events here only check the replay)
    assert any(segment["events"] > 0 for segment in batch["segments"])
    plain = _run(logged, "learn")
    assert plain.exit_code == 0, plain.output
    assert f"Learned from {N_EVENTS} feedback events" in plain.output
    assert "Price sensitivity per segment: prior -> posterior mean +- sd (events):" in plain.output
    with Workspace(logged.workspace).connect(read_only=True) as con:
        rows = con.execute("SELECT posterior_version FROM learned_posterior").fetchall()
    versions = [r[0] for r in rows]
    assert versions == [batch["posterior_version"]]  # the same replay, saved once


def test_evaluate_policy_estimates_a_candidate(logged: Logged, tmp_path: Path) -> None:
    result = _run(logged, "evaluate-policy", "--greedy", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["candidate"]["explore_rate"] == 0.0
    assert out["n_evaluated"] == logged.variants["learning"]
    holdout = logged.variants.get("holdout", 0)
    reason = "holdout (list prices, not priced by the candidate)"
    assert out["skipped"] == ({reason: holdout} if holdout else {})
    for metric in ("profit", "revenue", "take_rate"):
        m = out["metrics"][metric]
        assert set(m) == {"logging_on_policy", "ips", "snips", "dr"}
        for kind in ("ips", "snips", "dr"):
            assert m[kind]["lower"] <= m[kind]["value"] <= m[kind]["upper"]
            assert 0 < m[kind]["ess"] <= out["n_evaluated"] + 1e-9
    assert 0.0 <= out["metrics"]["take_rate"]["snips"]["value"] <= 1.0
    rate = _run(logged, "evaluate-policy", "--explore-rate", "0.3", "--json")
    assert json.loads(rate.stdout)["candidate"]["explore_rate"] == 0.3
    # More rungs than the logs ever showed: prices the logs cannot support.
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[learning]\nn_rungs = 9\n", encoding="utf-8")
    wide = _run(logged, "evaluate-policy", "--config", str(candidate), "--explore-rate", "1")
    assert wide.exit_code == 0, wide.output
    assert "9 rungs" in wide.output
    assert "warning: the logs do not support this policy" in wide.output
    plain = _run(logged, "evaluate-policy")
    assert plain.exit_code == 0, plain.output
    for word in ("logging policy (on-policy)", "IPS", "SNIPS", "DR", "ESS", "take_rate"):
        assert word in plain.output


def test_experiment_report_compares_the_variants(logged: Logged) -> None:
    result = _run(logged, "experiment-report", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {k: v["n_offers"] for k, v in out["variants"].items()} == logged.variants
    assert out["weights"] == {"holdout": 0.1, "learning": 0.9}
    assert 0.0 <= out["srm"]["p_value"] <= 1.0
    if "holdout" in logged.variants:
        lift = out["lift"]["learning"]["take_rate"]["diff"]
        assert lift["lower"] <= lift["estimate"] <= lift["upper"]
    plain = _run(logged, "experiment-report")
    assert plain.exit_code == 0, plain.output
    assert "Experiment pricing (holdout 10%, learning 90%)" in plain.output
    assert "learning: " in plain.output and "Sample ratio check" in plain.output


def test_learning_commands_fail_in_one_line(logged: Logged, tmp_path: Path) -> None:
    both = _run(logged, "evaluate-policy", "--greedy", "--explore-rate", "0.1")
    assert both.exit_code == 2 and "not both" in both.output
    high = _run(logged, "evaluate-policy", "--explore-rate", "1.5")
    assert high.exit_code == 2 and "--explore-rate 1.5 should be in [0, 1]" in high.output
    missing = runner.invoke(
        app, ["learn", "-w", str(logged.workspace), "--feedback-url", f"sqlite:///{tmp_path}/no.db"]
    )
    assert missing.exit_code == 1 and "no feedback store at" in missing.output
    FeedbackStore(f"sqlite:///{tmp_path / 'empty.db'}").close()
    for command in ("learn", "evaluate-policy", "experiment-report"):
        empty = runner.invoke(
            app,
            [
                command,
                "-w",
                str(logged.workspace),
                "--feedback-url",
                f"sqlite:///{tmp_path}/empty.db",
            ],
        )
        assert empty.exit_code == 1, empty.output
        assert "has no accepted or rejected feedback with a policy_version" in empty.output
        assert "Traceback" not in empty.output
    untrained = runner.invoke(app, ["learn", "-w", str(tmp_path / "nothing")])
    assert untrained.exit_code == 1 and "Traceback" not in untrained.output
    no_config = _run(logged, "evaluate-policy", "--config", str(tmp_path / "nope.toml"))
    assert no_config.exit_code == 2 and "does not exist" in no_config.output


def test_serve_refuses_learning_with_several_workers(logged: Logged) -> None:
    result = runner.invoke(
        app,
        ["serve", "-w", str(logged.workspace), "--feedback-url", logged.url, "--learn",
         "--workers", "2"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "learning runs in one server process, not 2" in result.output
