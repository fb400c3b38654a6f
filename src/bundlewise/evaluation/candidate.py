"""Off-policy evaluation of a candidate learning policy from a learning server's logs: which
policy would go live, the logged decisions' full distributions recomputed by replay, and the
IPS, SNIPS and doubly robust estimates of :mod:`bundlewise.evaluation.ope`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from bundlewise.config import LearningConfig
from bundlewise.evaluation.ope import Estimate, evaluate_policy
from bundlewise.exceptions import BundlewiseError, GuardrailViolation
from bundlewise.learning.experiments import HOLDOUT, LEARNING
from bundlewise.learning.logged import LoggedEvent, LoggedLearner, served_decision
from bundlewise.learning.policy import LadderPolicy, OfferContext, ThompsonPolicy
from bundlewise.pricing.pricer import Pricer

FloatArray = npt.NDArray[np.float64]

#: Reward columns of the evaluation (per offer).
METRICS: tuple[str, ...] = ("profit", "revenue", "take_rate")
#: Tolerance of a recomputed propensity against the logged one.
PROPENSITY_ATOL = 1e-9


def _on_policy(values: FloatArray) -> dict[str, float]:
    n = values.size
    m = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan
    return {"value": m, "lower": m - half, "upper": m + half, "n": n}


def _estimate(e: Estimate) -> dict[str, Any]:
    return e.as_dict()


def evaluate_candidate(
    pricer: Pricer,
    logging_cfg: LearningConfig,
    candidate_cfg: LearningConfig,
    events: Sequence[LoggedEvent],
    *,
    explore_rate: float | None = None,
) -> dict[str, Any]:
    """Off-policy estimates of a candidate policy's profit, revenue and take rate per offer from
    logged events, beside the logging policy's on-policy means.

    The logging policies are rebuilt by replaying the events under ``logging_cfg`` (what the
    server learned with), and every logged decision's full distribution is recomputed from its
    offer id and version (the holdout's: its one rung); a logged propensity that the replay does
    not reproduce is an error (the server ran with other ``[learning]`` settings). The candidate
    is the policy that would go live now: the posterior of the same events replayed under
    ``candidate_cfg``, with that learner's explore rate, or ``explore_rate`` (0: greedy). It
    would replace the learning variant's policy, so it is evaluated on the learning variant's
    offers (the holdout keeps its list prices). Actions are the prices of
    the union of the logging and the candidate ladders, so a candidate with other rungs puts
    mass where the logs have none (the support warning says so). Rewards of an offer: profit
    ``accepted x (price - cost)``, revenue ``accepted x price``, take rate ``accepted``; the
    doubly robust reward model is the candidate posterior's mean acceptance.

    Raises
    ------
    BundlewiseError
        With fewer than 2 usable logged events, or propensities the replay does not reproduce.
    """
    prefix = pricer.model_version + ".L"
    policies: dict[str, LadderPolicy] = {}

    def keep(policy: LadderPolicy, _: LoggedEvent | None) -> None:
        policies[policy.version] = policy

    logging = LoggedLearner(pricer, logging_cfg, on_version=keep).observe_all(events)
    candidate = LoggedLearner(pricer, candidate_cfg).observe_all(events)
    current = candidate.learner.policy()
    if explore_rate is None:
        target: LadderPolicy = current
    else:
        target = ThompsonPolicy(
            pricer,
            candidate.posterior,
            candidate_cfg,
            f"{current.version}.candidate-q{explore_rate:g}",
            explore_rate,
        )
    skipped: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    mismatched = 0
    for e in events:
        if not e.policy_version.startswith(prefix):
            skipped["served by another model"] += 1
            continue
        if e.variant == HOLDOUT:
            skipped["holdout (list prices, not priced by the candidate)"] += 1
            continue
        policy = policies.get(e.policy_version)
        if policy is None:
            skipped["policy version not reproduced by the replay"] += 1
            continue
        try:
            logged = served_decision(
                policy, e.customer_id, e.item_ids, e.offer_id, variant=LEARNING
            )
            target_ladder = target.ladder(e.item_ids)
            target_probs = target.probabilities(e.customer_id, e.item_ids, e.offer_id)
        except (KeyError, GuardrailViolation):
            skipped["item not in the catalog or bundle without an allowed price"] += 1
            continue
        d = logged.decision
        if (
            d.price_minor != e.price_minor
            or abs(d.propensity - e.propensity) > PROPENSITY_ATOL
            or (e.arm >= 0 and d.arm != e.arm)
        ):
            mismatched += 1
            continue
        prices = np.union1d(logged.ladder.rungs, target_ladder.rungs)
        rows.append(
            {
                "event": e,
                "prices": prices,
                "logged_probs": _spread(logged.ladder.rungs, d.probabilities, prices),
                "target_probs": _spread(target_ladder.rungs, target_probs, prices),
                "action": int(np.searchsorted(prices, e.price_minor)),
                "context": logged.context,
                "cost": logged.ladder.cost_minor,
            }
        )
    if mismatched:
        raise BundlewiseError(
            f"{mismatched} of {len(events)} logged decisions differ from a replay of the logs "
            "under these [learning] settings (the server learned with another config?): give "
            "the server's config with --logging-config."
        )
    n = len(rows)
    if n < 2:
        raise BundlewiseError(
            f"{n} logged accepted/rejected event(s) with a decision of model "
            f"{pricer.model_version} can be evaluated (of {len(events)}); off-policy evaluation "
            "needs at least 2: serve with learning on and post feedback with policy_version."
        )
    k = max(r["prices"].size for r in rows)
    logged_probs = np.zeros((n, k))
    target_probs = np.zeros((n, k))
    q = {m: np.zeros((n, k)) for m in METRICS}
    actions = np.zeros(n, dtype=np.int64)
    propensity = np.zeros(n)
    rewards = {m: np.zeros(n) for m in METRICS}
    posterior = candidate.posterior
    for i, r in enumerate(rows):
        ev: LoggedEvent = r["event"]
        prices = r["prices"].astype(np.float64)
        m = prices.size
        logged_probs[i, :m] = r["logged_probs"]
        target_probs[i, :m] = r["target_probs"]
        actions[i] = r["action"]
        propensity[i] = ev.propensity
        y = 1.0 if ev.accepted else 0.0
        margin = float(ev.price_minor - r["cost"])
        rewards["profit"][i] = y * margin
        rewards["revenue"][i] = y * ev.price_minor
        rewards["take_rate"][i] = y
        ctx: OfferContext = r["context"]
        delta, beta, omega = posterior.mean(ctx.segment, ctx.bundle)
        p = expit(ctx.appeal + delta + omega - beta * prices / ctx.list_total_minor)
        q["take_rate"][i, :m] = p
        q["revenue"][i, :m] = p * prices
        q["profit"][i, :m] = p * (prices - r["cost"])
    estimates = evaluate_policy(
        rewards, actions, propensity, target_probs, q, logged_probs=logged_probs
    )
    warnings = sorted(
        {x.warning for by_kind in estimates.values() for x in by_kind.values() if x.warning}
    )
    return {
        "model_version": pricer.model_version,
        "candidate": {
            "policy_version": target.version,
            "explore_rate": target.explore_rate,
            "n_rungs": candidate_cfg.n_rungs,
        },
        "logging_policy_version": logging.learner.version,
        "n_events": len(events),
        "n_evaluated": n,
        "skipped": dict(sorted(skipped.items())),
        "metrics": {
            name: {
                "logging_on_policy": _on_policy(rewards[name]),
                **{kind: _estimate(est) for kind, est in estimates[name].items()},
            }
            for name in METRICS
        },
        "warnings": warnings,
    }


def _spread(rungs: npt.NDArray[np.int64], probs: Any, prices: npt.NDArray[np.int64]) -> FloatArray:
    """A distribution over ``rungs`` as one over ``prices`` (a superset of them)."""
    out = np.zeros(prices.size)
    out[np.searchsorted(prices, rungs)] = np.asarray(probs, dtype=np.float64)
    return out


__all__ = ["METRICS", "PROPENSITY_ATOL", "evaluate_candidate"]
