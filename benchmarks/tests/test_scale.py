"""The synthetic store of ``benchmarks/scale.py``: the asked shape, new ids, the bundled data's
basket sizes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from bundlewise.pipeline import bundled_dataset_path

scale = pytest.importorskip("scale")


def test_synthetic_store_has_the_asked_shape_and_the_bundled_baskets(tmp_path: Path) -> None:
    out = tmp_path / "store.parquet"
    facts = scale.build_store(out, n_lines=60_000, n_customers=2_100, n_items=6_000, seed=1)
    assert facts["copies"] >= 2
    con = duckdb.connect()
    row = con.execute(
        """SELECT count(*), count(DISTINCT "Customer ID"), count(DISTINCT StockCode),
                  count(DISTINCT Invoice), count(*) FILTER (WHERE "Customer ID" IS NULL)
           FROM read_parquet($p)""",
        {"p": str(out)},
    ).fetchone()
    assert row is not None
    lines, customers, items, orders, anonymous = row
    assert (lines, customers, items) == (facts["n_lines"], facts["n_customers"], facts["n_items"])
    assert lines == pytest.approx(60_000, rel=0.1)
    assert customers == pytest.approx(2_100, rel=0.05)
    assert items == pytest.approx(6_000, rel=0.15)
    assert anonymous == 0
    # new ids: every item is a copy of a bundled item
    assert con.execute(
        "SELECT count(*) FROM read_parquet($p) WHERE NOT regexp_matches(StockCode, '-[0-9]+$')",
        {"p": str(out)},
    ).fetchone() == (0,)
    source = con.execute(
        """SELECT count(*) / count(DISTINCT Invoice) FROM read_parquet($p)
           WHERE NOT starts_with(Invoice, 'C') AND Quantity > 0 AND Price > 0""",
        {"p": str(bundled_dataset_path())},
    ).fetchone()
    assert source is not None
    assert lines / orders == pytest.approx(source[0], rel=0.15)
