"""Evaluation: ranking and next-orders metrics, the Youshu protocol, backtests and reports.

The benchmark harness (market simulator, pricing policies, tracks, runners) is not part of
the product package: it lives in the source checkout's benchmarks folder.
"""

from __future__ import annotations
