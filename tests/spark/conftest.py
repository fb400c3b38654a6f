"""One local Spark session for all Spark tests (``local[2]``, few shuffle partitions)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def _why_no_spark() -> str:
    """Why Spark cannot run here ("" when it can)."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'bundlewise[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and os.path.isdir(java_home)):
        return "Java is not installed (the Spark engine needs Java 17)"
    return ""


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The session's SparkSession (skips the test when pyspark or Java is missing)."""
    why = _why_no_spark()
    if why:
        pytest.skip(why)
    from bundlewise.config import SparkConfig
    from bundlewise.spark.session import spark_session

    config = SparkConfig(
        master="local[2]", shuffle_partitions=4, conf=(("spark.ui.enabled", "false"),)
    )
    session = spark_session(config)
    yield session
    session.stop()
