"""An in-memory snapshot of a trained workspace, built for fast lookups while serving.

Everything a request needs is precomputed at load: each customer's ranked offers with their
explanations (the history items behind them, the co-purchase evidence of every pair, the price
response, the binding guardrail, the personalized-price disclosure), each item's bundle partners,
and the catalog for quotes. The app swaps snapshots atomically on reload.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from bundlewise.composer.explain import offers_by_customer
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.exceptions import WorkspaceError
from bundlewise.money import format_money
from bundlewise.pipeline import ANONYMOUS
from bundlewise.pricing import (
    Guardrails,
    intercept_for_acceptance,
    quote_prices,
)
from bundlewise.pricing.optimizer import Objective

DEFAULT_N = 5


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    title: str
    list_price_minor: int | None
    unit_cost_minor: int | None
    currency: str


@dataclass
class Snapshot:
    """What the server answers from; immutable once built.

    Offers are kept as one JSON array per customer (built in SQL at load), looked up by index,
    so a million customers cost one Arrow string column and one dict of positions.
    """

    model_version: str
    customer_index: dict[str, int]
    offers_column: pa.Array
    partners: dict[str, list[dict[str, Any]]]
    items: dict[str, CatalogItem]
    segments: dict[str, str]
    sensitivity: dict[str, float]
    config: Config
    loaded_at: float = field(default_factory=time.time)

    @property
    def n_customers(self) -> int:
        return sum(1 for c in self.customer_index if c != ANONYMOUS)

    def customer_ids(self, limit: int) -> list[str]:
        """Up to ``limit`` customers with offers (the anonymous one excluded)."""
        out = []
        for c in self.customer_index:
            if c != ANONYMOUS:
                out.append(c)
                if len(out) == limit:
                    break
        return out

    def offers_json(self, customer_id: str, n: int) -> tuple[bytes, bool]:
        """The JSON array of a customer's first ``n`` offers (popular ones when unknown)."""
        personal = customer_id in self.customer_index
        idx = self.customer_index.get(customer_id if personal else ANONYMOUS)
        if idx is None:
            return b"[]", personal
        text: str = self.offers_column[idx].as_py()
        if n >= DEFAULT_N:
            return text.encode(), personal
        return json.dumps(json.loads(text)[:n], separators=(",", ":")).encode(), personal

    def customer_offers(self, customer_id: str, n: int) -> tuple[list[dict[str, Any]], bool]:
        """Offers of a customer as dicts (popular ones when unknown) and whether personal."""
        body, personal = self.offers_json(customer_id, n)
        offers: list[dict[str, Any]] = json.loads(body)
        return offers, personal

    def quote(self, customer_id: str | None, item_ids: list[str]) -> dict[str, Any]:
        """Price one bundle for one customer (the customer's segment sensitivity, mid appeal).

        Raises
        ------
        KeyError
            For an unknown item id (the message names it).
        ValueError
            When an item has no list price.
        """
        missing = [i for i in item_ids if i not in self.items]
        if missing:
            raise KeyError(f"unknown item id(s): {', '.join(missing)}")
        rows = [self.items[i] for i in item_ids]
        if any(r.list_price_minor is None for r in rows):
            raise ValueError(
                "no list price for item(s): "
                + ", ".join(r.item_id for r in rows if r.list_price_minor is None)
            )
        pricing = self.config.pricing
        list_total = sum(int(r.list_price_minor or 0) for r in rows)
        cost = sum(
            r.unit_cost_minor
            if r.unit_cost_minor is not None
            else round((r.list_price_minor or 0) * pricing.assumed_cost_share)
            for r in rows
        )
        segment = self.segments.get(customer_id or "", "unknown")
        b = self.sensitivity.get(segment, pricing.sensitivity_prior)
        accept_at_list = float(np.sqrt(pricing.accept_at_list_low * pricing.accept_at_list_high))
        a = float(intercept_for_acceptance(accept_at_list, b))
        q = quote_prices(
            [list_total],
            [cost],
            [a],
            [b],
            Guardrails.from_config(pricing),
            objective=Objective.from_config(pricing),
        )
        currency = rows[0].currency
        evidence = _pair_evidence(item_ids, self.partners)
        if not q.is_feasible[0]:
            return {
                "item_ids": item_ids,
                "feasible": False,
                "reason": (
                    f"no feasible price: cost {format_money(cost, currency)} x (1 + min_margin "
                    f"{pricing.min_margin}) exceeds the list total "
                    f"{format_money(list_total, currency)}"
                ),
            }
        price = int(q.price_minor[0])
        return {
            "item_ids": item_ids,
            "titles": [r.title for r in rows],
            "feasible": True,
            "currency": currency,
            "list_total_minor": list_total,
            "cost_minor": cost,
            "is_cost_assumed": any(r.unit_cost_minor is None for r in rows),
            "price_minor": price,
            "discount_minor": list_total - price,
            "discount_pct": (list_total - price) / list_total,
            "p_accept": float(q.p_accept[0]),
            "expected_profit_minor": float(q.expected_profit_minor[0]),
            "binding_rule": str(q.binding_rule[0]),
            "explanation": {
                "history_items": [],
                "pairs": evidence,
                "price_response": {
                    "segment": segment,
                    "sensitivity": b,
                    "accept_at_list": accept_at_list,
                },
                "binding_rule": str(q.binding_rule[0]),
                "personalized_price": customer_id is not None,
                "compared_with_list_total_minor": list_total,
            },
        }


def _pair_evidence(
    item_ids: list[str], partners: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    out = []
    for j, a in enumerate(item_ids):
        by_partner = {p["item_id"]: p for p in partners.get(a, [])}
        for b in item_ids[j + 1 :]:
            p = by_partner.get(b)
            out.append(
                {
                    "item_a": a,
                    "item_b": b,
                    "orders_together": p["orders_together"] if p else 0,
                    "lift_shrunk": p["lift_shrunk"] if p else None,
                    "npmi": p["npmi"] if p else None,
                }
            )
    return out


def _served_offers(
    workspace: Workspace,
    segments: pa.Table | None,
    sensitivity: dict[str, float],
    config: Config,
) -> pa.Table:
    """The stored ``served_offers`` of the latest run, or the same computed now."""
    with workspace.connect(read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "runs" not in names or "offers" not in names:
            raise WorkspaceError(
                f"no trained model in {workspace.path}: run `bundlewise train` first."
            )
        if "served_offers" in names:
            stored = con.sql("SELECT * FROM served_offers").to_arrow_table()
            latest = con.execute("SELECT model_version FROM runs").fetchall()
            if (
                stored.num_rows
                and latest
                and stored.column("model_version")[0].as_py() in {r[0] for r in latest}
            ):
                return stored
        similarity = (
            con.sql("SELECT * FROM pair_text_similarity").to_arrow_table()
            if "pair_text_similarity" in names
            else None
        )
        return offers_by_customer(
            con, segments, sensitivity, config.pricing.sensitivity_prior, similarity
        )


def _table_or_empty(workspace: Workspace, name: str) -> pa.Table | None:
    try:
        return workspace.table(name)
    except KeyError:
        return None


def load_snapshot(workspace_path: Any, config: Config | None = None) -> Snapshot:
    """Build a :class:`Snapshot` from a trained workspace.

    Raises
    ------
    WorkspaceError
        If the workspace is missing or has no trained model.
    """
    config = config or Config()
    workspace = Workspace(workspace_path)
    if not workspace.db_path.exists():
        raise WorkspaceError(f"no workspace at {workspace.path}: run `bundlewise ingest` first.")
    sensitivity: dict[str, float] = {}
    response = _table_or_empty(workspace, "price_response")
    if response is not None and config.pricing.sensitivity_source == "estimated":
        sensitivity = dict(
            zip(
                response.column("segment").to_pylist(),
                response.column("posterior").to_pylist(),
                strict=True,
            )
        )
    segments_table = _table_or_empty(workspace, "customer_segments")
    segments = (
        dict(
            zip(
                segments_table.column("customer_id").to_pylist(),
                segments_table.column("segment").to_pylist(),
                strict=True,
            )
        )
        if segments_table is not None
        else {}
    )
    table = _served_offers(workspace, segments_table, sensitivity, config)
    customers = table.column("customer_id").to_pylist()
    versions = table.column("model_version")
    model_version = str(versions[0].as_py()) if table.num_rows else ""
    partners: dict[str, list[dict[str, Any]]] = {}
    with workspace.connect(read_only=True) as con:
        for item_id, partner_id, n_ab, lift, npmi in con.execute(
            "SELECT item_id, partner_id, n_ab, lift_shrunk, npmi FROM partners "
            "WHERE rank <= 10 ORDER BY item_id, rank"
        ).fetchall():
            partners.setdefault(item_id, []).append(
                {
                    "item_id": partner_id,
                    "orders_together": int(n_ab),
                    "lift_shrunk": float(lift),
                    "npmi": float(npmi),
                }
            )
        item_rows = con.execute(
            "SELECT item_id, coalesce(title, item_id), list_price_minor, unit_cost_minor, "
            "coalesce(currency, 'GBP') FROM items"
        ).fetchall()
    items = {r[0]: CatalogItem(*r) for r in item_rows}
    return Snapshot(
        model_version=model_version,
        customer_index={c: i for i, c in enumerate(customers)},
        offers_column=table.column("offers_json").cast(pa.large_string()).combine_chunks(),
        partners=partners,
        items=items,
        segments=segments,
        sensitivity=sensitivity,
        config=config,
    )


__all__ = ["CatalogItem", "Snapshot", "load_snapshot"]
