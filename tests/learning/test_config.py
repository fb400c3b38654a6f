"""The ``[learning]`` config section: defaults, TOML, validation with one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bundlewise.config import Config, LearningConfig, config_from_dict, load_config
from bundlewise.exceptions import ConfigError


def test_defaults_are_the_documented_ones() -> None:
    cfg = Config().learning
    assert dataclasses.asdict(cfg) == {
        "enabled": False,
        "n_rungs": 5,
        "prior_sd_appeal": 4.0,
        "prior_sd_sensitivity": 4.0,
        "bundle_sd": 0.5,
        "forgetting": 0.9999,
        "max_explore_share": 0.1,
        "max_profit_given_up": 0.05,
        "mc_draws": 256,
        "refresh_events": 50,
        "holdout_share": 0.1,
        "experiment_id": "pricing",
        "seed": 0,
    }


def test_a_toml_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(
        '[learning]\nenabled = true\nn_rungs = 7\nforgetting = 1.0\nexperiment_id = "summer"\n',
        encoding="utf-8",
    )
    cfg = load_config(path).learning
    assert (cfg.enabled, cfg.n_rungs, cfg.forgetting, cfg.experiment_id) == (
        True,
        7,
        1.0,
        "summer",
    )


def test_the_section_survives_the_pricers_json_round_trip() -> None:
    config = Config(learning=LearningConfig(n_rungs=9, holdout_share=0.25))
    back = config_from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
    assert back == config


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("enabled", "yes", r"`learning.enabled` must be true or false, got 'yes'"),
        ("n_rungs", 1, r"`learning.n_rungs`=1 should be >= 2"),
        ("n_rungs", 2.5, r"`learning.n_rungs` must be an integer"),
        ("forgetting", 0.0, r"`learning.forgetting`=0.0 should be in \[0.001, 1.0\]"),
        ("forgetting", 1.5, r"`learning.forgetting`=1.5 should be in"),
        ("max_explore_share", -0.1, r"`learning.max_explore_share`=-0.1 should be in \[0.0, 1.0\]"),
        ("max_profit_given_up", 2.0, r"`learning.max_profit_given_up`=2.0"),
        ("prior_sd_sensitivity", 0.0, r"`learning.prior_sd_sensitivity`=0.0"),
        ("bundle_sd", float("nan"), r"`learning.bundle_sd` must be a number"),
        ("mc_draws", 0, r"`learning.mc_draws`=0 should be >= 1"),
        ("refresh_events", 0, r"`learning.refresh_events`=0 should be >= 1"),
        ("holdout_share", 1.0, r"`learning.holdout_share`=1.0 should be in \[0.0, 0.99\]"),
        ("experiment_id", " ", r"`learning.experiment_id`=' ' should be a non-empty string"),
        ("seed", -1, r"`learning.seed`=-1 should be >= 0"),
    ],
)
def test_invalid_values_name_the_key_and_value(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config_from_dict({"learning": {key: value}}, source="store.toml")
    text = str(info.value)
    assert text.startswith("store.toml: ") and "\n" not in text


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown key `learning.n_rung`"):
        config_from_dict({"learning": {"n_rung": 5}})
