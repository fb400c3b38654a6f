"""Bandit policies over a bundle's guarded price ladder, with logged propensities.

A policy is a frozen object: it holds a copy of the posterior taken when it was built, and its
version string names it. Every decision is a deterministic function of ``(decision_key,
version)`` (and the customer and bundle): the random draws come from an RNG seeded by
``sha256(seed, version, decision_key)``, so the server can recompute at feedback time the arm,
the probability it was chosen with (the propensity the off-policy estimators need) and whether
it explored, from the offer id and the policy version alone.

- :class:`ThompsonPolicy`: with probability ``1 - q`` the greedy arm (the best arm under the
  posterior mean), with probability ``q`` a Thompson draw (the best arm under one posterior
  draw). The arm probabilities ``(1 - q) * onehot(greedy) + q * thompson`` are estimated with
  ``mc_draws`` posterior draws. ``q`` (the explore rate) is fixed per version and set by
  :func:`next_explore_rate` from the exploration budget.
- :class:`EpsilonGreedyPolicy`: greedy with probability ``1 - epsilon``, else a uniform arm.
- :class:`UCBPolicy`: deterministic (propensity 1), the arm with the highest objective at an
  optimistic acceptance probability (the logit ``width`` posterior standard deviations up).

An arm's value is the trained pricer's objective at that price: by default the expected profit
``(price - cost - opportunity) * P(accept)``; with revenue and surplus weights, the same blend
as :class:`bundlewise.pricing.optimizer.Objective`.

:class:`Learner` ties it together: the pricer (the prior), the posterior updated at every
feedback event, the exploration budget, and a new frozen policy every ``refresh_events``
events (version ``f"{model_version}.L{k}"``).
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from bundlewise.config import LearningConfig
from bundlewise.exceptions import GuardrailViolation
from bundlewise.learning.ladder import LadderCache, PriceLadder, ladder_cache
from bundlewise.learning.posterior import ResponsePosterior
from bundlewise.pricing.guardrails import INFEASIBLE
from bundlewise.pricing.optimizer import Objective
from bundlewise.pricing.pricer import BundleKey, Pricer

FloatArray = npt.NDArray[np.float64]

#: ``Decision.policy`` of each policy class.
THOMPSON = "thompson"
EPSILON_GREEDY = "epsilon_greedy"
UCB = "ucb"


@dataclass(frozen=True)
class Decision:
    """One priced offer as a policy chose it (money in minor units).

    Attributes
    ----------
    price_minor
        The price shown (a rung of the bundle's ladder).
    arm
        The rung's index on the ladder (0 is the lowest price).
    propensity
        The probability with which this arm was chosen (``probabilities[arm]``).
    explore
        Whether the arm differs from the greedy arm.
    policy_version
        The version of the policy that decided.
    probabilities
        Every arm's probability (sums to 1).
    greedy_arm
        The best arm under the posterior mean.
    expected_profit_minor
        The objective's value (expected profit by default) of the chosen arm under the
        posterior mean.
    profit_given_up_minor
        The greedy arm's value minus the chosen arm's (0 when not exploring).
    """

    price_minor: int
    arm: int
    propensity: float
    explore: bool
    policy_version: str
    probabilities: tuple[float, ...]
    greedy_arm: int
    expected_profit_minor: float = 0.0
    profit_given_up_minor: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a decision."""
        return {
            "policy_version": self.policy_version,
            "arm": self.arm,
            "price_minor": self.price_minor,
            "propensity": self.propensity,
            "explore": self.explore,
            "greedy_arm": self.greedy_arm,
            "probabilities": list(self.probabilities),
            "expected_profit_minor": self.expected_profit_minor,
            "profit_given_up_minor": self.profit_given_up_minor,
        }


@dataclass(frozen=True)
class OfferContext:
    """What the model needs of one (customer, bundle), from the trained pricer."""

    customer_key: str
    segment: str
    bundle: BundleKey
    appeal: float
    list_total_minor: int
    cost_minor: int
    opportunity_minor: float


def offer_context(pricer: Pricer, customer_id: str | None, item_ids: Sequence[str]) -> OfferContext:
    """The pricer's segment, appeal, list total, cost and opportunity cost of one offer.

    Raises
    ------
    KeyError
        For an item id the pricer's catalog does not have (the message names it).
    GuardrailViolation
        When the bundle cannot be priced (an item has no list price).
    """
    ids = list(item_ids)
    missing = [i for i in ids if i not in pricer.catalog]
    if missing:
        raise KeyError(f"unknown item id(s): {', '.join(missing)}")
    # The pricer's lookups without its price optimization (what price_rows starts from): the
    # same segment, appeal, totals and opportunity cost (stock clearing included) at a
    # twentieth of the cost, which the serving hot path and every replayed event pay.
    rows = pricer._inputs([customer_id], [ids])
    if not bool(rows["usable"][0]):
        raise GuardrailViolation(INFEASIBLE, rows["why"][0])
    return OfferContext(
        customer_key=rows["keys"][0],
        segment=rows["segment"][0],
        bundle=tuple(sorted(ids)),
        appeal=float(rows["a"][0]),
        list_total_minor=int(rows["list_total"][0]),
        cost_minor=int(rows["cost"][0]),
        opportunity_minor=float(rows["opportunity"][0]),
    )


def arm_values(
    objective: Objective,
    prices: npt.ArrayLike,
    ctx: OfferContext,
    logit: npt.ArrayLike,
    beta: npt.ArrayLike,
) -> FloatArray:
    """The objective at each price given the acceptance logit there (broadcast together).

    ``profit * (p - cost - opportunity) * sigmoid(logit) + revenue * p * sigmoid(logit)
    + surplus * log(1 + e^logit) * L / beta`` (``beta`` floored at 1e-6 in the surplus term).
    """
    p = np.asarray(prices, dtype=np.float64)
    u = np.asarray(logit, dtype=np.float64)
    s = expit(u)
    margin = p - ctx.cost_minor - ctx.opportunity_minor
    value = (objective.profit * margin + objective.revenue * p) * s
    if objective.surplus > 0:
        b = np.maximum(np.asarray(beta, dtype=np.float64), 1e-6)
        value = value + objective.surplus * np.logaddexp(0.0, u) * ctx.list_total_minor / b
    return np.asarray(value, dtype=np.float64)


def decision_rng(seed: int, version: str, decision_key: str) -> np.random.Generator:
    """The RNG of one decision: seeded by ``sha256(seed, version, decision_key)``."""
    digest = hashlib.sha256(f"{int(seed)}\x00{version}\x00{decision_key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _draw(probs: FloatArray, rng: np.random.Generator) -> int:
    u = float(rng.random())
    arm = int(np.searchsorted(np.cumsum(probs), u, side="right"))
    if arm >= probs.size or probs[arm] <= 0.0:  # u at the float end: the last arm with mass
        arm = int(np.flatnonzero(probs > 0.0)[-1])
    return arm


class LadderPolicy(abc.ABC):
    """What every policy offers (:class:`ThompsonPolicy`, :class:`EpsilonGreedyPolicy`,
    :class:`UCBPolicy`): ladders, offer contexts, values under the posterior mean, and
    decisions drawn from :meth:`probabilities` with the offer's seeded RNG."""

    kind = ""

    def __init__(
        self,
        pricer: Pricer,
        posterior: ResponsePosterior,
        cfg: LearningConfig,
        version: str,
        explore_rate: float,
    ) -> None:
        if not isinstance(version, str) or not version:
            raise ValueError(f"version={version!r} must be a non-empty string.")
        if not (math.isfinite(explore_rate) and 0.0 <= explore_rate <= 1.0):
            raise ValueError(f"explore rate {explore_rate!r} should be in [0, 1].")
        self.pricer = pricer
        self.posterior = posterior.copy()  # frozen: later updates do not change this policy
        self.cfg = cfg
        self.version = version
        self.explore_rate = float(explore_rate)
        self.objective = Objective.from_config(pricer.pricing)
        self._ladders: LadderCache = ladder_cache(pricer, cfg.n_rungs)

    def ladder(self, item_ids: Sequence[str]) -> PriceLadder:
        """The bundle's price ladder.

        Raises
        ------
        KeyError
            For an item id the pricer's catalog does not have.
        GuardrailViolation
            When no price of the bundle satisfies the guardrails.
        """
        ladder = self._ladders.get(item_ids)
        if ladder is None:
            raise GuardrailViolation(
                INFEASIBLE, f"no price of bundle {', '.join(sorted(item_ids))} is allowed"
            )
        return ladder

    def context(self, customer_id: str | None, item_ids: Sequence[str]) -> OfferContext:
        """:func:`offer_context` under this policy's pricer."""
        return offer_context(self.pricer, customer_id, item_ids)

    def mean_values(self, ctx: OfferContext, ladder: PriceLadder) -> FloatArray:
        """Each arm's value under the posterior mean."""
        delta, beta, omega = self.posterior.mean(ctx.segment, ctx.bundle)
        logit = ctx.appeal + delta + omega - beta * ladder.rel_prices
        return arm_values(self.objective, ladder.rungs, ctx, logit, beta)

    @abc.abstractmethod
    def _probabilities(
        self,
        ctx: OfferContext,
        ladder: PriceLadder,
        greedy: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Every arm's probability (unnormalized is fine) given the greedy arm."""

    def greedy_value(self, ctx: OfferContext) -> float | None:
        """The best arm's value under the posterior mean (``None`` for a bundle without a
        ladder)."""
        ladder = self._ladders.get(ctx.bundle)
        return float(self.mean_values(ctx, ladder).max()) if ladder is not None else None

    def _prepare(
        self, customer_id: str | None, item_ids: Sequence[str], decision_key: str
    ) -> tuple[PriceLadder, FloatArray, int, FloatArray, np.random.Generator]:
        ladder = self.ladder(item_ids)
        ctx = self.context(customer_id, item_ids)
        values = self.mean_values(ctx, ladder)
        greedy = int(np.argmax(values))
        rng = decision_rng(self.cfg.seed, self.version, str(decision_key))
        probs = np.asarray(self._probabilities(ctx, ladder, greedy, rng), dtype=np.float64)
        probs = np.clip(probs, 0.0, None)
        probs = probs / probs.sum()
        return ladder, values, greedy, probs, rng

    def probabilities(
        self, customer_id: str | None, item_ids: Sequence[str], decision_key: str
    ) -> FloatArray:
        """Every arm's probability for this offer (sums to 1; the same for the same
        ``decision_key`` and version).

        Raises
        ------
        KeyError
            For an item id the pricer's catalog does not have.
        GuardrailViolation
            When no price of the bundle satisfies the guardrails.
        """
        return self._prepare(customer_id, item_ids, decision_key)[3]

    def decide(
        self, customer_id: str | None, item_ids: Sequence[str], decision_key: str
    ) -> Decision:
        """The arm shown for this offer, drawn from :meth:`probabilities` with the offer's
        seeded RNG: the same ``decision_key`` and version give the same decision.

        Raises
        ------
        KeyError
            For an item id the pricer's catalog does not have.
        GuardrailViolation
            When no price of the bundle satisfies the guardrails.
        """
        ladder, values, greedy, probs, rng = self._prepare(customer_id, item_ids, decision_key)
        arm = _draw(probs, rng)
        return Decision(
            price_minor=int(ladder.rungs[arm]),
            arm=arm,
            propensity=float(probs[arm]),
            explore=arm != greedy,
            policy_version=self.version,
            probabilities=tuple(float(p) for p in probs),
            greedy_arm=greedy,
            expected_profit_minor=float(values[arm]),
            profit_given_up_minor=float(values[greedy] - values[arm]),
        )


class ThompsonPolicy(LadderPolicy):
    """Thompson sampling over the ladder mixed with the greedy arm (see the module docstring).

    Parameters
    ----------
    pricer
        The trained pricer (guardrails, appeals, segments, objective).
    posterior
        The price-response posterior; the policy keeps a copy.
    cfg
        The ``[learning]`` section (``n_rungs``, ``mc_draws``, ``seed``).
    version
        The policy version (with the decision key, it seeds every decision).
    explore_rate
        ``q`` in [0, 1]: the weight of the Thompson draw against the greedy arm.
    """

    kind = THOMPSON

    def _probabilities(
        self,
        ctx: OfferContext,
        ladder: PriceLadder,
        greedy: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        k = ladder.n_arms
        probs = np.zeros(k)
        probs[greedy] = 1.0 - self.explore_rate
        if self.explore_rate > 0.0:
            delta, beta, omega = self.posterior.sample(
                rng, ctx.segment, ctx.bundle, self.cfg.mc_draws
            )
            logit = (ctx.appeal + delta + omega)[:, None] - beta[:, None] * ladder.rel_prices
            values = arm_values(self.objective, ladder.rungs, ctx, logit, beta[:, None])
            best = np.argmax(values, axis=1)
            probs += self.explore_rate * np.bincount(best, minlength=k) / best.size
        return probs


class EpsilonGreedyPolicy(LadderPolicy):
    """The greedy arm with probability ``1 - epsilon``, a uniformly drawn arm otherwise."""

    kind = EPSILON_GREEDY

    def __init__(
        self,
        pricer: Pricer,
        posterior: ResponsePosterior,
        cfg: LearningConfig,
        version: str,
        epsilon: float,
    ) -> None:
        super().__init__(pricer, posterior, cfg, version, epsilon)

    @property
    def epsilon(self) -> float:
        """The share of uniformly drawn arms."""
        return self.explore_rate

    def _probabilities(
        self,
        ctx: OfferContext,
        ladder: PriceLadder,
        greedy: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        k = ladder.n_arms
        probs = np.full(k, self.explore_rate / k)
        probs[greedy] += 1.0 - self.explore_rate
        return probs


class UCBPolicy(LadderPolicy):
    """Deterministic optimism: the arm whose value is highest when its acceptance logit is
    ``width`` posterior standard deviations above the mean (below where the margin is
    negative). Propensity 1; ``explore`` when that arm is not the greedy one."""

    kind = UCB

    def __init__(
        self,
        pricer: Pricer,
        posterior: ResponsePosterior,
        cfg: LearningConfig,
        version: str,
        width: float = 1.0,
    ) -> None:
        if not (math.isfinite(width) and width >= 0):
            raise ValueError(f"width={width!r} must be finite and >= 0.")
        super().__init__(pricer, posterior, cfg, version, 0.0)
        self.width = float(width)

    def _probabilities(
        self,
        ctx: OfferContext,
        ladder: PriceLadder,
        greedy: int,
        rng: np.random.Generator,
    ) -> FloatArray:
        mean, cov, _ = self.posterior.segment_state(ctx.segment)
        w, v, _ = self.posterior.bundle_state(ctx.bundle)
        r = ladder.rel_prices
        logit = ctx.appeal + mean[0] + w - mean[1] * r
        var = cov[0, 0] - 2.0 * r * cov[0, 1] + r * r * cov[1, 1] + v
        margin = ladder.rungs - ctx.cost_minor - ctx.opportunity_minor
        sign = np.where(margin >= 0, 1.0, -1.0)
        optimistic = logit + sign * self.width * np.sqrt(np.maximum(var, 0.0))
        values = arm_values(self.objective, ladder.rungs, ctx, optimistic, mean[1])
        probs = np.zeros(ladder.n_arms)
        probs[int(np.argmax(values))] = 1.0
        return probs


# -- the exploration budget and the learner ------------------------------------------------


@dataclass
class ExploreBudget:
    """What exploring has cost so far (over the feedback events observed).

    Attributes
    ----------
    n_observed
        Feedback events observed.
    n_explored
        Of those, offers that explored.
    profit_given_up_minor
        Expected profit given up by exploring (sum of the decisions' ``profit_given_up``).
    expected_profit_minor
        Expected profit of the greedy arms of those offers (the base of the profit cap).
    rate_sum
        Sum of the explore rates of the policies that served them (how much exploring the
        rates asked for; with ``n_explored`` it tells how often an exploring draw leaves the
        greedy arm).
    """

    n_observed: int = 0
    n_explored: int = 0
    profit_given_up_minor: float = 0.0
    expected_profit_minor: float = 0.0
    rate_sum: float = 0.0

    @property
    def explored_share(self) -> float:
        """Share of the observed offers that explored (0 before any)."""
        return self.n_explored / self.n_observed if self.n_observed else 0.0

    @property
    def given_up_share(self) -> float:
        """Profit given up as a share of the expected profit (0 before any)."""
        if self.expected_profit_minor <= 0:
            return 0.0
        return self.profit_given_up_minor / self.expected_profit_minor

    def to_dict(self) -> dict[str, float | int]:
        """The JSON shape of the budget."""
        return {
            "n_observed": self.n_observed,
            "n_explored": self.n_explored,
            "profit_given_up_minor": self.profit_given_up_minor,
            "expected_profit_minor": self.expected_profit_minor,
            "rate_sum": self.rate_sum,
            "explored_share": self.explored_share,
            "given_up_share": self.given_up_share,
        }


def next_explore_rate(budget: ExploreBudget, cfg: LearningConfig) -> float:
    """The explore rate ``q`` of the next policy version, so that after its
    ``refresh_events`` offers the explored share stays within ``max_explore_share`` and the
    profit given up within ``max_profit_given_up`` x the expected profit (in expectation).

    The room left under each cap, spread over the next window, is divided by how often an
    exploring draw has left the greedy arm so far (``n_explored / rate_sum``, starting at 1),
    and clipped to [0, 1]. Until an exploring offer has shown what exploring costs, only the
    share cap applies (a zero profit cap allows no exploring at all).

    Examples
    --------
    >>> from bundlewise.config import LearningConfig
    >>> next_explore_rate(ExploreBudget(), LearningConfig(max_explore_share=0.2))
    0.2
    """
    window = float(cfg.refresh_events)
    if cfg.max_profit_given_up <= 0.0 or cfg.max_explore_share <= 0.0:
        return 0.0
    b = budget
    room = (cfg.max_explore_share * (b.n_observed + window) - b.n_explored) / window
    if b.n_explored > 0 and b.profit_given_up_minor > 0.0 and b.n_observed > 0:
        per_offer = b.expected_profit_minor / b.n_observed
        loss_per_explore = b.profit_given_up_minor / b.n_explored
        allowed = cfg.max_profit_given_up * (b.expected_profit_minor + window * per_offer)
        room = min(room, (allowed - b.profit_given_up_minor) / (window * loss_per_explore))
    room = min(max(room, 0.0), 1.0)
    leave_rate = max((b.n_explored + 1.0) / (b.rate_sum + 1.0), 0.02)
    return float(min(room / min(leave_rate, 1.0), 1.0))


@dataclass(frozen=True)
class Feedback:
    """One offer's outcome as the learner reads it (any object with these attributes will do).

    ``explore`` and ``profit_given_up_minor`` come from the logged decision;
    ``expected_profit_minor`` (the chosen arm's value) too, or ``None`` for the learner to value
    the offer under its current policy; ``policy_version`` names the policy that served it.
    """

    customer_id: str | None
    item_ids: tuple[str, ...]
    price_minor: int
    accepted: bool
    explore: bool = False
    profit_given_up_minor: float = 0.0
    expected_profit_minor: float | None = None
    policy_version: str | None = None


#: Builds a policy: ``(pricer, posterior, cfg, version, explore_rate) -> LadderPolicy``.
PolicyFactory = Callable[[Pricer, ResponsePosterior, LearningConfig, str, float], LadderPolicy]


def _thompson(
    pricer: Pricer, posterior: ResponsePosterior, cfg: LearningConfig, version: str, q: float
) -> LadderPolicy:
    return ThompsonPolicy(pricer, posterior, cfg, version, q)


@dataclass
class _Versions:
    policies: OrderedDict[str, LadderPolicy] = field(default_factory=OrderedDict)
    rates: dict[str, float] = field(default_factory=dict)


class Learner:
    """The learning loop's state: pricer (the prior), posterior, budget and current policy.

    :meth:`observe` updates the posterior with every feedback event (O(1) per event) and,
    every ``cfg.refresh_events`` events, freezes a new policy version
    ``f"{pricer.model_version}.L{k}"`` with an explore rate from :func:`next_explore_rate`.
    The last ``keep_versions`` policies stay available to :meth:`policy` (to recompute a
    decision at feedback time). The same events in the same order give the same posterior,
    budget and versions (:meth:`replay` is the batch form).

    Parameters
    ----------
    pricer
        The trained pricer.
    cfg
        The ``[learning]`` section.
    posterior
        Start from this posterior (default: the prior of :meth:`ResponsePosterior.from_pricer`).
    make_policy
        Builds each version's policy (default :class:`ThompsonPolicy`; the benchmark passes
        baselines, e.g. ``lambda p, post, c, v, q: EpsilonGreedyPolicy(p, post, c, v, 0.05)``).
    keep_versions
        How many recent policy versions to keep.
    """

    def __init__(
        self,
        pricer: Pricer,
        cfg: LearningConfig,
        *,
        posterior: ResponsePosterior | None = None,
        make_policy: PolicyFactory | None = None,
        keep_versions: int = 8,
    ) -> None:
        if keep_versions < 1:
            raise ValueError(f"keep_versions={keep_versions} must be >= 1.")
        self.pricer = pricer
        self.cfg = cfg
        self.posterior = (
            posterior.copy()
            if posterior is not None
            else ResponsePosterior.from_pricer(pricer, cfg)
        )
        self.budget = ExploreBudget()
        self.keep_versions = int(keep_versions)
        self._make_policy: PolicyFactory = make_policy or _thompson
        self._versions = _Versions()
        self._k = -1
        self._since_refresh = 0
        self._current = self.refresh()

    @property
    def version(self) -> str:
        """The current policy version."""
        return self._current.version

    @property
    def n_refreshes(self) -> int:
        """Policy versions built after the first."""
        return self._k

    def refresh(self) -> LadderPolicy:
        """Freeze a new policy version from the posterior and the budget now."""
        self._k += 1
        version = f"{self.pricer.model_version}.L{self._k}"
        rate = next_explore_rate(self.budget, self.cfg)
        policy = self._make_policy(self.pricer, self.posterior, self.cfg, version, rate)
        self._versions.policies[version] = policy
        self._versions.rates[version] = policy.explore_rate
        while len(self._versions.policies) > self.keep_versions:
            self._versions.policies.popitem(last=False)
        self._since_refresh = 0
        self._current = policy
        return policy

    def policy(self, version: str | None = None) -> LadderPolicy:
        """The current policy, or a recent version's.

        Raises
        ------
        KeyError
            For a version this learner does not keep (too old, or never built).
        """
        if version is None:
            return self._current
        try:
            return self._versions.policies[version]
        except KeyError:
            raise KeyError(f"policy version {version!r} is not kept by this learner") from None

    def observe(self, event: Any) -> bool:
        """Update with one accepted/rejected offer; returns whether a new policy version began.

        ``event`` has ``customer_id``, ``item_ids``, ``price_minor``, ``accepted`` and
        optionally ``explore``, ``profit_given_up_minor``, ``expected_profit_minor``,
        ``policy_version`` (see :class:`Feedback`).

        Raises
        ------
        KeyError
            For an item id the pricer's catalog does not have.
        GuardrailViolation
            When the bundle cannot be priced.
        ValueError
            For a price that is not positive, or an outcome that is not true or false.
        """
        price = int(event.price_minor)
        if price <= 0:
            raise ValueError(f"price_minor={price} must be > 0.")
        ctx = offer_context(self.pricer, event.customer_id, event.item_ids)
        explore = bool(getattr(event, "explore", False))
        given_up = max(float(getattr(event, "profit_given_up_minor", 0.0) or 0.0), 0.0)
        expected = getattr(event, "expected_profit_minor", None)
        if expected is None:
            base = self._current.greedy_value(ctx) or 0.0
        else:
            base = float(expected) + given_up
        served_by = getattr(event, "policy_version", None)
        rate = self._versions.rates.get(str(served_by), self._current.explore_rate)
        accepted = event.accepted
        if not isinstance(accepted, bool | np.bool_) and accepted not in (0, 1):
            raise ValueError(f"accepted={accepted!r} must be true or false.")
        self.posterior.update(
            ctx.segment, ctx.bundle, ctx.appeal, price / ctx.list_total_minor, bool(accepted)
        )
        b = self.budget
        b.n_observed += 1
        b.n_explored += int(explore)
        b.profit_given_up_minor += given_up if explore else 0.0
        b.expected_profit_minor += base
        b.rate_sum += rate
        self._since_refresh += 1
        if self._since_refresh >= self.cfg.refresh_events:
            self.refresh()
            return True
        return False

    @classmethod
    def replay(
        cls,
        pricer: Pricer,
        cfg: LearningConfig,
        events: Iterable[Any],
        **kwargs: Any,
    ) -> Learner:
        """A learner that has observed these events in order (batch ``learn``: the same
        posterior, budget and versions as observing them one by one)."""
        learner = cls(pricer, cfg, **kwargs)
        for event in events:
            learner.observe(event)
        return learner


__all__ = [
    "EPSILON_GREEDY",
    "THOMPSON",
    "UCB",
    "Decision",
    "EpsilonGreedyPolicy",
    "ExploreBudget",
    "Feedback",
    "LadderPolicy",
    "Learner",
    "OfferContext",
    "PolicyFactory",
    "ThompsonPolicy",
    "UCBPolicy",
    "arm_values",
    "decision_rng",
    "next_explore_rate",
    "offer_context",
]
