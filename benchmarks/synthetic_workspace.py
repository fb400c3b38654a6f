"""A synthetic trained workspace at scale (default 100,000 items, 1,000,000 customers, 5 offers
each) for the serving load test. Offers obey the guardrails' arithmetic (price between 70% of
the list total and the list total); titles alternate English and Chinese."""

from __future__ import annotations

import json
from pathlib import Path

from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pricing.optimizer import BatchState
from bundlewise.pricing.pricer import Pricer, catalog_from_items

SQL = """
CREATE OR REPLACE TABLE items AS
SELECT printf('S%06d', i) AS item_id,
       CASE WHEN i % 2 = 0 THEN printf('Synthetic product %d', i)
            ELSE printf('合成商品 %d', i) END AS title,
       NULL::VARCHAR AS category,
       CAST(100 + (hash(i) % 4900) AS BIGINT) AS list_price_minor,
       NULL::BIGINT AS unit_cost_minor, 'GBP' AS currency, NULL::BIGINT AS stock
FROM range($n_items) t(i);

CREATE OR REPLACE TABLE order_lines AS
SELECT printf('O%d-%d', c, k) AS order_id, printf('C%07d', c) AS customer_id,
       TIMESTAMP '2010-01-01' + INTERVAL (k) DAY AS ts,
       printf('S%06d', (hash(c * 7 + k) % $n_items)) AS item_id,
       1::BIGINT AS quantity, 500::BIGINT AS unit_price_minor, 'GBP' AS currency,
       'United Kingdom' AS country, (c * 3 + k)::BIGINT AS source_row, 'synthetic' AS source_id
FROM range($n_customers) a(c), range(3) b(k);

CREATE OR REPLACE TABLE offers AS
WITH base AS (
    SELECT c, r,
           [printf('S%06d', (hash(c * 7 + (r % 3)) % $n_items)),
            printf('S%06d', (hash(c * 13 + r + 101) % $n_items))] AS item_ids
    FROM range($n_customers) a(c), range(1, 6) b(r)
), priced AS (
    SELECT b.*, 400 + (hash(c * 31 + r) % 9000) AS list_total,
           0.7 + (hash(c * 17 + r) % 300) / 1000.0 AS share
    FROM base b
)
SELECT md5(printf('%d-%d', c, r))[:16] AS offer_id, printf('C%07d', c) AS customer_id,
       CAST(r AS INTEGER) AS offer_rank, item_ids,
       [printf('Synthetic product %s', item_ids[1]), printf('合成商品 %s', item_ids[2])] AS titles,
       'GBP' AS currency, CAST(list_total AS BIGINT) AS list_total_minor,
       CAST(round(list_total * 0.6) AS BIGINT) AS cost_minor, true AS is_cost_assumed,
       CAST(ceil(list_total * share) AS BIGINT) AS price_minor,
       CAST(list_total - ceil(list_total * share) AS BIGINT) AS discount_minor,
       (list_total - ceil(list_total * share)) / list_total AS discount_pct,
       0.05 AS p_accept, (ceil(list_total * share) - round(list_total * 0.6)) * 0.05
           AS expected_profit_minor,
       'optimum' AS binding_rule,
       'Synthetic offer for the serving benchmark.' AS reason, 'history' AS source,
       0.5 AS score, 'synthetic' AS model_version, 'unknown' AS segment, 8.0 AS sensitivity,
       5.0 AS appeal
FROM priced;

CREATE OR REPLACE TABLE partners AS
SELECT printf('S%06d', i) AS item_id, printf('S%06d', (hash(i * 11 + k) % $n_items)) AS partner_id,
       CAST(k AS INTEGER) AS rank, 10::BIGINT AS n_ab, 2.0 AS lift_shrunk, 0.1 AS confidence,
       0.2 AS npmi
FROM range($n_items) a(i), range(1, 11) b(k);

CREATE OR REPLACE TABLE pair_stats AS
SELECT item_id AS item_a, partner_id AS item_b, n_ab, 100::BIGINT AS n_a, 100::BIGINT AS n_b,
       0.001 AS support, 0.1 AS confidence_ab, 0.1 AS confidence_ba, 2.0 AS lift,
       lift_shrunk, npmi
FROM partners WHERE item_id < partner_id;

CREATE OR REPLACE TABLE runs AS SELECT 'synthetic' AS model_version, $result AS result_json;
"""


def build(path: Path, n_items: int = 100_000, n_customers: int = 1_000_000) -> Workspace:
    """Write the synthetic tables into a workspace at ``path`` and return it."""
    workspace = Workspace(path)
    with workspace.connect() as con:
        for statement in [s for s in SQL.split(";\n") if s.strip()]:
            params = {
                k: v
                for k, v in {
                    "n_items": n_items,
                    "n_customers": n_customers,
                    "result": json.dumps({"synthetic": True}),
                }.items()
                if f"${k}" in statement
            }
            con.execute(statement, params).fetchall()
    # A pricer for quotes (the synthetic offers are not priced by it: a load test only).
    Pricer(
        model_version="synthetic",
        config=Config(),
        catalog=catalog_from_items(workspace.table("items")),
        customer_segment={},
        sensitivity={},
        appeals={},
        state=BatchState(),
    ).save(workspace)
    return workspace
