"""`bundlewise simulate` without the benchmark package says in one line how to get it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import BENCH_MISSING, app


def test_simulate_without_the_bench_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [m for m in sys.modules if m.startswith("bundlewise_bench")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "bundlewise_bench", None)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path)])
    assert result.exit_code != 0
    said = " ".join(result.output.split())
    assert BENCH_MISSING in said and "pip install -e ./benchmarks" in said
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # nothing written
