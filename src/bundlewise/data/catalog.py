"""The ``items`` table: derived from order lines, optionally overridden by a catalog file.

Derived list price is the item's most frequent unit price (ties go to the higher price), since
wholesale quantity tiers sell the same product at several prices. Unit cost comes from the
catalog or, where the orders file maps a ``unit_cost`` column, from the item's latest order line
with a cost; otherwise it is unknown and pricing uses the configured cost share (reports say so).

A catalog's columns are matched to the canonical fields by name, ignoring case, spaces and
hyphens, through the aliases of :data:`CATALOG_COLUMNS`; which alias was used is reported. A
column that looks like money but matches no field, or two columns for one field, is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from bundlewise.config import Config
from bundlewise.data import _sql
from bundlewise.data.readers import (
    Check,
    Params,
    arrow,
    detect_number_format,
    load_source,
    number_hint,
    number_sql,
    raise_first_bad,
    register_source,
    run,
    run_number_checks,
    text_sql,
)
from bundlewise.data.schemas import ITEMS
from bundlewise.exceptions import DataValidationError
from bundlewise.money import array_to_minor_units

#: Column names accepted in a catalog file per canonical field, canonical name first. Names are
#: compared lower-cased, with spaces and hyphens as underscores.
CATALOG_COLUMNS: dict[str, tuple[str, ...]] = {
    "item_id": (
        "item_id",
        "sku",
        "stockcode",
        "stock_code",
        "product_id",
        "item_code",
        "product_code",
        "article_number",
        "variant_sku",
        "id",
    ),
    "title": ("title", "name", "description", "product_name", "product_title", "item_name"),
    "category": ("category", "product_type", "product_category", "department"),
    "list_price": (
        "list_price",
        "price",
        "unit_price",
        "retail_price",
        "regular_price",
        "selling_price",
        "variant_price",
        "msrp",
    ),
    "unit_cost": (
        "unit_cost",
        "cost",
        "cost_price",
        "costprice",
        "purchase_price",
        "cost_per_item",
        "wholesale_price",
        "cogs",
        "unit_cogs",
    ),
    "stock": ("stock", "inventory", "on_hand", "quantity_on_hand", "stock_quantity"),
    "currency": ("currency", "currency_code"),
}
#: Unmatched columns whose (normalized) name contains one of these are refused, not ignored.
_MONEY_WORDS = ("price", "cost", "cogs", "margin", "msrp")


def _normalize(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@dataclass(frozen=True)
class Catalog:
    """A read catalog: the ``items`` rows and which file column fed each field.

    Attributes
    ----------
    table
        Schema :data:`~bundlewise.data.schemas.ITEMS`.
    columns
        Canonical field -> the file's column.
    ignored
        File columns that feed no field (reported, never silently).
    """

    table: pa.Table
    columns: dict[str, str]
    ignored: tuple[str, ...]

    @property
    def aliases(self) -> dict[str, str]:
        """Fields read from a column of another name (e.g. ``unit_cost`` <- ``cost_price``)."""
        return {k: v for k, v in self.columns.items() if v != k}


def match_catalog_columns(path: str, names: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map a catalog's column names to canonical fields.

    Returns
    -------
    columns, ignored
        Canonical field -> column, and the columns that feed no field.

    Raises
    ------
    DataValidationError
        No item id column; two columns for one field; an unknown column that looks like money.
    """
    chosen: dict[str, str] = {}
    for canonical, aliases in CATALOG_COLUMNS.items():
        hits = [n for n in names if _normalize(n) in aliases]
        if len(hits) > 1:
            raise DataValidationError(
                path,
                f"columns {hits} all look like `{canonical}`; keep one or rename the others",
                column=hits[1],
            )
        if hits:
            chosen[canonical] = hits[0]
    if "item_id" not in chosen:
        raise DataValidationError(
            path,
            f"missing column for the item id (one of {list(CATALOG_COLUMNS['item_id'])}); "
            f"columns found: {sorted(names)}",
            column="item_id",
        )
    used = set(chosen.values())
    ignored = tuple(n for n in names if n not in used)
    for name in ignored:
        if any(word in _normalize(name) for word in _MONEY_WORDS):
            raise DataValidationError(
                path,
                "looks like a price or cost but is not a known catalog column "
                f"(list price: {list(CATALOG_COLUMNS['list_price'])}; unit cost: "
                f"{list(CATALOG_COLUMNS['unit_cost'])}); columns found: {sorted(names)}",
                column=name,
                hint="Rename it to `list_price` or `unit_cost`, or drop it from the file",
            )
    if len(chosen) == 1 and ignored:
        raise DataValidationError(
            path,
            "no known catalog column besides the item id (title, category, list_price, "
            f"unit_cost, stock); columns found: {sorted(names)}",
            column=ignored[0],
        )
    return chosen, ignored


def derive_items(
    order_lines: pa.Table,
    titles: pa.Table,
    currency: str = "GBP",
    costs: pa.Table | None = None,
) -> pa.Table:
    """Build ``items`` from clean order lines and the titles seen in the input.

    Parameters
    ----------
    order_lines
        Clean order lines (:data:`~bundlewise.data.schemas.ORDER_LINES`).
    titles
        ``item_id``, ``title`` as returned by :func:`~bundlewise.data.cleaning.clean_order_lines`.
    costs
        ``item_id``, ``unit_cost_minor`` (see :func:`item_costs`); unknown costs stay NULL.

    Returns
    -------
    pyarrow.Table
        One row per sold item, schema :data:`~bundlewise.data.schemas.ITEMS`.
    """
    con = _sql.connect()
    try:
        con.register("lines", order_lines)
        con.register("titles", titles)
        con.register(
            "costs",
            costs
            if costs is not None
            else pa.table(
                {"item_id": pa.array([], pa.string()), "unit_cost_minor": pa.array([], pa.int64())}
            ),
        )
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
                   CAST(k.unit_cost_minor AS BIGINT) AS unit_cost_minor,
                   $currency AS currency, CAST(NULL AS BIGINT) AS stock
            FROM modal m LEFT JOIN titles t USING (item_id) LEFT JOIN costs k USING (item_id)
            ORDER BY m.item_id
            """,
            params={"currency": currency},
        ).to_arrow_table()
    finally:
        con.close()
    return table.cast(ITEMS)


def item_costs(raw: pa.Table) -> pa.Table:
    """Each item's unit cost from order lines that carry one: its latest line's cost.

    Parameters
    ----------
    raw
        Raw order lines (:data:`~bundlewise.data.schemas.RAW_ORDER_LINES`).

    Returns
    -------
    pyarrow.Table
        ``item_id``, ``unit_cost_minor``, ``ts`` (of the line it came from); items without any
        cost are absent.
    """
    con = _sql.connect()
    try:
        con.register("raw", raw)
        return con.sql(
            """
            SELECT item_id, arg_max(unit_cost_minor, (ts, source_row)) AS unit_cost_minor,
                   max(ts) AS ts
            FROM raw WHERE unit_cost_minor IS NOT NULL GROUP BY item_id ORDER BY item_id
            """
        ).to_arrow_table()
    finally:
        con.close()


def load_catalog(path: str | Path, config: Config | None = None) -> Catalog:
    """Read a product catalog (CSV/TSV/Parquet/xlsx) into the ``items`` schema.

    Columns are matched by :func:`match_catalog_columns`; ``item_id`` is required;
    ``list_price`` and ``unit_cost`` are in major units of ``input.currency``, read with the
    same number rules as orders (``input.decimal_separator`` ...). A ``currency`` column must
    agree with ``input.currency``.

    Raises
    ------
    DataValidationError
        Missing ``item_id`` column, duplicate item ids, non-numeric or negative money values,
        another currency, ambiguous or unknown columns.
    """
    config = config or Config()
    source = load_source(path, config.input.encoding)
    names = source.table.column_names
    chosen, ignored = match_catalog_columns(source.path, names)
    types = {name: source.table.schema.field(name).type for name in names}
    currency = config.input.currency
    con = _sql.connect()
    params = Params()
    try:
        sql_of = register_source(con, source.table)
        col = {canonical: sql_of[column] for canonical, column in chosen.items()}
        item_text = text_sql(col["item_id"])
        raise_first_bad(
            con,
            source.path,
            f"{item_text} IS NULL",
            chosen["item_id"],
            "missing item id",
            column_sql=col["item_id"],
        )
        dup = run(
            con,
            f"SELECT __row, {item_text}, count(*) OVER (PARTITION BY {item_text}) c "
            f"FROM src QUALIFY c > 1 ORDER BY __row LIMIT 1",
            params,
        )
        if dup:
            raise DataValidationError(
                source.path,
                "duplicate item id",
                column=chosen["item_id"],
                row=dup[0][0],
                value=dup[0][1],
            )
        if "currency" in chosen:
            raise_first_bad(
                con,
                source.path,
                f"upper({text_sql(col['currency'])}) <> {params(currency)}",
                chosen["currency"],
                f"another currency than `input.currency` = {currency!r}",
                hint="Set `input.currency` to the catalog's currency (one currency per store)",
                column_sql=col["currency"],
                params=params,
            )
        numbers = [c for c in ("list_price", "unit_cost", "stock") if c in chosen]
        text_numbers = {chosen[c]: col[c] for c in numbers if pa.types.is_string(types[chosen[c]])}
        number_format = detect_number_format(con, source.path, text_numbers, config.input)
        exprs = {"item_id": item_text}
        checks = []
        for canonical in ("list_price", "unit_cost", "stock"):
            column = chosen.get(canonical)
            if column is None:
                exprs[canonical] = "CAST(NULL AS DOUBLE)"
                continue
            number = number_sql(col[canonical], types[column], number_format, params)
            whole = f" OR {number} <> round({number})" if canonical == "stock" else ""
            checks.append(
                Check(
                    f"{text_sql(col[canonical])} IS NOT NULL AND ({number} IS NULL "
                    f"OR {number} < 0 OR NOT isfinite({number}){whole})",
                    column,
                    col[canonical],
                    "not a non-negative whole number"
                    if canonical == "stock"
                    else "not a non-negative number",
                    number_hint(number_format) if column in text_numbers else None,
                )
            )
            exprs[canonical] = number
        run_number_checks(con, source.path, checks, params)
        for canonical in ("title", "category"):
            exprs[canonical] = (
                text_sql(col[canonical]) if canonical in col else "CAST(NULL AS VARCHAR)"
            )
        raw = arrow(
            con,
            "SELECT " + ", ".join(f"{v} AS {k}" for k, v in exprs.items()) + " FROM src",
            params,
        )
    finally:
        con.close()

    def money(name: str) -> pa.Array:
        values = raw.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        return pa.array(
            array_to_minor_units(np.nan_to_num(values), currency), mask=np.isnan(values)
        )

    stock = raw.column("stock").to_numpy(zero_copy_only=False).astype(np.float64)
    table = pa.table(
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
    return Catalog(table, chosen, ignored)


def read_catalog(path: str | Path, config: Config | None = None) -> pa.Table:
    """The ``items`` rows of a catalog file; see :func:`load_catalog`."""
    return load_catalog(path, config).table


__all__ = [
    "CATALOG_COLUMNS",
    "Catalog",
    "derive_items",
    "item_costs",
    "load_catalog",
    "match_catalog_columns",
    "read_catalog",
]
