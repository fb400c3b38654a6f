"""Shopper events: reading, validation and idempotent storage."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bundlewise.data import Workspace, read_events
from bundlewise.exceptions import DataValidationError

ORDERS = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "1,A,thing a,2,2010-01-01 10:00:00,1.50,17850,United Kingdom\n"
    "1,B,thing b,1,2010-01-01 10:00:00,2.00,17850,United Kingdom\n"
)


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_csv_with_aliases_and_normalizes_kind(tmp_path: Path) -> None:
    path = _csv(
        tmp_path / "ev.csv",
        "user_id,timestamp,sku,event\n"
        "u1,2010-01-02 10:00:00,A,View\n"
        "u1,2010-01-02 10:05:00,B, CART \n"
        "u2,2010-01-03 09:00:00,A,purchase\n",
    )
    events = read_events(path)
    assert events.column("kind").to_pylist() == ["view", "cart", "purchase"]
    assert events.column("customer_id").to_pylist() == ["u1", "u1", "u2"]
    assert events.column("ts")[1].as_py() == datetime(2010, 1, 2, 10, 5)


def test_parquet_float_customer_ids_become_integers(tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    pq.write_table(
        pa.table(
            {
                "Customer ID": [17850.0, 13085.0],
                "ts": [datetime(2010, 1, 1), datetime(2010, 1, 2)],
                "StockCode": ["A", "B"],
                "kind": ["view", "cart"],
            }
        ),
        path,
    )
    assert read_events(path).column("customer_id").to_pylist() == ["17850", "13085"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "customer_id,ts,item_id,kind\nu1,2010-01-02 10:00:00,A,view\n"
            "u1,2010-01-02 10:00:00,A,wishlist\n",
            r"row 2, column 'kind': unknown event kind.*'wishlist'",
        ),
        (
            "customer_id,ts,item_id\nu1,2010-01-02 10:00:00,A\n",
            r"missing column for `kind`",
        ),
        (
            "customer_id,ts,item_id,kind\nu1,2010-01-02 10:00:00,A,view\nu1,not a date,A,view\n",
            r"row 2, column 'ts': cannot parse as a date/time.*'not a date'",
        ),
        (
            "customer_id,ts,item_id,kind\n,2010-01-02 10:00:00,A,view\n",
            r"row 1, column 'customer_id': missing value",
        ),
    ],
)
def test_bad_events_name_file_column_row_value(tmp_path: Path, text: str, pattern: str) -> None:
    path = _csv(tmp_path / "bad.csv", text)
    with pytest.raises(DataValidationError, match=pattern) as info:
        read_events(path)
    assert str(info.value).startswith(str(path))


def test_workspace_stores_events_idempotently(tmp_path: Path) -> None:
    orders = _csv(tmp_path / "orders.csv", ORDERS)
    events = _csv(
        tmp_path / "ev.csv",
        "customer_id,ts,item_id,kind\n"
        "u1,2010-01-02 10:00:00,A,view\n"
        "u1,2010-01-02 10:01:00,B,cart\n",
    )
    workspace = Workspace(tmp_path / "ws")
    first = workspace.ingest(orders, events_path=events)
    assert first.n_events == 2
    workspace.ingest(orders, events_path=events)
    stored = workspace.table("events")
    assert stored.num_rows == 2
    assert sorted(stored.column("kind").to_pylist()) == ["cart", "view"]
