"""Read an orders source on Spark into the canonical raw order lines, validating every value.

A source is a path (a Parquet file or directory, a Delta table directory, a CSV/TSV file or
directory, optionally gzipped) or a table of the session's catalog, written ``table:NAME``;
``parquet:``, ``delta:`` and ``csv:`` prefixes force a format. The ``[input]`` and ``[columns]``
settings are read as by the embedded reader (:func:`bundlewise.data.readers.read_orders`), and
the result has the same columns and values (:data:`~bundlewise.data.schemas.RAW_ORDER_LINES`),
so the cleaning and mining that follow give the same rows.

Validation raises the same one-line :class:`~bundlewise.exceptions.DataValidationError` naming
the source, the column, the 1-based row and the value. What the Spark reader cannot honour is
refused in one line, never guessed: numbers in text columns must use a decimal point and no
thousands separator (a decimal comma, or ``input.decimal_separator`` /
``input.thousands_separator``, needs the embedded engine), and ``input.date_format`` may use
only the directives of :data:`STRPTIME_TO_SPARK`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bundlewise.config import REQUIRED_FIELDS, Config
from bundlewise.data.readers import DATE_FORMATS, SourceTable, missing_message, resolve_mapping
from bundlewise.data.workspace import file_sha256
from bundlewise.exceptions import ConfigError, DataValidationError
from bundlewise.money import currency_exponent

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame, SparkSession

#: strptime directives the Spark reader translates to Spark datetime patterns (``%d`` is ``d``:
#: one or two digits, as strptime reads them).
STRPTIME_TO_SPARK: dict[str, str] = {
    "%Y": "yyyy",
    "%m": "M",
    "%d": "d",
    "%H": "H",
    "%M": "m",
    "%S": "s",
    "%f": "SSSSSS",
    "%%": "%",
}
#: Source kinds by prefix.
_PREFIXES = ("table", "parquet", "delta", "csv")
_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}
#: A plain decimal number (what Spark's cast would read more loosely: 1.5d, 0x10, Infinity).
_PLAIN_NUMBER = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$"
_ROW = "__row"


def spark_pattern(strptime_format: str) -> str:
    """A strptime format as a Spark datetime pattern.

    Raises
    ------
    ConfigError
        For a directive outside :data:`STRPTIME_TO_SPARK`.

    Examples
    --------
    >>> spark_pattern("%d/%m/%Y %H:%M")
    'd/M/yyyy H:m'
    >>> spark_pattern("%Y-%m-%dT%H:%M:%S")
    "yyyy-M-d'T'H:m:s"
    """
    out: list[str] = []
    i = 0
    while i < len(strptime_format):
        char = strptime_format[i]
        if char == "%":
            directive = strptime_format[i : i + 2]
            if directive not in STRPTIME_TO_SPARK:
                raise ConfigError(
                    f"`input.date_format`={strptime_format!r} uses {directive!r}, which the Spark "
                    f"engine does not read; it reads {', '.join(STRPTIME_TO_SPARK)} (or ingest "
                    "with the embedded engine)."
                )
            out.append(STRPTIME_TO_SPARK[directive])
            i += 2
            continue
        if char.isalpha():
            out.append(f"'{char}'")
        elif char == "'":
            out.append("''")
        else:
            out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class SparkSource:
    """An orders source loaded on Spark, before mapping.

    Attributes
    ----------
    name
        The source as the user wrote it (for messages and the ``ingests`` table).
    frame
        Its columns as read, plus ``__row``: the 1-based row of the source (file order; for a
        directory, files in path order).
    kind
        ``parquet``, ``delta``, ``csv`` or ``table``.
    sha256
        Identity of the bytes: a single local file's SHA-256 (the embedded engine's), otherwise
        a digest of the files read (path, size, modification time) or, for a table not backed by
        files, of its rows.
    nanosecond_columns
        Columns that hold Parquet nanosecond timestamps (Spark reads them as integers).
    """

    name: str
    frame: DataFrame
    kind: str
    sha256: str
    nanosecond_columns: frozenset[str] = frozenset()


def parse_source(source: str) -> tuple[str, str]:
    """``(kind, location)`` of a source string: ``table:NAME`` is ``("table", "NAME")``;
    ``parquet:``/``delta:``/``csv:`` force a format; a path's format comes from its name (or,
    for a local directory, from its files).

    Raises
    ------
    DataValidationError
        An empty table name, or a path whose format cannot be told.
    """
    for prefix in _PREFIXES:
        if source.startswith(prefix + ":") and not re.match(r"^[A-Za-z]:[\\/]", source):
            location = source[len(prefix) + 1 :]
            if not location:
                raise DataValidationError(source, f"no {prefix} named after '{prefix}:'")
            return prefix, location
    is_uri = re.match(r"^[a-z][a-z0-9+.-]*://", source) is not None and not source.startswith(
        "file://"
    )
    local = Path(source.removeprefix("file://"))
    name = local.name.lower()
    for gz in (".gz", ".gzip"):
        name = name.removesuffix(gz)
    suffix = Path(name).suffix
    if suffix in _CSV_SUFFIXES:
        return "csv", source
    if suffix in (".parquet", ".pq"):
        return "parquet", source
    if is_uri:
        return "parquet", source
    if not local.exists():
        raise DataValidationError(source, "no such file or directory")
    if local.is_dir():
        if (local / "_delta_log").is_dir():
            return "delta", source
        files = [p for p in local.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
        suffixes = {Path(p.name.lower().removesuffix(".gz")).suffix for p in files}
        if suffixes and suffixes <= set(_CSV_SUFFIXES):
            return "csv", source
        if suffixes and suffixes <= {".parquet", ".pq"} or not suffixes:
            return "parquet", source
        raise DataValidationError(
            source,
            f"a directory of mixed files {sorted(suffixes)}",
            hint="Give a directory of Parquet or CSV files, a Delta table, or prefix the path "
            "with parquet:, delta: or csv:",
        )
    raise DataValidationError(
        source,
        f"unsupported file type {suffix or '(none)'!r} for the Spark engine",
        hint="Use Parquet, Delta, .csv/.tsv (optionally .gz) or table:NAME",
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"\s*SQLSTATE: \w+\.?$", "", first)


def _nanosecond_columns(kind: str, location: str) -> frozenset[str]:
    """Columns of a local Parquet source stored as nanosecond timestamps (read from the footer
    of its first file; a remote source's footers are not read)."""
    if kind != "parquet":
        return frozenset()
    local = Path(location.removeprefix("file://"))
    if local.is_dir():
        files = sorted(p for p in local.rglob("*.parquet") if not p.name.startswith((".", "_")))
        if not files:
            return frozenset()
        local = files[0]
    if not local.is_file():
        return frozenset()
    import pyarrow.parquet as pq

    schema = pq.read_schema(local)
    return frozenset(
        f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"
    )


def load_source(spark: SparkSession, source: str, config: Config | None = None) -> SparkSource:
    """Load ``source`` as it is (CSV cells as text, typed formats keep their types), with a
    1-based ``__row`` in source order.

    Raises
    ------
    DataValidationError
        The source does not exist, cannot be read or is empty; naming it.
    """
    config = config or Config()
    kind, location = parse_source(source)
    reader = spark.read
    try:
        if kind == "table":
            frame = spark.table(location)
        elif kind == "delta":
            frame = reader.format("delta").load(location)
        elif kind == "csv":
            name = Path(location).name.lower().removesuffix(".gz").removesuffix(".gzip")
            frame = (
                reader.option("header", True)
                .option("inferSchema", False)
                .option("sep", _CSV_SUFFIXES.get(Path(name).suffix, ","))
                .option("encoding", config.input.encoding)
                .option("quote", '"')
                .option("escape", '"')
                .option("multiLine", True)
                .option("mode", "FAILFAST")
                .option("enforceSchema", False)
                .csv(location)
            )
        else:
            frame = reader.parquet(location)
    except Exception as exc:  # pyspark's AnalysisException and friends
        message = _first_line(exc)
        hint = None
        if kind == "delta" and ("delta" in message.lower() or "DATA_SOURCE_NOT_FOUND" in message):
            hint = (
                "Reading Delta needs the delta-spark package on the session (e.g. "
                '`conf = {"spark.jars.packages" = "io.delta:delta-spark_2.13:4.0.0"}` in [spark])'
            )
        raise DataValidationError(source, f"cannot read ({kind}): {message}", hint=hint) from None
    names = frame.columns
    if len(set(names)) != len(names):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        raise DataValidationError(source, f"duplicate column names {duplicates}")
    nanos = _nanosecond_columns(kind, location)
    frame, digest = _with_row_numbers(spark, frame, source, kind, location)
    return SparkSource(source, frame, kind, digest, nanos)


def _with_row_numbers(
    spark: SparkSession, frame: DataFrame, source: str, kind: str, location: str
) -> tuple[DataFrame, str]:
    """``frame`` with ``__row`` (1-based, in file path then file order), and the identity of
    the source.

    Rows of one file split are read in order and get consecutive
    ``monotonically_increasing_id`` values; each split's offset comes from the splits before it
    (ordered by file path and byte offset), counted in a first pass, so no global sort is
    needed."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    columns = [F.col(_q(c)) for c in frame.columns]
    try:
        tagged = frame.select(
            *columns,
            F.col("_metadata.file_path").alias("__file"),
            F.col("_metadata.file_block_start").alias("__block"),
            F.col("_metadata.file_size").alias("__size"),
            F.col("_metadata.file_modification_time").cast("string").alias("__mtime"),
            F.monotonically_increasing_id().alias("__id"),
        )
    except Exception:  # no file metadata (an in-memory table, a view): the scan's order
        ordered = frame.withColumn("__id", F.monotonically_increasing_id())
        numbered = ordered.withColumn(_ROW, F.row_number().over(Window.orderBy("__id"))).drop(
            "__id"
        )
        digest = _content_digest(numbered, frame.columns)
        return numbered, digest
    try:
        splits = (
            tagged.groupBy("__file", "__block", "__size", "__mtime")
            .agg(F.count(F.lit(1)).alias("n"), F.min("__id").alias("first_id"))
            .collect()
        )
    except Exception as exc:  # a corrupt or unreadable file
        raise DataValidationError(source, f"cannot read ({kind}): {_first_line(exc)}") from None
    if not splits:
        raise DataValidationError(source, "no rows")
    splits = sorted(splits, key=lambda r: (r["__file"], r["__block"]))
    offsets = []
    total = 0
    for row in splits:
        offsets.append((row["__file"], row["__block"], total - row["first_id"] + 1))
        total += row["n"]
    shift = spark.createDataFrame(offsets, "__file string, __block bigint, __shift bigint")
    numbered = (
        tagged.join(F.broadcast(shift), ["__file", "__block"])
        .withColumn(_ROW, F.col("__id") + F.col("__shift"))
        .select(*columns, F.col(_ROW))
    )
    files = sorted({(r["__file"], r["__size"], r["__mtime"]) for r in splits})
    local = Path(location.removeprefix("file://"))
    if kind != "table" and len(files) == 1 and local.is_file():
        digest = file_sha256(local)  # the embedded engine's identity of the same file
    else:
        digest = hashlib.sha256(json.dumps([kind, files]).encode()).hexdigest()
    return numbered, digest


def _content_digest(frame: DataFrame, columns: list[str]) -> str:
    """An order-independent digest of a table's rows (sum of row hashes, and the count)."""
    from pyspark.sql import functions as F

    row = frame.select(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.xxhash64(*[F.col(_q(c)) for c in columns]).cast("decimal(38,0)")).alias("h"),
    ).collect()[0]
    return hashlib.sha256(f"{row['n']}:{row['h']}:{columns}".encode()).hexdigest()


# --- SQL pieces (Spark dialect twins of bundlewise.data.readers') ----------------------------


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _text(c: str) -> str:
    return f"nullif(trim(CAST({c} AS STRING)), '')"


def _is_float(t: Any) -> bool:
    from pyspark.sql.types import DoubleType, FloatType

    return isinstance(t, DoubleType | FloatType)


def _is_number(t: Any) -> bool:
    from pyspark.sql.types import NumericType

    return isinstance(t, NumericType)


def _id_sql(c: str, t: Any, strip_float_suffix: bool = False) -> str:
    if _is_float(t):
        return (
            f"CASE WHEN isnan({c}) THEN NULL "
            f"WHEN {c} = floor({c}) AND abs({c}) < 1e18 "
            f"THEN CAST(CAST({c} AS BIGINT) AS STRING) "
            f"ELSE CAST({c} AS STRING) END"
        )
    text = _text(c)
    if strip_float_suffix:
        return f"regexp_replace({text}, '^(-?[0-9]+)[.]0+$', '$1')"
    return text


def _missing_sql(c: str, t: Any, is_id: bool) -> str:
    nan = f" OR isnan({c})" if is_id and _is_float(t) else ""
    return f"{_text(c)} IS NULL{nan}"


def _number_sql(c: str, t: Any) -> str:
    if _is_number(t):
        return f"CAST({c} AS DOUBLE)"
    text = f"trim(CAST({c} AS STRING))"
    return f"CASE WHEN {text} RLIKE '{_PLAIN_NUMBER}' THEN try_cast({text} AS DOUBLE) END"


def _minor_sql(number: str, currency: str) -> str:
    """Minor units exactly as :func:`bundlewise.money.array_to_minor_units` computes them:
    scaled, rounded to 6 decimals as numpy does (``rint(x * 1e6) / 1e6``), then half to even."""
    scale = float(10 ** currency_exponent(currency))
    return f"CAST(rint(rint(({number}) * {scale!r}D * 1000000D) / 1000000D) AS BIGINT)"


@dataclass(frozen=True)
class _Check:
    condition: str
    column: str
    column_sql: str
    problem: str
    hint: str | None = None


def _run_checks(spark: SparkSession, view: str, source: str, checks: list[_Check]) -> None:
    """Count every check's bad rows in one pass; raise for the first check with any, naming its
    first bad row, value and how many more."""
    if not checks:
        return
    counts = spark.sql(
        "SELECT " + ", ".join(f"count_if({c.condition})" for c in checks) + f" FROM {view}"
    ).collect()[0]
    for check, n_bad in zip(checks, counts, strict=True):
        if n_bad:
            first = spark.sql(
                f"SELECT {_ROW}, CAST({check.column_sql} AS STRING) AS v FROM {view} "
                f"WHERE {check.condition} ORDER BY {_ROW} LIMIT 1"
            ).collect()[0]
            raise DataValidationError(
                source,
                check.problem,
                column=check.column,
                row=int(first[0]),
                value=first[1],
                n_more=int(n_bad) - 1,
                hint=check.hint,
            )


def _timestamp_sql(
    spark: SparkSession,
    view: str,
    source: str,
    column: str,
    c: str,
    t: Any,
    config: Config,
    nanoseconds: bool,
) -> str:
    """SQL parsing ``column`` as TIMESTAMP_NTZ, choosing the format as the embedded reader does
    (``input.date_format``, else the :data:`DATE_FORMATS` entry that parses every value,
    restricted by ``input.day_first``; a column that reads both day- and month-first is an
    error)."""
    from pyspark.sql.types import DateType, IntegralType, TimestampNTZType, TimestampType

    if isinstance(t, TimestampType | TimestampNTZType | DateType):
        return f"CAST({c} AS TIMESTAMP_NTZ)"
    if isinstance(t, IntegralType):
        if nanoseconds:
            return f"CAST(timestamp_micros(div({c}, 1000)) AS TIMESTAMP_NTZ)"
        raise DataValidationError(
            source,
            "holds integers, not dates/times",
            column=column,
            hint="Store the timestamps as a timestamp type (a Parquet nanosecond timestamp of "
            "a remote source reads as an integer on Spark: write microseconds)",
        )
    text = _text(c)

    def parsed(fmt: str) -> str:
        pattern = spark_pattern(fmt).replace("\\", "\\\\").replace("'", "\\'")
        return f"CAST(try_to_timestamp({text}, '{pattern}') AS TIMESTAMP_NTZ)"

    if config.input.date_format is not None:
        fmt = config.input.date_format
        _run_checks(
            spark,
            view,
            source,
            [
                _Check(
                    f"{text} IS NOT NULL AND {parsed(fmt)} IS NULL",
                    column,
                    c,
                    f"cannot parse as a date/time with format {fmt!r}",
                    "Fix the value or set `input.date_format` in the config",
                )
            ],
        )
        return parsed(fmt)
    day_first = config.input.day_first
    allowed = [
        (f, order)
        for f, order in DATE_FORMATS
        if day_first is None or order == "iso" or (order == "dmy") == day_first
    ]
    counts = spark.sql(
        "SELECT "
        + ", ".join(f"count_if({text} IS NOT NULL AND {parsed(f)} IS NULL)" for f, _ in allowed)
        + f" FROM {view}"
    ).collect()[0]
    candidates = [fo for fo, n in zip(allowed, counts, strict=True) if n == 0]
    if not candidates:
        best = min(zip(allowed, counts, strict=True), key=lambda x: x[1])[0][0]
        everywhere = " AND ".join(f"{parsed(f)} IS NULL" for f, _ in allowed)
        hint = "Set `input.date_format` (strptime syntax) in the config"
        problem = "cannot parse as a date/time in any known format"
        if day_first is not None:
            problem += f" (`input.day_first` = {str(day_first).lower()})"
        _run_checks(
            spark,
            view,
            source,
            [_Check(f"{text} IS NOT NULL AND {everywhere}", column, c, problem, hint)],
        )
        _run_checks(
            spark,
            view,
            source,
            [
                _Check(
                    f"{text} IS NOT NULL AND {parsed(best)} IS NULL",
                    column,
                    c,
                    f"cannot parse as a date/time with format {best!r} (the column mixes formats)",
                    "Make the dates consistent or set `input.date_format` in the config",
                )
            ],
        )
    month_first = next((f for f, order in candidates if order == "mdy"), None)
    day_first_fmt = next((f for f, order in candidates if order == "dmy"), None)
    if month_first is not None and day_first_fmt is not None:
        a, b = parsed(month_first), parsed(day_first_fmt)
        _run_checks(
            spark,
            view,
            source,
            [
                _Check(
                    f"{text} IS NOT NULL AND {a} <> {b}",
                    column,
                    c,
                    "ambiguous date: every value reads both day-first and month-first",
                    "Set `input.day_first = true` or `input.day_first = false` in the config",
                )
            ],
        )
    return parsed(candidates[0][0])


def read_orders(
    spark: SparkSession, source: str | SparkSource, config: Config | None = None
) -> tuple[DataFrame, str]:
    """Read and validate an orders source on Spark into the canonical raw order lines.

    Returns
    -------
    frame
        Spark DataFrame with the columns of :data:`~bundlewise.data.schemas.RAW_ORDER_LINES`
        (``ts`` as TIMESTAMP_NTZ) and the same values as the embedded reader.
    adapter
        ``"online_retail_ii"``, ``"online_retail_2011"`` or ``"generic"``.

    Raises
    ------
    DataValidationError, ConfigError
        As :func:`bundlewise.data.readers.read_orders`, and for what Spark cannot read
        (see the module docstring).
    """
    from bundlewise.spark.mining import temp_views

    config = config or Config()
    loaded = source if isinstance(source, SparkSource) else load_source(spark, source, config)
    name = loaded.name
    frame = loaded.frame
    data_columns = [c for c in frame.columns if c != _ROW]
    shape = SourceTable(name, pa.table({c: pa.array([], pa.null()) for c in data_columns}), "")
    mapping, adapter = resolve_mapping(shape, config)
    fields = mapping.as_dict()
    by_day = config.input.order_id == "customer+day"
    required = list(REQUIRED_FIELDS)
    if by_day:
        if config.columns.order_id is not None:
            raise ConfigError(
                f'{name}: `input.order_id` = "customer+day" builds the order id from the '
                "customer and the day, but `columns.order_id` maps a column too; remove one."
            )
        fields.pop("order_id", None)
        required = [f for f in required if f != "order_id"] + ["customer_id"]
    present = set(data_columns)
    for canonical in required:
        column = fields.get(canonical)
        if column is None:
            raise ConfigError(
                f"{name}: the [columns] mapping has no entry for required field `{canonical}`"
                + (' (needed by `input.order_id` = "customer+day").' if by_day else ".")
            )
    for canonical, column in fields.items():
        if column not in present:
            raise DataValidationError(
                name,
                f"missing column (mapped to `{canonical}`); columns found: {sorted(present)}",
                column=column,
            )
    types = {f.name: f.dataType for f in frame.schema.fields}
    col = {canonical: _q(column) for canonical, column in fields.items()}
    numbers = [c for c in ("quantity", "unit_price", "unit_cost") if c in fields]
    text_numbers = [c for c in numbers if not _is_number(types[fields[c]])]
    inp = config.input
    if text_numbers and (inp.decimal_separator == "," or inp.thousands_separator not in (None, "")):
        setting = (
            f"`input.decimal_separator`={inp.decimal_separator!r}"
            if inp.decimal_separator == ","
            else f"`input.thousands_separator`={inp.thousands_separator!r}"
        )
        raise ConfigError(
            f"{name}: {setting}: the Spark engine reads text numbers with a decimal point and no "
            "thousands separator only; ingest this file with the embedded engine (the default)."
        )
    with temp_views(spark) as v:
        frame.createOrReplaceTempView(v["src"])
        # Missing values, then numbers: counted in one job, reported in this order.
        checks = [
            _Check(
                _missing_sql(
                    col[canonical],
                    types[fields[canonical]],
                    is_id=canonical in ("order_id", "item_id", "customer_id"),
                ),
                fields[canonical],
                col[canonical],
                missing_message(canonical),
            )
            for canonical in required
        ]
        exprs: dict[str, str] = {}
        for canonical in ("order_id", "item_id", "customer_id", "title", "country"):
            column_name = fields.get(canonical)
            if column_name is None:
                exprs[canonical] = "CAST(NULL AS STRING)"
            elif canonical in ("title", "country"):
                exprs[canonical] = _text(col[canonical])
            else:
                exprs[canonical] = _id_sql(
                    col[canonical],
                    types[column_name],
                    strip_float_suffix=canonical == "customer_id",
                )
        hint = (
            "The Spark engine reads text numbers with a decimal point and no thousands "
            "separator: ingest a file with other separators with the embedded engine"
        )
        for canonical in numbers:
            column_name = fields[canonical]
            number = _number_sql(col[canonical], types[column_name])
            exprs[canonical] = number
            checks.append(
                _Check(
                    f"{_text(col[canonical])} IS NOT NULL AND ({number} IS NULL "
                    f"OR isnan({number}) OR abs({number}) = double('Infinity'))",
                    column_name,
                    col[canonical],
                    "not a finite number",
                    hint if canonical in text_numbers else None,
                )
            )
        checks.append(
            _Check(
                f"{exprs['quantity']} <> round({exprs['quantity']})",
                fields["quantity"],
                col["quantity"],
                "quantity is not a whole number",
            )
        )
        try:
            _run_checks(spark, v["src"], name, checks)
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
        exprs["ts"] = _timestamp_sql(
            spark,
            v["src"],
            name,
            fields["ts"],
            col["ts"],
            types[fields["ts"]],
            config,
            fields["ts"] in loaded.nanosecond_columns,
        )
        if by_day:
            exprs["order_id"] = (
                f"concat(date_format({exprs['ts']}, 'yyyy-MM-dd'), '|', {exprs['customer_id']})"
            )
        currency = config.input.currency
        cost = exprs.get("unit_cost")
        cost_minor = (
            f"CASE WHEN {cost} IS NULL OR isnan({cost}) THEN NULL "
            f"ELSE {_minor_sql(cost, currency)} END"
            if cost is not None
            else "CAST(NULL AS BIGINT)"
        )
        raw = spark.sql(
            f"""
            SELECT {exprs["order_id"]} AS order_id, {exprs["item_id"]} AS item_id,
                   {exprs["title"]} AS title,
                   CAST(round({exprs["quantity"]}) AS BIGINT) AS quantity,
                   {exprs["ts"]} AS ts,
                   {_minor_sql(exprs["unit_price"], currency)} AS unit_price_minor,
                   {exprs["customer_id"]} AS customer_id, {exprs["country"]} AS country,
                   {cost_minor} AS unit_cost_minor,
                   '{currency}' AS currency, CAST({_ROW} AS BIGINT) AS source_row
            FROM {v["src"]}
            """
        )
    return raw, adapter


__all__ = [
    "STRPTIME_TO_SPARK",
    "SparkSource",
    "load_source",
    "parse_source",
    "read_orders",
    "spark_pattern",
]
