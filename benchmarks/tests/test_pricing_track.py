"""The pricing track and `bundlewise simulate` end to end on the bundled data (small sizes)."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app
from bundlewise.evaluation.fonts import font_covering, missing_characters
from bundlewise_bench.market import MarketBundle, Scenario
from bundlewise_bench.policies import default_policies
from bundlewise_bench.pricing_track import _checks, _noise_curve, format_pricing
from bundlewise_bench.report import build_simulation_report
from bundlewise_bench.simulator import B_BOUND, OURS, run_scenario

POLICIES = tuple(p.name for p in default_policies())
LABELS = tuple(p.label for p in default_policies())

pytestmark = pytest.mark.integration

TINY = Scenario(n_customers=150, n_train=150, n_logged=600, n_milp=4)


def test_simulate_writes_json_html_and_a_table(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["simulate", "--quick", "--seeds", "2", "--no-grid", "--bundles", "1", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    for label in LABELS:
        assert label in result.output
    data = json.loads((out / "simulation.json").read_text())
    assert data["files"] == [str(out / "simulation.json"), str(out / "simulation.html")]
    default = data["scenarios"][0]
    assert default["seeds"] == [0, 1]
    assert set(default["policies"]) == set(POLICIES)
    assert default["policies"][B_BOUND]["pct_of_B"]["mean"] == pytest.approx(100.0)
    for name in POLICIES:  # A is an upper bound on every policy, seed by seed
        assert default["policies"][name]["pct_of_A"]["hi"] <= 100.0 + 1e-9
    assert data["checks"]["violations_bundlewise_all_runs"] == 0
    market = default["markets"][0]
    # The fitted market reproduces the real purchase shares it was fitted to.
    assert np.allclose(market["fitted_item_rates"], market["item_rates"], atol=0.01)
    html = (out / "simulation.html").read_text()
    assert "Default scenario" in html and "data:image/png;base64," in html


def test_simulate_rejects_bad_arguments(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--seeds", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
    missing = CliRunner().invoke(
        app, ["simulate", "--orders", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]
    )
    assert missing.exit_code != 0
    assert "Traceback" not in missing.output


@pytest.fixture(scope="module")
def small_grid() -> dict[str, Any]:
    """A pricing-track result on one made-up bundle, two scenarios, two seeds."""
    bundles = [
        MarketBundle(
            ("a", "b"), ("Mug", "杯垫"), np.array([300.0, 500.0]), 1000,
            np.array([0.2, 0.15]), 0.1,
        )
    ]  # fmt: skip
    results = [
        run_scenario(bundles, replace(TINY, name="default", noise=0.2), seeds=(0, 1)),
        run_scenario(bundles, replace(TINY, name="noise 0.0", noise=0.0), (0, 1), with_milp=False),
    ]
    for r in results:
        r["seconds"] = 0.0
    return {
        "source": "tiny",
        "n_bundles": 1,
        "pricing": {"min_margin": 0.1, "max_discount": 0.3, "fairness_band": 0.25},
        "scenarios": results,
        "noise_curve": _noise_curve(results),
        "checks": _checks(results),
    }


def test_report_and_table_of_a_small_grid(small_grid: dict[str, Any]) -> None:
    result = small_grid
    assert result["noise_curve"]["noise"] == [0.0, 0.2]
    assert B_BOUND not in result["noise_curve"]["pct_of_B"]
    assert result["checks"]["pct_of_B_at_zero_noise"]["mean"] > 0
    table = format_pricing(result)
    assert "noise 0.0" in table and OURS in table
    assert "flat demand (priced at the list)" in table
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        html = build_simulation_report(result)
    if font_covering(missing_characters(["杯垫"])) is not None:  # a CJK font is installed
        assert not [w for w in record if "Glyph" in str(w.message)]
    assert html.count("data:image/png;base64,") == 2  # noise curve + price distribution
    assert "杯垫" in html
    for label in LABELS:
        assert label in html


def test_simulate_json_is_one_document(
    small_grid: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bundlewise_bench.pricing_track

    monkeypatch.setattr(
        bundlewise_bench.pricing_track, "pricing_track", lambda *a, **k: dict(small_grid)
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert data["files"] == [str(out / "simulation.json"), str(out / "simulation.html")]
    assert data == json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert data["scenarios"][0]["policies"][OURS]["label"] == "bundlewise"
