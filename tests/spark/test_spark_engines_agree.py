"""The Spark engine gives the embedded engine's results on a slice of the bundled data: the same
workspace after ingest (cleaning counts, clean lines, items), the same pair statistics (counts
exactly, statistics within 1e-9, partner ranks exactly) and, with the Spark composer and pricer,
the same offers with the same offer ids."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from bundlewise.config import Config, InputConfig, MiningConfig
from bundlewise.data import IngestResult, Workspace
from bundlewise.data.readers import read_orders
from bundlewise.data.schemas import RAW_ORDER_LINES
from bundlewise.exceptions import ConfigError, DataValidationError
from bundlewise.mining import PairMiner

pytestmark = pytest.mark.spark

#: min_count 2 keeps more pairs (and more ties in the partner ranking) on the small slice.
MINING = MiningConfig(min_count=2, n_partners=10)


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def assert_same_rows(embedded: pa.Table, spark: pa.Table, keys: list[str]) -> None:
    """Equal tables: integers and strings exactly, floats within 1e-9, in ``keys`` order."""
    assert spark.schema == embedded.schema
    assert spark.num_rows == embedded.num_rows
    embedded, spark = _sorted(embedded, keys), _sorted(spark, keys)
    for name in embedded.column_names:
        a, b = embedded.column(name), spark.column(name)
        if pa.types.is_floating(a.type):
            np.testing.assert_allclose(
                b.to_numpy(zero_copy_only=False),
                a.to_numpy(zero_copy_only=False),
                rtol=0,
                atol=1e-9,
                err_msg=name,
            )
        else:
            assert b.equals(a), name


@pytest.fixture(scope="module")
def ingested(
    spark: Any,
    retail_slice: Path,
    spark_engine_config: Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Workspace, IngestResult, Workspace, IngestResult]:
    """The slice ingested by each engine into its own workspace."""
    from bundlewise.spark.ingest import ingest as ingest_on_spark

    embedded = Workspace(tmp_path_factory.mktemp("embedded"))
    on_spark = Workspace(tmp_path_factory.mktemp("spark"))
    return (
        embedded,
        embedded.ingest(retail_slice),
        on_spark,
        ingest_on_spark(on_spark, str(retail_slice), spark_engine_config, spark=spark),
    )


def test_spark_ingest_gives_the_embedded_workspace(
    ingested: tuple[Workspace, IngestResult, Workspace, IngestResult],
) -> None:
    embedded, embedded_result, on_spark, spark_result = ingested
    assert spark_result == embedded_result  # cleaning report, counts, source id, items
    report = spark_result.report
    assert report.n_rows_kept < report.n_rows_read
    assert report.count("exact_duplicate") > 0 and report.count("return_netted") > 0
    assert report.count("purchase_partially_returned") > 0
    for name, keys in (
        ("order_lines", ["source_row"]),
        ("items", ["item_id"]),
        ("item_titles", ["item_id"]),
        ("item_costs", ["item_id"]),
    ):
        assert_same_rows(embedded.table(name), on_spark.table(name), keys)
    ingests = [w.table("ingests").drop_columns(["ingested_at"]) for w in (embedded, on_spark)]
    assert ingests[1].equals(ingests[0])
    assert not (on_spark.path / "spark_landing").exists()  # the landed Parquet is removed


def test_spark_mining_gives_the_embedded_pairs(
    spark: Any, ingested: tuple[Workspace, IngestResult, Workspace, IngestResult]
) -> None:
    from bundlewise.spark.mining import mine_pairs

    lines = ingested[0].table("order_lines")
    miner = PairMiner.from_config(MINING).fit(lines)
    mined = mine_pairs(spark, spark.createDataFrame(lines), MINING)
    try:
        assert (mined.n_orders, mined.n_orders_skipped) == (
            miner.n_orders_,
            miner.n_orders_skipped_,
        )
        pairs, partners = mined.pairs_table(), mined.partners_table()
    finally:
        mined.unpersist()
    assert miner.pairs_.num_rows > 1000
    assert_same_rows(miner.pairs_, pairs, ["item_a", "item_b"])
    # The rank order, ties included, is the embedded engine's: rows equal in their stored order.
    assert_same_rows(miner.partners_, partners, ["item_id", "rank"])
    assert partners.column("partner_id").equals(miner.partners_.column("partner_id"))


def test_csv_and_table_sources_read_like_the_embedded_reader(
    spark: Any, retail_slice: Path, tmp_path: Path
) -> None:
    from bundlewise.spark.io import read_orders as read_on_spark
    from bundlewise.spark.mining import to_arrow

    head = pq.read_table(retail_slice).slice(0, 400)
    csv = tmp_path / "orders.csv"
    seconds = head.column("InvoiceDate").cast(pa.timestamp("s"))
    dates = pc.strftime(seconds, "%Y-%m-%d %H:%M:%S")
    pacsv.write_csv(head.set_column(4, "InvoiceDate", dates), csv)
    expected, adapter = read_orders(csv)
    frame, spark_adapter = read_on_spark(spark, str(csv))
    assert spark_adapter == adapter == "online_retail_ii"
    assert_same_rows(expected, to_arrow(frame, RAW_ORDER_LINES), ["source_row"])

    spark.createDataFrame(head).coalesce(1).write.mode("overwrite").saveAsTable("orders_head")
    frame, _ = read_on_spark(spark, "table:orders_head")
    from_table = to_arrow(frame, RAW_ORDER_LINES)
    assert_same_rows(read_orders(retail_slice)[0].slice(0, 400), from_table, ["source_row"])


def _bad_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1,A,Mug,2,2010-01-04 10:00:00,1.50,7,UK\n"
        "1,B,Pot,two,2010-01-04 10:00:00,2.50,7,UK\n"
        "2,,Pan,1,2010-01-05 10:00:00,3.50,8,UK\n",
        encoding="utf-8",
    )
    return path


def test_bad_values_give_the_embedded_one_line_errors(spark: Any, tmp_path: Path) -> None:
    from bundlewise.spark.io import read_orders as read_on_spark

    path = _bad_csv(tmp_path)
    with pytest.raises(DataValidationError) as embedded:
        read_orders(path)
    with pytest.raises(DataValidationError) as on_spark:
        read_on_spark(spark, str(path))
    assert str(on_spark.value) == str(embedded.value)
    assert "row 3" in str(on_spark.value) and "'StockCode'" in str(on_spark.value)

    fixed = path.read_text(encoding="utf-8").replace("2,,Pan", "2,C,Pan")
    path.write_text(fixed, encoding="utf-8")
    with pytest.raises(DataValidationError) as embedded:
        read_orders(path)
    with pytest.raises(DataValidationError) as on_spark:
        read_on_spark(spark, str(path))
    assert str(on_spark.value) == str(embedded.value)
    assert "row 2" in str(on_spark.value) and "'two'" in str(on_spark.value)


def test_a_decimal_comma_is_refused_not_guessed(spark: Any, tmp_path: Path) -> None:
    from bundlewise.spark.io import read_orders as read_on_spark

    config = dataclasses.replace(Config(), input=InputConfig(decimal_separator=","))
    with pytest.raises(ConfigError, match=r"`input.decimal_separator`=',': the Spark engine"):
        read_on_spark(spark, str(_bad_csv(tmp_path)), config)


class _StubEncoder:
    """Deterministic unit vectors from the title's length (no model loaded)."""

    def encode(self, texts: list[str]) -> np.ndarray:  # type: ignore[type-arg]
        angle = np.array([len(t) for t in texts], dtype=np.float64)
        return np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)


_HAS_SPARK_JOBS = all(
    importlib.util.find_spec(f"bundlewise.spark.{m}") is not None for m in ("compose", "price")
)


@pytest.mark.skipif(
    not _HAS_SPARK_JOBS, reason="needs bundlewise.spark.compose and bundlewise.spark.price"
)
def test_spark_train_gives_the_embedded_offers(
    spark: Any,
    spark_engine_config: Config,
    ingested: tuple[Workspace, IngestResult, Workspace, IngestResult],
) -> None:
    from bundlewise.pipeline import train
    from bundlewise.spark.train import train as train_on_spark

    embedded, _, on_spark, _ = ingested
    config = dataclasses.replace(Config(), mining=MINING)
    expected = train(embedded, config, encoder=_StubEncoder())
    result = train_on_spark(
        on_spark,
        dataclasses.replace(spark_engine_config, mining=MINING),
        encoder=_StubEncoder(),
        spark=spark,
    )
    assert result.engine == "spark" and expected.engine == "duckdb"
    assert result.model_version == expected.model_version
    assert (result.n_pairs, result.n_offers, result.n_customers, result.n_not_offered) == (
        expected.n_pairs,
        expected.n_offers,
        expected.n_customers,
        expected.n_not_offered,
    )
    assert expected.n_offers > 0
    for name, keys in (
        ("pair_stats", ["item_a", "item_b"]),
        ("partners", ["item_id", "rank"]),
        ("offers", ["customer_id", "offer_rank"]),  # the same offer ids, prices, p_accept...
    ):
        assert_same_rows(embedded.table(name), on_spark.table(name), keys)
    served = [
        _sorted(w.table("served_offers"), ["customer_id"]).to_pylist() for w in (embedded, on_spark)
    ]
    assert [r["customer_id"] for r in served[1]] == [r["customer_id"] for r in served[0]]
    for a, b in zip(*served, strict=True):
        # explanations carry the pair statistics: npmi's logarithm is Java's on Spark
        assert_same_document(json.loads(a["offers_json"]), json.loads(b["offers_json"]))


def assert_same_document(embedded: Any, spark: Any, where: str = "") -> None:
    """Equal JSON documents, floats within 1e-9."""
    if isinstance(embedded, dict):
        assert isinstance(spark, dict) and spark.keys() == embedded.keys(), where
        for key, value in embedded.items():
            assert_same_document(value, spark[key], f"{where}.{key}")
    elif isinstance(embedded, list):
        assert isinstance(spark, list) and len(spark) == len(embedded), where
        for i, (a, b) in enumerate(zip(embedded, spark, strict=True)):
            assert_same_document(a, b, f"{where}[{i}]")
    elif isinstance(embedded, float):
        assert spark == pytest.approx(embedded, rel=0, abs=1e-9), where
    else:
        assert spark == embedded, where
