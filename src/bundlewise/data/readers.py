"""Read orders from CSV, TSV, Parquet or Excel into the canonical raw table, validating every value.

All raw-input validation happens here. A problem raises :class:`DataValidationError` naming the
file, the column, the 1-based data row and the value, plus how many other rows share it; nothing
is coerced silently and nothing is guessed: a date that reads both day-first and month-first, or
a comma that may be a decimal or a thousands separator, is an error until the config says which.
Cleaning (cancellations, duplicates, ...) is a separate, reported step
(:mod:`bundlewise.data.cleaning`).

CSV files are parsed by DuckDB's own reader (every column read as text, with explicit options);
Parquet by Arrow; ``.xlsx`` by openpyxl when it is installed (every sheet with data, which must
share one header: a workbook split by period is one table). Every value that comes from the
config or the file (formats, separators, paths) reaches SQL as a bound parameter; columns are
renamed to positional names (``c0``, ``c1``, ...) before any SQL sees them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bundlewise.config import REQUIRED_FIELDS, ColumnMapping, Config, InputConfig
from bundlewise.data import _sql
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

#: Timestamp formats tried when the config gives none, each with its day order: ``"iso"``
#: (year first, unambiguous), ``"mdy"`` (month first) or ``"dmy"`` (day first).
DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("%Y-%m-%d %H:%M:%S", "iso"),
    ("%Y-%m-%dT%H:%M:%S", "iso"),
    ("%Y-%m-%d %H:%M:%S.%f", "iso"),
    ("%Y-%m-%dT%H:%M:%S.%f", "iso"),
    ("%Y-%m-%d %H:%M", "iso"),
    ("%Y-%m-%d", "iso"),
    ("%Y/%m/%d %H:%M:%S", "iso"),
    ("%Y/%m/%d %H:%M", "iso"),
    ("%Y/%m/%d", "iso"),
    ("%m/%d/%Y %H:%M:%S", "mdy"),
    ("%m/%d/%Y %H:%M", "mdy"),
    ("%m/%d/%Y", "mdy"),
    ("%d/%m/%Y %H:%M:%S", "dmy"),
    ("%d/%m/%Y %H:%M", "dmy"),
    ("%d/%m/%Y", "dmy"),
    ("%m-%d-%Y %H:%M", "mdy"),
    ("%m-%d-%Y", "mdy"),
    ("%d-%m-%Y %H:%M", "dmy"),
    ("%d-%m-%Y", "dmy"),
    ("%d.%m.%Y %H:%M:%S", "dmy"),
    ("%d.%m.%Y %H:%M", "dmy"),
    ("%d.%m.%Y", "dmy"),
)

_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": ","}
_PARQUET_SUFFIXES = (".parquet", ".pq")
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_SUPPORTED = "Use .csv, .tsv (optionally .gz), .parquet or .xlsx"
#: Encodings DuckDB's CSV reader decodes itself; others are transcoded to UTF-8 first.
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "iso8859-1": "latin-1"}


@dataclass(frozen=True)
class SourceTable:
    """An input file loaded as text/typed columns, before mapping."""

    path: str
    table: pa.Table
    format_name: str


# --- bound parameters ---------------------------------------------------------------------------


class Params:
    """Values bound to a DuckDB statement as named parameters (``$p0``, ``$p1``, ...).

    SQL text only ever holds the placeholder; :meth:`of` picks the values one statement uses.

    Examples
    --------
    >>> p = Params()
    >>> p("%d/%m/%Y '%H")
    '$p0'
    >>> p.of("SELECT strptime(x, $p0)")
    {'p0': "%d/%m/%Y '%H"}
    """

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def __call__(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def of(self, sql: str) -> dict[str, object]:
        """The parameters that ``sql`` refers to."""
        used = set(re.findall(r"\$(p\d+)\b", sql))
        return {k: v for k, v in self.values.items() if k in used}


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Params) -> list[tuple[Any, ...]]:
    """Execute ``sql`` with the parameters it uses; all rows."""
    return con.execute(sql, params.of(sql)).fetchall()


def arrow(con: duckdb.DuckDBPyConnection, sql: str, params: Params) -> pa.Table:
    """Run a query with the parameters it uses; the result as an Arrow table."""
    return con.sql(sql, params=params.of(sql)).to_arrow_table()


# --- loading files ------------------------------------------------------------------------------


def _csv_kind(path: Path) -> tuple[str, str | None] | None:
    """(delimiter, compression) of a CSV-like file name, or None."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] == ".gz":
        compression = "gzip"
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _DELIMITERS:
        return _DELIMITERS[suffixes[-1]], compression
    return None


@contextmanager
def _open_bytes(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    if compression == "gzip":
        with gzip.open(path, "rb") as handle:
            yield handle  # type: ignore[misc]
    else:
        with open(path, "rb") as handle:
            yield handle


def _is_blank(path: Path, compression: str | None) -> bool:
    try:
        with _open_bytes(path, compression) as handle:
            while chunk := handle.read(1 << 16):
                if chunk.strip():
                    return False
    except (OSError, EOFError) as exc:
        raise DataValidationError(str(path), f"cannot read the file: {exc}") from None
    return True


def _diagnose_csv(path: Path, delimiter: str, compression: str | None, encoding: str) -> None:
    """Find the first undecodable byte or ragged row with a Python pass (only after an error)."""
    with _open_bytes(path, compression) as handle:
        data = handle.read()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.end]
        raise DataValidationError(
            str(path),
            f"cannot decode byte {bad!r} at offset {exc.start} (line {line}) as "
            f"{encoding.removesuffix('-sig')}",
            row=max(line - 1, 0) or None,
            value=bad.hex(),
            hint="The file is in another text encoding: set `input.encoding` in the config "
            "(e.g. 'latin-1' or 'cp1252')",
        ) from None
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, [])
    for row_number, fields in enumerate(reader, start=1):
        if fields and len(fields) != len(header):
            raise DataValidationError(
                str(path),
                f"expected {len(header)} fields, found {len(fields)}",
                row=row_number,
                value=delimiter.join(fields)[:120],
            )


def _header(path: Path, delimiter: str, compression: str | None, encoding: str) -> list[str]:
    with _open_bytes(path, compression) as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            header = next(csv.reader(text, delimiter=delimiter), None)
        except UnicodeDecodeError:
            _diagnose_csv(path, delimiter, compression, encoding)
            raise  # pragma: no cover - the diagnosis raises
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
    return names


def _transcode(path: Path, compression: str | None, encoding: str, target: Path) -> None:
    with _open_bytes(path, compression) as raw, open(target, "w", encoding="utf-8") as out:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        try:
            shutil.copyfileobj(text, out, 1 << 20)
        except UnicodeDecodeError:
            _diagnose_csv(path, ",", compression, encoding)
            raise  # pragma: no cover - the diagnosis raises


def _load_csv(path: Path, delimiter: str, compression: str | None, encoding: str) -> pa.Table:
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(
            f"{path}: unknown text encoding {encoding!r} in `input.encoding`; "
            "use a Python codec name such as 'utf-8' or 'latin-1'."
        ) from None
    if _is_blank(path, compression):
        raise DataValidationError(str(path), "the file is empty (no header, no rows)")
    python_encoding = "utf-8-sig" if codec.name == "utf-8" else codec.name
    names = _header(path, delimiter, compression, python_encoding)
    with tempfile.TemporaryDirectory(prefix="bundlewise-") as tmp:
        target, duck_compression, duck_encoding = path, compression, "utf-8"
        if codec.name in _DUCKDB_ENCODINGS:
            duck_encoding = _DUCKDB_ENCODINGS[codec.name]
        else:
            target, duck_compression = Path(tmp) / "utf8.csv", None
            _transcode(path, compression, codec.name, target)
        params = Params()
        sql = (
            f"SELECT * FROM read_csv({params(str(target))}, header = true, auto_detect = false, "
            f"delim = {params(delimiter)}, quote = {params(chr(34))}, escape = {params(chr(34))}, "
            f"columns = {params(dict.fromkeys(names, 'VARCHAR'))}, strict_mode = true, "
            f"null_padding = false, encoding = {params(duck_encoding)}, "
            f"compression = {params(duck_compression or 'none')})"
        )
        con = _sql.connect()
        try:
            table = arrow(con, sql, params)
        except duckdb.Error as exc:
            _diagnose_csv(path, delimiter, compression, python_encoding)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataValidationError(str(path), f"cannot parse as CSV: {first}") from None
        finally:
            con.close()
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
    _check_unique_names(path, table.column_names, "schema")
    return table


def _check_unique_names(path: Path, names: list[str], where: str) -> None:
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataValidationError(
            str(path), f"duplicate column name in the {where}", column=duplicates[0]
        )


def _excel_column(values: list[object]) -> pa.Array:
    """One worksheet column: timestamps, numbers or text, as the cells are."""
    present = [v for v in values if v is not None and v != ""]
    if present and all(isinstance(v, datetime | date) for v in present):
        return pa.array(
            [
                v
                if isinstance(v, datetime)
                else datetime(v.year, v.month, v.day)
                if isinstance(v, date)
                else None
                for v in values
            ],
            pa.timestamp("us"),
        )
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.array([v if v != "" else None for v in values], pa.float64())
    out: list[str | None] = []
    for v in values:
        if v is None or v == "":
            out.append(None)
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return pa.array(out, pa.string())


def _load_xlsx(path: Path) -> pa.Table:
    try:
        import openpyxl
    except ImportError:
        raise DataValidationError(
            str(path),
            "reading .xlsx needs the optional openpyxl package",
            hint="Install it (pip install 'bundlewise[xlsx]') or save the sheet as CSV UTF-8 "
            "and ingest that",
        ) from None
    if path.stat().st_size == 0:
        raise DataValidationError(str(path), "the file is empty (no header, no rows)")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors
        raise DataValidationError(
            str(path),
            f"not a readable .xlsx workbook ({type(exc).__name__})",
            hint="Open it in a spreadsheet program and save it as .xlsx or CSV UTF-8",
        ) from None
    try:
        sheets = [
            (sheet.title, _sheet_rows(sheet.iter_rows(values_only=True)))
            for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()
    # Every sheet with data is read: a workbook split by period (e.g. one sheet a year) holds
    # one table; sheets with different headers are refused, never silently left out.
    sheets = [(title, rows) for title, rows in sheets if rows]
    if not sheets:
        raise DataValidationError(str(path), "the file is empty (no header, no rows)")
    first_title, first_rows = sheets[0]
    names = _sheet_header(path, first_title, first_rows[0], several=len(sheets) > 1)
    body: list[list[Any]] = []
    for title, rows in sheets:
        header = _sheet_header(path, title, rows[0], several=len(sheets) > 1)
        if header != names:
            raise DataValidationError(
                str(path),
                f"sheet {title!r} has other columns than sheet {first_title!r} "
                f"({', '.join(header)} vs {', '.join(names)}); every sheet with data is read as "
                "one table",
                hint="Keep one table per workbook (delete or move the other sheets) or save the "
                "sheet you want as CSV UTF-8 and ingest that",
            )
        body.extend(rows[1:])
    if not body:
        raise DataValidationError(str(path), "the file is empty (a header but no data rows)")
    columns = {
        name: _excel_column([r[i] if i < len(r) else None for r in body])
        for i, name in enumerate(names)
    }
    return pa.table(columns)


def _sheet_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """A sheet's rows without the empty ones."""
    return [list(r) for r in rows if any(v is not None and v != "" for v in r)]


def _sheet_header(path: Path, title: str, header: list[Any], several: bool) -> list[str]:
    """A sheet's column names (trailing empty cells dropped), checked: named and unique."""
    while header and (header[-1] is None or str(header[-1]).strip() == ""):
        header = header[:-1]
    names = ["" if v is None else str(v).strip() for v in header]
    where = f" of sheet {title!r}" if several else ""
    for position, name in enumerate(names, start=1):
        if not name:
            raise DataValidationError(
                str(path), f"header column {position}{where} has no name", column="", value=name
            )
    _check_unique_names(path, names, "header")
    return names


def load_source(path: str | Path, encoding: str = "utf-8") -> SourceTable:
    """Load a CSV/TSV (optionally gzipped), Parquet or ``.xlsx`` file as it is.

    CSV cells stay strings; Parquet and Excel cells keep their types.

    Raises
    ------
    DataValidationError
        Missing or empty file, undecodable bytes, duplicate or empty header names, ragged rows,
        an unsupported file type.
    ConfigError
        Unknown encoding name.
    """
    path = Path(path)
    if path.is_dir():
        raise DataValidationError(str(path), "is a directory, not a file")
    if not path.is_file():
        raise DataValidationError(str(path), "no such file")
    kind = _csv_kind(path)
    if kind is not None:
        return SourceTable(str(path), _load_csv(path, kind[0], kind[1], encoding), "csv")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return SourceTable(str(path), _load_parquet(path), "parquet")
    if suffix in _EXCEL_SUFFIXES:
        return SourceTable(str(path), _load_xlsx(path), "xlsx")
    hint = _SUPPORTED
    if suffix in (".xls", ".ods", ".numbers"):
        hint = "Save the sheet as .xlsx or CSV UTF-8 and ingest that"
    raise DataValidationError(str(path), f"unsupported file type {suffix or '(none)'!r}", hint=hint)


def register_source(con: duckdb.DuckDBPyConnection, table: pa.Table) -> dict[str, str]:
    """Register ``table`` as ``src`` with positional column names and a 1-based ``__row``.

    Returns the SQL name (``c0``, ``c1``, ...) of each source column.
    """
    names = table.column_names
    sql_names = [f"c{i}" for i in range(len(names))]
    renamed = table.rename_columns(sql_names).append_column(
        "__row", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    )
    con.register("src", renamed)
    return dict(zip(names, sql_names, strict=True))


def resolve_mapping(source: SourceTable, config: Config) -> tuple[ColumnMapping, str]:
    """Pick the column mapping: Online Retail (either schema) or the config's ``[columns]``.

    On an Online Retail file, ``[columns]`` entries are added to (or replace) the Online Retail
    columns, so a ``unit_cost`` column mapped there is used, never ignored.

    Returns the mapping and the adapter name.
    """
    columns = set(source.table.column_names)
    fmt = config.input.format
    user = config.columns.as_dict()
    if fmt in ("auto", "online_retail"):
        for name, mapping in (
            ("online_retail_ii", ONLINE_RETAIL_II),
            ("online_retail_2011", ONLINE_RETAIL_2011),
        ):
            if set(mapping.as_dict().values()) - {mapping.order_id} <= columns and (
                mapping.order_id in columns or config.input.order_id == "customer+day"
            ):
                if user:
                    return ColumnMapping(**{**mapping.as_dict(), **user}), name
                return mapping, name
        missing_ii = sorted(set(ONLINE_RETAIL_II.as_dict().values()) - columns)
        missing_11 = sorted(set(ONLINE_RETAIL_2011.as_dict().values()) - columns)
        closest = min((missing_ii, missing_11), key=len)
        # In auto mode, a file with most Online Retail columns and no [columns] mapping is an
        # Online Retail export with a column missing: name that column.
        looks_like_online_retail = len(closest) <= len(ONLINE_RETAIL_II.as_dict()) // 2
        if fmt == "online_retail" or (looks_like_online_retail and not user):
            raise DataValidationError(
                source.path,
                f"not an Online Retail file: missing column(s) {closest}; "
                f"columns found: {sorted(columns)}",
                column=closest[0],
            )
    if not user:
        raise DataValidationError(
            source.path,
            f"columns {sorted(columns)} are not an Online Retail export and the config has no "
            "[columns] mapping",
            hint="Add a [columns] table mapping order_id, item_id, quantity, ts and unit_price "
            "to your column names",
        )
    return config.columns, "generic"


# --- validation helpers -------------------------------------------------------------------------


def _first_bad(
    con: duckdb.DuckDBPyConnection, condition: str, column_sql: str, params: Params
) -> tuple[int, object, int] | None:
    rows = run(
        con,
        f"SELECT __row, CAST({column_sql} AS VARCHAR), count(*) OVER () FROM src "
        f"WHERE {condition} ORDER BY __row LIMIT 1",
        params,
    )
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
    *,
    column_sql: str,
    params: Params | None = None,
) -> None:
    """Raise :class:`DataValidationError` for the first row of ``src`` where ``condition`` holds.

    ``column`` is the user's column name (for the message), ``column_sql`` its SQL name.
    """
    bad = _first_bad(con, condition, column_sql, params or Params())
    if bad is not None:
        row, value, count = bad
        raise DataValidationError(
            path, problem, column=column, row=row, value=value, n_more=count - 1, hint=hint
        )


@dataclass(frozen=True)
class Check:
    """One validation rule over ``src``: rows where ``condition`` holds are bad."""

    condition: str
    column: str
    column_sql: str
    problem: str
    hint: str | None = None


def missing_message(canonical: str) -> str:
    """The message of a required field's missing value (both engines' readers)."""
    why = ' (needed by `input.order_id` = "customer+day")' if canonical == "customer_id" else ""
    return f"missing value for required field `{canonical}`{why}"


def run_checks(
    con: duckdb.DuckDBPyConnection, path: str, checks: list[Check], params: Params
) -> None:
    """Count every check's bad rows in one pass; raise for the first check (in order) with any."""
    if not checks:
        return
    sql = (
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {c.condition})" for c in checks)
        + " FROM src"
    )
    counts = run(con, sql, params)[0]
    for check, n_bad in zip(checks, counts, strict=True):
        if n_bad:
            raise_first_bad(
                con,
                path,
                check.condition,
                check.column,
                check.problem,
                check.hint,
                column_sql=check.column_sql,
                params=params,
            )


def text_sql(column_sql: str) -> str:
    """A column as trimmed text, empty strings as NULL."""
    return f"nullif(trim(CAST({column_sql} AS VARCHAR)), '')"


def id_sql(column_sql: str, source_type: pa.DataType, strip_float_suffix: bool = False) -> str:
    """Identifiers as text; a float id such as 13085.0 (pandas' doing) becomes '13085'.

    A NaN float id is missing. With ``strip_float_suffix`` a text id such as ``'13085.0'`` (a
    float column written to CSV by pandas) also becomes ``'13085'``.
    """
    c = column_sql
    if pa.types.is_floating(source_type):
        return (
            f"CASE WHEN isnan({c}) THEN NULL "
            f"WHEN {c} = floor({c}) AND abs({c}) < 1e18 "
            f"THEN CAST(CAST({c} AS BIGINT) AS VARCHAR) "
            f"ELSE CAST({c} AS VARCHAR) END"
        )
    text = text_sql(c)
    if strip_float_suffix:
        return rf"regexp_replace({text}, '^(-?[0-9]+)\.0+$', '\1')"
    return text


def missing_sql(column_sql: str, source_type: pa.DataType, is_id: bool = True) -> str:
    """A missing value: NULL, blank text or, for an id, a NaN float (pandas' marker).

    A NaN number is not missing but "not a finite number", reported by the number checks.
    """
    nan = f" OR isnan({column_sql})" if is_id and pa.types.is_floating(source_type) else ""
    return f"{text_sql(column_sql)} IS NULL{nan}"


# --- numbers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberFormat:
    """Decimal and thousands separators of the numbers of one file (``thousands`` "" = none)."""

    decimal: str = "."
    thousands: str = ""


def detect_number_format(
    con: duckdb.DuckDBPyConnection,
    path: str,
    columns: dict[str, str],
    config: InputConfig,
) -> NumberFormat:
    """Decide the separators of the text number ``columns`` (user name -> SQL name).

    Settings win. Without a decimal separator, the data must prove it: a value with both
    separators (``1,299.50`` / ``1.299,50``) or with the same one twice (``1,299,000``). A comma
    with no such proof is ambiguous, and an error naming the first such value.
    """
    decimal, thousands = config.decimal_separator, config.thousands_separator
    if decimal is None and thousands in (",", "."):
        decimal = "." if thousands == "," else ","
    if decimal is not None:
        return NumberFormat(decimal, thousands or "")
    if not columns:
        return NumberFormat(".", thousands or "")
    any_comma = con.execute(
        "SELECT count(*) FROM src WHERE "
        + " OR ".join(f"contains(CAST({c} AS VARCHAR), ',')" for c in columns.values())
    ).fetchall()[0][0]
    if not any_comma:
        return NumberFormat(".", thousands or "")
    parts = []
    for sql_name in columns.values():
        t = f"trim(CAST({sql_name} AS VARCHAR))"
        parts.append(
            f"count(*) FILTER (WHERE regexp_matches({t}, ',.*[.]') "
            f"OR (regexp_matches({t}, ',.*,') AND NOT contains({t}, '.'))), "
            f"count(*) FILTER (WHERE regexp_matches({t}, '[.].*,') "
            f"OR (regexp_matches({t}, '[.].*[.]') AND NOT contains({t}, ','))), "
            f"min(__row) FILTER (WHERE contains({t}, ','))"
        )
    row = con.execute("SELECT " + ", ".join(parts) + " FROM src").fetchall()[0]
    dot_proof = sum(int(row[3 * i]) for i in range(len(columns)))
    comma_proof = sum(int(row[3 * i + 1]) for i in range(len(columns)))
    first_comma = [(row[3 * i + 2], name) for i, name in enumerate(columns)]
    with_comma = sorted((r, name) for r, name in first_comma if r is not None)
    if dot_proof and comma_proof:
        row_number, name = with_comma[0]
        value = _cell(con, columns[name], int(row_number))
        raise DataValidationError(
            path,
            "mixed number formats: some values use '.' and others ',' as the decimal separator",
            column=name,
            row=int(row_number),
            value=value,
            hint="Set `input.decimal_separator` and `input.thousands_separator` in the config",
        )
    if comma_proof:
        return NumberFormat(",", "." if thousands is None else thousands)
    if dot_proof:
        return NumberFormat(".", "," if thousands is None else thousands)
    if with_comma and thousands != ",":
        row_number, name = with_comma[0]
        value = _cell(con, columns[name], int(row_number))
        raise DataValidationError(
            path,
            "ambiguous number: the comma may be a decimal separator or a thousands separator",
            column=name,
            row=int(row_number),
            value=value,
            hint='Set `input.decimal_separator = ","` if it is a decimal comma, or '
            '`input.thousands_separator = ","` if it groups thousands',
        )
    return NumberFormat(".", thousands or "")


def _cell(con: duckdb.DuckDBPyConnection, column_sql: str, row: int) -> object:
    return con.execute(
        f"SELECT CAST({column_sql} AS VARCHAR) FROM src WHERE __row = ?", [row]
    ).fetchall()[0][0]


def number_sql(
    column_sql: str, source_type: pa.DataType, number_format: NumberFormat, params: Params
) -> str:
    """SQL for a number column as DOUBLE (NULL where the text is not a number)."""
    if (
        pa.types.is_integer(source_type)
        or pa.types.is_floating(source_type)
        or pa.types.is_decimal(source_type)
    ):
        return f"CAST({column_sql} AS DOUBLE)"
    text = f"trim(CAST({column_sql} AS VARCHAR))"
    if number_format == NumberFormat(".", ""):
        # DuckDB's cast also reads 1e3 and inf (then refused as not finite); not 1_000.
        return f"CASE WHEN NOT contains({text}, '_') THEN try_cast({text} AS DOUBLE) END"
    d = "[" + number_format.decimal + "]"
    integer = r"\d+"
    if number_format.thousands:
        integer = r"(?:\d+|\d{1,3}(?:[" + number_format.thousands + r"]\d{3})+)"
    pattern = rf"[+-]?(?:{integer}(?:{d}\d*)?|{d}\d+)"
    plain = text
    if number_format.thousands:
        plain = f"replace({plain}, {params(number_format.thousands)}, '')"
    plain = f"replace({plain}, {params(number_format.decimal)}, '.')"
    return (
        f"CASE WHEN regexp_full_match({text}, {params(pattern)}) "
        f"THEN try_cast({plain} AS DOUBLE) END"
    )


def number_hint(number_format: NumberFormat) -> str:
    """What the number checks assumed, for messages."""
    grouping = repr(number_format.thousands) if number_format.thousands else "none"
    return (
        f"Numbers are read with decimal separator {number_format.decimal!r} and thousands "
        f"separator {grouping}: set `input.decimal_separator` / `input.thousands_separator` "
        "if the file uses others"
    )


# --- dates --------------------------------------------------------------------------------------


def timestamp_sql(
    con: duckdb.DuckDBPyConnection,
    path: str,
    column: str,
    column_sql: str,
    source_type: pa.DataType,
    config: InputConfig,
    params: Params,
) -> str:
    """SQL that parses ``column`` of the registered table ``src`` as a TIMESTAMP.

    Text is parsed with ``config.date_format`` or, when ``None``, the format of
    :data:`DATE_FORMATS` that parses every value (restricted by ``config.day_first``).

    Raises
    ------
    DataValidationError
        Naming the first row that does not parse, or the first value that reads both day-first
        and month-first when nothing says which, its value and how many more rows fail.
    ConfigError
        ``date_format`` is not a valid format.
    """
    if pa.types.is_timestamp(source_type) or pa.types.is_date(source_type):
        return f"CAST({column_sql} AS TIMESTAMP)"
    text = text_sql(column_sql)
    if config.date_format is not None:
        fmt = params(config.date_format)
        try:
            run(con, f"SELECT try_strptime('', {fmt})", params)
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0].split("Error: ", 1)[-1]
            raise ConfigError(
                f"`input.date_format`={config.date_format!r} is not a valid strptime format: "
                f"{reason}."
            ) from None
        parsed = f"try_strptime({text}, {fmt})"
        raise_first_bad(
            con,
            path,
            f"{text} IS NOT NULL AND {parsed} IS NULL",
            column,
            f"cannot parse as a date/time with format {config.date_format!r}",
            hint="Fix the value or set `input.date_format` in the config",
            column_sql=column_sql,
            params=params,
        )
        return f"CAST({parsed} AS TIMESTAMP)"

    allowed = [
        (f, order)
        for f, order in DATE_FORMATS
        if config.day_first is None or order == "iso" or (order == "dmy") == config.day_first
    ]
    placeholders = [params(f) for f, _ in DATE_FORMATS]
    placeholder = dict(zip((f for f, _ in DATE_FORMATS), placeholders, strict=True))

    def failures(formats: list[str], where: str) -> dict[str, int]:
        counts = run(
            con,
            "SELECT "
            + ", ".join(
                f"count(*) FILTER (WHERE {text} IS NOT NULL AND "
                f"try_strptime({text}, {placeholder[f]}) IS NULL)"
                for f in formats
            )
            + f" FROM src {where}",
            params,
        )[0]
        return {f: int(n) for f, n in zip(formats, counts, strict=True)}

    # Formats that fail on a sample cannot fit the column: only the others are counted in full.
    names = [f for f, _ in DATE_FORMATS]
    on_sample = failures(names, "WHERE __row <= 5000")
    survivors = [f for f in names if on_sample[f] == 0]
    counts_by_format = failures(survivors or names, "")
    counts = [counts_by_format.get(f, on_sample[f] or 1) for f in names]
    fits = {f: counts_by_format.get(f, 1) == 0 for f in names}
    candidates = [(f, order) for f, order in allowed if fits[f]]
    if not candidates:
        everywhere = " AND ".join(
            f"try_strptime({text}, {placeholder[f]}) IS NULL" for f, _ in allowed
        )
        bad = _first_bad(con, f"{text} IS NOT NULL AND {everywhere}", column_sql, params)
        other_order = [f for f, order in DATE_FORMATS if fits[f] and (f, order) not in allowed]
        if other_order and bad is not None:
            first = "day-first" if config.day_first else "month-first"
            raise DataValidationError(
                path,
                f"cannot parse as a {first} date/time (`input.day_first` = "
                f"{str(config.day_first).lower()})",
                column=column,
                row=bad[0],
                value=bad[1],
                n_more=bad[2] - 1,
                hint=f"The column reads as {'month' if config.day_first else 'day'}-first: "
                f"set `input.day_first = {str(not config.day_first).lower()}`",
            )
        if bad is not None:
            raise DataValidationError(
                path,
                "cannot parse as a date/time in any known format",
                column=column,
                row=bad[0],
                value=bad[1],
                n_more=bad[2] - 1,
                hint="Set `input.date_format` (strptime syntax) in the config",
            )
        best = min(allowed, key=lambda fo: counts[DATE_FORMATS.index(fo)])[0]
        raise_first_bad(
            con,
            path,
            f"{text} IS NOT NULL AND try_strptime({text}, {placeholder[best]}) IS NULL",
            column,
            f"cannot parse as a date/time with format {best!r} (the column mixes formats)",
            hint="Make the dates consistent or set `input.date_format` in the config",
            column_sql=column_sql,
            params=params,
        )
    month_first = next((f for f, order in candidates if order == "mdy"), None)
    day_first = next((f for f, order in candidates if order == "dmy"), None)
    if month_first is not None and day_first is not None:
        a, b = placeholder[month_first], placeholder[day_first]
        bad = _first_bad(
            con,
            f"{text} IS NOT NULL AND try_strptime({text}, {a}) <> try_strptime({text}, {b})",
            column_sql,
            params,
        )
        if bad is not None:
            value = str(bad[1]).strip()
            as_m = datetime.strptime(value, month_first)
            as_d = datetime.strptime(value, day_first)
            raise DataValidationError(
                path,
                "ambiguous date: every value reads both day-first and month-first",
                column=column,
                row=bad[0],
                value=bad[1],
                hint=f"Set `input.day_first = true` ({value} is {as_d.day} {as_d:%B %Y}) or "
                f"`input.day_first = false` ({as_m.day} {as_m:%B %Y}) in the config",
            )
    fmt = candidates[0][0]
    return f"CAST(try_strptime({text}, {placeholder[fmt]}) AS TIMESTAMP)"


# --- orders -------------------------------------------------------------------------------------


def read_orders(path: str | Path, config: Config | None = None) -> tuple[pa.Table, str]:
    """Read and validate an orders file into the canonical raw order-lines table.

    Parameters
    ----------
    path
        CSV, TSV (optionally ``.gz``), Parquet or ``.xlsx`` file, one row per order line.
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
        unparseable number or date, ambiguous number or date, fractional quantity, non-finite
        price.
    ConfigError
        Invalid config (e.g. an unknown encoding, a mapping without a required field).
    """
    config = config or Config()
    source = load_source(path, config.input.encoding)
    mapping, adapter = resolve_mapping(source, config)
    fields = mapping.as_dict()
    by_day = config.input.order_id == "customer+day"
    required = list(REQUIRED_FIELDS)
    if by_day:
        if config.columns.order_id is not None:
            raise ConfigError(
                f'{source.path}: `input.order_id` = "customer+day" builds the order id from '
                "the customer and the day, but `columns.order_id` maps a column too; remove one."
            )
        fields.pop("order_id", None)
        required = [f for f in required if f != "order_id"] + ["customer_id"]
    present = set(source.table.column_names)
    for canonical in required:
        column = fields.get(canonical)
        if column is None:
            raise ConfigError(
                f"{source.path}: the [columns] mapping has no entry for required field "
                f"`{canonical}`"
                + (' (needed by `input.order_id` = "customer+day").' if by_day else ".")
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

    types = {name: source.table.schema.field(name).type for name in source.table.column_names}
    con = _sql.connect()
    params = Params()
    p = source.path
    try:
        sql_of = register_source(con, source.table)
        col = {canonical: sql_of[column] for canonical, column in fields.items()}
        run_checks(
            con,
            p,
            [
                Check(
                    missing_sql(
                        col[canonical],
                        types[fields[canonical]],
                        is_id=canonical in ("order_id", "item_id", "customer_id"),
                    ),
                    fields[canonical],
                    col[canonical],
                    missing_message(canonical),
                )
                for canonical in required
            ],
            params,
        )

        exprs: dict[str, str] = {}
        for canonical in ("order_id", "item_id", "customer_id", "title", "country"):
            column = fields.get(canonical)
            if column is None:
                exprs[canonical] = "CAST(NULL AS VARCHAR)"
            elif canonical in ("title", "country"):
                exprs[canonical] = text_sql(col[canonical])
            else:
                exprs[canonical] = id_sql(
                    col[canonical], types[column], strip_float_suffix=canonical == "customer_id"
                )

        numbers = [c for c in ("quantity", "unit_price", "unit_cost") if c in fields]
        text_numbers = {fields[c]: col[c] for c in numbers if pa.types.is_string(types[fields[c]])}
        number_format = detect_number_format(con, p, text_numbers, config.input)
        checks = []
        for canonical in numbers:
            column = fields[canonical]
            number = number_sql(col[canonical], types[column], number_format, params)
            exprs[canonical] = number
            hint = number_hint(number_format) if column in text_numbers else None
            checks.append(
                Check(
                    f"{text_sql(col[canonical])} IS NOT NULL AND ({number} IS NULL "
                    f"OR NOT isfinite({number}))",
                    column,
                    col[canonical],
                    "not a finite number",
                    hint,
                )
            )
        checks.append(
            Check(
                f"{exprs['quantity']} <> round({exprs['quantity']})",
                fields["quantity"],
                col["quantity"],
                "quantity is not a whole number",
            )
        )
        run_number_checks(con, p, checks, params)

        exprs["ts"] = timestamp_sql(
            con, p, fields["ts"], col["ts"], types[fields["ts"]], config.input, params
        )
        if by_day:
            exprs["order_id"] = (
                f"strftime({exprs['ts']}, '%Y-%m-%d') || '|' || {exprs['customer_id']}"
            )

        quantity_sql = f"CAST(round({exprs['quantity']}) AS BIGINT)"
        select = (
            f"SELECT {exprs['order_id']} AS order_id, {exprs['item_id']} AS item_id, "
            f"{exprs['title']} AS title, {quantity_sql} AS quantity, {exprs['ts']} AS ts, "
            f"{exprs['unit_price']} AS unit_price, {exprs['customer_id']} AS customer_id, "
            f"{exprs['country']} AS country, "
            f"{exprs.get('unit_cost', 'CAST(NULL AS DOUBLE)')} AS unit_cost, "
            "__row AS source_row FROM src ORDER BY __row"
        )
        result = arrow(con, select, params)
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


def run_number_checks(
    con: duckdb.DuckDBPyConnection, path: str, checks: list[Check], params: Params
) -> None:
    """Like :func:`run_checks`, but a separator hint only where the bad value has a separator."""
    try:
        run_checks(con, path, checks, params)
    except DataValidationError as exc:
        if exc.hint and not (isinstance(exc.value, str) and re.search(r"[.,' _]", exc.value)):
            raise DataValidationError(
                exc.path,
                exc.problem,
                column=exc.column,
                row=exc.row,
                value=exc.value,
                n_more=exc.n_more,
            ) from None
        raise


__all__ = [
    "DATE_FORMATS",
    "ONLINE_RETAIL_2011",
    "ONLINE_RETAIL_II",
    "Check",
    "NumberFormat",
    "Params",
    "SourceTable",
    "arrow",
    "detect_number_format",
    "number_hint",
    "id_sql",
    "load_source",
    "missing_sql",
    "number_sql",
    "raise_first_bad",
    "read_orders",
    "register_source",
    "resolve_mapping",
    "run",
    "run_checks",
    "text_sql",
    "timestamp_sql",
]
