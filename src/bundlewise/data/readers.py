"""Read orders from CSV or Parquet into the canonical raw table, validating every value.

All raw-input validation happens here. A problem raises :class:`DataValidationError` naming the
file, the column, the 1-based data row and the value, plus how many other rows share it; nothing
is coerced silently. Cleaning (cancellations, duplicates, ...) is a separate, reported step
(:mod:`bundlewise.data.cleaning`).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bundlewise.config import REQUIRED_FIELDS, ColumnMapping, Config
from bundlewise.data import _sql
from bundlewise.data._sql import quote_ident as _q
from bundlewise.data.schemas import RAW_ORDER_LINES
from bundlewise.exceptions import ConfigError, DataValidationError
from bundlewise.money import array_to_minor_units

logger = logging.getLogger(__name__)

#: Column names of the two published schemas of UCI Online Retail.
ONLINE_RETAIL_II = ColumnMapping(
    order_id="Invoice",
    item_id="StockCode",
    title="Description",
    quantity="Quantity",
    ts="InvoiceDate",
    unit_price="Price",
    customer_id="Customer ID",
    country="Country",
)
ONLINE_RETAIL_2011 = ColumnMapping(
    order_id="InvoiceNo",
    item_id="StockCode",
    title="Description",
    quantity="Quantity",
    ts="InvoiceDate",
    unit_price="UnitPrice",
    customer_id="CustomerID",
    country="Country",
)

#: Timestamp formats tried, in order, when the config gives none.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y %H:%M",
)

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class SourceTable:
    """An input file loaded as text/typed columns, before mapping."""

    path: str
    table: pa.Table
    format_name: str


def _load_csv(path: Path, encoding: str) -> pa.Table:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"{path}: unknown text encoding {encoding!r} in `input.encoding`; "
            "use a Python codec name such as 'utf-8' or 'latin-1'."
        ) from None
    data = path.read_bytes()
    if not data.strip():
        raise DataValidationError(str(path), "the file is empty (no header, no rows)")
    if codec.name == "utf-8":
        encoding = "utf-8-sig"  # accept (and drop) a byte-order mark
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.end]
        raise DataValidationError(
            str(path),
            f"cannot decode byte {bad!r} at offset {exc.start} (line {line}) as {encoding}",
            row=max(line - 1, 0) or None,
            value=bad.hex(),
            hint="The file is in another text encoding: set `input.encoding` in the config "
            "(e.g. 'latin-1' or 'cp1252')",
        ) from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise DataValidationError(str(path), "the file has no header line")
    names = [name.strip() for name in header]
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise DataValidationError(
                str(path), f"header column {position} has no name", column="", value=name
            )
        if name in seen:
            raise DataValidationError(
                str(path),
                f"duplicate column name in the header (columns {names.index(name) + 1} and "
                f"{position})",
                column=name,
            )
        seen.add(name)
    for row_number, fields in enumerate(reader, start=1):
        if fields and len(fields) != len(names):
            raise DataValidationError(
                str(path),
                f"expected {len(names)} fields, found {len(fields)}",
                row=row_number,
                value=delimiter.join(fields)[:120],
            )
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise DataValidationError(str(path), f"cannot parse as CSV: {exc}") from None
    if table.num_rows == 0:
        raise DataValidationError(str(path), "the file is empty (a header but no data rows)")
    return table


def _load_parquet(path: Path) -> pa.Table:
    if path.stat().st_size == 0:
        raise DataValidationError(str(path), "the file is empty (no header, no rows)")
    try:
        # ParquetFile, not read_table: the dataset API rejects duplicate names before the check
        # below can name the column.
        with pq.ParquetFile(path) as parquet_file:
            table = parquet_file.read()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataValidationError(str(path), f"not a readable Parquet file: {exc}") from None
    if table.num_rows == 0:
        raise DataValidationError(str(path), "the file is empty (a schema but no data rows)")
    names = table.column_names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            str(path), "duplicate column name in the schema", column=duplicates[0]
        )
    return table


def load_source(path: str | Path, encoding: str = "utf-8") -> SourceTable:
    """Load a CSV/TSV or Parquet file as it is (CSV cells as strings).

    Raises
    ------
    DataValidationError
        Missing or empty file, undecodable bytes, duplicate or empty header names, ragged rows.
    ConfigError
        Unknown encoding name.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(str(path), "no such file")
    suffix = path.suffix.lower()
    if suffix in _CSV_SUFFIXES:
        return SourceTable(str(path), _load_csv(path, encoding), "csv")
    if suffix in _PARQUET_SUFFIXES:
        return SourceTable(str(path), _load_parquet(path), "parquet")
    raise DataValidationError(
        str(path),
        f"unsupported file type {suffix or '(none)'!r}",
        hint="Use .csv, .tsv or .parquet",
    )


def resolve_mapping(source: SourceTable, config: Config) -> tuple[ColumnMapping, str]:
    """Pick the column mapping: Online Retail (either schema) or the config's ``[columns]``.

    Returns the mapping and the adapter name.
    """
    columns = set(source.table.column_names)
    fmt = config.input.format
    if fmt in ("auto", "online_retail"):
        for name, mapping in (
            ("online_retail_ii", ONLINE_RETAIL_II),
            ("online_retail_2011", ONLINE_RETAIL_2011),
        ):
            if set(mapping.as_dict().values()) <= columns:
                return mapping, name
        missing_ii = sorted(set(ONLINE_RETAIL_II.as_dict().values()) - columns)
        missing_11 = sorted(set(ONLINE_RETAIL_2011.as_dict().values()) - columns)
        closest = min((missing_ii, missing_11), key=len)
        # In auto mode, a file with most Online Retail columns and no [columns] mapping is an
        # Online Retail export with a column missing: name that column.
        looks_like_online_retail = len(closest) <= len(ONLINE_RETAIL_II.as_dict()) // 2
        if fmt == "online_retail" or (looks_like_online_retail and not config.columns.as_dict()):
            raise DataValidationError(
                source.path,
                f"not an Online Retail file: missing column(s) {closest}; "
                f"columns found: {sorted(columns)}",
                column=closest[0],
            )
    mapping = config.columns
    if not mapping.as_dict():
        raise DataValidationError(
            source.path,
            f"columns {sorted(columns)} are not an Online Retail export and the config has no "
            "[columns] mapping",
            hint="Add a [columns] table mapping order_id, item_id, quantity, ts and unit_price "
            "to your column names",
        )
    return mapping, "generic"


def _first_bad(
    con: duckdb.DuckDBPyConnection, condition: str, column_sql: str
) -> tuple[int, object, int] | None:
    rows = con.execute(
        f"SELECT __row, CAST({column_sql} AS VARCHAR), count(*) OVER () FROM src "
        f"WHERE {condition} ORDER BY __row LIMIT 1"
    ).fetchall()
    if not rows:
        return None
    row = rows[0]
    return int(row[0]), row[1], int(row[2])


def raise_first_bad(
    con: duckdb.DuckDBPyConnection,
    path: str,
    condition: str,
    column: str,
    problem: str,
    hint: str | None = None,
) -> None:
    bad = _first_bad(con, condition, _q(column))
    if bad is not None:
        row, value, count = bad
        raise DataValidationError(
            path, problem, column=column, row=row, value=value, n_more=count - 1, hint=hint
        )


def _detect_date_format(con: duckdb.DuckDBPyConnection, column: str) -> str | None:
    sample = f"(SELECT {_q(column)} AS v FROM src WHERE {_q(column)} IS NOT NULL LIMIT 2000)"
    best: tuple[int, str] | None = None
    for fmt in DATE_FORMATS:
        rows = con.execute(
            f"SELECT count(*) FILTER (WHERE try_strptime(trim(v), ?) IS NULL) FROM {sample}",
            [fmt],
        ).fetchall()
        n_bad = int(rows[0][0])
        if best is None or n_bad < best[0]:
            best = (n_bad, fmt)
        if n_bad == 0:
            return fmt
    return None


def _number_sql(column: str, source_type: pa.DataType) -> str:
    if pa.types.is_integer(source_type) or pa.types.is_floating(source_type):
        return f"CAST({_q(column)} AS DOUBLE)"
    if pa.types.is_decimal(source_type):
        return f"CAST({_q(column)} AS DOUBLE)"
    return f"try_cast(replace(trim(CAST({_q(column)} AS VARCHAR)), ',', '') AS DOUBLE)"


def id_sql(column: str, source_type: pa.DataType, strip_float_suffix: bool = False) -> str:
    """Identifiers as text; a float id such as 13085.0 (pandas' doing) becomes '13085'.

    A NaN float id is missing. With ``strip_float_suffix`` a text id such as ``'13085.0'`` (a
    float column written to CSV by pandas) also becomes ``'13085'``.
    """
    c = _q(column)
    if pa.types.is_floating(source_type):
        return (
            f"CASE WHEN isnan({c}) THEN NULL "
            f"WHEN {c} = floor({c}) AND abs({c}) < 1e18 "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({c} AS VARCHAR) END"
        )
    text = f"nullif(trim(CAST({c} AS VARCHAR)), '')"
    if strip_float_suffix:
        return rf"regexp_replace({text}, '^(-?[0-9]+)\.0+$', '\1')"
    return text


def timestamp_sql(
    con: duckdb.DuckDBPyConnection,
    path: str,
    column: str,
    source_type: pa.DataType,
    date_format: str | None,
) -> str:
    """SQL that parses ``column`` of the registered table ``src`` as a TIMESTAMP.

    Text is parsed with ``date_format`` or, when ``None``, the first of :data:`DATE_FORMATS`
    that parses a sample of the column.

    Raises
    ------
    DataValidationError
        Naming the first row that does not parse, its value and how many more rows fail.
    """
    if pa.types.is_timestamp(source_type) or pa.types.is_date(source_type):
        return f"CAST({_q(column)} AS TIMESTAMP)"
    fmt = date_format or _detect_date_format(con, column)
    if fmt is None:
        bad = _first_bad(
            con,
            " AND ".join(
                f"try_strptime(trim(CAST({_q(column)} AS VARCHAR)), '{f}') IS NULL"
                for f in DATE_FORMATS
            ),
            _q(column),
        )
        row, value, count = bad if bad else (None, None, 0)
        raise DataValidationError(
            path,
            "cannot parse as a date/time in any known format",
            column=column,
            row=row,
            value=value,
            n_more=max(count - 1, 0),
            hint="Set `input.date_format` (strptime syntax) in the config",
        )
    parsed = f"try_strptime(trim(CAST({_q(column)} AS VARCHAR)), '{fmt}')"
    raise_first_bad(
        con,
        path,
        f"{parsed} IS NULL",
        column,
        f"cannot parse as a date/time with format {fmt!r}",
        hint="Fix the value or set `input.date_format` in the config",
    )
    return f"CAST({parsed} AS TIMESTAMP)"


def read_orders(path: str | Path, config: Config | None = None) -> tuple[pa.Table, str]:
    """Read and validate an orders file into the canonical raw order-lines table.

    Parameters
    ----------
    path
        CSV, TSV or Parquet file, one row per order line.
    config
        Input settings and, for non-Online-Retail files, the ``[columns]`` mapping.

    Returns
    -------
    table
        Arrow table with schema :data:`bundlewise.data.schemas.RAW_ORDER_LINES`.
    adapter
        ``"online_retail_ii"``, ``"online_retail_2011"`` or ``"generic"``.

    Raises
    ------
    DataValidationError
        Naming file, column, row and value: missing column, missing required value,
        unparseable number or date, fractional quantity, non-finite price.
    ConfigError
        Invalid config (e.g. an unknown encoding).
    """
    config = config or Config()
    source = load_source(path, config.input.encoding)
    mapping, adapter = resolve_mapping(source, config)
    fields = mapping.as_dict()
    present = set(source.table.column_names)
    for canonical in REQUIRED_FIELDS:
        column = fields.get(canonical)
        if column is None:
            raise ConfigError(
                f"{source.path}: the [columns] mapping has no entry for required field "
                f"`{canonical}`."
            )
        if column not in present:
            raise DataValidationError(
                source.path,
                f"missing column (needed for `{canonical}`); columns found: {sorted(present)}",
                column=column,
            )
    for canonical, column in fields.items():
        if column not in present:
            raise DataValidationError(
                source.path,
                f"missing column (mapped to `{canonical}`); columns found: {sorted(present)}",
                column=column,
            )

    table = source.table.append_column(
        "__row", pa.array(np.arange(1, source.table.num_rows + 1, dtype=np.int64))
    )
    types = {name: table.schema.field(name).type for name in table.column_names}
    con = _sql.connect()
    try:
        con.register("src", table)
        p = source.path
        for canonical in REQUIRED_FIELDS:
            column = fields[canonical]
            raise_first_bad(
                con,
                p,
                f"{_q(column)} IS NULL OR trim(CAST({_q(column)} AS VARCHAR)) = ''"
                # a NaN float id is missing (pandas' marker); NaN numbers are reported below
                + (
                    f" OR isnan({_q(column)})"
                    if canonical in ("order_id", "item_id") and pa.types.is_floating(types[column])
                    else ""
                ),
                column,
                f"missing value for required field `{canonical}`",
            )

        exprs: dict[str, str] = {}
        for canonical in ("order_id", "item_id", "customer_id", "title", "country"):
            column = fields.get(canonical)
            if column is None:
                exprs[canonical] = "CAST(NULL AS VARCHAR)"
            elif canonical == "title" or canonical == "country":
                exprs[canonical] = f"nullif(trim(CAST({_q(column)} AS VARCHAR)), '')"
            else:
                exprs[canonical] = id_sql(
                    column, types[column], strip_float_suffix=canonical == "customer_id"
                )

        for canonical in ("quantity", "unit_price", "unit_cost"):
            column = fields.get(canonical)
            if column is None:
                continue
            number = _number_sql(column, types[column])
            raise_first_bad(
                con,
                p,
                f"{_q(column)} IS NOT NULL AND ({number} IS NULL OR NOT isfinite({number}))",
                column,
                "not a finite number",
            )
            if canonical == "quantity":
                raise_first_bad(
                    con,
                    p,
                    f"{number} <> round({number})",
                    column,
                    "quantity is not a whole number",
                )
            exprs[canonical] = number

        ts_column = fields["ts"]
        exprs["ts"] = timestamp_sql(con, p, ts_column, types[ts_column], config.input.date_format)

        quantity_sql = f"CAST(round({exprs['quantity']}) AS BIGINT)"
        select = (
            f"SELECT {exprs['order_id']} AS order_id, {exprs['item_id']} AS item_id, "
            f"{exprs['title']} AS title, {quantity_sql} AS quantity, {exprs['ts']} AS ts, "
            f"{exprs['unit_price']} AS unit_price, {exprs['customer_id']} AS customer_id, "
            f"{exprs['country']} AS country, "
            f"{exprs.get('unit_cost', 'CAST(NULL AS DOUBLE)')} AS unit_cost, "
            "__row AS source_row FROM src ORDER BY __row"
        )
        result = con.sql(select).to_arrow_table()
    finally:
        con.close()

    currency = config.input.currency
    price = result.column("unit_price").to_numpy(zero_copy_only=False)
    cost_column = result.column("unit_cost")
    cost = cost_column.to_numpy(zero_copy_only=False).astype(np.float64)
    cost_minor = pa.array(array_to_minor_units(np.nan_to_num(cost), currency), mask=np.isnan(cost))
    out = pa.table(
        {
            "order_id": result.column("order_id"),
            "item_id": result.column("item_id"),
            "title": result.column("title"),
            "quantity": result.column("quantity"),
            "ts": result.column("ts").cast(pa.timestamp("us")),
            "unit_price_minor": pa.array(array_to_minor_units(price, currency)),
            "customer_id": result.column("customer_id"),
            "country": result.column("country"),
            "unit_cost_minor": cost_minor,
            "currency": pa.array([currency] * result.num_rows, pa.string()),
            "source_row": result.column("source_row"),
        },
        schema=RAW_ORDER_LINES,
    )
    logger.info("read %d order lines from %s (%s)", out.num_rows, path, adapter)
    return out, adapter


__all__ = [
    "DATE_FORMATS",
    "ONLINE_RETAIL_2011",
    "ONLINE_RETAIL_II",
    "SourceTable",
    "load_source",
    "read_orders",
    "id_sql",
    "raise_first_bad",
    "resolve_mapping",
    "timestamp_sql",
]
