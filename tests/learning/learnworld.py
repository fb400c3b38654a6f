"""A tiny world for the learning tests: a catalog of three items, two segments, a pricer."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from bundlewise.config import Config, LearningConfig, PricingConfig
from bundlewise.learning.policy import LadderPolicy, Learner, offer_context
from bundlewise.pricing.optimizer import BatchState
from bundlewise.pricing.pricer import CatalogItem, Pricer

CATALOG = {
    "mug": CatalogItem("mug", "Tea mug", 1000, 400, "GBP"),
    "tea": CatalogItem("tea", "Green tea", 600, 240, "GBP"),
    "pot": CatalogItem("pot", "Tea pot", 2500, 1100, "GBP"),
    "gold": CatalogItem("gold", "Gold leaf", 1000, 990, "GBP"),  # cost too high to discount
    "free": CatalogItem("free", "Sample", None, None, "GBP"),  # no list price
}
MUG_TEA = ("mug", "tea")
MUG_POT = ("mug", "pot")
#: appeal of each stored (customer, bundle)
APPEALS = {"ann": {MUG_TEA: 6.0, MUG_POT: 5.0}, "bob": {MUG_TEA: 9.0, MUG_POT: 8.0}}
SENSITIVITY = {"low": 6.0, "high": 10.0}


def make_pricer(pricing: PricingConfig | None = None, model_version: str = "v1") -> Pricer:
    """The world's pricer: ann in segment ``low`` (b = 6), bob in ``high`` (b = 10)."""
    return Pricer(
        model_version=model_version,
        config=Config(pricing=pricing or PricingConfig()),
        catalog=CATALOG,
        customer_segment={"ann": "low", "bob": "high"},
        sensitivity=dict(SENSITIVITY),
        appeals={c: dict(v) for c, v in APPEALS.items()},
        state=BatchState(),
    )


def accept_probability(
    pricer: Pricer, customer: str | None, items: tuple[str, ...], price: int, beta: float
) -> float:
    """The true acceptance probability in a market whose sensitivity is ``beta``."""
    ctx = offer_context(pricer, customer, items)
    return float(expit(ctx.appeal - beta * price / ctx.list_total_minor))


class Market:
    """Shoppers whose price sensitivity per segment is ``true_beta`` (offsets 0)."""

    def __init__(self, pricer: Pricer, true_beta: dict[str, float], seed: int = 0) -> None:
        self.pricer = pricer
        self.true_beta = dict(true_beta)
        self.rng = np.random.default_rng(seed)

    def p_accept(self, customer: str | None, items: tuple[str, ...], price: int) -> float:
        seg = self.pricer.segment_of(self.pricer.customer_key(customer))
        return accept_probability(self.pricer, customer, items, price, self.true_beta[seg])

    def respond(self, customer: str | None, items: tuple[str, ...], price: int) -> bool:
        return bool(self.rng.random() < self.p_accept(customer, items, price))

    def best_price(self, policy: LadderPolicy, customer: str, items: tuple[str, ...]) -> int:
        """The oracle's arm: the ladder price with the highest true expected profit."""
        ladder = policy.ladder(items)
        profit = [
            (p - ladder.cost_minor) * self.p_accept(customer, items, int(p)) for p in ladder.rungs
        ]
        return int(ladder.rungs[int(np.argmax(profit))])


def run_loop(
    learner: Learner, market: Market, offers: list[tuple[str, tuple[str, ...]]], n: int
) -> list[Any]:
    """Serve ``n`` offers (cycling through ``offers``) with the learner's current policy, feed
    the outcomes back; returns the decisions."""
    from bundlewise.learning.policy import Feedback

    decisions = []
    for k in range(n):
        customer, items = offers[k % len(offers)]
        policy = learner.policy()
        d = policy.decide(customer, items, f"offer-{k}")
        accepted = market.respond(customer, items, d.price_minor)
        learner.observe(
            Feedback(
                customer_id=customer,
                item_ids=items,
                price_minor=d.price_minor,
                accepted=accepted,
                explore=d.explore,
                profit_given_up_minor=d.profit_given_up_minor,
                expected_profit_minor=d.expected_profit_minor,
                policy_version=d.policy_version,
            )
        )
        decisions.append(d)
    return decisions


def learning_config(**changes: Any) -> LearningConfig:
    return LearningConfig(**changes)
