"""The learning loop inside the server: decisions on the hot path, learning from feedback.

A :class:`LearningService` belongs to one model (its pricer is the prior) and holds a
:class:`~bundlewise.learning.logged.LoggedLearner`. Offers and quotes read its current frozen
policy (:meth:`LearningService.offer_decision`): no store write, no posterior update, and a
decision cache keyed by ``(policy version, customer, offer id)``. Feedback sent with a
``policy_version`` is checked by recomputing that decision (:meth:`LearningService.recompute`,
from memory, else from the ``policy_versions`` table); :meth:`LearningLoop.record` then stores
the event with the decision and, after the commit, applies it to the learner, both under one
lock that also assigns ``received_at`` (strictly increasing), so the store's order
``received_at, event_id`` is the order of learning. A new policy version is written to
``policy_versions``. At start (and reload) the learner is rebuilt by replaying the store, so a
crash loses nothing that was acknowledged.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bundlewise.config import LearningConfig
from bundlewise.exceptions import GuardrailViolation
from bundlewise.learning.logged import (
    BundleStats,
    LoggedEvent,
    LoggedLearner,
    ServedDecision,
    bundle_summaries,
    customer_variant,
    segment_changes,
    served_decision,
)
from bundlewise.learning.policy import LadderPolicy, OfferContext, ThompsonPolicy, offer_context
from bundlewise.learning.posterior import ResponsePosterior
from bundlewise.money import format_money
from bundlewise.pricing.pricer import Pricer
from bundlewise.serving.store import (
    LEARNED_OUTCOMES,
    FeedbackEvent,
    FeedbackStore,
    StoreUnavailable,
    iso_received,
    received_now,
)

logger = logging.getLogger("bundlewise.serving")

#: Policy versions kept in memory (older ones are rebuilt from ``policy_versions``).
KEEP_VERSIONS = 64
#: Decisions cached for the hot path (emptied when full and when the version changes).
DECISION_CACHE_SIZE = 200_000
#: Policy versions rebuilt from the store and kept.
REBUILT_VERSIONS = 16
#: Policy versions of a model kept in ``policy_versions`` (each with its whole posterior);
#: feedback on an offer of an older version is refused as expired.
STORED_VERSIONS = 1000
#: Offer contexts cached for the hot path.
CONTEXT_CACHE_SIZE = 200_000
#: Where the price sentence of a stored offer's explanation starts.
PRICE_SENTENCE = ". Price "
#: ``binding_rule`` of a price the learning loop set.
#: Bundles ``GET /v1/learning`` (and the dashboard) show, those with the most feedback first.
SUMMARY_BUNDLES = 50
#: :meth:`LearningService.state`: posterior, budget, policy, events used and skipped, per bundle.
LearningState = tuple[
    ResponsePosterior, dict[str, Any], LadderPolicy, int, int, dict[tuple[str, ...], BundleStats]
]
LEARNING_RULE = "learning_policy"
HOLDOUT_RULE = "holdout_list_price"


class ContextCache:
    """The trained pricer's view of each (customer, bundle) offered, computed once
    (:func:`~bundlewise.learning.policy.offer_context` is a pure function of the pricer, the
    customer and the items; emptied when full)."""

    def __init__(self, pricer: Pricer, size: int = CONTEXT_CACHE_SIZE) -> None:
        self.pricer = pricer
        self.size = size
        self._contexts: dict[tuple[str | None, tuple[str, ...]], OfferContext] = {}

    def get(self, customer_id: str | None, item_ids: Sequence[str]) -> OfferContext:
        """:func:`offer_context`, cached (errors are raised, not cached)."""
        key = (customer_id, tuple(item_ids))
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = offer_context(self.pricer, customer_id, item_ids)
            if len(self._contexts) >= self.size:
                self._contexts = {}
            self._contexts[key] = ctx
        return ctx


class ServingPolicy(ThompsonPolicy):
    """:class:`ThompsonPolicy` whose offer contexts come from a shared :class:`ContextCache`
    (the same decisions, computed faster)."""

    def __init__(
        self,
        pricer: Pricer,
        posterior: ResponsePosterior,
        cfg: LearningConfig,
        version: str,
        explore_rate: float,
        *,
        contexts: ContextCache,
    ) -> None:
        super().__init__(pricer, posterior, cfg, version, explore_rate)
        self.contexts = contexts

    def context(self, customer_id: str | None, item_ids: Sequence[str]) -> OfferContext:
        return self.contexts.get(customer_id, item_ids)


class UnknownVersion(Exception):
    """A feedback event's policy version cannot be recomputed (says why)."""


def version_index(version: str) -> int | None:
    """``k`` of a policy version ``<model version>.L<k>`` (None for another form).

    Examples
    --------
    >>> version_index("0.1.0+4d733345.L12"), version_index("nope")
    (12, None)
    """
    _, sep, k = version.rpartition(".L")
    return int(k) if sep and k.isdigit() else None


def _version_row(policy: LadderPolicy, model_version: str, created_at: str) -> dict[str, Any]:
    return {
        "version": policy.version,
        "model_version": model_version,
        "created_at": created_at,
        "explore_rate": policy.explore_rate,
        "posterior_json": policy.posterior.to_json(),
    }


class LearningService:
    """The learning state of one model (see the module docstring).

    Parameters
    ----------
    pricer
        The served model's pricer (the prior).
    cfg
        The ``[learning]`` section the server runs with.
    store
        The feedback store: replayed now, read for policy versions no longer in memory.
    """

    def __init__(self, pricer: Pricer, cfg: LearningConfig, store: FeedbackStore) -> None:
        self.pricer = pricer
        self.cfg = cfg
        self.store = store
        self.model_version = pricer.model_version
        self._cache: dict[tuple[str, str, str], tuple[dict[str, Any], float]] = {}
        self._cache_version = ""
        self._rebuilt: OrderedDict[str, LadderPolicy] = OrderedDict()
        self._rebuilt_lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self.contexts = ContextCache(pricer)
        start = time.perf_counter()
        stored = store.policy_version_names(self.model_version)
        # Versions the replay recreates but the store would not keep are not written: those
        # older than the oldest stored (pruned before), and, for a store without any, those
        # that the retention would drop at the end (the last version is at most
        # events / refresh_events).
        indices = [k for k in map(version_index, stored) if k is not None]
        last = store.count_learning_events() // cfg.refresh_events
        self._write_from = min(indices) if indices else max(last - STORED_VERSIONS + 1, 0)
        self.logged = LoggedLearner(
            pricer,
            cfg,
            keep_versions=KEEP_VERSIONS,
            on_version=self._version_hook(stored),
            make_policy=self._make_policy,
        )
        self.catch_up()
        self.flush_versions()
        self.replay_seconds = time.perf_counter() - start

    def _make_policy(
        self,
        pricer: Pricer,
        posterior: ResponsePosterior,
        cfg: LearningConfig,
        version: str,
        explore_rate: float,
    ) -> LadderPolicy:
        return ServingPolicy(pricer, posterior, cfg, version, explore_rate, contexts=self.contexts)

    def _version_hook(self, stored: set[str]) -> Any:
        def hook(policy: LadderPolicy, event: LoggedEvent | None) -> None:
            if policy.version in stored or (version_index(policy.version) or 0) < self._write_from:
                return
            when = event.received_at if event is not None else iso_received(received_now())
            self._pending.append(_version_row(policy, self.model_version, when))
            if len(self._pending) >= 100:
                self.flush_versions()

        return hook

    def catch_up(self) -> int:
        """Learn from the stored events after the last one learned; returns how many."""
        n = 0
        for row in self.store.learning_events(after=self.logged.last):
            self.logged.observe(LoggedEvent.from_row(row))
            n += 1
        return n

    def flush_versions(self) -> None:
        """Write the policy versions not stored yet (kept for the next try when the store
        cannot take them now)."""
        if not self._pending:
            return
        try:
            self.store.save_policy_versions(self._pending)
            self._pending = []
            self._prune()
        except StoreUnavailable as exc:
            logger.warning("policy versions not stored yet (%s); retried later", exc)

    def _prune(self) -> None:
        """Keep the newest :data:`STORED_VERSIONS` versions of this model in the store."""
        current = version_index(self.logged.learner.version) or 0
        old = [
            v
            for v in self.store.policy_version_names(self.model_version)
            if (version_index(v) or 0) <= current - STORED_VERSIONS
        ]
        if old:
            self.store.delete_policy_versions(old)

    # -- the hot path ---------------------------------------------------------------------

    @property
    def policy(self) -> LadderPolicy:
        """The current frozen policy."""
        return self.logged.learner.policy()

    def offer_decision(
        self, customer_id: str, item_ids: list[str], offer_id: str
    ) -> dict[str, Any] | None:
        """The ``decision`` of an offer under the current policy with the offer's priced
        fields (``None`` when the bundle has no allowed price); cached."""
        ranked = self.ranked_decision(customer_id, item_ids, offer_id)
        return None if ranked is None else ranked[0]

    def ranked_decision(
        self, customer_id: str, item_ids: list[str], offer_id: str
    ) -> tuple[dict[str, Any], float] | None:
        """:meth:`offer_decision` and the offer's ranking value: the expected profit of the
        bundle's best rung for this customer under the posterior mean (what bundle choice
        learns from); cached per policy version."""
        policy = self.policy
        key = (policy.version, customer_id, offer_id)
        if self._cache_version != policy.version or len(self._cache) >= DECISION_CACHE_SIZE:
            self._cache = {}
            self._cache_version = policy.version
        hit = self._cache.get(key)
        if hit is not None:
            return dict(hit[0]), hit[1]
        try:
            served = served_decision(policy, customer_id, item_ids, offer_id)
        except (KeyError, GuardrailViolation):
            return None
        fields = priced_fields(served)
        best = policy.greedy_value(served.context)
        value = float(best if best is not None else fields["expected_profit_minor"])
        self._cache[key] = (fields, value)
        return dict(fields), value

    # -- feedback -------------------------------------------------------------------------

    def recompute(
        self, customer_id: str, item_ids: list[str], offer_id: str, version: str
    ) -> ServedDecision:
        """The decision that ``version`` served for this offer.

        Raises
        ------
        UnknownVersion
            When the version is not one of this model's, or is neither in memory nor stored.
        """
        policy = self._policy(version)
        try:
            return served_decision(policy, customer_id, item_ids, offer_id)
        except (KeyError, GuardrailViolation) as exc:
            raise UnknownVersion(
                f"offer {offer_id} has no price under policy version {version!r}: {exc}"
            ) from None

    def _policy(self, version: str) -> LadderPolicy:
        if not version.startswith(self.model_version + ".L"):
            raise UnknownVersion(
                f"{version!r} is not a policy version of the model this server serves "
                f"({self.model_version}); an offer served before a reload cannot be learned "
                "from: send the event without policy_version"
            )
        try:
            return self.logged.learner.policy(version)
        except KeyError:
            pass
        with self._rebuilt_lock:
            policy = self._rebuilt.get(version)
            if policy is not None:
                self._rebuilt.move_to_end(version)
                return policy
        row = self.store.policy_version(version)
        k, current = version_index(version), version_index(self.policy.version) or 0
        if row is None and k is not None and k <= current - STORED_VERSIONS:
            raise UnknownVersion(
                f"{version!r} has expired: the store keeps the last {STORED_VERSIONS} policy "
                f"versions (now {self.policy.version}); send the event without policy_version"
            )
        if row is None or row["model_version"] != self.model_version:
            raise UnknownVersion(
                f"{version!r} is an unknown policy version (this server's policy now is "
                f"{self.policy.version}): send the version the offer's decision came with"
            )
        rebuilt = self._make_policy(
            self.pricer,
            ResponsePosterior.from_json(row["posterior_json"]),
            self.cfg,
            version,
            float(row["explore_rate"]),
        )
        with self._rebuilt_lock:
            self._rebuilt[version] = rebuilt
            while len(self._rebuilt) > REBUILT_VERSIONS:
                self._rebuilt.popitem(last=False)
        return rebuilt

    def learn(self, event: FeedbackEvent, received_at: str) -> None:
        """Apply one committed event (caller holds the loop's lock)."""
        if event.outcome not in LEARNED_OUTCOMES or event.policy_version is None:
            return
        logged = LoggedEvent.from_row(event.row(received_at))  # exactly what a replay reads
        if self.logged.observe(logged):
            self.flush_versions()

    def state(self) -> LearningState:
        """A consistent copy of what :meth:`summary` shows (take it under the loop's lock)."""
        learner = self.logged.learner
        return (
            learner.posterior.copy(),
            learner.budget.to_dict(),
            learner.policy(),
            self.logged.n_used,
            self.logged.n_skipped,
            {k: dataclasses.replace(v) for k, v in self.logged.bundle_stats.items()},
        )

    def summary(self, state: LearningState) -> dict[str, Any]:
        """What ``GET /v1/learning`` shows, from :meth:`state`."""
        posterior, budget, policy, n_used, n_skipped, stats = state
        return {
            "enabled": True,
            "model_version": self.model_version,
            "policy_version": policy.version,
            "explore_rate": policy.explore_rate,
            "events_used": n_used,
            "events_skipped": n_skipped,
            "budget": budget,
            "experiment": {
                "experiment_id": self.cfg.experiment_id,
                "holdout_share": self.cfg.holdout_share,
            },
            "segments": segment_changes(self.pricer, posterior),
            "bundles": bundle_summaries(policy, stats, top=SUMMARY_BUNDLES),
            "posterior": posterior.to_dict(),
        }


def priced_fields(served: ServedDecision) -> dict[str, Any]:
    """The fields of an offer (or quote) that the decision sets, with ``decision`` itself."""
    d = served.decision
    ctx = served.context
    L = ctx.list_total_minor
    price = d.price_minor
    return {
        "price_minor": price,
        "discount_minor": L - price,
        "discount_pct": (L - price) / L if L > 0 else 0.0,
        "p_accept": served.p_accept,
        "expected_profit_minor": (price - ctx.cost_minor) * served.p_accept,
        "binding_rule": HOLDOUT_RULE if served.variant == "holdout" else LEARNING_RULE,
        "decision": served.to_dict(),
    }


def apply_decision(offer: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """An offer (or quote) dict priced by the learning loop: its price fields replaced, the
    explanation's rule and price sentence rewritten, ``decision`` added."""
    out = {**offer, **fields}
    explanation = offer.get("explanation")
    if isinstance(explanation, dict):
        rule = fields["binding_rule"]
        d = fields["decision"]
        currency = str(offer.get("currency") or "GBP")
        L = int(offer.get("list_total_minor") or 0)
        if rule == HOLDOUT_RULE:
            why = "list price (the experiment's holdout)"
        else:
            how = "exploring" if d["explore"] else "its best price now"
            why = (
                f"learning policy {d['policy_version']}, rung {d['arm'] + 1} of "
                f"{len(d['ladder'])} inside the guardrails ({how})"
            )
        sentence = (
            f"Price {format_money(d['price_minor'], currency)} vs list "
            f"{format_money(L, currency)} ({fields['discount_pct']:.0%} off): {why}; "
            f"P(accept) {fields['p_accept']:.2f} (learned)."
        )
        text = str(explanation.get("text") or "")
        head, sep, _ = text.rpartition(PRICE_SENTENCE)
        explanation = {
            **explanation,
            "binding_rule": rule,
            "text": f"{head}. {sentence}" if sep else sentence,
        }
        out["explanation"] = explanation
    return out


class LearningLoop:
    """The server's learning: the current model's :class:`LearningService`, the lock that
    orders commits and updates, and the clock of ``received_at``."""

    def __init__(self, pricer: Pricer, cfg: LearningConfig, store: FeedbackStore) -> None:
        self.lock = threading.Lock()
        self.store = store
        last = store.last_received_at()
        self._last = datetime.fromisoformat(last) if last else None
        self.service = LearningService(pricer, cfg, store)

    def _next_received(self) -> datetime:
        now = received_now()
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(microseconds=1)
        return now

    def record(self, event: FeedbackEvent) -> str:
        """Store an event with its decision and, once committed, learn from it (one lock).

        Raises
        ------
        EventConflict, StoreUnavailable
            As :meth:`FeedbackStore.record`.
        """
        if event.policy_version is None:
            return self.store.record(event)
        with self.lock:
            when = self._next_received()
            status = self.store.record(event, when)
            if status == "stored":
                self._last = when
                self.service.learn(event, iso_received(when))
            return status

    def prepare(self, pricer: Pricer, cfg: LearningConfig) -> LearningService:
        """The service of a new model, its learner replayed from the store (not in use yet:
        :meth:`install` it)."""
        return LearningService(pricer, cfg, self.store)

    def install(self, service: LearningService) -> None:
        """Switch to a prepared service: under the lock, it learns the events committed since
        its replay and takes over (feedback waits only for that catch-up)."""
        with self.lock:
            service.catch_up()
            service.flush_versions()
            self.service = service

    def summary(self) -> dict[str, Any]:
        with self.lock:
            service = self.service
            state = service.state()
        return service.summary(state)


__all__ = [
    "HOLDOUT_RULE",
    "LEARNING_RULE",
    "LearningLoop",
    "LearningService",
    "UnknownVersion",
    "version_index",
    "apply_decision",
    "customer_variant",
    "priced_fields",
]
