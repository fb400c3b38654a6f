"""Candidate composition and batch pricing on Spark give the embedded engine's rows: the same
candidates as compose_beam_candidates, the same offers, not-offered rows and pricer as
price_offers, on a slice of the bundled data spread over several customer partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bundlewise.composer.beam import CANDIDATE_SCHEMA, compose_beam_candidates
from bundlewise.composer.offers import price_offers, weekly_units
from bundlewise.config import ComposerConfig, Config, PricingConfig
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError
from bundlewise.mining import PairMiner
from bundlewise.pipeline import bundled_dataset_path, ingest
from bundlewise.pricing.estimation import estimate_price_response
from bundlewise.pricing.pricer import ANONYMOUS

pytestmark = pytest.mark.spark

#: Customer partitions of the Spark jobs (more than one, so partitioning is exercised).
N_PARTITIONS = 3
COMPOSER = ComposerConfig(n_offers=10)


class World:
    """The slice: clean lines (Arrow and, read back by Spark, a DataFrame), items, pairs."""

    def __init__(self, spark: Any, tmp: Path) -> None:
        path = tmp / "slice.parquet"
        pq.write_table(pq.read_table(bundled_dataset_path()).slice(0, 10_000), path)
        workspace = Workspace(tmp / "ws")
        ingest(workspace, path)
        self.lines = workspace.table("order_lines")
        items = workspace.table("items")
        # some items unknown to the catalog (their bundles are not offered), some overstocked
        keep = pa.array([k % 9 != 0 for k in range(items.num_rows)])
        items = items.filter(keep)
        stock = [1000 if k % 4 == 0 else None for k in range(items.num_rows)]
        self.items = items.append_column("stock", pa.array(stock, pa.int64()))
        self.pairs = PairMiner.from_config(Config().mining).fit(self.lines).pairs_
        pq.write_table(self.lines, tmp / "lines.parquet")
        self.lines_df = spark.read.parquet(str(tmp / "lines.parquet"))
        customers = self.lines.column("customer_id").drop_null()
        #: extra customers: one with lines, one without, the anonymous one
        self.extra = [str(customers[0]), "ghost", ANONYMOUS]
        self.candidates = compose_beam_candidates(self.lines, self.pairs, COMPOSER, self.extra)


@pytest.fixture(scope="module")
def world(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(spark, tmp_path_factory.mktemp("spark_slice"))


@pytest.fixture(scope="module")
def candidates(spark: Any, world: World) -> Any:
    """The Spark candidates (cached: the pricing test reuses them)."""
    from bundlewise.spark.compose import compose_candidates_spark

    frame = compose_candidates_spark(
        spark, world.lines_df, world.pairs, COMPOSER, world.extra, n_partitions=N_PARTITIONS
    )
    return frame.persist()


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("customer_id", "ascending"), ("offer_rank", "ascending")])


def test_spark_candidates_are_the_embedded_ones(spark: Any, world: World, candidates: Any) -> None:
    from pyspark.sql import functions as F

    from bundlewise.spark.compose import canonical, customer_partition

    expected = world.candidates
    got = _sorted(canonical(candidates.toArrow(), CANDIDATE_SCHEMA))
    assert got.schema == expected.schema
    assert got.num_rows == expected.num_rows > 0
    # bit for bit, scores included
    assert got.equals(expected)
    sources = set(got.column("source").to_pylist())
    assert sources == {"history", "popular"}
    assert set(world.extra) <= set(got.column("customer_id").to_pylist())
    # the customers were spread over every partition
    parts = world.lines_df.select(
        customer_partition(F.col("customer_id"), N_PARTITIONS).alias("p")
    ).distinct()
    assert parts.count() == N_PARTITIONS


def test_spark_offers_are_the_embedded_ones(spark: Any, world: World, candidates: Any) -> None:
    from bundlewise.spark.price import price_offers_spark, weekly_units_spark

    config = Config(pricing=PricingConfig(discount_budget=50.0))
    response = estimate_price_response(world.lines)
    # lines as Spark TIMESTAMP (UTC session time zone) here, TIMESTAMP_NTZ from the Parquet file
    units = weekly_units_spark(spark.createDataFrame(world.lines))
    assert units == weekly_units(world.lines)
    expected = price_offers(
        world.candidates, world.items, config, "v-test", response, keep=5, weekly_units=units
    )
    priced = price_offers_spark(
        spark, candidates, world.items, config, "v-test", response, keep=5,
        weekly_units=units, n_partitions=N_PARTITIONS,
    )  # fmt: skip
    try:
        got = priced.to_priced_offers()
        assert priced.not_offered.count() == got.not_offered.num_rows
    finally:
        priced.unpersist()
    assert got.offers.schema == expected.offers.schema
    assert got.offers.num_rows == expected.offers.num_rows > 0
    assert got.offers.equals(expected.offers)
    assert got.not_offered.num_rows > 0
    assert got.not_offered.equals(expected.not_offered)
    assert got.n_cost_assumed == expected.n_cost_assumed > 0
    # the same pricer: appeals of the kept offers, batch decisions (the budget binds)
    assert got.pricer.appeals == expected.pricer.appeals
    assert got.pricer.state.budget_multiplier > 0
    assert got.pricer._state_json() == expected.pricer._state_json()
    ranks = pc.max(got.offers.column("offer_rank")).as_py()
    assert ranks == 5


def test_spark_composer_refuses_the_heuristic(spark: Any, world: World) -> None:
    from bundlewise.spark.compose import compose_candidates_spark

    with pytest.raises(ConfigError, match="composer.method.*'beam'"):
        compose_candidates_spark(
            spark, world.lines_df, world.pairs, ComposerConfig(method="heuristic")
        )
