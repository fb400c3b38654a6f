from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bundlewise.config import Config, InputConfig
from bundlewise.data.catalog import derive_items, read_catalog
from bundlewise.data.schemas import ITEMS, ORDER_LINES
from bundlewise.exceptions import DataValidationError


def _lines(rows: list[tuple[str, int]]) -> pa.Table:
    """Clean order lines with (item_id, unit_price_minor)."""
    n = len(rows)
    return pa.table(
        {
            "order_id": [str(i) for i in range(n)],
            "customer_id": ["c"] * n,
            "ts": [datetime(2010, 12, 1)] * n,
            "item_id": [r[0] for r in rows],
            "quantity": [1] * n,
            "unit_price_minor": [r[1] for r in rows],
            "currency": ["GBP"] * n,
            "country": [None] * n,
            "source_row": list(range(1, n + 1)),
        },
        schema=ORDER_LINES,
    )


def test_derive_items_uses_the_modal_price_with_ties_to_the_higher() -> None:
    lines = _lines(
        [("A", 100), ("A", 85), ("A", 100), ("A", 85), ("A", 85), ("T", 300), ("T", 250)]
    )
    titles = pa.table({"item_id": ["A"], "title": ["Apple"]})
    items = derive_items(lines, titles, currency="EUR")
    assert items.schema == ITEMS
    assert items.to_pylist() == [
        {
            "item_id": "A",
            "title": "Apple",
            "category": None,
            "list_price_minor": 85,
            "unit_cost_minor": None,
            "currency": "EUR",
            "stock": None,
        },
        {
            "item_id": "T",
            "title": "T",
            "category": None,
            "list_price_minor": 300,
            "unit_cost_minor": None,
            "currency": "EUR",
            "stock": None,
        },
    ]


def test_read_catalog_with_alias_columns(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "sku,name,category,price,cost,inventory,ignored\n"
        " A ,Apple,kitchen,1.25,0.4,10,x\n"
        "B,,,,,,y\n",
        encoding="utf-8",
    )
    table = read_catalog(path)
    assert table.schema == ITEMS
    assert table.to_pylist() == [
        {
            "item_id": "A",
            "title": "Apple",
            "category": "kitchen",
            "list_price_minor": 125,
            "unit_cost_minor": 40,
            "currency": "GBP",
            "stock": 10,
        },
        {
            "item_id": "B",
            "title": None,
            "category": None,
            "list_price_minor": None,
            "unit_cost_minor": None,
            "currency": "GBP",
            "stock": None,
        },
    ]


def test_read_catalog_parquet_in_yen(tmp_path: Path) -> None:
    path = tmp_path / "catalog.parquet"
    pq.write_table(
        pa.table({"StockCode": ["85123A"], "Description": ["Heart"], "Price": [1200.0]}), path
    )
    table = read_catalog(path, Config(input=InputConfig(currency="JPY")))
    row = table.to_pylist()[0]
    assert (row["item_id"], row["title"], row["list_price_minor"]) == ("85123A", "Heart", 1200)
    assert row["currency"] == "JPY"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("title,price\nApple,1.00\n", r"column 'item_id': missing column for the item id"),
        (
            "item_id,price\nA,1.00\nB,2.00\nA,3.00\n",
            r"row 1, column 'item_id': duplicate item id \(value 'A'\)",
        ),
        (
            "item_id,price\nA,1.00\n A ,3.00\n",
            r"row 1, column 'item_id': duplicate item id \(value 'A'\)",
        ),
        (
            "item_id,price\nA,1.00\n,3.00\n  ,4.00\n",
            r"row 2, column 'item_id': missing item id \(value None\); 1 more row",
        ),
        (
            "item_id,price,cost\nA,1.00,-0.5\nB,2.00,0.1\n",
            r"row 1, column 'cost': not a non-negative number \(value '-0\.5'\)",
        ),
        (
            "item_id,price\nA,1.00\nB,cheap\nC,free\n",
            r"row 2, column 'price': not a non-negative number \(value 'cheap'\); 1 more row",
        ),
    ],
    ids=[
        "no-id-column",
        "duplicate-id",
        "duplicate-after-trim",
        "missing-id",
        "negative-cost",
        "non-numeric-price",
    ],
)
def test_bad_catalogs(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataValidationError, match=pattern) as info:
        read_catalog(path)
    assert str(info.value).startswith(f"{path}: ")
