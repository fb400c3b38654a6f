"""Arrow schemas of the canonical tables (see ``docs/architecture.md``, "Data contracts").

Money columns are integer minor units (``*_minor``) with a ``currency`` column beside them.
"""

from __future__ import annotations

import pyarrow as pa

#: Order lines as read and validated, before cleaning. ``source_row`` is the 1-based data row of
#: the input file, so every later message can point back at it.
RAW_ORDER_LINES = pa.schema(
    [
        ("order_id", pa.string()),
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("quantity", pa.int64()),
        ("ts", pa.timestamp("us")),
        ("unit_price_minor", pa.int64()),
        ("customer_id", pa.string()),
        ("country", pa.string()),
        ("unit_cost_minor", pa.int64()),
        ("currency", pa.string()),
        ("source_row", pa.int64()),
    ]
)

#: Clean order lines: purchases only, returns netted, non-products removed.
ORDER_LINES = pa.schema(
    [
        ("order_id", pa.string()),
        ("customer_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("item_id", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price_minor", pa.int64()),
        ("currency", pa.string()),
        ("country", pa.string()),
        ("source_row", pa.int64()),
    ]
)

ITEMS = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("list_price_minor", pa.int64()),
        ("unit_cost_minor", pa.int64()),
        ("currency", pa.string()),
        ("stock", pa.int64()),
    ]
)

__all__ = ["ITEMS", "ORDER_LINES", "RAW_ORDER_LINES"]
