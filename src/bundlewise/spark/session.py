"""The Spark session of the Spark engine, and the lazy import of pyspark.

pyspark is an optional dependency (``pip install 'bundlewise[spark]'``, plus Java 17): nothing in
bundlewise imports it before a Spark command runs, and a missing pyspark or Java is one error
line, not a stack trace.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from bundlewise.config import SparkConfig
from bundlewise.exceptions import BundlewiseError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import SparkSession

#: How to install what the Spark engine needs.
INSTALL_HINT = "pip install 'bundlewise[spark]' (and Java 17)"


class SparkUnavailableError(BundlewiseError, ImportError):
    """pyspark is not installed, or Spark cannot start (no Java, a master that cannot be
    reached)."""


def require_pyspark() -> Any:
    """The ``pyspark`` module; :class:`SparkUnavailableError` naming the extra if missing."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailableError(
            f"engine 'spark' needs pyspark, which is not installed: {INSTALL_HINT}."
        ) from None
    return pyspark


def session_settings(config: SparkConfig) -> dict[str, str]:
    """The Spark settings :func:`spark_session` applies (``config.conf`` last, so it wins)."""
    settings = {
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # ANSI SQL (Spark 4's default) on every cluster: an overflow or a bad cast is an error,
        # never a silent NULL.
        "spark.sql.ansi.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        # Parquet nanosecond timestamps (pandas' default) read as integers instead of failing;
        # the reader turns them back into timestamps (bundlewise.spark.io).
        "spark.sql.legacy.parquet.nanosAsLong": "true",
    }
    settings.update(dict(config.conf))
    return settings


def spark_session(config: SparkConfig | None = None) -> SparkSession:
    """A Spark session set up from ``config`` (the running one if there is one).

    Master and app name apply when the session starts; the SQL settings (shuffle partitions,
    UTC session time zone, ``config.conf``) are applied to the running session too, so a test's
    shared session follows each config. Logs are quieted to errors.

    Raises
    ------
    SparkUnavailableError
        pyspark is missing, or the JVM cannot start (no Java) or reach the master.
    """
    config = config or SparkConfig()
    require_pyspark()
    from pyspark.sql import SparkSession

    if config.master.startswith("local"):
        # Local workers must run this interpreter (the one with bundlewise installed).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = session_settings(config)
    active = SparkSession.getActiveSession()
    if active is None:
        builder = SparkSession.builder.master(config.master).appName(config.app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # pyspark raises its own types (PySparkRuntimeError...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SparkUnavailableError(
                f"Spark could not start with master {config.master!r}: {first} "
                f"(is Java 17 installed and JAVA_HOME set? {INSTALL_HINT})."
            ) from None
        session.sparkContext.setLogLevel("ERROR")
        return session
    for key, value in settings.items():
        if not active.conf.isModifiable(key):
            continue  # static settings of a running session stay as they were started
        active.conf.set(key, value)
    return active


__all__ = [
    "INSTALL_HINT",
    "SparkUnavailableError",
    "require_pyspark",
    "session_settings",
    "spark_session",
]
