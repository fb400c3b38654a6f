"""Read shopper events (views, cart additions, purchases) into the canonical ``events`` table.

Events are optional. Recognised columns (first match wins) are listed in :data:`EVENT_COLUMNS`;
every value is validated like order lines (file, column, row and value in the error).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data.readers import (
    Check,
    Params,
    arrow,
    id_sql,
    load_source,
    missing_sql,
    register_source,
    run_checks,
    timestamp_sql,
)
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
    types = {name: source.table.schema.field(name).type for name in present}
    con = _sql.connect()
    params = Params()
    try:
        sql_of = register_source(con, source.table)
        col = {canonical: sql_of[column] for canonical, column in chosen.items()}
        kind = f"lower(trim(CAST({col['kind']} AS VARCHAR)))"
        run_checks(
            con,
            source.path,
            [
                Check(
                    missing_sql(col[canonical], types[column]),
                    column,
                    col[canonical],
                    f"missing value for required field `{canonical}`",
                )
                for canonical, column in chosen.items()
            ]
            + [
                Check(
                    f"NOT list_contains({params(list(EVENT_KINDS))}, {kind})",
                    chosen["kind"],
                    col["kind"],
                    f"unknown event kind; expected one of {list(EVENT_KINDS)}",
                )
            ],
            params,
        )
        ts = timestamp_sql(
            con,
            source.path,
            chosen["ts"],
            col["ts"],
            types[chosen["ts"]],
            config.input,
            params,
        )
        customer = id_sql(col["customer_id"], types[chosen["customer_id"]], strip_float_suffix=True)
        item = id_sql(col["item_id"], types[chosen["item_id"]])
        sql = (
            f"SELECT {customer} AS customer_id, {ts} AS ts, {item} AS item_id, "
            f"{kind} AS kind FROM src ORDER BY __row"
        )
        result = arrow(con, sql, params)
    finally:
        con.close()
    return result.cast(EVENTS)


__all__ = ["EVENTS", "EVENT_COLUMNS", "EVENT_KINDS", "read_events"]
