"""Inputs that used to be misread: each bad one is an exact error and changes nothing.

Odd but real inputs: decimal commas, day-first dates, ids with ``@``, Chinese titles, JPY, an
export without order ids, a newer export of the same store, catalogs with other column names.
"""

from __future__ import annotations

import gzip
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.config import Config, config_from_dict
from bundlewise.data.readers import read_orders
from bundlewise.data.workspace import Workspace
from bundlewise.exceptions import ConfigError, DataValidationError
from bundlewise.pipeline import ANONYMOUS, offers_for_export

HEADER = "order,sku,title,qty,when,price,customer"
COLUMNS = {
    "order_id": "order",
    "item_id": "sku",
    "title": "title",
    "quantity": "qty",
    "ts": "when",
    "unit_price": "price",
    "customer_id": "customer",
}


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(**input_settings: Any) -> Config:
    return config_from_dict({"input": input_settings, "columns": COLUMNS})


def _snapshot(ws: Workspace) -> dict[str, list[dict[str, object]]]:
    out = {}
    for name in ("order_lines", "items", "item_titles", "item_costs", "ingests", "catalog"):
        rows = ws.table(name).to_pylist()
        out[name] = sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with one good file ingested."""
    workspace = Workspace(tmp_path / "ws")
    good = _write(
        tmp_path / "good.csv",
        HEADER,
        "1,A,Mug,1,2024-05-01 10:00:00,2.50,c1",
        "1,P,Plate,2,2024-05-01 10:00:00,4.00,c1",
    )
    workspace.ingest(good, _config())
    return workspace


def _refused(ws: Workspace, path: Path, config: Config, message: str, **kwargs: Any) -> None:
    """``ws.ingest`` fails with exactly ``message`` and changes nothing."""
    before = _snapshot(ws)
    with pytest.raises((DataValidationError, ConfigError)) as info:
        ws.ingest(path, config, **kwargs)
    assert str(info.value) == message
    assert _snapshot(ws) == before


# --- numbers ----------------------------------------------------------------------------------


def test_decimal_comma_without_a_setting_is_an_error(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "eu.csv",
        HEADER,
        '1,A,Mug,1,2024-05-02 10:00:00,"2,50",c1',
        '2,P,Plate,1,2024-05-02 11:00:00,"1,50",c2',
    )
    _refused(
        ws,
        path,
        _config(),
        f"{path}: row 1, column 'price': ambiguous number: the comma may be a decimal "
        "separator or a thousands separator (value '2,50'). Set "
        '`input.decimal_separator = ","` if it is a decimal comma, or '
        '`input.thousands_separator = ","` if it groups thousands',
    )
    table, _ = read_orders(path, _config(decimal_separator=","))
    assert table.column("unit_price_minor").to_pylist() == [250, 150]


def test_separators_proven_by_the_data_need_no_setting(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "de.csv",
        HEADER,
        '1,A,Mug,1,2024-05-02 10:00:00,"1.299,50",c1',
        '2,P,Plate,1,2024-05-02 11:00:00,"0,40",c2',
        "3,C,Bowl,1,2024-05-02 11:00:00,7,c2",
    )
    table, _ = read_orders(path, _config())
    assert table.column("unit_price_minor").to_pylist() == [129950, 40, 700]
    explicit = _config(decimal_separator=",", thousands_separator=".")
    assert read_orders(path, explicit)[0].column("unit_price_minor").to_pylist() == [
        129950,
        40,
        700,
    ]


def test_thousands_separator_setting_reads_grouped_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "us.csv",
        HEADER,
        '1,A,Sofa,1,2024-05-02 10:00:00,"1,500",c1',
        "2,P,Mug,1,2024-05-02 11:00:00,3,c2",
    )
    table, _ = read_orders(path, _config(thousands_separator=","))
    assert table.column("unit_price_minor").to_pylist() == [150000, 300]


def test_bad_grouping_is_refused_with_the_separators_used(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "grouping.csv",
        HEADER,
        '1,A,Sofa,1,2024-05-02 10:00:00,"1,299.50",c1',
        '2,P,Mug,1,2024-05-02 11:00:00,"1,50",c2',
    )
    _refused(
        ws,
        path,
        _config(),
        f"{path}: row 2, column 'price': not a finite number (value '1,50'). Numbers are read "
        "with decimal separator '.' and thousands separator ',': set "
        "`input.decimal_separator` / `input.thousands_separator` if the file uses others",
    )


def test_mixed_number_formats_are_refused(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.csv",
        HEADER,
        '1,A,Sofa,1,2024-05-02 10:00:00,"1,299.50",c1',
        '2,P,Mug,1,2024-05-02 11:00:00,"1.299,50",c2',
    )
    _refused(
        ws,
        path,
        _config(),
        f"{path}: row 1, column 'price': mixed number formats: some values use '.' and others "
        "',' as the decimal separator (value '1,299.50'). Set `input.decimal_separator` and "
        "`input.thousands_separator` in the config",
    )


# --- dates ------------------------------------------------------------------------------------


def test_ambiguous_dates_are_an_error_until_day_first_is_set(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "dates.csv",
        HEADER,
        "7,A,Mug,1,03/04/2010 10:00,2.50,c1",
        "8,P,Plate,1,05/04/2010 11:00,4.00,c2",
    )
    _refused(
        ws,
        path,
        _config(),
        f"{path}: row 1, column 'when': ambiguous date: every value reads both day-first and "
        "month-first (value '03/04/2010 10:00'). Set `input.day_first = true` (03/04/2010 10:00 "
        "is 3 April 2010) or `input.day_first = false` (4 March 2010) in the config",
    )
    day_first, _ = read_orders(path, _config(day_first=True))
    assert day_first.column("ts").to_pylist()[0] == datetime(2010, 4, 3, 10, 0)
    month_first, _ = read_orders(path, _config(day_first=False))
    assert month_first.column("ts").to_pylist()[0] == datetime(2010, 3, 4, 10, 0)


def test_unambiguous_day_first_dates_need_no_setting(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "uk.csv",
        HEADER,
        "7,A,Mug,1,03/04/2010 10:00,2.50,c1",
        "8,P,Plate,1,13/04/2010 11:00,4.00,c2",
    )
    table, _ = read_orders(path, _config())
    assert table.column("ts").to_pylist() == [
        datetime(2010, 4, 3, 10, 0),
        datetime(2010, 4, 13, 11, 0),
    ]


def test_day_first_setting_that_contradicts_the_data(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "us_dates.csv",
        HEADER,
        "7,A,Mug,1,12/13/2010 10:00,2.50,c1",
        "8,P,Plate,1,12/01/2010 11:00,4.00,c2",
    )
    _refused(
        ws,
        path,
        _config(day_first=True),
        f"{path}: row 1, column 'when': cannot parse as a day-first date/time "
        "(`input.day_first` = true) (value '12/13/2010 10:00'). The column reads as "
        "month-first: set `input.day_first = false`",
    )


def test_date_format_with_a_quote_is_a_bound_parameter(ws: Workspace, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "quoted.csv",
        HEADER,
        "7,A,Mug,1,03/04/'10 10:00,2.50,c1",
        "8,P,Plate,1,13/04/'10 11:00,4.00,c2",
    )
    config = _config(date_format="%d/%m/'%y %H:%M")
    table, _ = read_orders(path, config)
    assert table.column("ts").to_pylist() == [
        datetime(2010, 4, 3, 10, 0),
        datetime(2010, 4, 13, 11, 0),
    ]
    # A quote that does not match the data is a data error, not broken SQL.
    _refused(
        ws,
        path,
        _config(date_format="%d/%m/%y' %H:%M"),
        f"{path}: row 1, column 'when': cannot parse as a date/time with format "
        '"%d/%m/%y\' %H:%M" (value "03/04/\'10 10:00"); 1 more row(s) have the same problem. '
        "Fix the value or set `input.date_format` in the config",
    )
    _refused(
        ws,
        path,
        _config(date_format="%d/%m/%Q'"),
        '`input.date_format`="%d/%m/%Q\'" is not a valid strptime format: Failed to parse '
        "format specifier %d/%m/%Q': Unrecognized format for strftime/strptime: %Q.",
    )


def test_date_format_and_day_first_together_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        _config(date_format="%d/%m/%Y", day_first=True)
    assert str(info.value) == (
        "<dict>: set `input.date_format` or `input.day_first`, not both (the format already says "
        "where the day is)."
    )


# --- currencies -------------------------------------------------------------------------------


def test_unknown_currency_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"input": {"currency": "ABC"}})
    assert str(info.value) == (
        "<dict>: `input.currency`: unknown currency 'ABC': not an active ISO 4217 code (e.g. "
        "'GBP', 'EUR', 'JPY')."
    )


def test_yen_prices_and_export_keep_their_units(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "jp.csv",
        HEADER,
        "1,A,抹茶ボウル,1,2024-05-01 10:00:00,1234,客@1",
        "1,P,茶筅,1,2024-05-01 10:00:00,2300,客@1",
    )
    ws = Workspace(tmp_path / "jp-ws")
    ws.ingest(path, _config(currency="JPY"))
    items = {r["item_id"]: r for r in ws.table("items").to_pylist()}
    assert items["A"]["list_price_minor"] == 1234
    assert items["A"]["title"] == "抹茶ボウル"
    assert ws.table("order_lines").column("customer_id").to_pylist() == ["客@1", "客@1"]


def _offers(currency: str, price_minor: int) -> pa.Table:
    return pa.table(
        {
            "offer_id": ["o1", "o2"],
            "customer_id": ["客@1", ANONYMOUS],
            "offer_rank": pa.array([1, 1], pa.int32()),
            "item_ids": [["A", "P"], ["A", "P"]],
            "titles": [["抹茶ボウル", "茶筅"], ["抹茶ボウル", "茶筅"]],
            "currency": [currency, currency],
            "list_total_minor": [3534, 3534],
            "cost_minor": [2000, 2000],
            "is_cost_assumed": [False, False],
            "price_minor": [price_minor, price_minor],
            "discount_minor": [3534 - price_minor, 3534 - price_minor],
            "discount_pct": [0.1, 0.1],
            "p_accept": [0.2, 0.2],
            "expected_profit_minor": [245.6, 245.6],
            "binding_rule": ["optimal", "optimal"],
            "reason": ["r", "r"],
            "source": ["history", "popular"],
            "score": [1.0, 1.0],
            "model_version": ["v", "v"],
        }
    )


@pytest.mark.parametrize(
    ("currency", "price", "scale"),
    [("JPY", Decimal("1234"), 0), ("GBP", Decimal("12.34"), 2), ("BHD", Decimal("1.234"), 3)],
)
def test_offers_for_export_uses_the_currency_exponent(
    currency: str, price: Decimal, scale: int
) -> None:
    out = offers_for_export(_offers(currency, 1234))
    assert out.num_rows == 1  # the anonymous offers are not exported
    assert out.schema.field("price").type == pa.decimal128(18, scale)
    row = out.to_pylist()[0]
    assert row["price"] == price
    assert row["price_float"] == float(price)
    assert row["discount"] + row["price"] == row["list_total"]
    assert row["expected_profit"] == Decimal(246).scaleb(-scale)
    frame = out.to_pandas()
    assert frame["price_float"].dtype == "float64"
    assert frame["price_float"].iloc[0] == float(price)


# --- columns: every mapped column used or refused ---------------------------------------------


def test_mapped_unit_cost_reaches_items(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "grocery.csv",
        HEADER + ",cost",
        "1,A,Milk,1,2024-05-01 10:00:00,1.20,c1,0.80",
        "2,A,Milk,2,2024-05-08 10:00:00,1.20,c2,0.85",
        "2,P,Bread,1,2024-05-08 10:00:00,2.00,c2,",
    )
    config = config_from_dict({"columns": {**COLUMNS, "unit_cost": "cost"}})
    ws = Workspace(tmp_path / "ws")
    result = ws.ingest(path, config)
    items = {r["item_id"]: r for r in ws.table("items").to_pylist()}
    assert items["A"]["unit_cost_minor"] == 85  # the latest line's cost
    assert items["P"]["unit_cost_minor"] is None
    assert result.n_items_with_cost == 1


def test_unit_cost_mapped_on_an_online_retail_file_is_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "retail.csv",
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Cost",
        "1,A1,Apple mug,2,2010-12-01 09:00:00,1.00,100,United Kingdom,0.45",
    )
    ws = Workspace(tmp_path / "ws")
    result = ws.ingest(path, config_from_dict({"columns": {"unit_cost": "Cost"}}))
    assert result.adapter == "online_retail_ii"
    assert ws.table("items").to_pylist()[0]["unit_cost_minor"] == 45


def test_catalog_aliases_are_used_and_reported(ws: Workspace, tmp_path: Path) -> None:
    catalog = _write(
        tmp_path / "products.csv",
        "SKU,Name,Cost Price,Retail Price,Colour",
        "A,Mug (blue),0.90,2.75,blue",
        "Z,茶筅,3.10,6.00,bamboo",
    )
    orders = _write(tmp_path / "more.csv", HEADER, "9,A,Mug,1,2024-05-03 10:00:00,2.50,c3")
    result = ws.ingest(orders, _config(), catalog_path=catalog)
    assert result.catalog_aliases == {
        "item_id": "SKU",
        "title": "Name",
        "list_price": "Retail Price",
        "unit_cost": "Cost Price",
    }
    assert result.catalog_ignored == ("Colour",)
    assert result.notes() == [
        "Catalog columns read by alias: item_id <- 'SKU', title <- 'Name', list_price <- "
        "'Retail Price', unit_cost <- 'Cost Price'.",
        "Catalog columns not used: ['Colour'].",
    ]
    items = {r["item_id"]: r for r in ws.table("items").to_pylist()}
    assert (items["A"]["unit_cost_minor"], items["A"]["list_price_minor"]) == (90, 275)
    assert items["Z"]["title"] == "茶筅"
    report = (ws.path / f"cleaning_report_{result.source_id}.json").read_text(encoding="utf-8")
    assert '"unit_cost": "Cost Price"' in report


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "sku,name,landed_cost",
            "column 'landed_cost': looks like a price or cost but is not a known catalog column "
            "(list price: ['list_price', 'price', 'unit_price', 'retail_price', "
            "'regular_price', 'selling_price', 'variant_price', 'msrp']; unit cost: "
            "['unit_cost', 'cost', 'cost_price', 'costprice', 'purchase_price', "
            "'cost_per_item', 'wholesale_price', 'cogs', 'unit_cogs']); columns found: "
            "['landed_cost', 'name', 'sku']. Rename it to `list_price` or `unit_cost`, or drop "
            "it from the file",
        ),
        (
            "sku,price,list_price",
            "column 'list_price': columns ['price', 'list_price'] all look like `list_price`; "
            "keep one or rename the others",
        ),
        (
            "sku,colour,size",
            "column 'colour': no known catalog column besides the item id (title, category, "
            "list_price, unit_cost, stock); columns found: ['colour', 'size', 'sku']",
        ),
        (
            "article,name",
            "column 'item_id': missing column for the item id (one of ['item_id', 'sku', "
            "'stockcode', 'stock_code', 'product_id', 'item_code', 'product_code', "
            "'article_number', 'variant_sku', 'id']); columns found: ['article', 'name']",
        ),
    ],
    ids=["unknown-money-column", "two-price-columns", "nothing-known", "no-item-id"],
)
def test_catalogs_with_unknown_columns_are_refused(
    ws: Workspace, tmp_path: Path, header: str, message: str
) -> None:
    row = ",".join(["A", "x", "1.00"][: len(header.split(","))])
    catalog = _write(tmp_path / "catalog.csv", header, row)
    orders = _write(tmp_path / "more.csv", HEADER, "9,A,Mug,1,2024-05-03 10:00:00,2.50,c3")
    _refused(ws, orders, _config(), f"{catalog}: {message}", catalog_path=catalog)


def test_catalog_in_another_currency_is_refused(ws: Workspace, tmp_path: Path) -> None:
    catalog = _write(tmp_path / "catalog.csv", "sku,price,currency", "A,1.00,GBP", "B,2.00,EUR")
    orders = _write(tmp_path / "more.csv", HEADER, "9,A,Mug,1,2024-05-03 10:00:00,2.50,c3")
    _refused(
        ws,
        orders,
        _config(),
        f"{catalog}: row 2, column 'currency': another currency than `input.currency` = 'GBP' "
        "(value 'EUR'). Set `input.currency` to the catalog's currency (one currency per store)",
        catalog_path=catalog,
    )


# --- re-ingesting a newer export --------------------------------------------------------------


def test_newer_export_replaces_overlapping_orders(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    january = _write(
        tmp_path / "jan.csv",
        HEADER,
        "1,A,Mug,1,2024-01-05 10:00:00,2.50,c1",
        "1,P,Plate,1,2024-01-05 10:00:00,4.00,c1",
        "2,A,Mug,3,2024-01-20 10:00:00,2.50,c2",
    )
    first = ws.ingest(january, _config())
    assert (first.n_orders_replaced, ws.n_order_lines()) == (0, 3)
    # The February export repeats order 2 (now with a corrected quantity) and adds order 3.
    january_to_february = _write(
        tmp_path / "jan_feb.csv",
        HEADER,
        "2,A,Mug,2,2024-01-20 10:00:00,2.50,c2",
        "3,P,Plate,1,2024-02-02 10:00:00,4.00,c3",
    )
    second = ws.ingest(january_to_february, _config())
    assert (second.n_orders_replaced, second.n_lines_replaced) == (1, 1)
    assert second.notes() == [
        "Replaced 1 orders (1 lines) stored from earlier files with their versions in this file."
    ]
    lines = sorted(
        (r["order_id"], r["item_id"], r["quantity"]) for r in ws.table("order_lines").to_pylist()
    )
    assert lines == [("1", "A", 1), ("1", "P", 1), ("2", "A", 2), ("3", "P", 1)]
    # A truly new period appends; the same bytes again are idempotent.
    march = _write(tmp_path / "mar.csv", HEADER, "4,A,Mug,1,2024-03-01 10:00:00,2.50,c1")
    third = ws.ingest(march, _config())
    assert (third.n_orders_replaced, ws.n_order_lines()) == (0, 5)
    again = ws.ingest(march, _config())
    assert (again.was_already_ingested, again.n_orders_replaced, ws.n_order_lines()) == (
        True,
        0,
        5,
    )


# --- an export without order ids (Ta-Feng style) ------------------------------------------------


def test_order_is_customer_and_day(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "tafeng.csv",
        "TRANSACTION_DT,CUSTOMER_ID,PRODUCT_ID,PRODUCT_NAME,AMOUNT,SALES_PRICE",
        "11/1/2000,01104905,4710199010372,鮮奶,2,37",
        "11/1/2000,01104905,4710857472535,吐司,1,35",
        "11/1/2000,00418683,4710199010372,鮮奶,1,37",
        "11/25/2000,01104905,4710199010372,鮮奶,1,37",
    )
    config = config_from_dict(
        {
            "input": {"order_id": "customer+day", "currency": "TWD"},
            "columns": {
                "ts": "TRANSACTION_DT",
                "customer_id": "CUSTOMER_ID",
                "item_id": "PRODUCT_ID",
                "title": "PRODUCT_NAME",
                "quantity": "AMOUNT",
                "unit_price": "SALES_PRICE",
            },
        }
    )
    ws = Workspace(tmp_path / "ws")
    ws.ingest(path, config)
    orders = sorted({r["order_id"] for r in ws.table("order_lines").to_pylist()})
    assert orders == ["2000-11-01|00418683", "2000-11-01|01104905", "2000-11-25|01104905"]
    prices = {r["item_id"]: r["list_price_minor"] for r in ws.table("items").to_pylist()}
    assert prices["4710199010372"] == 3700  # TWD has 2 decimals in ISO 4217


def test_customer_and_day_needs_a_customer(tmp_path: Path) -> None:
    path = _write(tmp_path / "anon.csv", "when,sku,qty,price,customer", "2024-01-01,A,1,2.0,")
    config = config_from_dict(
        {
            "input": {"order_id": "customer+day"},
            "columns": {
                "ts": "when",
                "item_id": "sku",
                "quantity": "qty",
                "unit_price": "price",
                "customer_id": "customer",
            },
        }
    )
    with pytest.raises(DataValidationError) as info:
        read_orders(path, config)
    assert str(info.value) == (
        f"{path}: row 1, column 'customer': missing value for required field `customer_id` "
        '(needed by `input.order_id` = "customer+day") (value None)'
    )
    both = config_from_dict(
        {"input": {"order_id": "customer+day"}, "columns": {**COLUMNS, "order_id": "order"}}
    )
    with pytest.raises(ConfigError, match=r"maps a column too; remove one\.$"):
        read_orders(path, both)


# --- file types -------------------------------------------------------------------------------


def test_gzipped_csv_and_tsv_are_read(tmp_path: Path) -> None:
    text = "\n".join([HEADER, "1,A,Mug,1,2024-05-01 10:00:00,2.50,c1"]) + "\n"
    gz = tmp_path / "orders.csv.gz"
    gz.write_bytes(gzip.compress(text.encode("utf-8")))
    assert read_orders(gz, _config())[0].column("unit_price_minor").to_pylist() == [250]
    tsv = tmp_path / "orders.tsv.gz"
    tsv.write_bytes(gzip.compress(text.replace(",", "\t").encode("utf-8")))
    assert read_orders(tsv, _config())[0].column("item_id").to_pylist() == ["A"]


def test_cp1252_file_is_transcoded(tmp_path: Path) -> None:
    path = tmp_path / "win.csv"
    path.write_bytes(
        ("\n".join([HEADER, "1,A,Café – crème,1,2024-05-01 10:00:00,2.50,c1"]) + "\n").encode(
            "cp1252"
        )
    )
    table, _ = read_orders(path, _config(encoding="cp1252"))
    assert table.column("title").to_pylist() == ["Café – crème"]


def test_xlsx_is_read(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    sheet.append([1001, "A", "抹茶", 2, datetime(2024, 5, 1, 10), 2.5, 13085])
    sheet.append([1002, "B", "Plate", 1, datetime(2024, 5, 2, 11), 4, "c@2"])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)
    table, _ = read_orders(path, _config())
    assert table.column("order_id").to_pylist() == ["1001", "1002"]
    assert table.column("ts").to_pylist()[1] == datetime(2024, 5, 2, 11)
    assert table.column("unit_price_minor").to_pylist() == [250, 400]
    assert table.column("customer_id").to_pylist() == ["13085", "c@2"]


def test_xlsx_without_openpyxl_is_refused_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    path = tmp_path / "orders.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataValidationError) as info:
        read_orders(path)
    assert str(info.value) == (
        f"{path}: reading .xlsx needs the optional openpyxl package. Install it (pip install "
        "'bundlewise[xlsx]') or save the sheet as CSV UTF-8 and ingest that"
    )


def test_parquet_with_a_decimal_comma_column(tmp_path: Path) -> None:
    path = tmp_path / "eu.parquet"
    pq.write_table(
        pa.table(
            {
                "order": ["1"],
                "sku": ["A"],
                "title": ["Mug"],
                "qty": [1],
                "when": ["13/04/2010 10:00"],
                "price": ["2,50"],
                "customer": ["c1"],
            }
        ),
        path,
    )
    table, _ = read_orders(path, _config(decimal_separator=","))
    assert table.column("unit_price_minor").to_pylist() == [250]
    assert table.column("ts").to_pylist() == [datetime(2010, 4, 13, 10, 0)]


# --- through the command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('1,A,Mug,1,2024-05-02 10:00:00,"1,50",c1', "ambiguous number: the comma may be"),
        ("1,A,Mug,1,03/04/2010 10:00,1.50,c1", "ambiguous date: every value reads both"),
    ],
    ids=["decimal-comma", "day-or-month"],
)
def test_cli_refuses_ambiguous_input(tmp_path: Path, row: str, problem: str) -> None:
    orders = _write(tmp_path / "orders.csv", HEADER, row)
    config = tmp_path / "store.toml"
    config.write_text(
        "[columns]\n" + "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items()), encoding="utf-8"
    )
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(
        app, ["ingest", str(orders), "--config", str(config), "--workspace", str(workspace)]
    )
    assert result.exit_code != 0
    output = " ".join(result.output.split())  # the message may be wrapped at the terminal width
    assert problem in output
    assert "Traceback" not in output
    assert not (workspace / "bundlewise.duckdb").exists()


def test_cli_says_how_many_orders_a_newer_export_replaced(tmp_path: Path) -> None:
    config = tmp_path / "store.toml"
    config.write_text(
        "[columns]\n" + "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items()), encoding="utf-8"
    )
    first = _write(tmp_path / "jan.csv", HEADER, "1,A,Mug,1,2024-01-05 10:00:00,2.50,c1")
    newer = _write(
        tmp_path / "feb.csv",
        HEADER,
        "1,A,Mug,2,2024-01-05 10:00:00,2.50,c1",
        "2,P,Plate,1,2024-02-05 10:00:00,4.00,c2",
    )
    args = ["--config", str(config), "--workspace", str(tmp_path / "ws")]
    assert CliRunner().invoke(app, ["ingest", str(first), *args]).exit_code == 0
    result = CliRunner().invoke(app, ["ingest", str(newer), *args])
    assert result.exit_code == 0, result.output
    assert (
        "Replaced 1 orders (1 lines) stored from earlier files with their versions in this file."
        in result.output
    )


def test_every_sheet_of_a_workbook_split_by_period_is_read(tmp_path: Path) -> None:
    """The Online Retail II workbook holds one sheet a year: both are read, not the first only."""
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Year 2009-2010"
    first.append(HEADER.split(","))
    first.append([1001, "A", "Mug", 2, datetime(2010, 5, 1, 10), 2.5, 13085])
    second = workbook.create_sheet("Year 2010-2011")
    second.append(HEADER.split(","))
    second.append([2001, "B", "Plate", 1, datetime(2011, 5, 2, 11), 4, 13086])
    workbook.create_sheet("Notes")  # empty: ignored
    path = tmp_path / "orders.xlsx"
    workbook.save(path)
    table, _ = read_orders(path, _config())
    assert table.column("order_id").to_pylist() == ["1001", "2001"]


def test_sheets_with_other_columns_are_refused(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    orders = workbook.active
    orders.title = "orders"
    orders.append(HEADER.split(","))
    orders.append([1001, "A", "Mug", 2, datetime(2010, 5, 1, 10), 2.5, 13085])
    notes = workbook.create_sheet("notes")
    notes.append(["who", "what"])
    notes.append(["ann", "checked"])
    path = tmp_path / "orders.xlsx"
    workbook.save(path)
    with pytest.raises(DataValidationError) as info:
        read_orders(path, _config())
    assert str(info.value) == (
        f"{path}: sheet 'notes' has other columns than sheet 'orders' (who, what vs "
        f"{', '.join(HEADER.split(','))}); every sheet with data is read as one table. Keep one "
        "table per workbook (delete or move the other sheets) or save the sheet you want as CSV "
        "UTF-8 and ingest that"
    )


def test_online_retail_rules_do_not_apply_to_another_store(tmp_path: Path) -> None:
    """Item ids M, D and POST are products here, and order ids starting with C are orders."""
    path = _write(
        tmp_path / "orders.csv",
        HEADER,
        "C100,M,Medium tee,1,2024-05-01 10:00:00,12.00,c1",
        "C100,D,Denim cap,1,2024-05-01 10:00:00,9.00,c1",
        "C101,POST,Postcard set,2,2024-05-02 10:00:00,3.00,c2",
        "C102,D,Denim cap,-1,2024-05-03 10:00:00,9.00,c1",
    )
    ws = Workspace(tmp_path / "ws")
    report = ws.ingest(path, config=_config()).report
    lines = ws.table("order_lines").to_pylist()
    assert sorted((r["order_id"], r["item_id"]) for r in lines) == [
        ("C100", "M"),
        ("C101", "POST"),
    ]  # the return (negative quantity) is netted against c1's cap
    assert report.count("non_product") == 0
    assert report.count("return_netted") == 1


def test_a_generic_file_gets_the_cleaning_rules_the_config_sets(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "orders.csv",
        HEADER,
        "R1,A,Mug,1,2024-05-01 10:00:00,12.00,c1",
        "R1,FEE1,Handling fee,1,2024-05-01 10:00:00,1.00,c1",
        "X2,A,Mug,1,2024-05-02 10:00:00,12.00,c1",
    )
    config = config_from_dict(
        {
            "columns": COLUMNS,
            "cleaning": {"cancellation_prefix": "X", "non_product_patterns": ["FEE\\d+"]},
        }
    )
    ws = Workspace(tmp_path / "ws")
    report = ws.ingest(path, config=config).report
    assert report.count("non_product") == 1
    assert report.count("return_netted") == 1
    assert ws.table("order_lines").num_rows == 0  # the mug was bought and returned
