"""The ``items`` table: derived from order lines, optionally overridden by a catalog file.

Derived list price is the item's most frequent unit price (ties go to the higher price), since
wholesale quantity tiers sell the same product at several prices. Unit cost is unknown unless a
catalog gives it; pricing then uses the configured cost share and reports say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data._sql import quote_ident as _q
from bundlewise.data.readers import load_source, raise_first_bad
from bundlewise.data.schemas import ITEMS
from bundlewise.exceptions import DataValidationError
from bundlewise.money import array_to_minor_units

#: Column names accepted in a catalog file, canonical name first.
CATALOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "item_id": ("item_id", "sku", "StockCode", "product_id"),
    "title": ("title", "name", "Description", "product_name"),
    "category": ("category",),
    "list_price": ("list_price", "price", "Price"),
    "unit_cost": ("unit_cost", "cost"),
    "stock": ("stock", "inventory"),
}


def derive_items(order_lines: pa.Table, titles: pa.Table, currency: str = "GBP") -> pa.Table:
    """Build ``items`` from clean order lines and the titles seen in the input.

    Parameters
    ----------
    order_lines
        Clean order lines (:data:`~bundlewise.data.schemas.ORDER_LINES`).
    titles
        ``item_id``, ``title`` as returned by :func:`~bundlewise.data.cleaning.clean_order_lines`.

    Returns
    -------
    pyarrow.Table
        One row per sold item, schema :data:`~bundlewise.data.schemas.ITEMS`.
    """
    con = _sql.connect()
    try:
        con.register("lines", order_lines)
        con.register("titles", titles)
        table = con.sql(
            """
            WITH price_counts AS (
                SELECT item_id, unit_price_minor, count(*) AS n FROM lines GROUP BY ALL
            ), modal AS (
                SELECT item_id, arg_max(unit_price_minor, n * 1e12 + unit_price_minor) AS price
                FROM price_counts GROUP BY item_id
            )
            SELECT m.item_id, coalesce(t.title, m.item_id) AS title,
                   CAST(NULL AS VARCHAR) AS category,
                   CAST(m.price AS BIGINT) AS list_price_minor,
                   CAST(NULL AS BIGINT) AS unit_cost_minor,
                   $currency AS currency, CAST(NULL AS BIGINT) AS stock
            FROM modal m LEFT JOIN titles t USING (item_id)
            ORDER BY m.item_id
            """,
            params={"currency": currency},
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(ITEMS)


def read_catalog(path: str | Path, config: Config | None = None) -> pa.Table:
    """Read a product catalog (CSV/Parquet) into the ``items`` schema.

    Recognised columns (first match wins): see :data:`CATALOG_COLUMNS`. ``item_id`` is required;
    ``list_price`` and ``unit_cost`` are in major units of ``input.currency``.

    Raises
    ------
    DataValidationError
        Missing ``item_id`` column, duplicate item ids, non-numeric or negative money values.
    """
    config = config or Config()
    source = load_source(path, config.input.encoding)
    present = source.table.column_names
    chosen: dict[str, str] = {}
    for canonical, candidates in CATALOG_COLUMNS.items():
        for candidate in candidates:
            if candidate in present:
                chosen[canonical] = candidate
                break
    if "item_id" not in chosen:
        raise DataValidationError(
            source.path,
            f"missing column for the item id (one of {list(CATALOG_COLUMNS['item_id'])}); "
            f"columns found: {sorted(present)}",
            column="item_id",
        )
    table = source.table.append_column(
        "__row", pa.array(np.arange(1, source.table.num_rows + 1, dtype=np.int64))
    )
    con = _sql.connect()
    try:
        con.register("src", table)
        item = _q(chosen["item_id"])
        item_text = f"nullif(trim(CAST({item} AS VARCHAR)), '')"
        raise_first_bad(
            con, source.path, f"{item_text} IS NULL", chosen["item_id"], "missing item id"
        )
        dup = con.execute(
            f"SELECT __row, {item_text}, count(*) OVER (PARTITION BY {item_text}) c "
            f"FROM src QUALIFY c > 1 ORDER BY __row LIMIT 1"
        ).fetchall()
        if dup:
            raise DataValidationError(
                source.path,
                "duplicate item id",
                column=chosen["item_id"],
                row=dup[0][0],
                value=dup[0][1],
            )
        exprs = {"item_id": f"trim(CAST({item} AS VARCHAR))"}
        for canonical in ("list_price", "unit_cost", "stock"):
            column = chosen.get(canonical)
            if column is None:
                exprs[canonical] = "CAST(NULL AS DOUBLE)"
                continue
            number = f"try_cast(trim(CAST({_q(column)} AS VARCHAR)) AS DOUBLE)"
            whole = f" OR {number} <> round({number})" if canonical == "stock" else ""
            raise_first_bad(
                con,
                source.path,
                f"{_q(column)} IS NOT NULL AND ({number} IS NULL OR {number} < 0 "
                f"OR NOT isfinite({number}){whole})",
                column,
                "not a non-negative whole number"
                if canonical == "stock"
                else "not a non-negative number",
            )
            exprs[canonical] = number
        for canonical in ("title", "category"):
            column = chosen.get(canonical)
            exprs[canonical] = (
                f"nullif(trim(CAST({_q(column)} AS VARCHAR)), '')"
                if column
                else "CAST(NULL AS VARCHAR)"
            )
        raw = con.sql(
            "SELECT " + ", ".join(f"{v} AS {k}" for k, v in exprs.items()) + " FROM src"
        ).to_arrow_table()
    finally:
        con.close()
    currency = config.input.currency

    def money(name: str) -> pa.Array:
        values = raw.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        return pa.array(
            array_to_minor_units(np.nan_to_num(values), currency), mask=np.isnan(values)
        )

    stock = raw.column("stock").to_numpy(zero_copy_only=False).astype(np.float64)
    return pa.table(
        {
            "item_id": raw.column("item_id"),
            "title": raw.column("title"),
            "category": raw.column("category"),
            "list_price_minor": money("list_price"),
            "unit_cost_minor": money("unit_cost"),
            "currency": pa.array([currency] * raw.num_rows, pa.string()),
            "stock": pa.array(np.nan_to_num(stock).astype(np.int64), mask=np.isnan(stock)),
        },
        schema=ITEMS,
    )


__all__ = ["CATALOG_COLUMNS", "derive_items", "read_catalog"]
