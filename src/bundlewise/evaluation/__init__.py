"""Evaluation: ranking and next-orders metrics, the Youshu protocol, backtests, reports and
off-policy estimators of a pricing policy's value from logged offers (``ope``).

The benchmark harness (market simulator, pricing policies, tracks, runners) is not part of
the product package: it lives in the source checkout's benchmarks folder.
"""

from __future__ import annotations
