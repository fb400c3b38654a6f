"""The Spark engine (``engine = "spark"``; ``pip install 'bundlewise[spark]'`` and Java 17).

Ingestion, cleaning and pair mining run as Spark SQL jobs and give the same rows as the embedded
(DuckDB) engine; see :mod:`bundlewise.spark.train` for the whole training run. Importing this
package does not import pyspark: each function imports it when it runs.
"""

from __future__ import annotations

from bundlewise.spark.session import (
    INSTALL_HINT,
    SparkUnavailableError,
    require_pyspark,
    spark_session,
)

__all__ = ["INSTALL_HINT", "SparkUnavailableError", "require_pyspark", "spark_session"]
