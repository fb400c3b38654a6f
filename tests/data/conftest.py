from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bundlewise.data.schemas import RAW_ORDER_LINES

II_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
R2011_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"

#: One raw order line of the tiny worlds:
#: (order_id, item_id, title, quantity, ts, unit_price_minor, customer_id).
RawRow = tuple[str, str, "str | None", int, datetime, int, "str | None"]


def raw_table(rows: Sequence[RawRow], currency: str = "GBP") -> pa.Table:
    """A RAW_ORDER_LINES table from tuples; source_row is the 1-based position."""
    return pa.table(
        {
            "order_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "title": [r[2] for r in rows],
            "quantity": [r[3] for r in rows],
            "ts": [r[4] for r in rows],
            "unit_price_minor": [r[5] for r in rows],
            "customer_id": [r[6] for r in rows],
            "country": ["United Kingdom"] * len(rows),
            "unit_cost_minor": pa.nulls(len(rows), pa.int64()),
            "currency": [currency] * len(rows),
            "source_row": list(range(1, len(rows) + 1)),
        },
        schema=RAW_ORDER_LINES,
    )


def write_text(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, pa.Array | list[object]]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture(scope="session")
def make_raw() -> Callable[..., pa.Table]:
    """:func:`raw_table` as a fixture (test modules do not import each other)."""
    return raw_table


@pytest.fixture
def ii_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write an Online Retail II CSV with the given data lines (header added)."""

    def make(*lines: str, name: str = "orders.csv") -> Path:
        return write_text(tmp_path / name, [II_HEADER, *lines])

    return make
