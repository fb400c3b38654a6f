"""The offers' reasons (built in SQL) and the offered pairs' title similarity (Arrow / DuckDB)
equal what the former per-row Python code gave, on small worlds with ties, both candidate
sources, bundles of two and three items, a currency without minor units, titles missing or
empty, and an item the catalog lacks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from bundlewise.composer.candidates import compose_candidates
from bundlewise.composer.explain import pair_text_similarity
from bundlewise.composer.offers import price_offers
from bundlewise.config import ComposerConfig, Config, InputConfig, PricingConfig
from bundlewise.data.schemas import ITEMS
from bundlewise.mining.cooccurrence import PairMiner
from bundlewise.money import format_money
from bundlewise.pricing.pricer import RULE_TEXT

T0 = dt.datetime(2024, 1, 1)


def _world(currency: str) -> tuple[pa.Table, pa.Table]:
    """Lines with many equal counts (ties) and an items table in ``currency``."""
    rows: list[tuple[str, str | None, dt.datetime, str]] = []
    k = 0
    baskets = [(12, "ABC"), (12, "ABD"), (12, "CDE"), (6, "AE"), (6, "BF"), (9, "FG"), (9, "GH")]
    for count, items in baskets:
        for _ in range(count):
            for item in items:
                rows.append((f"x{k}", None, T0 + dt.timedelta(days=k % 20), item))
            k += 1
    history = {
        "u1": ["A", "B", "C"],
        "u2": ["D", "D"],
        "u3": ["F", "G", "H"],
        "u4": ["AB", "E"],
        "ü5": ["C", "H"],
    }
    for customer, orders in history.items():
        for j, items in enumerate(orders):
            for item in items:
                rows.append((f"{customer}-{j}", customer, T0 + dt.timedelta(days=30 + j), item))
    lines = pa.table(
        {
            "order_id": pa.array([r[0] for r in rows], pa.string()),
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "item_id": pa.array([r[3] for r in rows], pa.string()),
        }
    )
    ids = list("ABCDEFGH")
    prices = [1000, 850, 1205, 499, 700, 915, 333, 1250]
    items = pa.table(
        {
            "item_id": ids,
            "title": [f"Title {i}" for i in ids],
            "category": ["misc"] * len(ids),
            "list_price_minor": prices,
            "unit_cost_minor": [400, None, 300, 200, 250, 100, 120, None],
            "currency": [currency] * len(ids),
            "stock": [10] * len(ids),
        },
        schema=ITEMS,
    )
    return lines, items


def _reference_reason(candidate: dict[str, Any], offer: dict[str, Any]) -> str:
    """The reason as the former ``_evidence`` + ``offer_reason`` wrote it, row by row."""
    names = offer["titles"]
    if candidate["source"] == "history" and candidate["anchor_id"] is not None:
        at = candidate["item_ids"].index(candidate["anchor_id"])
        others = " + ".join(t for j, t in enumerate(names) if j != at)
        evidence = (
            f"You bought {names[at]} ({candidate['anchor_n_orders']} order(s)); {others} "
            f"{'is' if len(names) == 2 else 'are'} bought with it in "
            f"{candidate['min_pair_count']}+ orders (lift {candidate['min_pair_lift']:.1f})"
        )
    else:
        evidence = (
            f"Popular with other customers: {' + '.join(names)} bought together in "
            f"{candidate['min_pair_count']} orders (lift {candidate['min_pair_lift']:.1f})"
        )
    currency, L, price = offer["currency"], offer["list_total_minor"], offer["price_minor"]
    pct = (L - price) / max(L, 1)
    return (
        f"{evidence}. Price {format_money(price, currency)} vs list "
        f"{format_money(L, currency)} ({pct:.0%} off): "
        f"{RULE_TEXT[offer['binding_rule']]}; P(accept) {offer['p_accept']:.2f} "
        f"(price sensitivity {offer['sensitivity']:.2f}, {offer['segment']} segment)."
    )


@pytest.mark.parametrize(
    ("currency", "n_offers", "max_discount"), [("GBP", 4, 0.3), ("JPY", 6, 0.05), ("EUR", 3, 0.9)]
)
def test_sql_reasons_equal_the_per_row_python_ones(
    currency: str, n_offers: int, max_discount: float
) -> None:
    lines, items = _world(currency)
    miner = PairMiner(min_count=2, prior_strength=1.0).fit(lines)
    candidates = compose_candidates(
        lines, miner.pairs_, miner.partners_, ComposerConfig(n_offers=n_offers), ["ghost"]
    )
    config = Config(
        input=InputConfig(currency=currency), pricing=PricingConfig(max_discount=max_discount)
    )
    priced = price_offers(candidates, items, config, model_version="t")
    offers = priced.offers.to_pylist()
    by_key = {(c["customer_id"], tuple(c["item_ids"])): c for c in candidates.to_pylist()}
    assert len(offers) > 10
    assert {o["source"] for o in offers} >= {"history", "popular"}
    assert {len(o["item_ids"]) for o in offers} >= {2, 3}
    for offer in offers:
        candidate = by_key[(offer["customer_id"], tuple(offer["item_ids"]))]
        assert offer["reason"] == _reference_reason(candidate, offer)
    assert [o["currency"] for o in offers] == [currency] * len(offers)


class _Encoder:
    """Deterministic unit vectors from the text (no model)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.array(
            [[len(t), sum(map(ord, t)) % 97 + 1.0, t.count(" ") + 0.5] for t in texts],
            dtype=np.float64,
        )
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _reference_similarity(offers: pa.Table, items: pa.Table, encoder: _Encoder) -> list[Any]:
    """The former set-and-dict version of :func:`pair_text_similarity`."""
    pairs: set[tuple[str, str]] = set()
    for ids in offers.column("item_ids").to_pylist():
        for j, a in enumerate(ids):
            for b in ids[j + 1 :]:
                pairs.add((a, b) if a < b else (b, a))
    titles = dict(
        zip(items.column("item_id").to_pylist(), items.column("title").to_pylist(), strict=True)
    )
    ids = sorted({i for pair in pairs for i in pair})
    position = {i: k for k, i in enumerate(ids)}
    vectors = np.asarray(encoder.encode([titles.get(i) or i for i in ids]))
    ordered = sorted(pairs)
    a_idx = np.array([position[a] for a, _ in ordered])
    b_idx = np.array([position[b] for _, b in ordered])
    sims = np.round(np.einsum("ij,ij->i", vectors[a_idx], vectors[b_idx]), 4)
    return [(a, b, float(s)) for (a, b), s in zip(ordered, sims, strict=True)]


def test_pair_similarity_equals_the_former_python_version() -> None:
    offers = pa.table(
        {
            "item_ids": pa.array(
                [["b", "a"], ["a", "b", "c"], ["c", "a"], ["zz", "é"], ["d", "b", "a"], ["a", "b"]],
                pa.list_(pa.string()),
            )
        }
    )
    items = pa.table(
        {
            "item_id": ["a", "b", "c", "d", "é"],
            "title": ["Red mug", None, "", "Blue mug set", "Tasse"],
        }
    )
    got = pair_text_similarity(offers, items, _Encoder(), batch_size=2)
    assert got is not None
    assert list(zip(*got.to_pydict().values(), strict=True)) == _reference_similarity(
        offers, items, _Encoder()
    )
    empty = pair_text_similarity(offers.slice(0, 0), items, _Encoder())
    assert empty is not None and empty.num_rows == 0
