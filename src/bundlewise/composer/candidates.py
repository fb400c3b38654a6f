"""First personalization: candidate bundles per customer from their history and its complements.

For customer :math:`u` and item :math:`i` bought in :math:`n_{ui}` orders, last :math:`\\Delta_{ui}`
days before the end of the data, the interest is

.. math::

    w_{ui} = \\log(1 + n_{ui})\\, 2^{-\\Delta_{ui}/h}, \\qquad s_{ui} = w_{ui} / \\max_j w_{uj}

with half-life :math:`h`. The customer's top items are anchors; each anchor's "bought together"
partners (its bought-together list) are candidates. A partner the customer has not bought inherits
half its anchor's interest. A bundle :math:`B` scores

.. math::

    \\mathrm{score}(u, B) = \\overline{s_{u,B}}
    \\times \\overline{\\log \\widehat{\\mathrm{lift}}}_B

(mean interest of its items times mean log shrunk lift over its pairs; every pair of a triple must
be a mined complement). Customers with too few candidates are topped up with the store's popular
pairs (interest 1/2, most-bought first), as are customers without history. Set-based in DuckDB.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from bundlewise.config import ComposerConfig
from bundlewise.data import _sql

CANDIDATE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "offer_rank",
    "item_ids",
    "score",
    "source",
    "anchor_id",
    "anchor_n_orders",
    "min_pair_count",
    "min_pair_lift",
)

#: Interest given to items of a popular (non-personalized) bundle.
POPULAR_INTEREST = 0.5
#: Popular pairs kept as fallbacks.
N_POPULAR = 50


def _build_views(con: duckdb.DuckDBPyConnection, config: ComposerConfig) -> None:
    con.execute(
        """
        CREATE TEMP TABLE comp AS
        SELECT item_a, item_b, n_ab, lift_shrunk, ln(lift_shrunk) AS c FROM pairs
        WHERE lift_shrunk > 1;
        CREATE TEMP TABLE comp2 AS
        SELECT item_a AS x, item_b AS y, n_ab, lift_shrunk, c FROM comp
        UNION ALL SELECT item_b, item_a, n_ab, lift_shrunk, c FROM comp;
        -- each item's bought-together list: where candidates come from
        CREATE TEMP TABLE top2 AS
        SELECT item_id AS x, partner_id AS y, n_ab, lift_shrunk, ln(lift_shrunk) AS c
        FROM partners;
        """
    )
    con.execute(
        """
        CREATE TEMP TABLE interest AS
        WITH per_item AS (
            SELECT customer_id, item_id, count(DISTINCT order_id) AS n_orders, max(ts) AS last_ts
            FROM lines WHERE customer_id IS NOT NULL GROUP BY ALL
        ), end_ts AS (SELECT max(ts) AS t FROM lines)
        SELECT customer_id, item_id, n_orders,
               ln(1 + n_orders) * pow(0.5, date_diff('second', last_ts, end_ts.t) / 86400.0
                   / $half_life) AS w
        FROM per_item, end_ts
        """,
        {"half_life": config.recency_half_life_days},
    )
    con.execute(
        """
        CREATE TEMP TABLE interest_n AS
        SELECT customer_id, item_id, n_orders,
               w / max(w) OVER (PARTITION BY customer_id) AS s,
               row_number() OVER (PARTITION BY customer_id ORDER BY w DESC, item_id) AS r
        FROM interest
        """
    )


def compose_candidates(
    order_lines: pa.Table,
    pairs: pa.Table,
    partners: pa.Table,
    config: ComposerConfig | None = None,
    customer_ids: list[str] | None = None,
) -> pa.Table:
    """Rank candidate bundles of 2..``max_bundle_size`` items for every customer.

    Parameters
    ----------
    order_lines
        Clean order lines (customer_id may be null: anonymous baskets are ignored here).
    pairs
        ``PairMiner.pairs_``: every pair of a triple must be in it with shrunk lift above 1.
    partners
        ``PairMiner.partners_``: each item's bought-together list, where candidates come from.
    config
        Composer settings.
    customer_ids
        Extra customers to cover (e.g. known customers without usable history); they get the
        popular bundles.

    Returns
    -------
    pyarrow.Table
        Columns :data:`CANDIDATE_COLUMNS`, up to ``n_offers`` rows per customer, ``offer_rank``
        1 = best. ``item_ids`` is sorted; ``source`` is ``"history"`` or ``"popular"``.
    """
    config = config or ComposerConfig()
    con = _sql.connect()
    try:
        con.register("lines", order_lines.select(["order_id", "customer_id", "ts", "item_id"]))
        con.register("pairs", pairs.select(["item_a", "item_b", "n_ab", "lift_shrunk"]))
        con.register("partners", partners.select(["item_id", "partner_id", "n_ab", "lift_shrunk"]))
        extra = pa.table({"customer_id": pa.array(customer_ids or [], pa.string())})
        con.register("extra_customers", extra)
        _build_views(con, config)
        params = {"n_anchors": config.n_anchors, "pop": POPULAR_INTEREST}
        # Pairs: anchor x (own item) with partner y.
        con.execute(
            """
            CREATE TEMP TABLE pair_cands AS
            SELECT a.customer_id, least(a.item_id, p.y) AS i1, greatest(a.item_id, p.y) AS i2,
                   arg_max(a.item_id, (a.s + coalesce(o.s, $pop * a.s)) / 2 * p.c) AS anchor_id,
                   max((a.s + coalesce(o.s, $pop * a.s)) / 2 * p.c) AS score,
                   max(p.n_ab) AS min_pair_count, max(p.lift_shrunk) AS min_pair_lift
            FROM interest_n a
            JOIN top2 p ON p.x = a.item_id
            LEFT JOIN interest_n o ON o.customer_id = a.customer_id AND o.item_id = p.y
            WHERE a.r <= $n_anchors
            GROUP BY ALL
            """,
            params,
        )
        union_sql = (
            "SELECT customer_id, [i1, i2] AS item_ids, score, anchor_id, "
            "min_pair_count, min_pair_lift FROM pair_cands"
        )
        if config.max_bundle_size >= 3:
            # Triples: extend each customer's best pairs with an item that complements both.
            con.execute(
                """
                CREATE TEMP TABLE triple_cands AS
                WITH top_pairs AS (
                    SELECT * FROM pair_cands
                    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY score DESC,
                                               i1, i2) <= 10
                ), ext AS (
                    SELECT t.customer_id, t.i1, t.i2, p1.y AS z, t.anchor_id,
                           [t.i1, t.i2, p1.y] AS items,
                           (ln(t.min_pair_lift) + p1.c + p2.c) / 3 AS mean_c,
                           least(t.min_pair_count, p1.n_ab, p2.n_ab) AS min_pair_count,
                           least(t.min_pair_lift, p1.lift_shrunk, p2.lift_shrunk) AS min_pair_lift
                    FROM top_pairs t
                    JOIN top2 p1 ON p1.x = t.i1
                    JOIN comp2 p2 ON p2.x = t.i2 AND p2.y = p1.y
                    WHERE p1.y <> t.i1 AND p1.y <> t.i2
                )
                SELECT e.customer_id, list_sort(e.items) AS item_ids,
                       max(mean_c * (coalesce(s1.s, $pop * a.s) + coalesce(s2.s, $pop * a.s)
                                     + coalesce(s3.s, $pop * a.s)) / 3) AS score,
                       arg_max(e.anchor_id, mean_c) AS anchor_id,
                       min(e.min_pair_count) AS min_pair_count,
                       min(e.min_pair_lift) AS min_pair_lift
                FROM ext e
                JOIN interest_n a ON a.customer_id = e.customer_id AND a.item_id = e.anchor_id
                LEFT JOIN interest_n s1 ON s1.customer_id = e.customer_id AND s1.item_id = e.i1
                LEFT JOIN interest_n s2 ON s2.customer_id = e.customer_id AND s2.item_id = e.i2
                LEFT JOIN interest_n s3 ON s3.customer_id = e.customer_id AND s3.item_id = e.z
                GROUP BY e.customer_id, list_sort(e.items)
                """,
                {"pop": POPULAR_INTEREST},
            )
            union_sql += (
                " UNION ALL SELECT customer_id, item_ids, score, anchor_id, min_pair_count, "
                "min_pair_lift FROM triple_cands"
            )
        con.execute(
            f"""
            CREATE TEMP TABLE personal AS
            SELECT customer_id, item_ids, score, 'history' AS source, anchor_id,
                   min_pair_count, min_pair_lift
            FROM ({union_sql})
            QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY score DESC,
                                       item_ids) <= $n_offers
            """,
            {"n_offers": config.n_offers},
        )
        personal = con.sql(
            "SELECT customer_id, item_ids, score, source, anchor_id, min_pair_count, "
            "min_pair_lift FROM personal"
        ).to_arrow_table()
    finally:
        con.close()
    return add_popular_fallback(personal, order_lines, pairs, config.n_offers, customer_ids)


def add_popular_fallback(
    personal: pa.Table,
    order_lines: pa.Table,
    pairs: pa.Table,
    n_offers: int,
    customer_ids: list[str] | None = None,
) -> pa.Table:
    """Rank personal bundles first, then top up every customer with the store's popular pairs.

    Parameters
    ----------
    personal
        ``customer_id, item_ids, score, source, anchor_id, min_pair_count, min_pair_lift``
        (e.g. from the SQL heuristic or :func:`bundlewise.composer.beam.beam_search_bundles`).
    order_lines
        Clean order lines: every customer with an id is covered, and the number of orders
        with each bundle's anchor item is filled in (``anchor_n_orders``).
    pairs
        ``PairMiner.pairs_``: popular pairs are the most co-purchased with shrunk lift above 1.
    n_offers
        Bundles per customer.
    customer_ids
        Extra customers to cover (they get popular bundles only).

    Returns
    -------
    pyarrow.Table
        Columns :data:`CANDIDATE_COLUMNS`, ``offer_rank`` 1..n_offers per customer.
    """
    con = _sql.connect()
    try:
        con.register("lines", order_lines.select(["order_id", "customer_id", "item_id"]))
        con.register("pairs", pairs.select(["item_a", "item_b", "n_ab", "lift_shrunk"]))
        con.register(
            "personal",
            personal.select(["customer_id", "item_ids", "score", "source", "anchor_id",
                             "min_pair_count", "min_pair_lift"]),
        )  # fmt: skip
        extra = pa.table({"customer_id": pa.array(customer_ids or [], pa.string())})
        con.register("extra_customers", extra)
        con.execute(
            """
            CREATE TEMP TABLE orders_with_item AS
            SELECT customer_id, item_id, count(DISTINCT order_id) AS n_orders FROM lines
            WHERE customer_id IS NOT NULL GROUP BY ALL
            """
        )
        con.execute(
            """
            CREATE TEMP TABLE popular AS
            SELECT [item_a, item_b] AS item_ids, $pop * ln(lift_shrunk) AS score, n_ab,
                   lift_shrunk,
                   row_number() OVER (ORDER BY n_ab DESC, lift_shrunk DESC, item_a, item_b)
                       AS pop_rank
            FROM pairs WHERE lift_shrunk > 1 ORDER BY pop_rank LIMIT $n_popular
            """,
            {"pop": POPULAR_INTEREST, "n_popular": N_POPULAR},
        )
        result = con.sql(
            """
            WITH customers AS (
                SELECT DISTINCT customer_id FROM orders_with_item
                UNION SELECT customer_id FROM extra_customers
                UNION SELECT customer_id FROM personal
            ), fill AS (
                SELECT c.customer_id, p.item_ids, p.score, 'popular' AS source,
                       CAST(NULL AS VARCHAR) AS anchor_id, p.n_ab AS min_pair_count,
                       p.lift_shrunk AS min_pair_lift, 1 AS priority, p.pop_rank
                FROM customers c CROSS JOIN popular p
                WHERE p.pop_rank <= $n_offers + 5
            ), allc AS (
                SELECT *, 0 AS priority, 0 AS pop_rank FROM personal
                UNION ALL BY NAME SELECT * FROM fill
            ), dedup AS (
                SELECT * FROM allc
                QUALIFY row_number() OVER (PARTITION BY customer_id, item_ids
                                           ORDER BY priority) = 1
            )
            SELECT d.customer_id,
                   CAST(row_number() OVER (PARTITION BY d.customer_id
                        ORDER BY d.priority, d.pop_rank, d.score DESC, d.item_ids) AS INTEGER)
                       AS offer_rank,
                   d.item_ids, d.score, d.source, d.anchor_id,
                   CAST(i.n_orders AS BIGINT) AS anchor_n_orders,
                   CAST(d.min_pair_count AS BIGINT) AS min_pair_count, d.min_pair_lift
            FROM dedup d
            LEFT JOIN orders_with_item i
                   ON i.customer_id = d.customer_id AND i.item_id = d.anchor_id
            QUALIFY offer_rank <= $n_offers
            ORDER BY d.customer_id, offer_rank
            """,
            params={"n_offers": n_offers},
        ).to_arrow_table()
    finally:
        con.close()
    return result


__all__ = [
    "CANDIDATE_COLUMNS",
    "N_POPULAR",
    "POPULAR_INTEREST",
    "add_popular_fallback",
    "compose_candidates",
]
