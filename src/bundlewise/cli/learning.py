"""What ``bundlewise learn``, ``evaluate-policy`` and ``experiment-report`` compute and print:
the learning loop read back from a feedback store (see :mod:`bundlewise.learning.logged`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bundlewise.config import LearningConfig, load_config
from bundlewise.data import Workspace
from bundlewise.evaluation.candidate import METRICS, evaluate_candidate
from bundlewise.exceptions import BundlewiseError, UsageError
from bundlewise.learning.experiments import experiment_report, variant_weights
from bundlewise.learning.logged import (
    LoggedEvent,
    LoggedLearner,
    experiment_rows,
    logged_events,
    segment_changes,
)
from bundlewise.money import currency_exponent
from bundlewise.pricing.pricer import Pricer

#: The workspace table ``bundlewise learn`` appends each learned posterior to.
POSTERIOR_TABLE = "learned_posterior"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {POSTERIOR_TABLE} (
    posterior_version VARCHAR PRIMARY KEY,
    model_version VARCHAR NOT NULL,
    policy_version VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    events_used BIGINT NOT NULL,
    events_skipped BIGINT NOT NULL,
    last_received_at VARCHAR,
    budget_json VARCHAR NOT NULL,
    posterior_json VARCHAR NOT NULL
)
"""


@dataclass(frozen=True)
class Logs:
    """The trained pricer, the ``[learning]`` settings and the logged events of one store."""

    pricer: Pricer
    cfg: LearningConfig
    events: list[LoggedEvent]
    source: str


def feedback_url(workspace: Path, url: str | None) -> str:
    """The store URL: the one given, else the server's default (SQLite in the workspace)."""
    return url or f"sqlite:///{workspace / 'feedback.db'}"


def _redacted(url: str) -> str:
    """A URL fit to print (no password)."""
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the feedback store"


def read_logs(workspace: Path, url: str | None, config: Path | None) -> Logs:
    """Open the trained workspace and the feedback store and read the learning events.

    Raises
    ------
    BundlewiseError
        No trained model, no store at a SQLite path, a store that cannot be read.
    UsageError
        A config file that does not exist.
    """
    from bundlewise.serving.store import FeedbackStore

    pricer = Pricer.load(Workspace(workspace))
    if config is not None:
        if not config.is_file():
            raise UsageError(f"config file {config} does not exist.")
        cfg = load_config(config).learning
    else:
        cfg = pricer.config.learning
    resolved = feedback_url(workspace, url)
    shown = _redacted(resolved)
    if resolved.startswith("sqlite:///"):
        path = Path(resolved.removeprefix("sqlite:///"))
        if not path.is_file():
            raise BundlewiseError(
                f"no feedback store at {path}: serve with --learn and post feedback first, or "
                "give --feedback-url."
            )
    try:
        store = FeedbackStore(resolved)
    except Exception as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise BundlewiseError(
            f"cannot open the feedback store {shown}: {type(exc).__name__}: "
            f"{first[0] if first else ''}"
        ) from None
    try:
        events = list(logged_events(store.learning_events()))
    except Exception as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise BundlewiseError(
            f"cannot read the feedback store {shown}: {first[0] if first else exc}"
        ) from None
    finally:
        store.close()
    return Logs(pricer, cfg, events, shown)


def _need_events(logs: Logs) -> None:
    if not logs.events:
        raise BundlewiseError(
            f"{logs.source} has no accepted or rejected feedback with a policy_version: serve "
            "with --learn and send each offer's decision.policy_version with its feedback."
        )


# -- learn ---------------------------------------------------------------------------------


def learn(workspace: Path, logs: Logs) -> dict[str, Any]:
    """Replay the logs into the posterior, save it in the workspace, say what changed.

    Raises
    ------
    BundlewiseError
        When the store has no event to learn from.
    """
    _need_events(logs)
    logged = LoggedLearner(logs.pricer, logs.cfg).observe_all(logs.events)
    learner = logged.learner
    posterior = learner.posterior
    version = f"{logs.pricer.model_version}.learned-{logged.n_used}"
    created = datetime.now(UTC).replace(tzinfo=None)
    last = logs.events[-1].received_at
    with Workspace(workspace).connect() as con:
        con.execute(_CREATE)
        con.execute(f"DELETE FROM {POSTERIOR_TABLE} WHERE posterior_version = ?", [version])
        con.execute(
            f"INSERT INTO {POSTERIOR_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                version,
                logs.pricer.model_version,
                learner.version,
                created,
                logged.n_used,
                logged.n_skipped,
                last,
                json.dumps(learner.budget.to_dict()),
                posterior.to_json(),
            ],
        )
    return {
        "model_version": logs.pricer.model_version,
        "posterior_version": version,
        "policy_version": learner.version,
        "explore_rate": learner.policy().explore_rate,
        "feedback_store": logs.source,
        "events_used": logged.n_used,
        "events_skipped": logged.n_skipped,
        "skipped": dict(sorted(logged.skipped.items())),
        "last_received_at": last,
        "bundles_with_feedback": sum(1 for _ in posterior.bundles()),
        "segments": segment_changes(logs.pricer, posterior),
        "budget": learner.budget.to_dict(),
        "table": POSTERIOR_TABLE,
        "posterior": posterior.to_dict(),
    }


def format_learn(result: dict[str, Any]) -> str:
    lines = [
        f"Learned from {result['events_used']:,} feedback events of {result['feedback_store']} "
        f"(model {result['model_version']}); posterior {result['posterior_version']} saved in "
        f"the workspace table {result['table']}; the policy would now be "
        f"{result['policy_version']} (explore rate {result['explore_rate']:.3f}).",
    ]
    if result["events_skipped"]:
        why = ", ".join(f"{n} {reason}" for reason, n in result["skipped"].items())
        lines.append(f"Skipped {result['events_skipped']:,} events ({why}).")
    lines.append("Price sensitivity per segment: prior -> posterior mean +- sd (events):")
    for s in result["segments"]:
        lines.append(
            f"  {s['segment']}: {s['prior_sensitivity']:.2f} -> {s['sensitivity']:.2f} "
            f"+- {s['sensitivity_sd']:.2f}; appeal offset {s['appeal_offset']:+.2f} "
            f"+- {s['appeal_offset_sd']:.2f} ({s['events']:,} events)"
        )
    b = result["budget"]
    lines.append(
        f"Explored {b['n_explored']:,} of {b['n_observed']:,} offers "
        f"({b['explored_share']:.1%}); expected profit given up {b['given_up_share']:.2%}; "
        f"{result['bundles_with_feedback']:,} bundles with feedback."
    )
    return "\n".join(lines)


# -- evaluate-policy -----------------------------------------------------------------------


def evaluate(
    logs: Logs,
    candidate: Path | None,
    explore_rate: float | None,
    greedy: bool,
) -> dict[str, Any]:
    """Off-policy evaluation of the candidate (see :func:`evaluate_candidate`).

    Raises
    ------
    UsageError
        For --explore-rate with --greedy, a rate outside [0, 1], a missing config file.
    BundlewiseError
        Too few logged events, or logs the replay does not reproduce.
    """
    if greedy and explore_rate is not None:
        raise UsageError("give --explore-rate or --greedy, not both.")
    if explore_rate is not None and not (math.isfinite(explore_rate) and 0 <= explore_rate <= 1):
        raise UsageError(f"--explore-rate {explore_rate} should be in [0, 1].")
    if candidate is not None and not candidate.is_file():
        raise UsageError(f"config file {candidate} does not exist.")
    _need_events(logs)
    candidate_cfg = load_config(candidate).learning if candidate is not None else logs.cfg
    rate = 0.0 if greedy else explore_rate
    result = evaluate_candidate(
        logs.pricer, logs.cfg, candidate_cfg, logs.events, explore_rate=rate
    )
    result["candidate"]["config"] = str(candidate) if candidate is not None else None
    result["feedback_store"] = logs.source
    result["currency"] = logs.pricer.currency
    return result


def _money(minor: float, exponent: int) -> str:
    return f"{minor / 10**exponent:,.{max(exponent, 0)}f}"


def _value(metric: str, x: float, exponent: int) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.1%}" if metric == "take_rate" else _money(x, exponent)


def _interval(metric: str, est: dict[str, Any], exponent: int) -> str:
    return (
        f"{_value(metric, est['value'], exponent)} "
        f"[{_value(metric, est['lower'], exponent)}, {_value(metric, est['upper'], exponent)}]"
    )


def format_evaluate(result: dict[str, Any]) -> str:
    exponent = currency_exponent(result["currency"])
    c = result["candidate"]
    lines = [
        f"Candidate policy {c['policy_version']} (explore rate {c['explore_rate']:.3f}, "
        f"{c['n_rungs']} rungs) on {result['n_evaluated']:,} logged offers of model "
        f"{result['model_version']} ({result['feedback_store']}); per offer, money in "
        f"{result['currency']}, 95% intervals:",
    ]
    header = f"  {'metric':<10} {'logging policy (on-policy)':<30} "
    header += f"{'IPS':<30} {'SNIPS':<30} {'DR':<30} ESS"
    lines.append(header)
    for metric in METRICS:
        m = result["metrics"][metric]
        row = f"  {metric:<10} {_interval(metric, m['logging_on_policy'], exponent):<30} "
        for kind in ("ips", "snips", "dr"):
            row += f"{_interval(metric, m[kind], exponent) if kind in m else 'n/a':<30} "
        lines.append(row + f"{m['ips']['ess']:,.0f}")
    if result["skipped"]:
        why = ", ".join(f"{n} {reason}" for reason, n in result["skipped"].items())
        lines.append(f"Left out: {why}.")
    for w in result["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


# -- experiment-report ---------------------------------------------------------------------


def report(logs: Logs) -> dict[str, Any]:
    """The experiment report of the logged offers (lift per variant, SRM check).

    Raises
    ------
    BundlewiseError
        When no logged event has a variant.
    """
    _need_events(logs)
    rows, skipped = experiment_rows(logs.pricer, logs.events)
    if not rows:
        raise BundlewiseError(f"no logged event of {logs.source} has an experiment variant.")
    out = experiment_report(rows, variant_weights(logs.cfg))
    out.update(
        experiment_id=logs.cfg.experiment_id,
        weights=variant_weights(logs.cfg),
        feedback_store=logs.source,
        currency=logs.pricer.currency,
        skipped=dict(sorted(skipped.items())),
    )
    return out


_METRIC_NAMES = {
    "take_rate": "take rate",
    "revenue_per_offer": "revenue per offer",
    "profit_per_offer": "profit per offer",
}


def _ci(metric: str, est: dict[str, Any], exponent: int, *, diff: bool = False) -> str:
    def show(x: float | None) -> str:
        if x is None:
            return "n/a"
        if metric == "take_rate":
            return f"{x:+.1%}" if diff else f"{x:.1%}"
        text = _money(x, exponent)
        return f"+{text}" if diff and x >= 0 else text

    if est.get("lower") is None:
        return show(est.get("estimate"))
    return f"{show(est['estimate'])} [{show(est['lower'])}, {show(est['upper'])}]"


def format_report(result: dict[str, Any]) -> str:
    exponent = currency_exponent(result["currency"])
    weights = ", ".join(f"{k} {v:.0%}" for k, v in result["weights"].items())
    lines = [
        f"Experiment {result['experiment_id']} ({weights}) from {result['feedback_store']}; "
        f"money in {result['currency']}, 95% intervals:"
    ]
    for name, v in result["variants"].items():
        customers = f", {v['n_customers']:,} customers" if v["n_customers"] is not None else ""
        parts = "; ".join(f"{_METRIC_NAMES[m]} {_ci(m, v[m], exponent)}" for m in _METRIC_NAMES)
        lines.append(f"  {name}: {v['n_offers']:,} offers{customers}; {parts}")
    for name, lift in result["lift"].items():
        lines.append(f"Lift of {name} against {result['control']}:")
        for m in _METRIC_NAMES:
            rel = lift[m]["relative"]
            rel_text = (
                "n/a"
                if rel["estimate"] is None
                else f"{rel['estimate']:+.1%}"
                + (
                    f" [{rel['lower']:+.1%}, {rel['upper']:+.1%}]"
                    if rel["lower"] is not None
                    else ""
                )
            )
            lines.append(
                f"  {_METRIC_NAMES[m]}: {_ci(m, lift[m]['diff'], exponent, diff=True)} "
                f"(relative {rel_text})"
            )
    srm = result["srm"]
    if srm is not None:
        lines.append(
            f"Sample ratio check ({srm['unit']} per variant {srm['observed']}): chi-square "
            f"p = {srm['p_value']:.3g}"
        )
    if result["skipped"]:
        why = ", ".join(f"{n} {reason}" for reason, n in result["skipped"].items())
        lines.append(f"Left out: {why}.")
    for w in result["warnings"]:
        lines.append(f"warning: {w}")
    return "\n".join(lines)


__all__ = [
    "POSTERIOR_TABLE",
    "Logs",
    "evaluate",
    "feedback_url",
    "format_evaluate",
    "format_learn",
    "format_report",
    "learn",
    "read_logs",
    "report",
]
