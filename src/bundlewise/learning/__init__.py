"""The learning loop: guarded price ladders, a price-response posterior, bandit policies and
experiments (see :mod:`bundlewise.learning.policy`)."""

from __future__ import annotations
