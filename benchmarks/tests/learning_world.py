"""A small trained pricer for the learning-track tests: six items, 24 customers in two
segments, three bundles each (the pricer's batch decisions solved over them)."""

from __future__ import annotations

import numpy as np

from bundlewise.config import Config
from bundlewise.pricing.pricer import CatalogItem, Pricer

ITEMS = {
    "mug": 1000, "tea": 600, "pot": 2500, "tin": 450, "cup": 800, "jar": 1250,
}  # fmt: skip
BUNDLES = [("mug", "tea"), ("pot", "tin"), ("cup", "jar"), ("mug", "pot"), ("tea", "tin", "cup")]


def world_pricer(sensitivity: float = 4.0, seed: int = 0) -> Pricer:
    """Customers ``c00``..``c23`` (even: segment ``low``, odd: ``high``), acceptance at the
    list between about 2% and 10%, the prior sensitivity ``sensitivity`` in both segments."""
    rng = np.random.default_rng(seed)
    catalog = {
        k: CatalogItem(k, k.title(), price, int(0.6 * price), "GBP") for k, price in ITEMS.items()
    }
    customers, bundles, appeals = [], [], []
    for c in range(24):
        for j in rng.choice(len(BUNDLES), size=3, replace=False):
            customers.append(f"c{c:02d}")
            bundles.append(list(BUNDLES[int(j)]))
            accept_at_list = rng.uniform(0.02, 0.10)
            appeals.append(float(np.log(accept_at_list / (1 - accept_at_list)) + sensitivity))
    return Pricer.from_batch(
        model_version="world",
        config=Config(),
        catalog=catalog,
        customer_segment={f"c{c:02d}": ("low" if c % 2 == 0 else "high") for c in range(24)},
        sensitivity={"low": sensitivity, "high": sensitivity},
        customer_ids=customers,
        bundles=bundles,
        appeals=appeals,
    )
