from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bundlewise.data.cleaning import clean_order_lines
from bundlewise.data.readers import read_orders

REPO_ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL_II_2009 = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail_ii" / "online_retail_ii_2009_2010.parquet"
)
N_ROWS = 20_000


def test_first_rows_of_online_retail_ii(tmp_path: Path) -> None:
    if not ONLINE_RETAIL_II_2009.is_file():
        pytest.skip(f"real data not available at {ONLINE_RETAIL_II_2009}")
    head = pq.read_table(ONLINE_RETAIL_II_2009).slice(0, N_ROWS)
    path = tmp_path / "head.parquet"
    pq.write_table(head, path)

    raw, adapter = read_orders(path)
    assert adapter == "online_retail_ii"
    assert raw.num_rows == N_ROWS
    customers = raw.column("customer_id").drop_null()
    assert len(customers) > 0
    assert not pc.any(pc.ends_with(customers, ".0")).as_py()  # 13085.0 -> '13085'

    report = clean_order_lines(raw, source=str(path)).report
    assert report.n_rows_read == N_ROWS
    assert report.n_rows_read == report.n_rows_kept + report.n_rows_removed
    assert 0 < report.n_rows_kept < N_ROWS
    assert report.count("return_netted") > 0
    assert report.count("purchase_fully_returned") + report.count("purchase_partially_returned") > 0
    assert report.count("anonymous") > 0
    assert report.count("non_product") > 0  # POST and friends occur in the first invoices
