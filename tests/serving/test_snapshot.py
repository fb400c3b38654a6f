"""The partitioned served-offers snapshot: what ``train`` writes, that the server loads from it
exactly what the workspace tables serve, and that a fleet's bucket ranges cover each customer
once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient
from served import ODD_CUSTOMER_IDS, Served

from bundlewise.composer.explain import offers_by_customer, store_served_offers
from bundlewise.data import Workspace
from bundlewise.exceptions import WorkspaceError
from bundlewise.pricing.pricer import ANONYMOUS
from bundlewise.serving.app import create_app
from bundlewise.serving.buckets import BucketRange, bucket_of, duckdb_bucket_sql
from bundlewise.serving.model import Snapshot, load_snapshot
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.snapshot import MANIFEST, snapshot_path


def _version(workspace: Path) -> str:
    (directory,) = (workspace / "snapshot").iterdir()
    return directory.name


def _served(snapshot: Snapshot) -> dict[str, str]:
    return {c: snapshot.offers_column[i].as_py() for c, i in snapshot.customer_index.items()}


@pytest.fixture(scope="module")
def full(trained_workspace: Path) -> Snapshot:
    return load_snapshot(trained_workspace)


def test_train_writes_every_customer_into_its_bucket(trained_workspace: Path) -> None:
    version = _version(trained_workspace)
    directory = snapshot_path(trained_workspace, version)
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["model_version"] == version
    assert manifest["columns"] == ["customer_id", "offers_json", "model_version"]
    n = manifest["n_buckets"]
    rows = (
        ds.dataset(directory / "served_offers", format="parquet", partitioning="hive")
        .to_table()
        .to_pylist()
    )
    assert len(rows) == manifest["n_rows"] == manifest["n_customers"] + 1
    assert len({r["bucket"] for r in rows}) > 1
    for row in rows:
        assert row["bucket"] == bucket_of(row["customer_id"], n)
        assert row["model_version"] == version
    with duckdb.connect(str(trained_workspace / "bundlewise.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT customer_id, offers_json FROM served_offers").fetchall()
    assert sorted(stored) == sorted((r["customer_id"], r["offers_json"]) for r in rows)


def test_the_snapshot_serves_what_the_workspace_serves(
    trained_workspace: Path, full: Snapshot, tmp_path: Path
) -> None:
    copy = tmp_path / "ws"
    shutil.copytree(trained_workspace, copy)
    shutil.rmtree(copy / "snapshot")
    from_tables = load_snapshot(copy)
    assert (full.source, from_tables.source) == ("snapshot", "workspace")
    assert list(full.customer_index) == list(from_tables.customer_index)
    assert _served(full) == _served(from_tables)
    for customer in [*ODD_CUSTOMER_IDS, "nobody"]:
        assert full.offers_json(customer, 3) == from_tables.offers_json(customer, 3)


@pytest.mark.parametrize("split", [["0-4/16", "5/16", "6-15/16"], ["0/1"], ["0-2/7", "3-6/7"]])
def test_a_fleet_split_covers_each_customer_once(
    trained_workspace: Path, full: Snapshot, split: list[str], tmp_path: Path
) -> None:
    everyone = _served(full)
    without_snapshot = tmp_path / "ws"
    shutil.copytree(trained_workspace, without_snapshot, ignore=shutil.ignore_patterns("snapshot"))
    seen: list[str] = []
    for text in split:
        buckets = BucketRange.parse(text)
        if buckets.n_buckets == 16:  # the snapshot's count: read from its files
            part = load_snapshot(trained_workspace, buckets=buckets)
            assert part.source == "snapshot"
        else:  # any count: the workspace table, split at load
            part = load_snapshot(without_snapshot, buckets=buckets)
            assert part.source == "workspace"
        served = _served(part)
        assert served[ANONYMOUS] == everyone[ANONYMOUS]
        mine = [c for c in served if c != ANONYMOUS]
        assert all(buckets.serves(c) for c in mine)
        assert all(served[c] == everyone[c] for c in mine)
        assert all(part.serves(c) for c in mine)
        seen += mine
    assert sorted(seen) == sorted(c for c in everyone if c != ANONYMOUS)
    assert len(seen) == len(set(seen))


def test_a_bucket_count_the_snapshot_lacks_is_refused(trained_workspace: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"buckets 0-1/8: the snapshot in .* has 16 buckets"):
        load_snapshot(trained_workspace, buckets=BucketRange.parse("0-1/8"))


@pytest.mark.parametrize("n", [1, 7, 16, 4096])
def test_the_bucket_function_is_the_same_in_python_and_duckdb(full: Snapshot, n: int) -> None:
    ids = [*full.customer_index, *ODD_CUSTOMER_IDS, "", "Ωmega", "😀"]
    with duckdb.connect() as con:
        got = con.execute(
            f"SELECT c, {duckdb_bucket_sql('c', n)} FROM unnest($ids) AS t(c)", {"ids": ids}
        ).fetchall()
    assert got == [(c, bucket_of(c, n)) for c in ids]
    if n <= 16:  # every bucket is used
        assert len({b for _, b in got}) == n


@pytest.mark.parametrize(
    ("text", "message"),
    [("3", "expected K/N"), ("2-1/4", "0 <= I <= J < N"), ("4/4", "0 <= I <= J < N"),
     ("0/0", "N must be between"), ("a-b/c", "expected K/N")],
)  # fmt: skip
def test_bad_bucket_ranges_are_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BucketRange.parse(text)
    with pytest.raises(ValueError, match="buckets"):
        ServeSettings(workspace="ws", buckets=text)


def _client(served: Served, **settings: Any) -> TestClient:
    values: dict[str, Any] = {
        "workspace": served.workspace,
        "feedback_url": served.feedback_url,
        "keys_file": served.keys_file,
    } | settings
    return TestClient(create_app(ServeSettings(**values)), raise_server_exceptions=False)


def test_a_fleet_server_answers_its_customers_and_421_for_the_others(
    served: Served, full: Snapshot
) -> None:
    buckets = BucketRange.parse("0-7/16")
    customers = [c for c in full.customer_index if c != ANONYMOUS]
    ours = next(c for c in customers if buckets.serves(c))
    theirs = next(c for c in customers if not buckets.serves(c))
    stranger = next(f"new-{k}" for k in range(100) if buckets.serves(f"new-{k}"))
    key = {"X-API-Key": served.read_key}
    with _client(served) as whole, _client(served, buckets="0-7/16") as part:
        for customer in (ours, stranger):
            path = f"/v1/customers/{customer}/offers?n=3"
            answer = part.get(path, headers=key)
            assert answer.status_code == 200, answer.text
            assert answer.json() == whole.get(path, headers=key).json()
        assert (
            part.get(f"/v1/customers/{stranger}/offers", headers=key).json()["personalized"]
            is False
        )
        answer = part.get(f"/v1/customers/{theirs}/offers", headers=key)
        assert answer.status_code == 421, answer.text
        error = answer.json()["error"]
        assert error["code"] == "misdirected"
        bucket = bucket_of(theirs, 16)
        assert (
            f"is in bucket {bucket} of 16; this server answers buckets 0-7/16" in (error["message"])
        )


@pytest.mark.parametrize("per_chunk", [37, 1_000_000])
def test_served_offers_built_in_chunks_equal_one_query(
    trained_workspace: Path, tmp_path: Path, per_chunk: int
) -> None:
    copy = tmp_path / "ws"
    shutil.copytree(trained_workspace, copy, ignore=shutil.ignore_patterns("snapshot"))
    with Workspace(copy).connect() as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        similarity = (
            con.sql("SELECT * FROM pair_text_similarity").to_arrow_table()
            if "pair_text_similarity" in names
            else None
        )
        expected = offers_by_customer(con, similarity)
        store_served_offers(con, similarity, name="chunked", customers_per_chunk=per_chunk)
        got = con.sql("SELECT * FROM chunked").to_arrow_table()
    assert expected.num_rows > 2 * 37
    assert got.equals(expected)
