"""The learning track: the product's learning loop in closed loop against simulated shoppers.

A trained :class:`~bundlewise.pricing.Pricer` (a workspace trained on a slice of real orders)
is the prior. Its (customer, bundle) offers are the market: shoppers arrive at random (a
customer uniformly, then one of that customer's bundles), each offer goes through a
:class:`~bundlewise.learning.Learner` exactly as the server uses it
(``learner.policy().decide(customer, items, offer_key)`` -> shown price -> simulated accept ->
``learner.observe(Feedback(...))``), and the shopper accepts with the market's true
probability

.. math::

    P(\\text{accept}) = \\sigma\\big(a + \\omega_B - \\beta_0 \\rho + \\beta (\\rho - p / L)\\big)

where :math:`a` is the pricer's appeal of the (customer, bundle), :math:`\\beta_0` the pricer's
sensitivity of the customer's segment, :math:`\\beta = m \\beta_0` the true sensitivity
(``m`` = 0.5, 1, 2, or switching mid-run), :math:`\\omega_B \\sim N(0, \\texttt{bundle\\_sd}^2)`
a true appeal offset per bundle, and :math:`\\rho` the pivot: with ``rho = 1`` (default) the
true take rate at the list total is the pricer's (the market agrees with the data the pricer
was fitted on, only the response to a discount differs); with ``rho = 0`` the pricer's appeal
is kept at price 0 (the take rate at the list moves with the sensitivity).

Policies on the same guarded ladder (:func:`bundlewise.learning.build_ladder`): Thompson (the
product's default :class:`~bundlewise.learning.Learner`), epsilon-greedy and UCB (tuned on
separate seeds), the static trained pricer (its own price, no learning), the oracle (the best
rung under the true demand, offer by offer) and the list total. Profit is the true expected
profit of the shown price (so regret is not blurred by the coin flips); realized profit, from
the same simulated decisions for every policy (common random numbers), is reported beside it.
Every shown price is checked against the guardrails. Off-policy evaluation: a logged Thompson
run's propensities estimate other policies' profit (IPS, SNIPS, DR from
:mod:`bundlewise.evaluation.ope`), compared with their true value.

:func:`learning_track` runs it all and returns plain JSON-ready results (plus curves);
:func:`format_learning` turns them into text tables (library code never prints).
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats
from scipy.special import expit

from bundlewise.config import Config, LearningConfig, PricingConfig
from bundlewise.data import Workspace
from bundlewise.evaluation.ope import evaluate_policy
from bundlewise.learning import (
    EpsilonGreedyPolicy,
    Feedback,
    LadderPolicy,
    Learner,
    ResponsePosterior,
    ThompsonPolicy,
    UCBPolicy,
    build_ladder,
)
from bundlewise.learning.policy import offer_context
from bundlewise.pipeline import ingest, train
from bundlewise.pricing import Guardrails, Pricer, price_bounds, violated_rules

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Policy names (result keys).
THOMPSON = "thompson"
EPSILON = "epsilon_greedy"
UCB = "ucb"
STATIC = "static_pricer"
ORACLE = "oracle"
LIST = "list_price"
EPSILON_ALL = "epsilon_greedy_one_value"
UCB_ALL = "ucb_one_value"
LEARNERS = (THOMPSON, EPSILON, UCB, EPSILON_ALL, UCB_ALL)
#: The tuned baselines: per market (the tuning knew the market) and one value for all markets.
BASELINES = (EPSILON, UCB, EPSILON_ALL, UCB_ALL)
LABELS = {
    THOMPSON: "Thompson (product default)",
    EPSILON: "epsilon-greedy (tuned per market)",
    UCB: "UCB (tuned per market)",
    EPSILON_ALL: "epsilon-greedy (one value, all markets)",
    UCB_ALL: "UCB (one value, all markets)",
    STATIC: "static trained pricer",
    ORACLE: "oracle (best rung, true demand)",
    LIST: "list price",
}
#: The model version the benchmark's pricer carries (see :func:`train_prior`).
BENCH_MODEL_VERSION = "learning-bench"
#: Goal of issue 10.
GOAL_PCT_OF_ORACLE = 97.0
GOAL_OPE_ERROR_PCT = 5.0


# -- markets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """A true demand: sensitivity ``scale`` x the prior's, switching to ``scale_after`` at
    offer ``shift_at`` (a fraction of the run) when given."""

    name: str
    scale: float
    scale_after: float | None = None
    shift_at: float = 0.5

    @property
    def label(self) -> str:
        if self.scale_after is None:
            return f"{self.scale:g}x prior sensitivity"
        return f"{self.scale:g}x -> {self.scale_after:g}x at {self.shift_at:.0%} of the run"

    @property
    def stationary(self) -> bool:
        return self.scale_after is None

    def shift_offer(self, n: int) -> int:
        """The first offer under ``scale_after`` (``n``: never)."""
        return n if self.scale_after is None else int(round(self.shift_at * n))


def default_markets() -> list[Market]:
    """0.5x, 1x, 2x the prior sensitivity, and 1x switching to 2x half-way."""
    return [
        Market("0.5x", 0.5),
        Market("1x", 1.0),
        Market("2x", 2.0),
        Market("shift 1x->2x", 1.0, 2.0, 0.5),
    ]


@dataclass(frozen=True)
class PolicySpec:
    """A learning policy: ``kind`` in :data:`LEARNERS` and its parameter (epsilon, width)."""

    kind: str
    param: float | None = None

    def factory(self) -> Callable[..., LadderPolicy] | None:
        """The :class:`Learner`'s ``make_policy`` (``None``: the product default, Thompson)."""
        if self.kind == THOMPSON:
            return None
        param = float(self.param if self.param is not None else 0.0)
        if self.kind == EPSILON:
            return lambda p, post, c, v, q: EpsilonGreedyPolicy(p, post, c, v, param)
        if self.kind == UCB:
            return lambda p, post, c, v, q: UCBPolicy(p, post, c, v, width=param)
        raise ValueError(f"unknown policy kind {self.kind!r}.")


# -- the offer pool --------------------------------------------------------------------------


@dataclass
class OfferPool:
    """The trained pricer's (customer, bundle) offers with what the market needs of each.

    Ladders are padded to ``n_rungs`` columns (``rungs`` -1, ``mask`` False past the last).
    """

    customers: list[str]
    bundles: list[tuple[str, ...]]
    customer_of: IntArray  # offer -> customer index
    offers_of: list[IntArray]  # customer index -> offer indices
    bundle_index: IntArray  # offer -> distinct bundle index
    n_bundles: int
    segment: list[str]
    appeal: FloatArray
    prior_beta: FloatArray
    list_total: IntArray
    cost: IntArray
    opportunity: FloatArray
    rungs: IntArray  # (n, n_rungs)
    mask: npt.NDArray[np.bool_]
    static_price: IntArray

    @property
    def n(self) -> int:
        return len(self.bundles)

    @classmethod
    def from_pricer(cls, pricer: Pricer, n_rungs: int) -> OfferPool:
        """Every (customer, bundle) the pricer holds an appeal for (sorted), with a ladder."""
        customers: list[str] = []
        bundles: list[tuple[str, ...]] = []
        customer_of: list[int] = []
        for c in sorted(pricer.appeals):
            keys = sorted(pricer.appeals[c])
            usable = [k for k in keys if build_ladder(pricer, k, n_rungs) is not None]
            if not usable:
                continue
            customers.append(c)
            for k in usable:
                bundles.append(tuple(k))
                customer_of.append(len(customers) - 1)
        n = len(bundles)
        if n == 0:
            raise ValueError("the pricer holds no offer with a price ladder.")
        ctx = [offer_context(pricer, customers[customer_of[i]], bundles[i]) for i in range(n)]
        rungs = np.full((n, n_rungs), -1, dtype=np.int64)
        for i, items in enumerate(bundles):
            ladder = build_ladder(pricer, items, n_rungs)
            assert ladder is not None
            rungs[i, : ladder.n_arms] = ladder.rungs
        rows = pricer.price_rows([customers[customer_of[i]] for i in range(n)], bundles)
        static = np.where(rows.offered, rows.quotes.price_minor, rows.list_total_minor)
        distinct = {b: j for j, b in enumerate(sorted(set(bundles)))}
        cust = np.asarray(customer_of, dtype=np.int64)
        return cls(
            customers=customers,
            bundles=bundles,
            customer_of=cust,
            offers_of=[np.flatnonzero(cust == j) for j in range(len(customers))],
            bundle_index=np.array([distinct[b] for b in bundles], dtype=np.int64),
            n_bundles=len(distinct),
            segment=[c.segment for c in ctx],
            appeal=np.array([c.appeal for c in ctx]),
            prior_beta=np.array([pricer.sensitivity_of_segment(c.segment) for c in ctx]),
            list_total=np.array([c.list_total_minor for c in ctx], dtype=np.int64),
            cost=np.array([c.cost_minor for c in ctx], dtype=np.int64),
            opportunity=np.array([c.opportunity_minor for c in ctx]),
            rungs=rungs,
            mask=rungs > 0,
            static_price=np.asarray(static, dtype=np.int64),
        )

    def arrivals(self, n: int, rng: np.random.Generator) -> IntArray:
        """``n`` random offers: a customer uniformly, then one of that customer's bundles."""
        who = rng.integers(0, len(self.customers), size=n)
        pick = rng.random(n)
        sizes = np.array([len(o) for o in self.offers_of], dtype=np.int64)
        k = np.minimum((pick * sizes[who]).astype(np.int64), sizes[who] - 1)
        return np.array([self.offers_of[w][j] for w, j in zip(who, k, strict=True)], np.int64)

    def arrival_weights(self) -> FloatArray:
        """Each offer's probability of arriving (what an on-policy value averages over)."""
        sizes = np.array([len(o) for o in self.offers_of], dtype=np.float64)
        return 1.0 / (len(self.customers) * sizes[self.customer_of])


@dataclass(frozen=True)
class Demand:
    """The true demand of one market and seed over a pool (see the module docstring)."""

    pool: OfferPool
    market: Market
    omega: FloatArray  # per offer (its bundle's offset)
    pivot: float

    @classmethod
    def draw(
        cls, pool: OfferPool, market: Market, seed: int, bundle_sd: float, pivot: float
    ) -> Demand:
        rng = np.random.default_rng([seed, 3])
        per_bundle = rng.normal(0.0, bundle_sd, size=pool.n_bundles)
        return cls(pool, market, per_bundle[pool.bundle_index], float(pivot))

    def scale_at(self, t: int, n: int) -> float:
        m = self.market
        return m.scale if t < m.shift_offer(n) or m.scale_after is None else m.scale_after

    def p_accept(self, offers: npt.ArrayLike, prices: npt.ArrayLike, scale: float) -> FloatArray:
        """True acceptance probability of ``offers`` at ``prices`` (broadcast together)."""
        i = np.asarray(offers)
        p = self.pool
        r = np.asarray(prices, dtype=np.float64) / p.list_total[i]
        beta0 = p.prior_beta[i]
        logit = p.appeal[i] + self.omega[i] - beta0 * self.pivot + scale * beta0 * (self.pivot - r)
        return np.asarray(expit(logit), dtype=np.float64)

    def value(self, offers: npt.ArrayLike, prices: npt.ArrayLike, scale: float) -> FloatArray:
        """True expected profit (minor units; a declined offer still earns the opportunity)."""
        i = np.asarray(offers)
        p = self.pool
        margin = np.asarray(prices, dtype=np.float64) - p.cost[i] - p.opportunity[i]
        return np.asarray(margin * self.p_accept(i, prices, scale) + p.opportunity[i])

    def rung_values(self, scale: float) -> FloatArray:
        """``(n_offers, n_rungs)`` true expected profit of every rung (-inf past a ladder)."""
        p = self.pool
        idx = np.broadcast_to(np.arange(p.n)[:, None], p.rungs.shape)
        v = self.value(idx, np.maximum(p.rungs, 1), scale)
        return np.where(p.mask, v, -np.inf)


# -- guardrail checks ------------------------------------------------------------------------


class GuardrailCheck:
    """Checks every shown price: :func:`bundlewise.pricing.violated_rules` (margin floor,
    discount cap, list-total cap), the price ending (when the allowed interval has a price
    with an allowed ending) and the fairness band across every price shown for one bundle."""

    def __init__(self, pricer: Pricer) -> None:
        self.guardrails: Guardrails = pricer.guardrails
        band = pricer.pricing.fairness_band
        self.band = band if band >= 0 else None
        self.rules: dict[str, int] = {}
        self.n_checked = 0
        self._seen: dict[tuple[tuple[str, ...], int], list[str]] = {}
        self._range: dict[tuple[str, ...], tuple[int, int]] = {}

    def _rules(self, bundle: tuple[str, ...], price: int, list_total: int, cost: int) -> list[str]:
        g = self.guardrails
        broken = violated_rules(price, list_total, cost, g)
        if g.ending_modulus > 1 and price % g.ending_modulus not in g.ending_residues:
            b = price_bounds([list_total], [cost], g)
            lo, hi = int(b.lower[0]), int(b.upper[0])
            m = g.ending_modulus
            if any(lo + (r - lo) % m <= hi for r in g.ending_residues):  # an ending was possible
                broken.append("price_ending")
        return broken

    def check(self, bundle: tuple[str, ...], price: int, list_total: int, cost: int) -> None:
        """Record one shown price."""
        self.n_checked += 1
        key = (bundle, int(price))
        broken = self._seen.get(key)
        if broken is None:
            broken = self._seen[key] = self._rules(bundle, int(price), list_total, cost)
        for rule in broken:
            self.rules[rule] = self.rules.get(rule, 0) + 1
        if self.band is not None:
            lo, hi = self._range.get(bundle, (int(price), int(price)))
            lo, hi = min(lo, int(price)), max(hi, int(price))
            self._range[bundle] = (lo, hi)
            if float(lo) * (1.0 + self.band) < float(hi):
                self.rules["fairness_band"] = self.rules.get("fairness_band", 0) + 1

    @property
    def total(self) -> int:
        return sum(self.rules.values())


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every run needs: the pricer, the ``[learning]`` section, the pool, the market
    options. Picklable (sent once to each worker process)."""

    pricer: Pricer
    cfg: LearningConfig
    pool: OfferPool
    bundle_sd: float = 0.3
    pivot: float = 1.0

    def demand(self, market: Market, seed: int) -> Demand:
        return Demand.draw(self.pool, market, seed, self.bundle_sd, self.pivot)


@dataclass
class RunResult:
    """Offer-by-offer outcome of one policy in one market and seed."""

    policy: str
    param: float | None
    market: str
    seed: int
    expected: FloatArray  # true expected profit of each shown price
    oracle: FloatArray  # the oracle's, same offers
    realized: FloatArray
    accepted: npt.NDArray[np.bool_]
    explore: npt.NDArray[np.bool_]
    true_given_up: FloatArray  # true value of the greedy arm minus the shown one's
    greedy_value: FloatArray  # true value of the greedy arm
    rel_price: FloatArray
    violations: dict[str, int]
    n_checked: int
    extra: dict[str, Any] = field(default_factory=dict)


def _sequence(bench: Bench, seed: int, n: int) -> tuple[IntArray, FloatArray]:
    """The offers and the shoppers' uniform draws of one seed (the same for every policy)."""
    return bench.pool.arrivals(n, np.random.default_rng([seed, 1])), np.random.default_rng(
        [seed, 2]
    ).random(n)


def _scales(demand: Demand, n: int) -> tuple[FloatArray, FloatArray, int]:
    """The rung values before and after the shift, and the first offer after it."""
    m = demand.market
    before = demand.rung_values(m.scale)
    after = before if m.scale_after is None else demand.rung_values(m.scale_after)
    return before, after, m.shift_offer(n)


def run_learner(
    bench: Bench, spec: PolicySpec, market: Market, seed: int, n: int, log: bool = False
) -> RunResult:
    """``n`` offers through a :class:`Learner` with ``spec``'s policy (the serving path)."""
    pool, pricer = bench.pool, bench.pricer
    demand = bench.demand(market, seed)
    offers, uniforms = _sequence(bench, seed, n)
    before, after, shift = _scales(demand, n)
    learner = Learner(pricer, bench.cfg, make_policy=spec.factory())
    check = GuardrailCheck(pricer)
    expected = np.empty(n)
    oracle = np.empty(n)
    realized = np.empty(n)
    accepted = np.zeros(n, dtype=bool)
    explore = np.zeros(n, dtype=bool)
    given_up = np.zeros(n)
    greedy_value = np.empty(n)
    rel = np.empty(n)
    k = pool.rungs.shape[1]
    arms = np.empty(n, dtype=np.int64)
    propensity = np.empty(n)
    probs = np.zeros((n, k)) if log else np.zeros((0, k))
    off_ladder = 0
    for t in range(n):
        i = int(offers[t])
        customer, items = pool.customers[pool.customer_of[i]], pool.bundles[i]
        d = learner.policy().decide(customer, items, f"{market.name}/{seed}/{t}")
        price = d.price_minor
        check.check(items, price, int(pool.list_total[i]), int(pool.cost[i]))
        values = before[i] if t < shift else after[i]
        on_ladder = d.arm < k and int(pool.rungs[i, d.arm]) == price
        if not on_ladder:  # never expected: the policy's ladder is the pool's
            off_ladder += 1
            v = float(demand.value(i, price, demand.scale_at(t, n)))
        else:
            v = float(values[d.arm])
        scale = demand.scale_at(t, n)
        yes = bool(uniforms[t] < float(demand.p_accept(i, price, scale)))
        expected[t] = v
        oracle[t] = float(values.max())
        opp = float(pool.opportunity[i])
        realized[t] = (price - int(pool.cost[i]) - opp) * yes + opp
        accepted[t] = yes
        explore[t] = d.explore
        greedy_value[t] = float(values[d.greedy_arm])
        given_up[t] = greedy_value[t] - v if d.explore else 0.0
        rel[t] = price / int(pool.list_total[i])
        arms[t] = d.arm
        propensity[t] = d.propensity
        if log:
            probs[t, : len(d.probabilities)] = d.probabilities
        learner.observe(
            Feedback(
                customer_id=customer,
                item_ids=items,
                price_minor=price,
                accepted=yes,
                explore=d.explore,
                profit_given_up_minor=d.profit_given_up_minor,
                expected_profit_minor=d.expected_profit_minor,
                policy_version=d.policy_version,
            )
        )
    violations = dict(check.rules)
    if off_ladder:
        violations["off_ladder"] = off_ladder
    post = learner.posterior
    extra: dict[str, Any] = {
        "budget": learner.budget.to_dict(),
        "n_versions": learner.n_refreshes + 1,
        "propensity_min": float(propensity.min()),
        "propensity_max": float(propensity.max()),
        "posterior_beta": {
            s: float(post.segment_state(s)[0][1]) for s in sorted(set(pool.segment))
        },
        "prior_beta": {
            s: float(pricer.sensitivity_of_segment(s)) for s in sorted(set(pool.segment))
        },
        "mean_arm_last": float(arms[-max(1, n // 4) :].mean()),
    }
    if log:
        extra["log"] = {
            "offers": offers,
            "arms": arms,
            "propensity": propensity,
            "probs": probs,
            "reward": realized.copy(),
            "posterior": post.to_json(),
        }
    return RunResult(
        spec.kind, spec.param, market.name, seed, expected, oracle, realized, accepted, explore,
        given_up, greedy_value, rel, violations, check.n_checked, extra,
    )  # fmt: skip


def run_fixed(bench: Bench, policy: str, market: Market, seed: int, n: int) -> RunResult:
    """The static pricer, the oracle or the list price on the same offers (no learning)."""
    pool = bench.pool
    demand = bench.demand(market, seed)
    offers, uniforms = _sequence(bench, seed, n)
    before, after, shift = _scales(demand, n)
    t = np.arange(n)
    values = np.where((t < shift)[:, None], before[offers], after[offers])
    oracle = values.max(axis=1)
    scale = np.where(t < shift, market.scale, market.scale_after or market.scale)
    if policy == ORACLE:
        arm = values.argmax(axis=1)
        price = pool.rungs[offers, arm]
    elif policy == STATIC:
        price = pool.static_price[offers]
    elif policy == LIST:
        price = pool.list_total[offers]
    else:
        raise ValueError(f"unknown fixed policy {policy!r}.")
    expected = np.empty(n)
    p_yes = np.empty(n)
    for s in np.unique(scale):
        sel = scale == s
        expected[sel] = demand.value(offers[sel], price[sel], float(s))
        p_yes[sel] = demand.p_accept(offers[sel], price[sel], float(s))
    yes = uniforms < p_yes
    opp = pool.opportunity[offers]
    realized = (price - pool.cost[offers] - opp) * yes + opp
    check = GuardrailCheck(bench.pricer)
    if policy != LIST:  # the list total is the store's own price, not one bundlewise sets
        for i, p in zip(offers, price, strict=True):
            check.check(pool.bundles[i], int(p), int(pool.list_total[i]), int(pool.cost[i]))
    return RunResult(
        policy, None, market.name, seed, expected, oracle, realized.astype(np.float64), yes,
        np.zeros(n, dtype=bool), np.zeros(n), expected.copy(), price / pool.list_total[offers],
        dict(check.rules), check.n_checked,
    )  # fmt: skip


# -- off-policy evaluation -------------------------------------------------------------------


def _greedy_table(bench: Bench, posterior: ResponsePosterior, version: str) -> FloatArray:
    """The greedy arm under a posterior's mean, one-hot on every pool offer."""
    pool = bench.pool
    policy = ThompsonPolicy(bench.pricer, posterior, bench.cfg, version, 0.0)
    table = np.zeros(pool.rungs.shape)
    for i in range(pool.n):
        g = policy.probabilities(pool.customers[pool.customer_of[i]], pool.bundles[i], "target")
        table[i, : g.size] = g
    return table


def _with_uniform(bench: Bench, table: FloatArray, share: float) -> FloatArray:
    """``(1 - share) * table + share * uniform over each offer's ladder``."""
    n_arms = bench.pool.mask.sum(axis=1)
    return np.asarray(
        (1.0 - share) * table + np.where(bench.pool.mask, share / n_arms[:, None], 0.0)
    )


def _target_tables(bench: Bench, posterior_json: str) -> dict[str, tuple[str, FloatArray]]:
    """Each target policy's arm probabilities on every pool offer ``(n_offers, n_rungs)``: two
    built from the logged run's final posterior (what a refresh would deploy) and two that do
    not depend on the logs."""
    pool, pricer, cfg = bench.pool, bench.pricer, bench.cfg
    posterior = ResponsePosterior.from_json(posterior_json)
    thompson = np.zeros(pool.rungs.shape)
    t_policy = ThompsonPolicy(pricer, posterior, cfg, "ope.thompson", cfg.max_explore_share)
    for i in range(pool.n):
        th = t_policy.probabilities(pool.customers[pool.customer_of[i]], pool.bundles[i], "target")
        thompson[i, : th.size] = th
    prior = _greedy_table(bench, ResponsePosterior.from_pricer(pricer, cfg), "ope.prior")
    middle = np.zeros(pool.rungs.shape)
    middle[np.arange(pool.n), (pool.mask.sum(axis=1) - 1) // 2] = 1.0
    return {
        "greedy_final": (
            "greedy on the final posterior",
            _greedy_table(bench, posterior, "ope.greedy"),
        ),
        "thompson_final": (
            f"Thompson on the final posterior, explore rate {cfg.max_explore_share:g}",
            thompson,
        ),
        "prior_greedy": (
            "greedy on the prior (the trained pricer's model), 10% uniform",
            _with_uniform(bench, prior, 0.1),
        ),
        "middle_rung": ("the middle rung, 10% uniform", _with_uniform(bench, middle, 0.1)),
    }


def ope_report(bench: Bench, run: RunResult, market: Market, n_sim: int) -> dict[str, Any]:
    """IPS / SNIPS / DR estimates of four target policies from a logged Thompson run, against
    their true value (exact, over the arrival distribution) and an on-policy simulation."""
    log = run.extra["log"]
    pool = bench.pool
    demand = bench.demand(market, run.seed)
    values = demand.rung_values(market.scale)
    safe = np.where(np.isfinite(values), values, 0.0)
    posterior = ResponsePosterior.from_json(log["posterior"])
    # reward model for DR: the final posterior mean
    q_hat = np.zeros_like(safe)
    for i in range(pool.n):
        delta, beta, omega = posterior.mean(pool.segment[i], pool.bundles[i])
        r = pool.rungs[i] / pool.list_total[i]
        p = expit(pool.appeal[i] + delta + omega - beta * r)
        margin = pool.rungs[i] - pool.cost[i] - pool.opportunity[i]
        q_hat[i] = np.where(pool.mask[i], margin * p + pool.opportunity[i], 0.0)
    offers = log["offers"]
    weights = pool.arrival_weights()
    rng = np.random.default_rng([run.seed, 7])
    out: dict[str, Any] = {}
    for name, (label, table) in _target_tables(bench, log["posterior"]).items():
        truth = float(np.dot(weights, (table * safe).sum(axis=1)))
        # on-policy simulation: fresh arrivals, arms drawn from the target, true accepts
        sim_offers = pool.arrivals(n_sim, rng)
        cum = table[sim_offers].cumsum(axis=1)
        arm = np.minimum((rng.random(n_sim)[:, None] > cum).sum(axis=1), table.shape[1] - 1)
        price = pool.rungs[sim_offers, arm]
        yes = rng.random(n_sim) < demand.p_accept(sim_offers, price, market.scale)
        opp = pool.opportunity[sim_offers]
        sim = (price - pool.cost[sim_offers] - opp) * yes + opp
        half = 1.96 * float(sim.std(ddof=1)) / math.sqrt(n_sim)
        target = table[offers]
        est = evaluate_policy(
            {"profit": log["reward"]},
            log["arms"],
            log["propensity"],
            target,
            {"profit": q_hat[offers]},
            logged_probs=log["probs"],
        )["profit"]
        unsupported = float((target * (log["probs"] == 0.0)).sum(axis=1).mean())
        out[name] = {
            "label": label,
            "truth": truth,
            # the target's probability on arms the logging policy gave probability 0 (never
            # shown there): IPS and SNIPS cannot see that mass, DR fills it from its model
            "unsupported_share": unsupported,
            "simulated": {
                "mean": float(sim.mean()),
                "lo": sim.mean() - half,
                "hi": sim.mean() + half,
            },
            "estimates": {
                k: {
                    **e.as_dict(),
                    "error_pct": 100.0 * (e.value - truth) / truth,
                    "half_width_pct": 100.0 * (e.upper - e.lower) / 2.0 / truth,
                    "covers_truth": bool(e.lower <= truth <= e.upper),
                }
                for k, e in est.items()
            },
        }
    return out


# -- summaries -------------------------------------------------------------------------------


def mean_ci(values: Sequence[float]) -> dict[str, float]:
    """Mean and 95% t-interval over seeds."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "lo": mean, "hi": mean}
    half = float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def run_metrics(r: RunResult, last: int) -> dict[str, float]:
    """One run's figures (money in minor units)."""
    w = slice(-last, None)
    explored = r.explore.mean()
    greedy_total = float(r.greedy_value.sum())
    return {
        "pct_of_oracle_last": 100.0 * float(r.expected[w].sum() / r.oracle[w].sum()),
        "pct_of_oracle_all": 100.0 * float(r.expected.sum() / r.oracle.sum()),
        "regret": float((r.oracle - r.expected).sum()),
        "profit_per_offer": float(r.expected.mean()),
        "realized_per_offer": float(r.realized.mean()),
        "take_rate": float(r.accepted.mean()),
        "mean_price_over_list_last": float(r.rel_price[w].mean()),
        "explored_share": float(explored),
        "true_given_up_share": float(r.true_given_up.sum() / greedy_total) if greedy_total else 0.0,
        "violations": float(sum(r.violations.values())),
    }


def _curves(runs: list[RunResult], n_points: int) -> dict[str, Any]:
    n = runs[0].expected.size
    at = np.unique(np.linspace(0, n, n_points + 1).astype(np.int64)[1:])
    regret = np.array([np.cumsum(r.oracle - r.expected)[at - 1] for r in runs])
    edges = np.linspace(0, n, n_points + 1).astype(np.int64)
    pct = np.array(
        [
            [
                100 * r.expected[a:b].sum() / r.oracle[a:b].sum()
                for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
            for r in runs
        ]
    )
    lo, hi = [], []
    for col in regret.T:
        ci = mean_ci(col)
        lo.append(ci["lo"])
        hi.append(ci["hi"])
    return {
        "offers": at.tolist(),
        "cum_regret": {"mean": regret.mean(axis=0).tolist(), "lo": lo, "hi": hi},
        "bin_end": edges[1:].tolist(),
        "pct_of_oracle": pct.mean(axis=0).tolist(),
    }


def summarize(runs: list[RunResult], last: int, n_points: int = 40) -> dict[str, Any]:
    """Mean and 95% CI over seeds of :func:`run_metrics`, plus curves and per-seed values."""
    metrics = [run_metrics(r, last) for r in runs]
    out: dict[str, Any] = {
        key: mean_ci([m[key] for m in metrics]) for key in metrics[0] if key != "violations"
    }
    out["violations_total"] = int(sum(m["violations"] for m in metrics))
    out["violations_by_rule"] = {}
    for r in runs:
        for rule, count in r.violations.items():
            out["violations_by_rule"][rule] = out["violations_by_rule"].get(rule, 0) + count
    out["prices_checked"] = int(sum(r.n_checked for r in runs))
    out["seeds"] = [r.seed for r in runs]
    out["per_seed_regret"] = [m["regret"] for m in metrics]
    out["per_seed_pct_of_oracle_last"] = [m["pct_of_oracle_last"] for m in metrics]
    out["curves"] = _curves(runs, n_points)
    if runs[0].extra:
        budgets = [r.extra["budget"] for r in runs]
        out["budget_explored_share"] = mean_ci([b["explored_share"] for b in budgets])
        out["budget_given_up_share"] = mean_ci([b["given_up_share"] for b in budgets])
        out["propensity_min"] = float(min(r.extra["propensity_min"] for r in runs))
        out["propensity_max"] = float(max(r.extra["propensity_max"] for r in runs))
        out["posterior_beta"] = {
            s: mean_ci([r.extra["posterior_beta"][s] for r in runs])
            for s in runs[0].extra["posterior_beta"]
        }
        out["prior_beta"] = runs[0].extra["prior_beta"]
        out["n_versions"] = runs[0].extra["n_versions"]
    return out


def _regret(r: RunResult) -> float:
    return float((r.oracle - r.expected).sum())


def _paired(a: list[RunResult], b: list[RunResult]) -> dict[str, float]:
    """Paired difference of cumulative regret (a minus b), seed by seed."""
    by_seed = {r.seed: float((r.oracle - r.expected).sum()) for r in b}
    return mean_ci([float((r.oracle - r.expected).sum()) - by_seed[r.seed] for r in a])


# -- the track -------------------------------------------------------------------------------


def train_prior(
    orders: str | Path,
    workdir: str | Path,
    start: datetime,
    end: datetime,
    pricing: PricingConfig | None = None,
) -> tuple[Pricer, dict[str, Any]]:
    """Ingest the orders between ``start`` and ``end`` into a workspace and train it; the
    trained pricer and what train said of the price response.

    The pricer's model version is replaced by :data:`BENCH_MODEL_VERSION` (the trained one is in
    the info): every policy decision is seeded by the policy version, which starts with the
    model version, a hash of the whole config; fixing it keeps the benchmark's draws, and so its
    figures, unchanged when an unrelated config setting is added."""
    table = pq.read_table(orders)
    when = table.column("InvoiceDate")
    unit = when.type
    mask = pc.and_(
        pc.greater_equal(when, pa.scalar(start, unit)), pc.less(when, pa.scalar(end, unit))
    )
    path = Path(workdir) / "orders.parquet"
    pq.write_table(table.filter(mask), path)
    config = Config(pricing=pricing or PricingConfig())
    workspace = Workspace(Path(workdir) / "workspace")
    ingest(workspace, path, config)
    result = train(workspace, config)
    response = result.price_response or {}
    info = {
        "start": start.date().isoformat(),
        "end": end.date().isoformat(),
        "n_orders": result.n_orders,
        "n_customers": result.n_customers,
        "n_offers": result.n_offers,
        "model_version": result.model_version,
        "segments": [
            {k: s.get(k) for k in ("segment", "n_customers", "estimate", "posterior", "source")}
            for s in response.get("segments", [])
        ],
    }
    return Pricer.load(workspace)._replace(model_version=BENCH_MODEL_VERSION), info


_BENCH: Bench | None = None


def _init_worker(bench: Bench) -> None:
    global _BENCH
    _BENCH = bench


def _task(job: tuple[str, PolicySpec | str, Market, int, int, bool]) -> RunResult:
    what, spec, market, seed, n, log = job
    assert _BENCH is not None
    if what == "learner":
        assert isinstance(spec, PolicySpec)
        result = run_learner(_BENCH, spec, market, seed, n, log)
        if log:  # evaluate here, send back the estimates, not the logs
            result.extra["ope"] = ope_report(_BENCH, result, market, n)
            del result.extra["log"]
        return result
    assert isinstance(spec, str)
    return run_fixed(_BENCH, spec, market, seed, n)


class _Runner:
    """Runs jobs inline (``jobs=1``) or on a process pool (each worker gets the bench once)."""

    def __init__(self, bench: Bench, jobs: int) -> None:
        self.bench = bench
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1:
            self.pool = ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(bench,),
            )

    def submit(
        self, job: tuple[str, PolicySpec | str, Market, int, int, bool]
    ) -> Future[RunResult]:
        if self.pool is not None:
            return self.pool.submit(_task, job)
        future: Future[RunResult] = Future()
        _init_worker(self.bench)
        future.set_result(_task(job))
        return future

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def learning_track(
    pricer: Pricer,
    *,
    cfg: LearningConfig | None = None,
    markets: Sequence[Market] | None = None,
    n_offers: int = 20_000,
    seeds: Sequence[int] = tuple(range(5)),
    tune_seeds: Sequence[int] = (1000, 1001),
    epsilons: Sequence[float] = (0.01, 0.03, 0.1, 0.3),
    widths: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
    last: int = 5_000,
    bundle_sd: float = 0.3,
    pivot: float = 1.0,
    ope: bool = True,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Tune epsilon-greedy and UCB per market on ``tune_seeds``, then run every policy on every
    market and seed; summaries, curves, paired regret differences, OPE and the goal's checks."""
    say = progress or (lambda _s: None)
    cfg = cfg or LearningConfig()
    markets = list(markets or default_markets())
    last = min(last, max(1, n_offers // 4))
    start = time.perf_counter()
    pool = OfferPool.from_pricer(pricer, cfg.n_rungs)
    bench = Bench(pricer, cfg, pool, bundle_sd, pivot)
    say(
        f"{pool.n} offers ({len(pool.customers)} customers, {pool.n_bundles} bundles); "
        f"{len(markets)} markets x {len(seeds)} seeds x {n_offers} offers; {jobs} process(es)"
    )
    runner = _Runner(bench, jobs)
    futures: dict[tuple[str, Any, str, int], Future[RunResult]] = {}

    def run(what: str, spec: PolicySpec | str, m: Market, seed: int) -> Future[RunResult]:
        """Submit a run once (the same policy, market and seed give the same result)."""
        key = (what, spec, m.name, seed)
        if key not in futures:
            log = ope and what == "learner" and spec == PolicySpec(THOMPSON) and m.stationary
            futures[key] = runner.submit((what, spec, m, seed, n_offers, log))
        return futures[key]

    grids = {EPSILON: tuple(epsilons), UCB: tuple(widths)}
    try:
        for m in markets:
            for kind, grid in grids.items():
                for value in grid:
                    for s in tune_seeds:
                        run("learner", PolicySpec(kind, value), m, s)
        for m in markets:
            for s in seeds:
                run("learner", PolicySpec(THOMPSON), m, s)
                for fixed in (STATIC, ORACLE, LIST):
                    run("fixed", fixed, m, s)
        tune_table: dict[str, Any] = {}
        chosen: dict[tuple[str, str], float] = {}
        totals: dict[tuple[str, float], float] = {}
        for m in markets:
            tune_table[m.name] = {}
            for kind, grid in grids.items():
                scores = {}
                for value in grid:
                    regrets = [
                        _regret(run("learner", PolicySpec(kind, value), m, s).result())
                        for s in tune_seeds
                    ]
                    scores[value] = float(np.mean(regrets))
                    totals[(kind, value)] = totals.get((kind, value), 0.0) + scores[value]
                best = min(grid, key=lambda v: scores[v])
                chosen[(m.name, kind)] = best
                tune_table[m.name][kind] = {
                    "grid": [float(v) for v in grid],
                    "mean_regret": [scores[v] for v in grid],
                    "chosen": float(best),
                }
            say(
                f"tuned on seeds {list(tune_seeds)} in {m.name}: epsilon "
                f"{chosen[(m.name, EPSILON)]:g}, UCB width {chosen[(m.name, UCB)]:g}"
            )
        overall: dict[str, float] = {}
        for kind, grid in grids.items():
            overall[kind] = float(min(grid, key=lambda v: totals[(kind, v)]))  # noqa: B023
        say(f"one value for every market: epsilon {overall[EPSILON]:g}, UCB width {overall[UCB]:g}")
        specs = {
            (m.name, name): PolicySpec(kind, chosen[(m.name, kind)] if per else overall[kind])
            for m in markets
            for name, kind, per in (
                (EPSILON, EPSILON, True),
                (UCB, UCB, True),
                (EPSILON_ALL, EPSILON, False),
                (UCB_ALL, UCB, False),
            )
        }
        for m in markets:
            for s in seeds:
                for name in BASELINES:
                    run("learner", specs[(m.name, name)], m, s)
        results: dict[str, Any] = {}
        for m in markets:
            runs: dict[str, list[RunResult]] = {}
            for name in LABELS:
                if name == THOMPSON:
                    runs[name] = [
                        run("learner", PolicySpec(THOMPSON), m, s).result() for s in seeds
                    ]
                elif name in BASELINES:
                    spec = specs[(m.name, name)]
                    runs[name] = [run("learner", spec, m, s).result() for s in seeds]
                else:
                    runs[name] = [run("fixed", name, m, s).result() for s in seeds]
            policies = {}
            for name in LABELS:
                entry = summarize(runs[name], last)
                entry["label"] = LABELS[name]
                if name in BASELINES:
                    entry["param"] = specs[(m.name, name)].param
                policies[name] = entry
            ope_rows: dict[str, Any] = {}
            if ope and m.stationary:
                ope_rows = _ope_summary([r.extra["ope"] for r in runs[THOMPSON]])
            results[m.name] = {
                "market": {**asdict(m), "label": m.label},
                "policies": policies,
                "thompson_minus": {
                    name: _paired(runs[THOMPSON], runs[name]) for name in (*BASELINES, STATIC)
                },
                "ope": ope_rows,
            }
            say(
                f"{m.name}: Thompson {policies[THOMPSON]['pct_of_oracle_last']['mean']:.1f}% of "
                f"the oracle over the last {last} offers"
            )
    finally:
        runner.close()
    return {
        "n_offers": n_offers,
        "seeds": list(seeds),
        "tune_seeds": list(tune_seeds),
        "last": last,
        "bundle_sd": bundle_sd,
        "pivot": pivot,
        "learning": asdict(cfg),
        "pricing": asdict(pricer.pricing),
        "pool": {
            "n_offers": pool.n,
            "n_customers": len(pool.customers),
            "n_bundles": pool.n_bundles,
            "rungs_over_list_example": (pool.rungs[0][pool.mask[0]] / pool.list_total[0])
            .round(3)
            .tolist(),
            "static_price_over_list": mean_ci((pool.static_price / pool.list_total).tolist()),
        },
        "tuning": tune_table,
        "tuned_for_all_markets": overall,
        "markets": results,
        "checks": _checks(results),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _ope_summary(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for target in per_seed[0]:
        rows = [s[target] for s in per_seed]
        out[target] = {
            "label": rows[0]["label"],
            "truth": mean_ci([r["truth"] for r in rows]),
            "simulated": mean_ci([r["simulated"]["mean"] for r in rows]),
            "unsupported_share": mean_ci([r["unsupported_share"] for r in rows]),
            "estimators": {
                est: {
                    "error_pct": mean_ci([r["estimates"][est]["error_pct"] for r in rows]),
                    "abs_error_pct_max": max(abs(r["estimates"][est]["error_pct"]) for r in rows),
                    "per_seed_error_pct": [r["estimates"][est]["error_pct"] for r in rows],
                    "half_width_pct": mean_ci(
                        [r["estimates"][est]["half_width_pct"] for r in rows]
                    ),
                    "ess": mean_ci([r["estimates"][est]["ess"] for r in rows]),
                    "coverage": sum(r["estimates"][est]["covers_truth"] for r in rows) / len(rows),
                    "warnings": sum(r["estimates"][est]["warning"] is not None for r in rows),
                }
                for est in rows[0]["estimates"]
            },
        }
    return out


def _checks(results: dict[str, Any]) -> dict[str, Any]:
    """The goal of issue 10, market by market."""
    out: dict[str, Any] = {}
    for name, r in results.items():
        p = r["policies"]
        ours = p[THOMPSON]
        out[name] = {
            "pct_of_oracle_last": ours["pct_of_oracle_last"]["mean"],
            "within_3pct_of_oracle": ours["pct_of_oracle_last"]["mean"] >= GOAL_PCT_OF_ORACLE,
            "regret_below": {b: r["thompson_minus"][b]["mean"] < 0 for b in BASELINES},
            "violations": int(sum(e["violations_total"] for e in p.values())),
        }
        if r["ope"]:
            out[name]["ope_mean_abs_error_pct"] = {
                target: {est: abs(e["error_pct"]["mean"]) for est, e in t["estimators"].items()}
                for target, t in r["ope"].items()
            }
    return out


# -- text ------------------------------------------------------------------------------------


def format_learning(result: dict[str, Any]) -> str:
    """Text tables: per market, every policy; then tuning, OPE and the goal's checks."""
    n, last = result["n_offers"], result["last"]
    lines = [
        f"{n} offers per run, seeds {result['seeds']} (tuning seeds {result['tune_seeds']}); "
        f"means with 95% intervals over seeds; money in major units"
    ]
    head = (
        f"{'policy':44s} {'% oracle last ' + str(last):>22s} {'% oracle all':>20s} "
        f"{'regret':>20s} {'take':>6s} {'explored':>8s} {'given up':>8s} {'viol.':>5s}"
    )
    for name, r in result["markets"].items():
        lines += ["", f"Market {name} ({r['market']['label']})", head]
        for e in r["policies"].values():
            label = e["label"] + (f" [{e['param']:g}]" if "param" in e else "")
            pl, pa_, rg = e["pct_of_oracle_last"], e["pct_of_oracle_all"], e["regret"]
            lines.append(
                f"{label:44s} {pl['mean']:6.1f} [{pl['lo']:5.1f},{pl['hi']:5.1f}]      "
                f"{pa_['mean']:6.1f} [{pa_['lo']:5.1f},{pa_['hi']:5.1f}] "
                f"{rg['mean'] / 100:8.0f} [{rg['lo'] / 100:5.0f},{rg['hi'] / 100:5.0f}] "
                f"{e['take_rate']['mean']:6.3f} {e['explored_share']['mean']:8.1%} "
                f"{e['true_given_up_share']['mean']:8.1%} {e['violations_total']:5d}"
            )
        for other, d in r["thompson_minus"].items():
            lines.append(
                f"  Thompson minus {LABELS[other]}: regret {d['mean'] / 100:+.0f} "
                f"[{d['lo'] / 100:+.0f}, {d['hi'] / 100:+.0f}] (paired)"
            )
        beta = r["policies"][THOMPSON].get("posterior_beta", {})
        if beta:
            prior = r["policies"][THOMPSON]["prior_beta"]
            lines.append(
                "  Thompson's posterior sensitivity (prior -> end): "
                + ", ".join(f"{s} {prior[s]:.2f} -> {b['mean']:.2f}" for s, b in beta.items())
            )
    overall = result["tuned_for_all_markets"]
    lines += [
        "",
        "Tuning (mean regret on the tuning seeds, major units; chosen value starred; one value "
        f"for all markets: epsilon {overall[EPSILON]:g}, UCB width {overall[UCB]:g}):",
    ]
    for name, t in result["tuning"].items():
        for kind, row in t.items():
            cells = "  ".join(
                f"{v:g}{'*' if v == row['chosen'] else ''}: {g / 100:.0f}"
                for v, g in zip(row["grid"], row["mean_regret"], strict=True)
            )
            lines.append(f"  {name:14s} {kind:16s} {cells}")
    ope_lines = []
    for name, r in result["markets"].items():
        for t in r["ope"].values():
            for est, e in t["estimators"].items():
                err = e["error_pct"]
                ope_lines.append(
                    f"  {name:6s} {t['label'][:48]:48s} {est:6s} "
                    f"truth {t['truth']['mean'] / 100:7.3f} "
                    f"error {err['mean']:+6.2f}% [{err['lo']:+6.2f},{err['hi']:+6.2f}] "
                    f"max |err| {e['abs_error_pct_max']:5.2f}% ESS {e['ess']['mean']:8.0f} "
                    f"CI +-{e['half_width_pct']['mean']:.0f}% covers {e['coverage']:.0%} "
                    f"unsupported {t['unsupported_share']['mean']:.1%}"
                )
    if ope_lines:
        lines += ["", "Off-policy evaluation from the logged Thompson runs (profit per offer):"]
        lines += ope_lines
    lines += [
        "",
        "Goal (Thompson): >= 97% of the oracle over the last offers, regret below the tuned "
        "baselines, 0 violations, OPE within 5%:",
    ]
    short = {EPSILON: "eps/market", UCB: "UCB/market", EPSILON_ALL: "eps/all", UCB_ALL: "UCB/all"}
    for name, c in result["checks"].items():
        below = ", ".join(
            f"{short[b]} {'yes' if v else 'NO'}" for b, v in c["regret_below"].items()
        )
        text = (
            f"  {name:14s} {c['pct_of_oracle_last']:6.1f}% of oracle "
            f"({'met' if c['within_3pct_of_oracle'] else 'NOT met'}); regret below {below}; "
            f"violations {c['violations']}"
        )
        if "ope_mean_abs_error_pct" in c:
            worst = {t: max(v.values()) for t, v in c["ope_mean_abs_error_pct"].items()}
            text += "; OPE mean |error| (worst estimator) " + ", ".join(
                f"{t} {v:.1f}%" for t, v in worst.items()
            )
        lines.append(text)
    return "\n".join(lines)


def quick_options() -> dict[str, Any]:
    """Options of a small, fast run (``--quick`` and the tests)."""
    return {
        "n_offers": 1500,
        "seeds": (0, 1),
        "tune_seeds": (1000,),
        "epsilons": (0.03, 0.2),
        "widths": (0.5, 1.0),
        "last": 500,
    }


def default_slice() -> tuple[datetime, datetime]:
    """December 2009 of the bundled Online Retail II data."""
    return datetime(2009, 12, 1), datetime(2010, 1, 1)


def trained_pricer(
    orders: str | Path, start: datetime, end: datetime, pricing: PricingConfig | None = None
) -> tuple[Pricer, dict[str, Any]]:
    """:func:`train_prior` in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        return train_prior(orders, tmp, start, end, pricing)


def learning_config(settings: Sequence[str] = ()) -> LearningConfig:
    """The default ``[learning]`` section with ``KEY=VALUE`` settings applied (validated as in
    a config file).

    Raises
    ------
    ValueError
        For a setting that is not ``KEY=VALUE`` or names no ``[learning]`` key.
    ConfigError
        For a value the section refuses.
    """
    cfg = LearningConfig()
    changes: dict[str, Any] = {}
    for text in settings:
        key, sep, value = text.partition("=")
        if not sep or not hasattr(cfg, key.strip()):
            raise ValueError(f"--learning {text!r}: expected KEY=VALUE with a [learning] key.")
        current = getattr(cfg, key.strip())
        kind = type(current)
        if kind is bool:
            changes[key.strip()] = value.strip().lower() in ("1", "true", "yes")
        else:
            changes[key.strip()] = kind(value.strip())
    return replace(cfg, **changes)


def with_prior_sensitivity(value: float) -> PricingConfig:
    """The default ``[pricing]`` with ``sensitivity_prior`` set (what train falls back to where
    the orders have too little price variation)."""
    return replace(PricingConfig(), sensitivity_prior=float(value))


__all__ = [
    "BASELINES",
    "BENCH_MODEL_VERSION",
    "EPSILON",
    "EPSILON_ALL",
    "LABELS",
    "LEARNERS",
    "LIST",
    "ORACLE",
    "STATIC",
    "THOMPSON",
    "UCB",
    "UCB_ALL",
    "Bench",
    "Demand",
    "GuardrailCheck",
    "Market",
    "OfferPool",
    "PolicySpec",
    "RunResult",
    "default_markets",
    "default_slice",
    "format_learning",
    "learning_config",
    "learning_track",
    "mean_ci",
    "ope_report",
    "quick_options",
    "run_fixed",
    "run_learner",
    "summarize",
    "train_prior",
    "trained_pricer",
    "with_prior_sensitivity",
]
