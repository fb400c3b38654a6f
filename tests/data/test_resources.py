"""``[resources]``: DuckDB's memory limit, spill directory and threads reach every connection
of an ingest or a train, refuse a bad size in one line, and change no result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bundlewise.config import Config, ResourcesConfig, config_from_dict
from bundlewise.data import Workspace, _sql
from bundlewise.exceptions import ConfigError
from bundlewise.mining import PairMiner


def _settings() -> tuple[str, str, str]:
    con = _sql.connect()
    try:
        row = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory'), "
            "CAST(current_setting('threads') AS VARCHAR)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return row[0], row[1], row[2]


def test_limits_reach_every_connection_in_the_block_only(tmp_path: Path) -> None:
    outside = _settings()
    spill = tmp_path / "spill"
    with _sql.limits(ResourcesConfig("300MB", str(spill), 1)):
        limit, directory, threads = _settings()
        assert limit == "286.1 MiB"  # 300 MB as DuckDB writes it
        assert directory == str(spill)
        assert threads == "1"
    assert _settings() == outside
    # never DuckDB's default ".tmp" in the working directory
    assert _settings()[1] != ".tmp"


@pytest.mark.parametrize("value", ["4", "lots", "4 GB please", "-1GB"])
def test_a_bad_memory_limit_is_refused_in_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match=r"resources\.memory_limit.*e\.g\. \"4GB\"") as info:
        config_from_dict({"resources": {"memory_limit": value}})
    assert "\n" not in str(info.value)


def test_a_small_memory_limit_gives_the_same_pairs(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from bundlewise.pipeline import bundled_dataset_path

    raw = pq.read_table(bundled_dataset_path(), columns=["Invoice", "StockCode"]).slice(0, 60_000)
    lines = raw.rename_columns(["order_id", "item_id"])
    free = PairMiner().fit(lines).pairs_
    with _sql.limits(ResourcesConfig("64MB", str(tmp_path / "spill"), 1)):
        tight = PairMiner().fit(lines).pairs_
    assert tight.equals(free)


def test_resources_do_not_change_the_model_version(
    tmp_path: Path, ii_csv: Callable[..., Path]
) -> None:
    from bundlewise.pipeline import _model_version

    orders = ii_csv(
        "489434,85048,CHRISTMAS LIGHTS,12,2009-12-01 07:45:00,6.95,13085,United Kingdom",
        "489434,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085,United Kingdom",
    )
    workspace = Workspace(tmp_path / "ws")
    workspace.ingest(orders, Config())
    tight = config_from_dict({"resources": {"memory_limit": "256MB", "threads": 1}})
    assert _model_version(workspace, tight) == _model_version(workspace, Config())
