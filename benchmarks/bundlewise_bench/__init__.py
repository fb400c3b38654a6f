"""bundlewise's benchmark harness: market simulation, pricing policies, tracks and runners.

Not part of the product package. ``benchmarks/pricing.py``, ``benchmarks/recommendation.py``
and ``benchmarks/learning.py`` run it; ``bundlewise simulate`` uses it when it is installed
(``pip install -e ./benchmarks`` from a source checkout; ``make test`` and ``make demo`` install
it).

Modules: :mod:`~bundlewise_bench.market` (bundle markets fitted to real orders, shoppers and
their choices), :mod:`~bundlewise_bench.policies` (one class per pricing policy),
:mod:`~bundlewise_bench.simulator` (every policy on the same shoppers, over seeds),
:mod:`~bundlewise_bench.milp` (exact mixed bundling), :mod:`~bundlewise_bench.pricing_track`
(the scenario grid), :mod:`~bundlewise_bench.tracks` and :mod:`~bundlewise_bench.runner`
(recommendation benchmarks: Youshu and next orders), :mod:`~bundlewise_bench.report`,
:mod:`~bundlewise_bench.learning_track` (the learning loop in closed loop against simulated
shoppers: Thompson vs tuned epsilon-greedy and UCB, an oracle, the static pricer; off-policy
evaluation) and :mod:`~bundlewise_bench.learning_report`.
"""

from __future__ import annotations
