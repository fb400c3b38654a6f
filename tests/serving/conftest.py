"""A trained workspace on a slice of the real data, and API keys, shared by the serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from served import ODD_CUSTOMER_IDS, Served

from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path, ingest, train
from bundlewise.serving.app import create_app
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.settings import ServeSettings


@pytest.fixture(scope="session")
def trained_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """December 2009 of the bundled Online Retail II data, ingested and trained (the three
    customers with the most lines renamed to ``ODD_CUSTOMER_IDS``)."""
    table = pq.read_table(bundled_dataset_path())
    mask = pc.less(table.column("InvoiceDate"), pa.scalar(datetime(2010, 1, 1), pa.timestamp("ns")))
    table = table.filter(mask)
    ids = pc.cast(table.column("Customer ID"), pa.int64())
    counts = pc.value_counts(pc.drop_null(ids)).to_pylist()
    busiest = [c["values"] for c in sorted(counts, key=lambda c: (-c["counts"], c["values"]))[:3]]
    renamed = [
        None if c is None else dict(zip(busiest, ODD_CUSTOMER_IDS, strict=True)).get(c, str(c))
        for c in ids.to_pylist()
    ]
    column = table.schema.get_field_index("Customer ID")
    table = table.set_column(column, "Customer ID", pa.array(renamed, pa.string()))
    root = tmp_path_factory.mktemp("served")
    path = root / "slice.parquet"
    pq.write_table(table, path)
    workspace = Workspace(root / "ws")
    config = Config()
    ingest(workspace, path, config)
    train(workspace, config)
    return workspace.path


@pytest.fixture()
def served(trained_workspace: Path, tmp_path: Path) -> Served:
    keys_file = tmp_path / "keys.json"
    store = KeyStore(keys_file)
    return Served(
        workspace=trained_workspace,
        keys_file=keys_file,
        read_key=store.create(("read",), "storefront"),
        admin_key=store.create(("read", "admin"), "ops"),
        feedback_url=f"sqlite:///{tmp_path / 'feedback.db'}",
    )


@pytest.fixture()
def client(served: Served) -> Iterator[TestClient]:
    settings = ServeSettings(
        workspace=served.workspace, feedback_url=served.feedback_url, keys_file=served.keys_file
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c
