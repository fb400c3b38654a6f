"""One local Spark session for all Spark tests (``local[2]``, few shuffle partitions)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest

#: The settings of the engine's sessions (UTC time zone, Arrow, ANSI SQL), small for tests.
SETTINGS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.ansi.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


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
    from pyspark.sql import SparkSession

    # local workers run this interpreter (the one with bundlewise installed)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master("local[2]").appName("bundlewise-tests")
    for key, value in SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
