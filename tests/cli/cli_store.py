"""A small store for fast command-line and report tests: six products, 80 customers.

Two product titles are traps for a terminal library: one looks like rich markup and emoji codes,
one is Chinese (the report's plots need a CJK font for it).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
MARKUP_TITLE = "MUG [/red] [bold]WHITE :smile:"
CJK_TITLE = "茶杯套装 青花"
ITEMS = {
    "TEA": ("PINK REGENCY TEACUP", 2.95),
    "CAKE": ("REGENCY CAKESTAND 3 TIER", 12.75),
    "BAG": ("JUMBO BAG RED", 1.95),
    "LUNCH": (CJK_TITLE, 1.65),
    "MUG": (MARKUP_TITLE, 2.10),
    "CANDLE": ("SCENTED CANDLE JAR", 3.25),
}
BASKETS = (
    ("TEA", "CAKE"),
    ("BAG", "LUNCH"),
    ("MUG", "CANDLE"),
    ("TEA", "CAKE", "MUG"),
    ("BAG", "LUNCH", "CANDLE"),
)


def write_small_store(path: Path, seed: int = 0) -> Path:
    """Three orders of 80 customers over three months, prices varying by +-10%."""
    rng = random.Random(seed)
    rows = []
    invoice = 0
    for customer in range(80):
        for k in range(3):
            invoice += 1
            day = 1 + (customer * 3 + k) % 27
            for item in rng.choice(BASKETS):
                title, price = ITEMS[item]
                price = round(price * rng.choice((1.0, 1.0, 0.9, 1.1)), 2)
                rows.append(
                    f'{invoice},{item},"{title}",{rng.randint(1, 3)},'
                    f"2010-{1 + k:02d}-{day:02d} 10:00:00,{price},{1000 + customer},UK"
                )
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


class StubEncoder:
    """Stands in for the sentence encoder: deterministic unit vectors, no model to load."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.array(
            [np.random.default_rng(sum(map(ord, t))).normal(size=8) for t in texts],
            dtype=np.float32,
        ).reshape(len(texts), 8)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
