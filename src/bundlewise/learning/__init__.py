"""The learning loop: guarded price ladders, a price-response posterior, bandit policies with
logged propensities, and experiments (see :mod:`bundlewise.learning.policy`)."""

from __future__ import annotations

from bundlewise.learning.experiments import (
    HOLDOUT,
    LEARNING,
    assign,
    experiment_report,
    variant_weights,
)
from bundlewise.learning.ladder import PriceLadder, build_ladder
from bundlewise.learning.policy import (
    Decision,
    EpsilonGreedyPolicy,
    ExploreBudget,
    Feedback,
    LadderPolicy,
    Learner,
    ThompsonPolicy,
    UCBPolicy,
    next_explore_rate,
)
from bundlewise.learning.posterior import ResponsePosterior

__all__ = [
    "HOLDOUT",
    "LEARNING",
    "Decision",
    "EpsilonGreedyPolicy",
    "ExploreBudget",
    "Feedback",
    "LadderPolicy",
    "Learner",
    "PriceLadder",
    "ResponsePosterior",
    "ThompsonPolicy",
    "UCBPolicy",
    "assign",
    "build_ladder",
    "experiment_report",
    "next_explore_rate",
    "variant_weights",
]
