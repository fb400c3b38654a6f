"""Read shopper events (views, cart additions, purchases) into the canonical ``events`` table.

Events are optional. Recognised columns (first match wins) are listed in :data:`EVENT_COLUMNS`;
every value is validated like order lines (file, column, row and value in the error).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data._sql import quote_ident as _q
from bundlewise.data.readers import id_sql, load_source, raise_first_bad, timestamp_sql
from bundlewise.exceptions import DataValidationError

#: Accepted column names per canonical field, canonical name first.
EVENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer_id", "Customer ID", "CustomerID", "user_id"),
    "ts": ("ts", "timestamp", "event_time", "InvoiceDate"),
    "item_id": ("item_id", "StockCode", "sku", "product_id"),
    "kind": ("kind", "event", "event_type"),
}
#: Allowed event kinds.
EVENT_KINDS: tuple[str, ...] = ("view", "cart", "purchase")

EVENTS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("ts", pa.timestamp("us")),
        ("item_id", pa.string()),
        ("kind", pa.string()),
    ]
)


def read_events(path: str | Path, config: Config | None = None) -> pa.Table:
    """Read and validate an events file (CSV, TSV or Parquet).

    Returns
    -------
    pyarrow.Table
        Schema :data:`EVENTS`; ``kind`` lower-cased.

    Raises
    ------
    DataValidationError
        Missing column, missing value, unparseable timestamp, unknown event kind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = f.write_text("customer_id,ts,item_id,kind\\nc1,2010-01-02 10:00:00,85123A,View\\n")
    >>> read_events(f).to_pylist()[0]["kind"]
    'view'
    """
    config = config or Config()
    source = load_source(path, config.input.encoding)
    present = source.table.column_names
    chosen: dict[str, str] = {}
    for canonical, candidates in EVENT_COLUMNS.items():
        match = next((c for c in candidates if c in present), None)
        if match is None:
            raise DataValidationError(
                source.path,
                f"missing column for `{canonical}` (one of {list(candidates)}); columns found: "
                f"{sorted(present)}",
                column=candidates[0],
            )
        chosen[canonical] = match
    table = source.table.append_column(
        "__row", pa.array(np.arange(1, source.table.num_rows + 1, dtype=np.int64))
    )
    con = _sql.connect()
    try:
        con.register("src", table)
        for canonical, column in chosen.items():
            raise_first_bad(
                con,
                source.path,
                f"{_q(column)} IS NULL OR trim(CAST({_q(column)} AS VARCHAR)) = ''",
                column,
                f"missing value for required field `{canonical}`",
            )
        kind = f"lower(trim(CAST({_q(chosen['kind'])} AS VARCHAR)))"
        allowed = ", ".join(f"'{k}'" for k in EVENT_KINDS)
        raise_first_bad(
            con,
            source.path,
            f"{kind} NOT IN ({allowed})",
            chosen["kind"],
            f"unknown event kind; expected one of {list(EVENT_KINDS)}",
        )
        ts = timestamp_sql(
            con,
            source.path,
            chosen["ts"],
            table.schema.field(chosen["ts"]).type,
            config.input.date_format,
        )
        customer_column = chosen["customer_id"]
        customer = id_sql(
            customer_column, table.schema.field(customer_column).type, strip_float_suffix=True
        )
        result = con.sql(
            f"SELECT {customer} AS customer_id, "
            f"{ts} AS ts, trim(CAST({_q(chosen['item_id'])} AS VARCHAR)) AS item_id, "
            f"{kind} AS kind FROM src ORDER BY __row"
        ).to_arrow_table()
    finally:
        con.close()
    return result.cast(EVENTS)


__all__ = ["EVENTS", "EVENT_COLUMNS", "EVENT_KINDS", "read_events"]
