"""Pipeline: catalog items that never sold get bundle partners from their titles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bundlewise.data import Workspace
from bundlewise.pipeline import cold_start_bundles, last_train_result, train

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def test_unsold_catalog_item_borrows_partners_of_its_text_neighbour(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    rows = []
    for k in range(8):  # the pink teacup is always bought with the cake stand
        day = f"2010-01-0{1 + k % 8}"
        rows.append(f"{k},TEA1,PINK REGENCY TEACUP,1,{day} 10:00:00,2.95,{100 + k},UK")
        rows.append(f"{k},CAKE,REGENCY CAKESTAND 3 TIER,1,2010-01-0{1 + k % 8} 10:00:00,12.75,"
                    f"{100 + k},UK")  # fmt: skip
        rows.append(f"{k + 100},BAG{k % 2},JUMBO BAG RED,1,2010-01-0{1 + k % 8} 11:00:00,1.95,"
                    f"{200 + k},UK")  # fmt: skip
    orders = tmp_path / "orders.csv"
    orders.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "item_id,title,list_price\nTEA2,GREEN REGENCY TEACUP,2.95\n", encoding="utf-8"
    )
    workspace = Workspace(tmp_path / "ws")
    workspace.ingest(orders, catalog_path=catalog)
    train(workspace)
    assert last_train_result(workspace).n_cold_start_items == 1
    partners = cold_start_bundles(workspace, "TEA2").to_pylist()
    assert partners, "the new teacup should get partners"
    assert partners[0]["partner_id"] == "CAKE"
    assert partners[0]["via_item_id"] == "TEA1"
    assert cold_start_bundles(workspace, "TEA1").num_rows == 0  # sold items are not cold
