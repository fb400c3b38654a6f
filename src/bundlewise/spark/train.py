"""``train`` on Spark (``engine = "spark"``): mining, candidate composition and pricing as Spark
jobs; the driver-side steps are the embedded ones.

The steps and their names are :data:`bundlewise.pipeline.TRAIN_STEPS`'; ``mine``,
``personalize`` and ``price`` run on Spark (:func:`bundlewise.spark.mining.mine_pairs`,
:func:`bundlewise.spark.compose.compose_candidates_spark`,
:func:`bundlewise.spark.price.price_offers_spark`), the price-response estimate, cold start,
text similarity and the store step (workspace tables, the Pricer, served offers and their
snapshot) are the embedded engine's code on the driver. The engines give the same offers with
the same offer ids (the model version leaves ``engine`` and ``[spark]`` out).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bundlewise import pipeline
from bundlewise.composer.explain import Encoder
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError
from bundlewise.pricing.pricer import ANONYMOUS
from bundlewise.spark.mining import SparkPairs, mine_pairs
from bundlewise.spark.session import spark_session


def _job(module: str, name: str) -> Any:
    """``name`` of the Spark composition/pricing module ``module`` (imported when the step runs,
    as pyspark is)."""
    return getattr(importlib.import_module(f"bundlewise.spark.{module}"), name)


if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame, SparkSession


@dataclass
class SparkTrainRun(pipeline._TrainRun):
    """The shared state of a Spark ``train``: the embedded run's plus the session, the order
    lines as a Spark DataFrame and the Spark-side results still cached."""

    spark: SparkSession | None = None
    frame: DataFrame | None = None
    pairs: SparkPairs | None = None
    candidates_frame: DataFrame | None = None
    cached: list[Any] = dataclasses.field(default_factory=list)


def _spark_run(run: pipeline._TrainRun) -> SparkTrainRun:
    assert isinstance(run, SparkTrainRun) and run.spark is not None and run.frame is not None
    return run


def _step_mine(run: pipeline._TrainRun) -> None:
    """Co-purchase pair statistics (Spark SQL self-joins)."""
    srun = _spark_run(run)
    assert srun.spark is not None and srun.frame is not None
    srun.pairs = mine_pairs(srun.spark, srun.frame, srun.config.mining)
    srun.cached.append(srun.pairs)
    srun.miner = srun.pairs.to_miner()


def _step_personalize(run: pipeline._TrainRun) -> None:
    """Candidate bundles per customer partition (the beam composer's block search)."""
    compose_candidates_spark = _job("compose", "compose_candidates_spark")
    srun = _spark_run(run)
    assert srun.spark is not None and srun.frame is not None and srun.miner is not None
    config = srun.config
    # Ranking by expected profit picks the best of twice as many candidates per customer, as
    # the embedded step does.
    composer = (
        dataclasses.replace(config.composer, n_offers=2 * config.composer.n_offers)
        if config.pricing.rank_by == "expected_profit"
        else config.composer
    )
    srun.candidates_frame = compose_candidates_spark(
        srun.spark,
        srun.frame,
        srun.miner.pairs_,
        composer,
        customer_ids=[ANONYMOUS],
        n_partitions=config.spark.customer_partitions or None,
    )


def _step_price(run: pipeline._TrainRun) -> None:
    """Every candidate priced by the one Pricer (built on the driver, broadcast)."""
    price_offers_spark = _job("price", "price_offers_spark")
    weekly_units_spark = _job("price", "weekly_units_spark")
    srun = _spark_run(run)
    assert srun.spark is not None and srun.frame is not None
    assert srun.candidates_frame is not None
    priced = price_offers_spark(
        srun.spark,
        srun.candidates_frame,
        srun.items,
        srun.config,
        model_version=srun.version,
        response=srun.response,
        keep=srun.config.composer.n_offers,
        weekly_units=weekly_units_spark(srun.frame),
        n_partitions=srun.config.spark.customer_partitions or None,
    )
    srun.cached.append(priced)
    srun.priced = priced.to_priced_offers()
    srun.candidates_frame = None


def _steps() -> tuple[pipeline.TrainStep, ...]:
    """:data:`bundlewise.pipeline.TRAIN_STEPS` with the Spark steps in place."""
    on_spark = {"mine": _step_mine, "personalize": _step_personalize, "price": _step_price}
    return tuple(
        step._replace(run=on_spark[step.name]) if step.name in on_spark else step
        for step in pipeline.TRAIN_STEPS
    )


def train(
    workspace: Workspace,
    config: Config,
    progress: pipeline.Progress = pipeline._noop,
    encoder: Encoder | None = None,
    spark: SparkSession | None = None,
) -> pipeline.TrainResult:
    """:func:`bundlewise.pipeline.train` with mining, composition and pricing on Spark.

    Writes the same workspace tables as the embedded ``train`` (``pair_stats``, ``partners``,
    ``offers``, ``not_offered``, the Pricer's tables, ``served_offers``...) with the same rows.

    Raises
    ------
    ConfigError
        ``composer.method`` is not ``"beam"`` (the Spark composer is the beam search).
    WorkspaceError
        If nothing has been ingested.
    SparkUnavailableError
        pyspark or Java is missing.
    """
    if config.composer.method != "beam":
        raise ConfigError(
            f"`composer.method`={config.composer.method!r}: the Spark engine composes with "
            "'beam' only; set composer.method = 'beam' or use engine = 'duckdb'."
        )
    run = pipeline.new_train_run(workspace, config, progress, encoder, run_type=SparkTrainRun)
    assert isinstance(run, SparkTrainRun)
    run.spark = spark or spark_session(config.spark)
    from pyspark import StorageLevel

    run.frame = (
        run.spark.createDataFrame(run.lines)
        .repartition(config.spark.shuffle_partitions)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        return pipeline.run_train(run, _steps())
    finally:
        for cached in run.cached:
            cached.unpersist()
        run.frame.unpersist()


__all__ = ["SparkTrainRun", "train"]
