"""Candidate mining: co-purchase statistics between items."""

from __future__ import annotations

from bundlewise.mining.cooccurrence import PAIR_COLUMNS, PairMiner

__all__ = ["PAIR_COLUMNS", "PairMiner"]
