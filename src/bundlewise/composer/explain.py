"""Offer explanations as data: for every offer, the customer's history with its items, the
co-purchase evidence of every pair, the price response used, the binding guardrail and the
personalized-price disclosure, assembled in SQL as one JSON array per customer.

``train`` stores the result as the workspace table ``served_offers`` so that a server starts (or
reloads) by reading it instead of recomputing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.data import _sql

logger = logging.getLogger(__name__)

_OFFERS = "__offers__"  # where the offers come from in :data:`_OFFERS_SQL_OF`

_OFFERS_SQL_OF = """
WITH exploded AS (
    SELECT o.offer_id, o.customer_id, u.item_id
    FROM __offers__ o, unnest(o.item_ids) AS u(item_id)
), bought AS (
    SELECT customer_id, item_id, count(DISTINCT order_id) AS n
    FROM order_lines
    WHERE customer_id IN (SELECT DISTINCT customer_id FROM __offers__)
    GROUP BY 1, 2
), hist AS (
    SELECT e.offer_id, list({'item_id': e.item_id, 'orders': h.n}
                            ORDER BY h.n DESC, e.item_id) AS history
    FROM exploded e JOIN bought h ON h.customer_id = e.customer_id AND h.item_id = e.item_id
    GROUP BY e.offer_id
), pairs_of AS (
    SELECT DISTINCT a.offer_id, a.item_id AS item_a, b.item_id AS item_b
    FROM exploded a JOIN exploded b
      ON a.offer_id = b.offer_id AND a.customer_id = b.customer_id AND a.item_id < b.item_id
), ev AS (
    SELECT p.offer_id,
           list({'item_a': p.item_a, 'item_b': p.item_b,
                 'orders_together': coalesce(s.n_ab, 0),
                 'lift_shrunk': s.lift_shrunk, 'npmi': s.npmi,
                 'text_similarity': t.similarity}
                ORDER BY p.item_a, p.item_b) AS pairs
    FROM pairs_of p
    LEFT JOIN pair_stats s ON s.item_a = p.item_a AND s.item_b = p.item_b
    LEFT JOIN text_similarity_ t ON t.item_a = p.item_a AND t.item_b = p.item_b
    GROUP BY p.offer_id
), rows AS (
    SELECT o.customer_id, o.offer_rank,
           {'offer_id': o.offer_id, 'offer_rank': o.offer_rank, 'customer_id': o.customer_id,
            'item_ids': o.item_ids, 'titles': o.titles, 'currency': o.currency,
            'list_total_minor': o.list_total_minor, 'price_minor': o.price_minor,
            'discount_minor': o.discount_minor, 'discount_pct': o.discount_pct,
            'p_accept': o.p_accept, 'expected_profit_minor': o.expected_profit_minor,
            'binding_rule': o.binding_rule, 'is_cost_assumed': o.is_cost_assumed,
            'source': o.source, 'model_version': o.model_version,
            'explanation': {
                'history_items': coalesce(h.history, []),
                'pairs': coalesce(e.pairs, []),
                'price_response': {'segment': o.segment, 'sensitivity': o.sensitivity,
                                   'appeal': o.appeal,
                                   'accept_at_list': 1.0 / (1.0 + exp(o.sensitivity - o.appeal))},
                'binding_rule': o.binding_rule,
                'personalized_price': o.customer_id <> '__anonymous__',
                'compared_with_list_total_minor': o.list_total_minor,
                'text': o.reason}} AS offer
    FROM __offers__ o
    LEFT JOIN hist h USING (offer_id) LEFT JOIN ev e USING (offer_id)
)
SELECT customer_id, CAST(to_json(list(offer ORDER BY offer_rank)) AS VARCHAR) AS offers_json,
       any_value(offer.model_version) AS model_version
FROM rows GROUP BY customer_id ORDER BY customer_id
"""

#: One row per customer of the ``offers`` table: ``customer_id, offers_json, model_version``.
OFFERS_SQL = _OFFERS_SQL_OF.replace(_OFFERS, "offers")

#: Customers whose served offers :func:`store_served_offers` builds in one query.
CUSTOMERS_PER_CHUNK = 8192


TEXT_SIMILARITY_SCHEMA = pa.schema(
    [("item_a", pa.string()), ("item_b", pa.string()), ("similarity", pa.float64())]
)


class Encoder(Protocol):
    """What encodes titles: unit-norm vectors, one row per text (e.g. ``TextEncoder``)."""

    def encode(self, texts: list[str]) -> Any: ...


def pair_text_similarity(
    offers: pa.Table,
    items: pa.Table,
    encoder: Encoder | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 512,
) -> pa.Table | None:
    """Cosine similarity of the titles of every item pair in the offers (pretrained sentence
    encoder, loaded offline); ``None`` without the ``text`` extra (logged).

    Titles are encoded ``batch_size`` at a time; ``on_progress(titles_done, n_titles)`` is
    called after each batch."""
    pairs = _offered_pairs(offers)
    if not pairs.num_rows:
        return TEXT_SIMILARITY_SCHEMA.empty_table()
    if encoder is None:
        try:
            from bundlewise.models.text_encoder import TextEncoder

            encoder = TextEncoder()
        except ImportError as exc:
            logger.warning("no text similarity in explanations: %s", exc)
            return None
    item_a, item_b = pairs.column("item_a"), pairs.column("item_b")
    ids = pc.unique(pa.concat_arrays([*item_a.chunks, *item_b.chunks]))
    ids = ids.take(pc.sort_indices(ids))
    at = pc.index_in(ids, items.column("item_id"))
    titles = pc.take(items.column("title"), at) if "title" in items.column_names else None
    texts_arr = ids if titles is None else pc.if_else(
        pc.fill_null(pc.not_equal(titles, ""), False), titles, ids
    )  # fmt: skip
    texts: list[str] = texts_arr.to_pylist()
    chunks = []
    for start in range(0, len(texts), batch_size):
        chunks.append(np.asarray(encoder.encode(texts[start : start + batch_size])))
        if on_progress is not None:
            on_progress(min(start + batch_size, len(texts)), len(texts))
    vectors = np.concatenate(chunks, axis=0)
    a_idx = pc.index_in(item_a, ids).to_numpy(zero_copy_only=False)
    b_idx = pc.index_in(item_b, ids).to_numpy(zero_copy_only=False)
    sims = np.einsum("ij,ij->i", vectors[a_idx], vectors[b_idx]).astype(np.float64)
    return pa.table(
        {
            "item_a": item_a,
            "item_b": item_b,
            "similarity": pa.array(np.round(sims, 4), pa.float64()),
        },
        schema=TEXT_SIMILARITY_SCHEMA,
    )


def _offered_pairs(offers: pa.Table) -> pa.Table:
    """Every distinct item pair ``item_a < item_b`` of the offers' bundles, sorted."""
    con = _sql.connect()
    try:
        con.register("o", offers.select(["item_ids"]))
        return con.sql(
            """
            WITH x AS (
                SELECT k, unnest(item_ids) AS item_id, generate_subscripts(item_ids, 1) AS j
                FROM (SELECT row_number() OVER () AS k, item_ids FROM o)
            )
            SELECT DISTINCT least(a.item_id, b.item_id) AS item_a,
                            greatest(a.item_id, b.item_id) AS item_b
            FROM x a JOIN x b ON a.k = b.k AND a.j < b.j
            ORDER BY item_a, item_b
            """
        ).to_arrow_table()
    finally:
        con.close()


def offers_by_customer(
    con: duckdb.DuckDBPyConnection, text_similarity: pa.Table | None = None
) -> pa.Table:
    """``customer_id, offers_json, model_version``: one row per customer of the ``offers``
    table reachable through ``con`` (which must also hold ``order_lines`` and ``pair_stats``).
    ``text_similarity`` (``item_a < item_b, similarity``) adds title similarity to each pair.
    The price response of each offer (segment, sensitivity, appeal) is the one stored with it."""
    con.register(
        "text_similarity_",
        text_similarity if text_similarity is not None else TEXT_SIMILARITY_SCHEMA.empty_table(),
    )
    try:
        return con.sql(OFFERS_SQL).to_arrow_table()
    finally:
        con.unregister("text_similarity_")


def store_served_offers(
    con: duckdb.DuckDBPyConnection,
    text_similarity: pa.Table | None = None,
    name: str = "served_offers",
    customers_per_chunk: int = CUSTOMERS_PER_CHUNK,
) -> None:
    """:func:`offers_by_customer` written straight into the table ``name`` of ``con``'s
    database: the JSON of every customer stays in DuckDB, never a Python or Arrow copy of the
    whole table. Customers go ``customers_per_chunk`` at a time, in customer-id order (so the
    table holds the same rows in the same order as one query would), which bounds the query's
    memory by the chunk instead of the store."""
    con.register(
        "text_similarity_",
        text_similarity if text_similarity is not None else TEXT_SIMILARITY_SCHEMA.empty_table(),
    )
    chunk = f"{name}_chunk_"
    try:
        starts = [
            r[0]
            for r in con.execute(
                "SELECT customer_id FROM (SELECT customer_id, "
                "row_number() OVER (ORDER BY customer_id) - 1 AS k "
                "FROM (SELECT DISTINCT customer_id FROM offers)) WHERE k % $n = 0 ORDER BY k",
                {"n": max(1, int(customers_per_chunk))},
            ).fetchall()
        ]
        query = _OFFERS_SQL_OF.replace(_OFFERS, chunk)
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{chunk}" AS FROM offers LIMIT 0')
        con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {query}')  # the columns, no rows
        for k, lo in enumerate(starts):
            last = k + 1 == len(starts)
            bound = "customer_id >= $lo" + ("" if last else " AND customer_id < $hi")
            params = {"lo": lo} | ({} if last else {"hi": starts[k + 1]})
            con.execute(
                f'CREATE OR REPLACE TEMP TABLE "{chunk}" AS FROM offers WHERE {bound}', params
            )
            con.execute(f'INSERT INTO "{name}" {query}')
        con.execute(f'DROP TABLE IF EXISTS "{chunk}"')
    finally:
        con.unregister("text_similarity_")


__all__ = [
    "OFFERS_SQL",
    "Encoder",
    "TEXT_SIMILARITY_SCHEMA",
    "offers_by_customer",
    "pair_text_similarity",
    "store_served_offers",
]
