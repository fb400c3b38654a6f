"""Evaluation: reports (and, later, ranking metrics and the pricing simulator)."""

from __future__ import annotations
