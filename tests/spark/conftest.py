"""One local Spark session for every Spark test (starting one costs ~10 s and ~0.7 GB).

Spark tests are marked ``spark`` and skipped, with the reason, only when pyspark or Java is
missing; CI installs both (``.ci/run``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bundlewise.config import Config, SparkConfig
from bundlewise.pipeline import bundled_dataset_path

#: Lines of the bundled dataset the engine comparisons use (its first orders, in file order).
SLICE_LINES = 6000
#: The test session: two cores, few shuffle partitions (small data).
TEST_SPARK = SparkConfig(master="local[2]", shuffle_partitions=2)


def _missing() -> str:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'bundlewise[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "Java is not installed (Spark needs Java 17)"
    return ""


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shared local session (skips the test when pyspark or Java is missing)."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from bundlewise.spark import spark_session

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    config = SparkConfig(
        master=TEST_SPARK.master,
        shuffle_partitions=TEST_SPARK.shuffle_partitions,
        conf=(
            ("spark.sql.warehouse.dir", str(warehouse)),
            ("spark.driver.memory", "1g"),
            ("spark.ui.enabled", "false"),
            ("spark.sql.adaptive.coalescePartitions.enabled", "true"),
        ),
    )
    session = spark_session(config)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine_config() -> Config:
    """The default config on the Spark engine with the test session's settings."""
    return dataclasses.replace(Config(), engine="spark", spark=TEST_SPARK)


@pytest.fixture(scope="session")
def retail_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first :data:`SLICE_LINES` lines of the bundled dataset as a Parquet file."""
    path = tmp_path_factory.mktemp("slice") / "online_retail_slice.parquet"
    pq.write_table(pq.read_table(bundled_dataset_path()).slice(0, SLICE_LINES), path)
    return path
