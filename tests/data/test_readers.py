from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bundlewise.config import ColumnMapping, Config, InputConfig, config_from_dict, load_config
from bundlewise.data.readers import (
    ONLINE_RETAIL_2011,
    ONLINE_RETAIL_II,
    load_source,
    read_orders,
)
from bundlewise.data.schemas import RAW_ORDER_LINES
from bundlewise.exceptions import ConfigError, DataValidationError

II_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
R2011_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
GOOD = "489434,85048,STAR LIGHT,12,2009-12-01 07:45:00,6.95,13085,United Kingdom"


def _lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- builders of bad inputs: each takes tmp_path and returns the file to read -----------------


def _missing_price(tmp: Path) -> Path:
    header = II_HEADER.replace(",Price", "")
    return _lines(tmp / "no_price.csv", header, GOOD.replace(",6.95", ""))


def _missing_mapped_column(tmp: Path) -> Path:
    return _lines(tmp / "generic.csv", "order,sku,qty,when", "1,A,2,2024-01-01")


def _bad_date(tmp: Path) -> Path:
    bad = GOOD.replace("2009-12-01 07:45:00", "31st of Smarch")
    return _lines(tmp / "dates.csv", II_HEADER, GOOD, GOOD, bad, GOOD)


def _bad_date_explicit_format(tmp: Path) -> Path:
    bad = GOOD.replace("2009-12-01 07:45:00", "2009-13-45 07:45:00")
    return _lines(tmp / "dates_fmt.csv", II_HEADER, GOOD, bad, bad)


def _bad_price(tmp: Path) -> Path:
    return _lines(
        tmp / "prices.csv",
        II_HEADER,
        GOOD,
        GOOD.replace("6.95", "abc"),
        GOOD,
        GOOD.replace("6.95", "x1"),
        GOOD.replace("6.95", "£2"),
    )


def _infinite_price(tmp: Path) -> Path:
    return _lines(tmp / "inf.csv", II_HEADER, GOOD.replace("6.95", "inf"))


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_bytes(b"")
    return path


def _blank(tmp: Path) -> Path:
    path = tmp / "blank.csv"
    path.write_bytes(b"  \n\n")
    return path


def _header_only(tmp: Path) -> Path:
    return _lines(tmp / "header_only.csv", II_HEADER)


def _latin1(tmp: Path) -> Path:
    path = tmp / "latin1.csv"
    text = "\n".join([II_HEADER, GOOD, GOOD.replace("STAR LIGHT", "CAFÉ AU LAIT BOWL")]) + "\n"
    path.write_bytes(text.encode("latin-1"))
    return path


def _duplicate_header(tmp: Path) -> Path:
    return _lines(tmp / "dup.csv", II_HEADER + ",Price", GOOD + ",1.00")


def _empty_header_name(tmp: Path) -> Path:
    return _lines(tmp / "noname.csv", II_HEADER.replace("Country", " "), GOOD)


def _fractional_quantity(tmp: Path) -> Path:
    frac = GOOD.replace(",12,", ",1.5,")
    return _lines(tmp / "frac.csv", II_HEADER, GOOD, GOOD, frac, frac, frac)


def _missing_item(tmp: Path) -> Path:
    return _lines(tmp / "no_item.csv", II_HEADER, GOOD.replace(",85048,", ",,"))


def _missing_invoice(tmp: Path) -> Path:
    return _lines(tmp / "no_invoice.csv", II_HEADER, GOOD, GOOD.replace("489434", "  "))


def _ragged(tmp: Path) -> Path:
    return _lines(tmp / "ragged.csv", II_HEADER, GOOD, "489435,22,too short")


def _xlsx(tmp: Path) -> Path:
    path = tmp / "orders.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a workbook")
    return path


def _xls(tmp: Path) -> Path:
    path = tmp / "orders.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0 an old binary workbook")
    return path


def _json(tmp: Path) -> Path:
    path = tmp / "orders.json"
    path.write_text("[]", encoding="utf-8")
    return path


def _absent(tmp: Path) -> Path:
    return tmp / "does_not_exist.csv"


def _parquet_empty_bytes(tmp: Path) -> Path:
    path = tmp / "empty.parquet"
    path.write_bytes(b"")
    return path


def _parquet_no_rows(tmp: Path) -> Path:
    path = tmp / "no_rows.parquet"
    names = II_HEADER.split(",")
    pq.write_table(pa.table({n: pa.array([], pa.string()) for n in names}), path)
    return path


def _parquet_garbage(tmp: Path) -> Path:
    path = tmp / "garbage.parquet"
    path.write_bytes(b"this is not parquet" * 10)
    return path


def _parquet_duplicate_column(tmp: Path) -> Path:
    path = tmp / "dup.parquet"
    names = II_HEADER.split(",") + ["Price"]
    arrays = [pa.array(["x"]) for _ in names]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    return path


def _parquet_nan_price(tmp: Path) -> Path:
    path = tmp / "nan_price.parquet"
    n = 3
    pq.write_table(
        pa.table(
            {
                "Invoice": ["1", "2", "3"],
                "StockCode": ["A", "B", "C"],
                "Description": ["a", "b", "c"],
                "Quantity": pa.array([1, 2, 3], pa.int64()),
                "InvoiceDate": pa.array([datetime(2010, 1, 1)] * n, pa.timestamp("ns")),
                "Price": pa.array([1.0, float("nan"), float("inf")], pa.float64()),
                "Customer ID": pa.array([1.0, 2.0, 3.0]),
                "Country": ["UK"] * n,
            }
        ),
        path,
    )
    return path


def _not_online_retail(tmp: Path) -> Path:
    return _lines(tmp / "other.csv", "a,b,c", "1,2,3")


GENERIC = Config(
    input=InputConfig(format="generic"),
    columns=ColumnMapping(
        order_id="order", item_id="sku", quantity="qty", ts="when", unit_price="price"
    ),
)
NO_PRICE_MAPPING = Config(
    input=InputConfig(format="generic"),
    columns=ColumnMapping(order_id="order", item_id="sku", quantity="qty", ts="when"),
)
ISO_FORMAT = Config(input=InputConfig(date_format="%Y-%m-%d %H:%M:%S"))
Builder = Callable[[Path], Path]

BAD_INPUTS: list[tuple[str, Builder, Config | None, type[Exception], str]] = [
    (
        "missing-column",
        _missing_price,
        None,
        DataValidationError,
        r"column 'Price': not an Online Retail file: missing column\(s\) \['Price'\]",
    ),
    (
        "missing-column-online-retail-format",
        _missing_price,
        Config(input=InputConfig(format="online_retail")),
        DataValidationError,
        r"column 'Price': not an Online Retail file: missing column\(s\) \['Price'\]",
    ),
    (
        "missing-mapped-column",
        _missing_mapped_column,
        GENERIC,
        DataValidationError,
        r"column 'price': missing column \(needed for `unit_price`\); columns found: "
        r"\['order', 'qty', 'sku', 'when'\]",
    ),
    (
        "mapping-lacks-required-field",
        _missing_mapped_column,
        NO_PRICE_MAPPING,
        ConfigError,
        r"no entry for required field `unit_price`",
    ),
    (
        "not-online-retail-no-mapping",
        _not_online_retail,
        None,
        DataValidationError,
        r"not an Online Retail export and the config has no \[columns\] mapping\. "
        r"Add a \[columns\] table",
    ),
    (
        "unparseable-date",
        _bad_date,
        None,
        DataValidationError,
        r"row 3, column 'InvoiceDate': cannot parse as a date/time in any known format "
        r"\(value '31st of Smarch'\)\. Set `input\.date_format`",
    ),
    (
        "unparseable-date-with-format",
        _bad_date_explicit_format,
        ISO_FORMAT,
        DataValidationError,
        r"row 2, column 'InvoiceDate': cannot parse as a date/time with format "
        r"'%Y-%m-%d %H:%M:%S' \(value '2009-13-45 07:45:00'\); 1 more row\(s\)",
    ),
    (
        "non-numeric-price",
        _bad_price,
        None,
        DataValidationError,
        r"row 2, column 'Price': not a finite number \(value 'abc'\); "
        r"2 more row\(s\) have the same problem",
    ),
    (
        "infinite-price",
        _infinite_price,
        None,
        DataValidationError,
        r"row 1, column 'Price': not a finite number \(value 'inf'\)$",
    ),
    (
        "empty-file",
        _empty,
        None,
        DataValidationError,
        r"the file is empty \(no header, no rows\)",
    ),
    (
        "blank-file",
        _blank,
        None,
        DataValidationError,
        r"the file is empty \(no header, no rows\)",
    ),
    (
        "header-only",
        _header_only,
        None,
        DataValidationError,
        r"the file is empty \(a header but no data rows\)",
    ),
    (
        "latin1-read-as-utf8",
        _latin1,
        None,
        DataValidationError,
        r"row 2, cannot decode byte b'\\xc9' at offset \d+ \(line 3\) as utf-8.*"
        r"\(value 'c9'\)\. .*set `input\.encoding` in the config",
    ),
    (
        "unknown-codec",
        _latin1,
        Config(input=InputConfig(encoding="no-such-codec")),
        ConfigError,
        r"unknown text encoding 'no-such-codec' in `input\.encoding`",
    ),
    (
        "duplicate-header",
        _duplicate_header,
        None,
        DataValidationError,
        r"column 'Price': duplicate column name in the header \(columns 6 and 9\)",
    ),
    (
        "empty-header-name",
        _empty_header_name,
        None,
        DataValidationError,
        r"column '': header column 8 has no name",
    ),
    (
        "fractional-quantity",
        _fractional_quantity,
        None,
        DataValidationError,
        r"row 3, column 'Quantity': quantity is not a whole number \(value '1\.5'\); "
        r"2 more row\(s\)",
    ),
    (
        "missing-required-value",
        _missing_item,
        None,
        DataValidationError,
        r"row 1, column 'StockCode': missing value for required field `item_id` "
        r"\(value None\)$",
    ),
    (
        "blank-required-value",
        _missing_invoice,
        None,
        DataValidationError,
        r"row 2, column 'Invoice': missing value for required field `order_id`",
    ),
    (
        "ragged-row",
        _ragged,
        None,
        DataValidationError,
        r"row 2, expected 8 fields, found 3 \(value '489435,22,too short'\)",
    ),
    (
        "unsupported-suffix",
        _json,
        None,
        DataValidationError,
        r"unsupported file type '\.json'\. Use \.csv, \.tsv \(optionally \.gz\), \.parquet or "
        r"\.xlsx$",
    ),
    (
        "old-excel",
        _xls,
        None,
        DataValidationError,
        r"unsupported file type '\.xls'\. Save the sheet as \.xlsx or CSV UTF-8 and ingest that$",
    ),
    (
        "broken-xlsx",
        _xlsx,
        None,
        DataValidationError,
        r"not a readable \.xlsx workbook \(BadZipFile\)\. Open it in a spreadsheet program",
    ),
    ("no-such-file", _absent, None, DataValidationError, r"does_not_exist\.csv: no such file"),
    (
        "parquet-0-bytes",
        _parquet_empty_bytes,
        None,
        DataValidationError,
        r"the file is empty \(no header, no rows\)",
    ),
    (
        "parquet-no-rows",
        _parquet_no_rows,
        None,
        DataValidationError,
        r"the file is empty \(a schema but no data rows\)",
    ),
    (
        "parquet-garbage",
        _parquet_garbage,
        None,
        DataValidationError,
        r"not a readable Parquet file",
    ),
    (
        "parquet-duplicate-column",
        _parquet_duplicate_column,
        None,
        DataValidationError,
        r"column 'Price': duplicate column name in the schema",
    ),
    (
        "parquet-nan-price",
        _parquet_nan_price,
        None,
        DataValidationError,
        r"row 2, column 'Price': not a finite number \(value 'nan'\); 1 more row\(s\)",
    ),
]


@pytest.mark.parametrize(
    ("builder", "config", "error", "pattern"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_bad_input_is_rejected_with_a_precise_message(
    tmp_path: Path,
    builder: Builder,
    config: Config | None,
    error: type[Exception],
    pattern: str,
) -> None:
    path = builder(tmp_path)
    with pytest.raises(error) as info:
        read_orders(path, config)
    message = str(info.value)
    assert type(info.value) is error
    # Every message starts with the file, so a user knows which input to fix.
    assert message.startswith(f"{path}:"), message
    assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    if isinstance(info.value, DataValidationError):
        assert info.value.path == str(path)


def test_validation_error_attributes_point_at_the_cell(tmp_path: Path) -> None:
    path = _bad_price(tmp_path)
    with pytest.raises(DataValidationError) as info:
        read_orders(path)
    err = info.value
    assert (err.column, err.row, err.value, err.n_more) == ("Price", 2, "abc", 2)


def test_latin1_file_reads_with_the_configured_encoding(tmp_path: Path) -> None:
    table, _ = read_orders(_latin1(tmp_path), Config(input=InputConfig(encoding="latin-1")))
    assert table.column("title").to_pylist() == ["STAR LIGHT", "CAFÉ AU LAIT BOWL"]


def test_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + II_HEADER + "\n" + GOOD + "\n").encode("utf-8"))
    table, adapter = read_orders(path)
    assert adapter == "online_retail_ii"
    assert table.column("order_id").to_pylist() == ["489434"]


# --- both Online Retail schemas ----------------------------------------------------------------


def test_online_retail_ii_csv(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "ii.csv",
        II_HEADER,
        GOOD,
        '489435,22350,"CAT BOWL, LARGE",-2,2009-12-01 07:46:00,2.55,,France',
        "C489436,85048,STAR LIGHT,-1,2009-12-02 10:00:00,6.95,13085.0,United Kingdom",
    )
    table, adapter = read_orders(path)
    assert adapter == "online_retail_ii"
    assert table.schema == RAW_ORDER_LINES
    rows = table.to_pylist()
    assert rows[0] == {
        "order_id": "489434",
        "item_id": "85048",
        "title": "STAR LIGHT",
        "quantity": 12,
        "ts": datetime(2009, 12, 1, 7, 45),
        "unit_price_minor": 695,
        "customer_id": "13085",
        "country": "United Kingdom",
        "unit_cost_minor": None,
        "currency": "GBP",
        "source_row": 1,
    }
    assert rows[1]["title"] == "CAT BOWL, LARGE"
    assert rows[1]["customer_id"] is None
    assert rows[1]["quantity"] == -2
    assert rows[1]["unit_price_minor"] == 255
    # A float-looking id in a CSV (pandas wrote a float column) is the same customer.
    assert rows[2]["customer_id"] == "13085"
    assert rows[2]["order_id"] == "C489436"
    assert table.column("source_row").to_pylist() == [1, 2, 3]


def test_online_retail_2011_csv_with_month_first_dates(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "2011.csv",
        R2011_HEADER,
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,"
        "United Kingdom",
        "536366,22633,HAND WARMER UNION JACK,6,12/13/2010 18:05,1.85,17850.0,United Kingdom",
        "C536379,D,Discount,-1,1/9/2011 9:41,27.50,14527,United Kingdom",
    )
    table, adapter = read_orders(path)
    assert adapter == "online_retail_2011"
    assert table.column("ts").to_pylist() == [
        datetime(2010, 12, 1, 8, 26),
        datetime(2010, 12, 13, 18, 5),
        datetime(2011, 1, 9, 9, 41),
    ]
    assert table.column("customer_id").to_pylist() == ["17850", "17850", "14527"]
    assert table.column("unit_price_minor").to_pylist() == [255, 185, 2750]
    assert table.column("item_id").to_pylist() == ["85123A", "22633", "D"]


def _retail_parquet(path: Path, mapping: ColumnMapping) -> Path:
    names = mapping.as_dict()
    columns = {
        names["order_id"]: ["536365", "536365", "C536366"],
        names["item_id"]: ["85123A", "71053", "85123A"],
        names["title"]: ["WHITE HANGING HEART", "WHITE METAL LANTERN", "WHITE HANGING HEART"],
        names["quantity"]: pa.array([6, 6, -2], pa.int64()),
        names["ts"]: pa.array(
            [datetime(2010, 12, 1, 8, 26), datetime(2010, 12, 1, 8, 26), datetime(2010, 12, 2)],
            pa.timestamp("ns"),
        ),
        names["unit_price"]: pa.array([2.55, 3.39, 0.1 + 0.2], pa.float64()),
        # pandas turns an integer column with missing values into float; NaN marks missing.
        names["customer_id"]: pa.array([17850.0, None, float("nan")], pa.float64()),
        names["country"]: ["United Kingdom"] * 3,
    }
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    ("mapping", "expected_adapter"),
    [(ONLINE_RETAIL_II, "online_retail_ii"), (ONLINE_RETAIL_2011, "online_retail_2011")],
)
def test_online_retail_parquet(
    tmp_path: Path, mapping: ColumnMapping, expected_adapter: str
) -> None:
    path = _retail_parquet(tmp_path / "orders.parquet", mapping)
    table, adapter = read_orders(path)
    assert adapter == expected_adapter
    assert table.schema == RAW_ORDER_LINES
    assert table.column("customer_id").to_pylist() == ["17850", None, None]
    assert table.column("unit_price_minor").to_pylist() == [255, 339, 30]
    assert table.column("quantity").to_pylist() == [6, 6, -2]
    assert table.column("ts").to_pylist()[0] == datetime(2010, 12, 1, 8, 26)
    assert table.column("order_id").to_pylist() == ["536365", "536365", "C536366"]


def test_parquet_with_nan_in_a_required_id_is_a_missing_value(tmp_path: Path) -> None:
    path = tmp_path / "nan_id.parquet"
    pq.write_table(
        pa.table(
            {
                "Invoice": pa.array([1.0, float("nan")]),
                "StockCode": ["A", "B"],
                "Description": ["a", "b"],
                "Quantity": pa.array([1, 1]),
                "InvoiceDate": pa.array([datetime(2010, 1, 1)] * 2, pa.timestamp("us")),
                "Price": [1.0, 1.0],
                "Customer ID": pa.array([1.0, 2.0]),
                "Country": ["UK", "UK"],
            }
        ),
        path,
    )
    with pytest.raises(DataValidationError, match=r"row 2, column 'Invoice': missing value"):
        read_orders(path)


def test_load_source_keeps_csv_cells_as_text(tmp_path: Path) -> None:
    path = _lines(tmp_path / "t.tsv", "a\tb", "001\t2.50")
    source = load_source(path)
    assert source.format_name == "csv"
    assert source.table.to_pylist() == [{"a": "001", "b": "2.50"}]


# --- generic files described by a TOML config --------------------------------------------------


def test_generic_csv_with_toml_mapping_and_date_format(tmp_path: Path) -> None:
    config_path = _lines(
        tmp_path / "store.toml",
        "[input]",
        'format = "generic"',
        'date_format = "%d/%m/%Y %H:%M"',
        'currency = "EUR"',
        "",
        "[columns]",
        'order_id = "order_number"',
        'item_id = "sku"',
        'title = "product_name"',
        'quantity = "qty"',
        'ts = "ordered_at"',
        'unit_price = "price"',
        'customer_id = "customer"',
        'unit_cost = "cost"',
        "",
        "[cleaning]",
        "max_quantity = 500",
    )
    config = load_config(config_path)
    assert config.input.date_format == "%d/%m/%Y %H:%M"
    assert config.columns.item_id == "sku"
    assert config.cleaning.max_quantity == 500
    orders = _lines(
        tmp_path / "shop_export.csv",
        "order_number,sku,product_name,qty,ordered_at,price,customer,cost,channel",
        'A-1,SKU-1,Mug,2,03/02/2024 09:05,"1,299.50",cust-7,3.10,web',
        "A-1,SKU-2,Plate, 1 ,13/02/2024 17:30, 4.00 ,,,shop",
    )
    table, adapter = read_orders(orders, config)
    assert adapter == "generic"
    rows = table.to_pylist()
    # Day first, as the config says: 03/02 is the 3rd of February.
    assert rows[0]["ts"] == datetime(2024, 2, 3, 9, 5)
    assert rows[1]["ts"] == datetime(2024, 2, 13, 17, 30)
    assert [r["unit_price_minor"] for r in rows] == [129950, 400]
    assert [r["unit_cost_minor"] for r in rows] == [310, None]
    assert [r["quantity"] for r in rows] == [2, 1]
    assert [r["customer_id"] for r in rows] == ["cust-7", None]
    assert [r["country"] for r in rows] == [None, None]
    assert set(table.column("currency").to_pylist()) == {"EUR"}


def test_generic_csv_in_a_zero_decimal_currency(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "input": {"currency": "JPY"},
            "columns": {
                "order_id": "o",
                "item_id": "i",
                "quantity": "q",
                "ts": "t",
                "unit_price": "p",
            },
        }
    )
    path = _lines(
        tmp_path / "jp.csv", "o,i,q,t,p", "1,a,3,2024-05-01,1200", "2,b,1,2024-05-02,99.5"
    )
    table, adapter = read_orders(path, config)
    assert adapter == "generic"
    assert table.column("unit_price_minor").to_pylist() == [1200, 100]  # 99.5 -> 100 (even)
    assert table.column("ts").to_pylist() == [datetime(2024, 5, 1), datetime(2024, 5, 2)]


def test_unknown_toml_key_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = _lines(tmp_path / "typo.toml", "[input]", 'encodng = "latin-1"')
    with pytest.raises(ConfigError, match=r"typo\.toml: unknown key `input\.encodng`"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('[inputs]\nformat = "generic"', r"unknown section \[inputs\]"),
        ('[columns]\nsku = "x"', r"unknown key `columns\.sku`"),
        ("[input]\nformat = ", r"invalid TOML"),
        ('[input]\nformat = "xlsx"', r"`input\.format`='xlsx'"),
        ('[input]\ncurrency = "pounds"', r"`input\.currency`='pounds'"),
        ("[cleaning]\nmax_quantity = 0", r"`cleaning\.max_quantity`=0 should be >= 1"),
        ('[cleaning]\nnon_product_patterns = ["("]', r"not a valid regular expression"),
        ("input = 3", r"\[input\] must be a table"),
    ],
)
def test_invalid_config_files(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file"):
        load_config(tmp_path / "nope.toml")
    assert load_config(None) == Config()
