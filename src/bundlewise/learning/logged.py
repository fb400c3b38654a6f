"""The learning loop over logged offers: the decision a learning server serves, the replay of
stored feedback, what the posterior learned per segment and the experiment's rows (the
off-policy evaluation of a candidate is :mod:`bundlewise.evaluation.candidate`).

**Served decision.** A learning server prices each offer with :func:`served_decision`: the
customer's sticky variant (:func:`bundlewise.learning.experiments.assign`); in the ``learning``
variant the policy's decision keyed by the offer id (:meth:`LadderPolicy.decide`), in the
``holdout`` variant the list price, i.e. the ladder's top rung (the list total whenever its
price ending is allowed), with propensity 1. Both are deterministic functions of the customer,
the offer (id and items) and the policy version: the server recomputes the decision of a
feedback event from them, and the off-policy evaluation recomputes every logged decision's
whole distribution from the logs.

**Replay.** :class:`LoggedLearner` is the one code path from a stored event to the posterior:
the server feeds it each event as it commits and rebuilds it at start from the store, and
``bundlewise learn`` replays the store through it; the same events in the same order give the
same posterior, bit for bit. An event the pricer cannot read any more (an item that left the
catalog, a bundle without an allowed price) is skipped and counted, the same way everywhere.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from bundlewise.config import LearningConfig
from bundlewise.exceptions import GuardrailViolation
from bundlewise.learning.experiments import HOLDOUT, assign, variant_weights
from bundlewise.learning.ladder import PriceLadder
from bundlewise.learning.policy import (
    Decision,
    LadderPolicy,
    Learner,
    OfferContext,
    PolicyFactory,
    offer_context,
)
from bundlewise.learning.posterior import ResponsePosterior
from bundlewise.pricing.pricer import Pricer

FloatArray = npt.NDArray[np.float64]


# -- the decision of one served offer ------------------------------------------------------


@dataclass(frozen=True)
class ServedDecision:
    """An offer as a learning server prices it.

    Attributes
    ----------
    decision
        The policy's decision (for the holdout: the top rung, propensity 1, not exploring).
    variant
        The customer's experiment variant (``learning`` or ``holdout``).
    ladder
        The bundle's price ladder.
    context
        The trained pricer's view of the offer (segment, appeal, totals).
    p_accept
        Acceptance probability at the price under the policy's posterior mean.
    """

    decision: Decision
    variant: str
    ladder: PriceLadder
    context: OfferContext
    p_accept: float

    def to_dict(self) -> dict[str, Any]:
        """The ``decision`` object of an offer in the API."""
        d = self.decision
        return {
            "policy_version": d.policy_version,
            "arm": d.arm,
            "price_minor": d.price_minor,
            "propensity": d.propensity,
            "explore": d.explore,
            "variant": self.variant,
            "ladder": [int(p) for p in self.ladder.rungs],
        }


def customer_variant(customer_id: str, cfg: LearningConfig) -> str:
    """The customer's sticky variant of the ``[learning]`` experiment."""
    return assign(str(customer_id), cfg.experiment_id, variant_weights(cfg))


def served_decision(
    policy: LadderPolicy,
    customer_id: str,
    item_ids: Sequence[str],
    offer_id: str,
    *,
    variant: str | None = None,
) -> ServedDecision:
    """The decision a learning server serves for this offer under ``policy`` (see the module
    docstring); ``variant`` defaults to the customer's.

    Raises
    ------
    KeyError
        For an item id the pricer's catalog does not have.
    GuardrailViolation
        When no price of the bundle satisfies the guardrails.
    """
    variant = variant or customer_variant(customer_id, policy.cfg)
    ladder = policy.ladder(item_ids)
    ctx = policy.context(customer_id, item_ids)
    if variant == HOLDOUT:
        values = policy.mean_values(ctx, ladder)
        top = ladder.n_arms - 1
        probs = np.zeros(ladder.n_arms)
        probs[top] = 1.0
        decision = Decision(
            price_minor=int(ladder.rungs[top]),
            arm=top,
            propensity=1.0,
            explore=False,
            policy_version=policy.version,
            probabilities=tuple(float(p) for p in probs),
            greedy_arm=int(np.argmax(values)),
            expected_profit_minor=float(values[top]),
            profit_given_up_minor=0.0,
        )
    else:
        decision = policy.decide(customer_id, item_ids, offer_id)
    delta, beta, omega = policy.posterior.mean(ctx.segment, ctx.bundle)
    rel = decision.price_minor / ctx.list_total_minor
    p_accept = float(expit(ctx.appeal + delta + omega - beta * rel))
    return ServedDecision(decision, variant, ladder, ctx, p_accept)


# -- logged events and their replay --------------------------------------------------------


@dataclass(frozen=True)
class LoggedEvent:
    """One stored accepted/rejected event with its decision (what the learner reads: it has
    the attributes of :class:`bundlewise.learning.policy.Feedback`)."""

    event_id: str
    offer_id: str
    customer_id: str
    accepted: bool
    item_ids: tuple[str, ...]
    policy_version: str
    arm: int
    price_minor: int
    propensity: float
    explore: bool
    variant: str | None
    expected_profit_minor: float | None
    profit_given_up_minor: float
    received_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LoggedEvent:
        """From a ``feedback_events`` row (``item_ids`` a sequence or its JSON text).

        Raises
        ------
        ValueError
            For a row without a decision or with an outcome other than accepted/rejected.
        """
        outcome = row["outcome"]
        if outcome not in ("accepted", "rejected"):
            raise ValueError(f"event {row['event_id']}: outcome {outcome!r} is not learned from.")
        if row.get("policy_version") is None or row.get("price_offered_minor") is None:
            raise ValueError(f"event {row['event_id']} has no decision (no policy_version).")
        items = row.get("item_ids") or ()
        if isinstance(items, str):
            items = json.loads(items)
        expected = row.get("expected_profit_minor")
        return cls(
            event_id=str(row["event_id"]),
            offer_id=str(row["offer_id"]),
            customer_id=str(row["customer_id"]),
            accepted=outcome == "accepted",
            item_ids=tuple(str(i) for i in items),
            policy_version=str(row["policy_version"]),
            arm=int(row["arm"]) if row.get("arm") is not None else -1,
            price_minor=int(row["price_offered_minor"]),
            propensity=float(row["propensity"]) if row.get("propensity") is not None else 1.0,
            explore=bool(row.get("explore") or False),
            variant=row.get("variant"),
            expected_profit_minor=None if expected is None else float(expected),
            profit_given_up_minor=float(row.get("profit_given_up_minor") or 0.0),
            received_at=str(row.get("received_at") or ""),
        )


#: Called with each new policy version and the event that began it (None for the first).
VersionHook = Callable[[LadderPolicy, LoggedEvent | None], None]


@dataclass
class BundleStats:
    """What the learner saw of one bundle: events learned from, acceptances, explored offers,
    the expected profit exploring gave up, and the revenue of accepted offers (minor units)."""

    events: int = 0
    accepted: int = 0
    explored: int = 0
    profit_given_up_minor: float = 0.0
    revenue_minor: int = 0

    def add(self, event: LoggedEvent) -> None:
        self.events += 1
        self.accepted += int(event.accepted)
        self.explored += int(event.explore)
        self.profit_given_up_minor += event.profit_given_up_minor
        self.revenue_minor += event.price_minor if event.accepted else 0


@dataclass
class LoggedLearner:
    """A :class:`Learner` fed with logged events: the one path from the store to the posterior
    (online in the server, in batch in ``bundlewise learn``).

    Parameters
    ----------
    pricer, cfg
        The trained pricer (the prior) and the ``[learning]`` section.
    keep_versions
        Policy versions the learner keeps in memory.
    on_version
        Called with every policy version as it is frozen (the first one too).
    make_policy
        Builds each version's policy (default :class:`ThompsonPolicy`).
    """

    pricer: Pricer
    cfg: LearningConfig
    keep_versions: int = 8
    on_version: VersionHook | None = None
    make_policy: PolicyFactory | None = None
    learner: Learner = field(init=False)
    n_used: int = field(init=False, default=0)
    skipped: Counter[str] = field(init=False, default_factory=Counter)
    last: tuple[str, str] | None = field(init=False, default=None)
    #: Per bundle (sorted item ids): what was learned from it (:class:`BundleStats`).
    bundle_stats: dict[tuple[str, ...], BundleStats] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.learner = Learner(
            self.pricer, self.cfg, keep_versions=self.keep_versions, make_policy=self.make_policy
        )
        if self.on_version is not None:
            self.on_version(self.learner.policy(), None)

    @property
    def n_skipped(self) -> int:
        """Events that could not be learned from (see :attr:`skipped` for why)."""
        return sum(self.skipped.values())

    @property
    def posterior(self) -> ResponsePosterior:
        return self.learner.posterior

    def observe(self, event: LoggedEvent) -> bool:
        """Learn from one event; returns whether a new policy version began. An event the
        pricer cannot read is skipped and counted (never raised)."""
        self.last = (event.received_at, event.event_id)
        try:
            new = self.learner.observe(event)
        except KeyError:
            self.skipped["item not in the catalog"] += 1
            return False
        except GuardrailViolation:
            self.skipped["bundle without an allowed price"] += 1
            return False
        except ValueError:
            self.skipped["invalid price"] += 1
            return False
        self.n_used += 1
        self.bundle_stats.setdefault(tuple(sorted(event.item_ids)), BundleStats()).add(event)
        if new and self.on_version is not None:
            self.on_version(self.learner.policy(), event)
        return new

    def observe_all(self, events: Iterable[LoggedEvent]) -> LoggedLearner:
        for event in events:
            self.observe(event)
        return self


def logged_events(rows: Iterable[Mapping[str, Any]]) -> Iterable[LoggedEvent]:
    """:meth:`LoggedEvent.from_row` of each row."""
    return (LoggedEvent.from_row(r) for r in rows)


def segment_changes(pricer: Pricer, posterior: ResponsePosterior) -> list[dict[str, Any]]:
    """Per segment (the pricer's and any with feedback): the prior sensitivity, the posterior
    mean and standard deviation of the sensitivity and of the appeal offset, events used."""
    names = sorted(set(pricer.sensitivity) | set(posterior.segments()))
    out = []
    for name in names:
        mean, cov, n = posterior.segment_state(name)
        prior = posterior.prior_sensitivity.get(name, posterior.default_sensitivity)
        out.append(
            {
                "segment": name,
                "events": int(n),
                "prior_sensitivity": float(prior),
                "sensitivity": float(mean[1]),
                "sensitivity_sd": math.sqrt(max(float(cov[1, 1]), 0.0)),
                "appeal_offset": float(mean[0]),
                "appeal_offset_sd": math.sqrt(max(float(cov[0, 0]), 0.0)),
            }
        )
    return out


# -- the experiment ------------------------------------------------------------------------


def experiment_rows(
    pricer: Pricer, events: Iterable[LoggedEvent]
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Rows of :func:`bundlewise.learning.experiments.experiment_report` (variant, accepted,
    price offered, bundle cost, customer) of the events with a variant, and why others were
    left out."""
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    for e in events:
        if e.variant is None:
            skipped["no variant"] += 1
            continue
        try:
            ctx = offer_context(pricer, e.customer_id, e.item_ids)
        except (KeyError, GuardrailViolation):
            skipped["item not in the catalog or bundle without a price"] += 1
            continue
        rows.append(
            {
                "variant": e.variant,
                "accepted": e.accepted,
                "price_minor": e.price_minor,
                "cost_minor": ctx.cost_minor,
                "customer_id": e.customer_id,
            }
        )
    return rows, skipped


def bundle_summaries(
    policy: LadderPolicy, stats: Mapping[tuple[str, ...], BundleStats], top: int = 50
) -> list[dict[str, Any]]:
    """The ``top`` bundles with the most feedback, each with its price ladder, the posterior
    mean acceptance and expected profit of every rung for an anonymous shopper (the rung the
    policy now prefers marked), the bundle's appeal offset (mean and sd), and what exploring
    it cost (:class:`BundleStats`)."""
    ranked = sorted(stats.items(), key=lambda kv: (-kv[1].events, kv[0]))[:top]
    out = []
    for key, st in ranked:
        try:
            ladder = policy.ladder(key)
            ctx = policy.context(None, key)
        except (KeyError, GuardrailViolation):
            continue
        delta, beta, omega = policy.posterior.mean(ctx.segment, ctx.bundle)
        p_accept = expit(ctx.appeal + delta + omega - beta * ladder.rel_prices)
        values = policy.mean_values(ctx, ladder)
        mean, var, n = policy.posterior.bundle_state(ctx.bundle)
        items = [policy.pricer.catalog.get(i) for i in key]
        titles = [item.title if item is not None else i for item, i in zip(items, key, strict=True)]
        currency = next((item.currency for item in items if item is not None), "")
        out.append(
            {
                "item_ids": list(key),
                "titles": titles,
                "currency": currency,
                "list_total_minor": int(ladder.list_total_minor),
                "rungs": [int(r) for r in ladder.rungs],
                "p_accept": [float(p) for p in p_accept],
                "expected_profit_minor": [float(v) for v in values],
                "greedy_arm": int(np.argmax(values)),
                "appeal_offset": float(mean),
                "appeal_offset_sd": math.sqrt(max(float(var), 0.0)),
                "events": st.events,
                "accepted": st.accepted,
                "take_rate": st.accepted / st.events if st.events else 0.0,
                "explored": st.explored,
                "profit_given_up_minor": st.profit_given_up_minor,
                "revenue_minor": st.revenue_minor,
            }
        )
    return out


__all__ = [
    "BundleStats",
    "bundle_summaries",
    "LoggedEvent",
    "LoggedLearner",
    "ServedDecision",
    "customer_variant",
    "experiment_rows",
    "logged_events",
    "segment_changes",
    "served_decision",
]
