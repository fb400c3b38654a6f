"""The Spark engine's settings and errors: none of these start Spark."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.config import Config, MiningConfig, SparkConfig, config_from_dict, load_config
from bundlewise.data import Workspace
from bundlewise.exceptions import ConfigError, DataValidationError
from bundlewise.pipeline import _model_version
from bundlewise.spark import SparkUnavailableError, require_pyspark
from bundlewise.spark.io import parse_source, spark_pattern
from bundlewise.spark.session import session_settings

runner = CliRunner()


def test_engine_and_spark_table_are_read_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(
        'engine = "spark"\n\n[spark]\nmaster = "spark://head:7077"\nshuffle_partitions = 64\n'
        "offer_buckets = 32\n"
        'conf = { "spark.executor.memory" = "4g", "spark.speculation" = true }\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.engine == "spark"
    assert config.spark.master == "spark://head:7077"
    assert config.spark.offer_buckets == 32
    assert config.spark.n_customer_partitions == 64
    assert config.spark.conf == (
        ("spark.executor.memory", "4g"),
        ("spark.speculation", "true"),
    )
    settings = session_settings(config.spark)
    assert settings["spark.sql.shuffle.partitions"] == "64"
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.executor.memory"] == "4g"
    assert Config().engine == "duckdb" and Config().spark.master == "local[2]"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"engine": "flink"}, "<dict>: `engine`='flink' should be 'duckdb' or 'spark'."),
        (
            {"engine": {"name": "spark"}},
            '<dict>: `engine` is a value (e.g. engine = "spark"), not a table.',
        ),
        (
            {"spark": {"shuffle_partitions": 0}},
            "<dict>: `spark.shuffle_partitions`=0 should be >= 1.",
        ),
        ({"spark": {"offer_buckets": 0}}, "<dict>: `spark.offer_buckets`=0 should be >= 1."),
        (
            {"spark": {"master": ""}},
            "<dict>: `spark.master`='' should be a Spark master URL such as 'local[2]' or "
            "'spark://host:7077'.",
        ),
        (
            {"spark": {"conf": {"executor.memory": "4g"}}},
            "<dict>: `spark.conf` key 'executor.memory' should be a Spark setting (starting "
            "with 'spark.').",
        ),
        (
            {"spark": {"masters": "local[2]"}},
            "<dict>: unknown key `spark.masters`; expected one of ['app_name', 'conf', "
            "'customer_partitions', 'master', 'offer_buckets', 'shuffle_partitions'].",
        ),
    ],
)
def test_bad_engine_settings_are_one_line_config_errors(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert str(info.value) == message


def test_the_engine_does_not_change_the_model_version(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    with workspace.connect():
        pass
    embedded = Config()
    on_spark = dataclasses.replace(
        embedded, engine="spark", spark=SparkConfig(master="yarn", shuffle_partitions=400)
    )
    assert _model_version(workspace, embedded) == _model_version(workspace, on_spark)
    other_model = dataclasses.replace(embedded, mining=MiningConfig(min_count=2))
    assert _model_version(workspace, other_model) != _model_version(workspace, embedded)


def test_a_missing_pyspark_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` now fails
    with pytest.raises(SparkUnavailableError) as info:
        require_pyspark()
    assert str(info.value) == (
        "engine 'spark' needs pyspark, which is not installed: "
        "pip install 'bundlewise[spark]' (and Java 17)."
    )


def test_cli_without_pyspark_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    orders = tmp_path / "orders.parquet"
    orders.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "pyspark", None)
    result = runner.invoke(
        app, ["ingest", "--engine", "spark", str(orders), "--workspace", str(tmp_path / "ws")]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: engine 'spark' needs pyspark, which is not installed: "
        "pip install 'bundlewise[spark]' (and Java 17).\n"
    )


def test_cli_rejects_an_unknown_engine(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--engine", "flink", "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert result.stderr == "error: --engine 'flink' should be one of duckdb, spark.\n"


def test_spark_train_composes_with_the_beam_search_only(tmp_path: Path) -> None:
    config = tmp_path / "heuristic.toml"
    config.write_text('engine = "spark"\n[composer]\nmethod = "heuristic"\n', encoding="utf-8")
    result = runner.invoke(app, ["train", "-c", str(config), "--workspace", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: `composer.method`='heuristic': the Spark engine composes with 'beam' only; "
        "set composer.method = 'beam' or use engine = 'duckdb'.\n"
    )


def test_sources_are_paths_or_tables(tmp_path: Path) -> None:
    assert parse_source("table:sales.orders") == ("table", "sales.orders")
    assert parse_source("s3a://lake/orders/") == ("parquet", "s3a://lake/orders/")
    assert parse_source("s3a://lake/orders.csv.gz") == ("csv", "s3a://lake/orders.csv.gz")
    delta = tmp_path / "delta"
    (delta / "_delta_log").mkdir(parents=True)
    assert parse_source(str(delta)) == ("delta", str(delta))
    csvs = tmp_path / "csvs"
    csvs.mkdir()
    (csvs / "2024.csv").write_text("a\n", encoding="utf-8")
    assert parse_source(str(csvs)) == ("csv", str(csvs))
    with pytest.raises(DataValidationError, match="no table named after 'table:'"):
        parse_source("table:")
    with pytest.raises(DataValidationError, match=r"unsupported file type '\.xlsx'"):
        (tmp_path / "orders.xlsx").write_bytes(b"")
        parse_source(str(tmp_path / "orders.xlsx"))


def test_date_formats_outside_the_translation_are_refused() -> None:
    assert spark_pattern("%d.%m.%Y %H:%M:%S.%f") == "d.M.yyyy H:m:s.SSSSSS"
    with pytest.raises(ConfigError, match=r"uses '%b', which the Spark engine does not read"):
        spark_pattern("%d %b %Y")
