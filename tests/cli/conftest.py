"""Fixtures of the command-line tests: the small store of :mod:`cli_store`, ingested and trained."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_store import StubEncoder, write_small_store

from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pipeline import train


@pytest.fixture
def stub_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from bundlewise.models import text_encoder

    monkeypatch.setattr(text_encoder, "TextEncoder", StubEncoder)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_store(tmp_path_factory.mktemp("store") / "orders.csv")


@pytest.fixture(scope="module")
def small_trained(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with the small store ingested and trained (stub text encoder)."""
    from bundlewise.models import text_encoder

    workspace = Workspace(tmp_path_factory.mktemp("trained") / "ws")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_encoder, "TextEncoder", StubEncoder)
        workspace.ingest(small_store)
        train(workspace, Config())
    yield workspace.path
