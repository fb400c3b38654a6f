from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from bundlewise.data.workspace import DB_FILENAME, Workspace, file_sha256
from bundlewise.exceptions import DataValidationError, WorkspaceError

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
FIRST = [
    "1001,A1,Apple mug,2,2010-12-01 09:00:00,1.00,100,United Kingdom",
    "1001,K1,Bowl,1,2010-12-01 09:00:00,2.50,100,United Kingdom",
    "1002,A1,Apple mug,1,2010-12-02 10:00:00,1.00,200,France",
    "1003,A1,Apple mug,6,2010-12-02 11:00:00,0.85,200,France",
    "1003,POST,POSTAGE,1,2010-12-02 11:00:00,18.00,200,France",
    "C1004,K1,Bowl,-1,2010-12-03 12:00:00,2.50,100,United Kingdom",
    "1005,L1,Lamp,1,2010-12-03 12:00:00,12.00,,United Kingdom",
]
SECOND = [
    "2001,A1,Apple mug,3,2011-01-05 09:00:00,1.00,300,Germany",
    "2001,N1,New thing,1,2011-01-05 09:00:00,4.20,300,Germany",
]


def _orders(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _sorted(table: pa.Table, *keys: str) -> list[dict[str, object]]:
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


def _snapshot(ws: Workspace) -> dict[str, list[dict[str, object]]]:
    return {
        "order_lines": _sorted(ws.table("order_lines"), "source_id", "source_row"),
        "items": _sorted(ws.table("items"), "item_id"),
        "item_titles": _sorted(ws.table("item_titles"), "source_id", "item_id"),
        "ingests": _sorted(ws.table("ingests"), "source_id"),
        "catalog": _sorted(ws.table("catalog"), "item_id"),
    }


def test_ingest_twice_is_idempotent(tmp_path: Path) -> None:
    orders = _orders(tmp_path / "orders.csv", FIRST)
    ws = Workspace(tmp_path / "ws")
    first = ws.ingest(orders)
    assert (ws.path / DB_FILENAME).is_file()
    assert first.was_already_ingested is False
    assert first.adapter == "online_retail_ii"
    assert first.source_id == file_sha256(orders)[:16]
    # 7 read: postage, the return and the bowl it cancels are removed.
    assert (first.report.n_rows_read, first.report.n_rows_kept) == (7, 4)
    lines_1 = _sorted(ws.table("order_lines"), "source_row")
    items_1 = _sorted(ws.table("items"), "item_id")
    assert [r["source_row"] for r in lines_1] == [1, 3, 4, 7]
    assert {r["source_id"] for r in lines_1} == {first.source_id}
    assert first.n_items == len(items_1) == 2  # A1 and L1 (K1 was fully returned)
    apple = next(r for r in items_1 if r["item_id"] == "A1")
    assert apple["list_price_minor"] == 100  # the modal price, not the bulk-tier 0.85
    assert apple["title"] == "Apple mug"
    assert apple["unit_cost_minor"] is None

    second = ws.ingest(orders)
    assert second.was_already_ingested is True
    assert second.source_id == first.source_id
    assert _sorted(ws.table("order_lines"), "source_row") == lines_1
    assert _sorted(ws.table("items"), "item_id") == items_1
    assert ws.table("ingests").num_rows == 1
    assert ws.n_order_lines() == 4
    assert len(ws.cleaning_reports()) == 1


def test_ingesting_a_second_file_adds_its_rows(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    first = ws.ingest(_orders(tmp_path / "a.csv", FIRST))
    second = ws.ingest(_orders(tmp_path / "b.csv", SECOND))
    assert second.was_already_ingested is False
    assert second.source_id != first.source_id
    assert ws.n_order_lines() == 4 + 2
    per_source: dict[object, int] = {}
    for row in ws.table("order_lines").to_pylist():
        per_source[row["source_id"]] = per_source.get(row["source_id"], 0) + 1
    assert per_source == {first.source_id: 4, second.source_id: 2}
    assert sorted(r["item_id"] for r in ws.table("items").to_pylist()) == ["A1", "L1", "N1"]
    assert [r.n_rows_read for r in ws.cleaning_reports()] == [7, 2]
    # The same file under another name has the same bytes: still one source.
    again = ws.ingest(_orders(tmp_path / "copy_of_b.csv", SECOND))
    assert again.was_already_ingested is True
    assert ws.n_order_lines() == 6


def test_a_bad_file_leaves_the_workspace_unchanged(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.ingest(_orders(tmp_path / "good.csv", FIRST))
    before = _snapshot(ws)
    bad = _orders(tmp_path / "bad.csv", [*SECOND, "2002,A1,Apple mug,1,yesterday,1.00,300,DE"])
    with pytest.raises(DataValidationError, match=r"bad\.csv: row 3, column 'InvoiceDate'"):
        ws.ingest(bad)
    assert _snapshot(ws) == before
    bad_catalog = tmp_path / "catalog.csv"
    bad_catalog.write_text("item_id,list_price\nA1,1.20\n,3.00\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"row 2, column 'item_id': missing item id"):
        ws.ingest(_orders(tmp_path / "b.csv", SECOND), catalog_path=bad_catalog)
    assert _snapshot(ws) == before


def test_catalog_overrides_price_and_cost_and_adds_unsold_items(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "item_id,title,list_price,unit_cost\n"
        "A1,Apple mug (large),1.25,0.40\n"
        "L1,,,7.00\n"
        "Z9,Zebra lamp,30.00,11.50\n",
        encoding="utf-8",
    )
    ws = Workspace(tmp_path / "ws")
    result = ws.ingest(_orders(tmp_path / "orders.csv", FIRST), catalog_path=catalog)
    assert result.n_items == 3
    items = {r["item_id"]: r for r in ws.table("items").to_pylist()}
    assert sorted(items) == ["A1", "L1", "Z9"]
    assert (items["A1"]["list_price_minor"], items["A1"]["unit_cost_minor"]) == (125, 40)
    assert items["A1"]["title"] == "Apple mug (large)"
    # Empty catalog cells keep the derived values.
    assert (items["L1"]["list_price_minor"], items["L1"]["unit_cost_minor"]) == (1200, 700)
    assert items["L1"]["title"] == "Lamp"
    assert items["Z9"] == {
        "item_id": "Z9",
        "title": "Zebra lamp",
        "category": None,
        "list_price_minor": 3000,
        "unit_cost_minor": 1150,
        "currency": "GBP",
        "stock": None,
    }
    # The catalog stays in force when later files are ingested without one.
    ws.ingest(_orders(tmp_path / "b.csv", SECOND))
    items = {r["item_id"]: r for r in ws.table("items").to_pylist()}
    assert sorted(items) == ["A1", "L1", "N1", "Z9"]
    assert items["A1"]["list_price_minor"] == 125


def test_reading_a_missing_workspace_or_table(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "nothing_here")
    with pytest.raises(WorkspaceError, match="run `bundlewise ingest`"):
        ws.table("order_lines")
    assert not ws.path.exists()
    ws.ingest(_orders(tmp_path / "orders.csv", SECOND))
    with pytest.raises(KeyError, match="no table 'nope'"):
        ws.table("nope")
