"""An in-memory snapshot of a trained workspace, built for fast lookups while serving.

Everything a request needs is precomputed at load: each customer's ranked offers with their
explanations (the history items behind them, the co-purchase evidence of every pair, the price
response, the binding guardrail, the personalized-price disclosure), each item's bundle partners,
and the trained :class:`~bundlewise.pricing.Pricer` for quotes and cart offers, so every route
gives the stored offers' prices. The app swaps snapshots atomically on reload.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.composer.explain import offers_by_customer
from bundlewise.composer.offers import reprice_offers
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError, WorkspaceError
from bundlewise.pricing.pricer import ANONYMOUS, CatalogItem, Pricer
from bundlewise.serving.buckets import BucketRange
from bundlewise.serving.snapshot import (
    in_buckets,
    read_manifest,
    read_served_offers,
    snapshot_path,
    workspace_served_offers,
)

DEFAULT_N = 5


@dataclass
class Snapshot:
    """What the server answers from; immutable once built.

    Offers are kept as one JSON array per customer (built in SQL by ``train``), looked up by
    position, so a million customers cost one Arrow string column (in the chunks it was read
    in) and one dict of positions.
    """

    model_version: str
    customer_index: dict[str, int]
    offers_column: pa.Array | pa.ChunkedArray
    partners: dict[str, list[dict[str, Any]]]
    pricer: Pricer
    config: Config
    loaded_at: float = field(default_factory=time.time)
    #: The buckets whose customers this server answers (``None``: all of them).
    buckets: BucketRange | None = None
    #: Where the served offers came from: ``"snapshot"`` (the partitioned snapshot directory)
    #: or ``"workspace"`` (the workspace tables).
    source: str = "workspace"

    def serves(self, customer_id: str) -> bool:
        """Whether this server answers ``customer_id``'s offers (always, without buckets)."""
        return self.buckets is None or self.buckets.serves(customer_id)

    @property
    def items(self) -> dict[str, CatalogItem]:
        """The catalog the model was trained with."""
        return self.pricer.catalog

    @property
    def segments(self) -> dict[str, str]:
        return self.pricer.customer_segment

    @property
    def sensitivity(self) -> dict[str, float]:
        return self.pricer.sensitivity

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
        """Price one bundle for one customer with the trained pricer (the price a stored offer
        of the same customer and items has), with the pair evidence.

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
        out = self.pricer.quote(customer_id, item_ids).to_dict()
        if out["feasible"]:
            out["explanation"]["pairs"] = _pair_evidence(item_ids, self.partners)
        return out

    def quote_many(
        self, customer_id: str | None, bundles: list[list[str]]
    ) -> list[dict[str, Any] | None]:
        """:meth:`quote` of each bundle for one customer, priced in one pass of the pricer
        (the same prices to the minor unit); ``None`` where :meth:`quote` raises (an unknown
        item, an item without a list price)."""
        priceable = [
            k
            for k, ids in enumerate(bundles)
            if all(i in self.items and self.items[i].list_price_minor is not None for i in ids)
        ]
        out: list[dict[str, Any] | None] = [None] * len(bundles)
        if not priceable:
            return out
        chosen = [bundles[k] for k in priceable]
        quotes = self.pricer.quote_many([customer_id] * len(chosen), chosen)
        for k, ids, q in zip(priceable, chosen, quotes, strict=True):
            d = q.to_dict()
            if d["feasible"]:
                d["explanation"]["pairs"] = _pair_evidence(ids, self.partners)
            out[k] = d
        return out


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
    workspace: Workspace, pricer: Pricer, buckets: BucketRange | None
) -> tuple[pa.Table, str]:
    """The served offers of the trained model and where they came from: its partitioned
    snapshot directory when it has one, else the workspace's ``served_offers`` table, else the
    same computed now; only ``buckets``' customers (and the anonymous fallback) when given."""
    directory = snapshot_path(workspace.path, pricer.model_version)
    manifest = read_manifest(directory, pricer.model_version)
    if manifest is not None:
        return read_served_offers(directory, manifest, buckets), "snapshot"
    table = _workspace_served_offers(workspace, pricer)
    return (table if buckets is None else in_buckets(table, buckets)), "workspace"


def _workspace_served_offers(workspace: Workspace, pricer: Pricer) -> pa.Table:
    """The stored ``served_offers`` of the trained model, or the same computed now."""
    with workspace.connect(read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "runs" not in names or "offers" not in names:
            raise WorkspaceError(
                f"no trained model in {workspace.path}: run `bundlewise train` first."
            )
        if "served_offers" in names:
            stored = workspace_served_offers(con)
            if stored.num_rows and stored.column("model_version")[0].as_py() == (
                pricer.model_version
            ):
                return stored
        return offers_by_customer(con, _similarity(con, names))


def _similarity(con: Any, names: set[str]) -> pa.Table | None:
    if "pair_text_similarity" not in names:
        return None
    table: pa.Table = con.sql("SELECT * FROM pair_text_similarity").to_arrow_table()
    return table


def _repriced_served_offers(workspace: Workspace, pricer: Pricer) -> pa.Table:
    """``served_offers`` with every stored offer priced again by ``pricer`` (new guardrails)."""
    offers = reprice_offers(workspace.table("offers"), pricer)
    with workspace.connect(read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        con.register("repriced_", offers)
        con.execute("CREATE TEMP TABLE offers AS SELECT * FROM repriced_")  # shadows the stored
        con.unregister("repriced_")
        return offers_by_customer(con, _similarity(con, names))


def load_snapshot(
    workspace_path: Any,
    config: Config | None = None,
    *,
    reprice: bool = False,
    buckets: BucketRange | None = None,
) -> Snapshot:
    """Build a :class:`Snapshot` from a trained workspace.

    Prices come from the pricer ``train`` saved. ``config`` defaults to the config the model
    was trained with; a config whose price-setting ``[pricing]`` settings differ from the
    trained ones is refused unless ``reprice`` (then the pricer takes the new settings and
    every stored offer is priced again at load; offers no longer feasible are not served).

    The served offers come from the partitioned snapshot ``train`` wrote
    (``snapshot/<model_version>/`` in the workspace directory, see
    :mod:`bundlewise.serving.snapshot`), or from the workspace tables of a model trained before
    snapshots existed. With ``buckets`` only the offers of customers in those buckets are
    loaded, and the anonymous fallback (a fleet of servers, each answering its buckets).

    Raises
    ------
    WorkspaceError
        If the workspace is missing or has no trained model.
    ConfigError
        If ``config``'s pricing settings differ from the trained model's and not ``reprice``.
    WorkspaceError
        Also when ``buckets`` has another bucket count than the snapshot.
    """
    workspace = Workspace(workspace_path)
    if not workspace.db_path.exists():
        raise WorkspaceError(f"no workspace at {workspace.path}: run `bundlewise ingest` first.")
    pricer = Pricer.load(workspace)
    config = config or pricer.config
    changes = pricer.guardrail_changes(config.pricing)
    if changes and not reprice:
        raise ConfigError(
            "the config's pricing settings differ from the trained model's: "
            + "; ".join(changes)
            + "; retrain, or start with --reprice to price with the new guardrails"
        )
    if changes:
        offers = workspace.table("offers")
        pricer = pricer.with_pricing(config.pricing).resolved(
            offers.column("customer_id").to_pylist(), offers.column("item_ids").to_pylist()
        )
        table, source = _repriced_served_offers(workspace, pricer), "workspace"
        if buckets is not None:
            table = in_buckets(table, buckets)
    else:
        table, source = _served_offers(workspace, pricer, buckets)
    # Customers in id order (the order the workspace table has), each with its row's position:
    # the offers stay in the chunks they were read in, never sorted or copied.
    ids = table.column("customer_id")
    order = pc.sort_indices(ids)
    customer_index = dict(zip(ids.take(order).to_pylist(), order.to_numpy().tolist(), strict=True))
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
    return Snapshot(
        model_version=pricer.model_version,
        customer_index=customer_index,
        offers_column=table.column("offers_json"),
        partners=partners,
        pricer=pricer,
        config=config,
        buckets=buckets,
        source=source,
    )


__all__ = ["CatalogItem", "Snapshot", "load_snapshot"]
