"""Pipeline: catalog items that never sold get bundle partners from their titles."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from bundlewise.data import Workspace
from bundlewise.pipeline import cold_start_bundles, ingest, last_train_result, train

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


class _StubEncoder:
    """Deterministic unit vectors from the title's length (no model loaded)."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:  # type: ignore[type-arg]
        self.calls += 1
        angle = np.array([len(t) for t in texts], dtype=np.float64)
        return np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)


def test_train_uses_an_injected_encoder(tmp_path: Path) -> None:
    from bundlewise.pipeline import bundled_dataset_path

    table = pq.read_table(bundled_dataset_path()).slice(0, 20_000)
    path = tmp_path / "slice.parquet"
    pq.write_table(table, path)
    workspace = Workspace(tmp_path / "ws")
    ingest(workspace, path)
    encoder = _StubEncoder()
    train(workspace, encoder=encoder)
    assert encoder.calls >= 1
    similarity = workspace.table("pair_text_similarity")
    assert similarity.num_rows > 0
    assert all(-1.0001 <= s <= 1.0001 for s in similarity.column("similarity").to_pylist())


def test_train_writes_the_configured_snapshot_buckets_under_a_small_memory_limit(
    tmp_path: Path,
) -> None:
    import json

    from bundlewise.config import config_from_dict
    from bundlewise.pipeline import bundled_dataset_path

    table = pq.read_table(bundled_dataset_path()).slice(0, 8_000)
    path = tmp_path / "slice.parquet"
    pq.write_table(table, path)
    config = config_from_dict(
        {"spark": {"offer_buckets": 3}, "resources": {"memory_limit": "200MB", "threads": 1}}
    )
    workspace = Workspace(tmp_path / "ws")
    ingest(workspace, path, config)
    result = train(workspace, config, encoder=_StubEncoder())
    (manifest,) = (tmp_path / "ws" / "snapshot").glob("*/manifest.json")
    facts = json.loads(manifest.read_text(encoding="utf-8"))
    assert facts["n_buckets"] == 3
    assert facts["model_version"] == result.model_version
    assert facts["n_customers"] == result.n_customers
    buckets = {p.name for p in (manifest.parent / "served_offers").iterdir()}
    assert buckets <= {"bucket=0", "bucket=1", "bucket=2"} and len(buckets) > 1


def test_train_runs_its_named_steps_and_reports_items_inside_them(tmp_path: Path) -> None:
    from bundlewise.pipeline import TRAIN_STEPS, bundled_dataset_path

    table = pq.read_table(bundled_dataset_path()).slice(0, 20_000)
    path = tmp_path / "slice.parquet"
    pq.write_table(table, path)
    workspace = Workspace(tmp_path / "ws")
    ingest(workspace, path)
    heard: list[tuple[str, int | None, int | None]] = []

    def progress(step: str, done: int | None = None, total: int | None = None) -> None:
        heard.append((step, done, total))

    result = train(workspace, progress=progress, encoder=_StubEncoder())
    names = [s.name for s in TRAIN_STEPS]
    started = [step for step, done, _ in heard if done is None]
    # every step either ran (announced, in order, and timed) or was skipped with its reason
    for name in names:
        assert (name in started) != (name in result.skipped_steps)
        assert (name in result.timings) == (name in started)
    ran = [s for s in started if s in names]
    assert ran == [n for n in names if n in ran]
    assert result.skipped_steps == {"cold start": "every catalog item has sold"}
    inside = [(done, total) for step, done, total in heard if step == "personalize" and done]
    assert len(inside) > 10  # customer by customer, not only at the start and the end
    assert inside[-1][0] == inside[-1][1]
    assert all(a[0] <= b[0] for a, b in zip(inside, inside[1:], strict=False))
    titles = [(d, t) for step, d, t in heard if step == "text similarity" and d is not None]
    assert titles and titles[-1][0] == titles[-1][1]
