"""`bundlewise evaluate` end to end on a small Youshu-format world (retail track skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bundlewise.cli.main import app

pytestmark = pytest.mark.integration


def _youshu_folder(folder: Path) -> Path:
    """40 users in 4 taste groups, 20 bundles of 2 items; train / tune / test pairs."""
    rng = np.random.default_rng(0)
    n_users, n_bundles, n_items = 40, 20, 40
    files: dict[str, list[tuple[int, int]]] = {
        "user_bundle_train.txt": [], "user_bundle_tune.txt": [], "user_bundle_test.txt": [],
        "user_item.txt": [], "bundle_item.txt": [(b, 2 * b + j) for b in range(20) for j in (0, 1)],
    }  # fmt: skip
    for u in range(n_users):
        liked = rng.permutation(np.arange(5 * (u % 4), 5 * (u % 4) + 5))
        files["user_bundle_train.txt"] += [(u, int(b)) for b in liked[:3]]
        files["user_bundle_tune.txt"].append((u, int(liked[3])))
        files["user_bundle_test.txt"].append((u, int(liked[4])))
        files["user_item.txt"] += [(u, 2 * int(b)) for b in liked[:3]]
    folder.mkdir()
    (folder / "Youshu_data_size.txt").write_text(f"{n_users}\t{n_bundles}\t{n_items}\n")
    for name, pairs in files.items():
        (folder / name).write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    return folder


def test_evaluate_scores_every_model_and_writes_json_and_html(tmp_path: Path) -> None:
    folder = _youshu_folder(tmp_path / "youshu")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["evaluate", "--youshu", str(folder), "--skip-retail", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "EASE (bundle view)" in result.output and "tune R@20" in result.output
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    models = report["youshu"]["models"]
    assert len(models) == 8
    assert report["youshu"]["splits"] == ["tune", "test"]
    for model in models:
        for split in ("tune", "test"):
            assert 0.0 <= model["metrics"][split]["recall@20"] <= 1.0
    # the taste groups are easy: the best model must rank better than popularity (NDCG: with
    # 20 bundles every list holds all of them, so recall@20 is 1 for everyone)
    best = max(m["metrics"]["tune"]["ndcg@20"] for m in models)
    popularity = next(m for m in models if m["name"] == "popularity")
    assert best > popularity["metrics"]["tune"]["ndcg@20"]
    html = (out / "evaluation.html").read_text(encoding="utf-8")
    assert "Youshu bundle recommendation" in html and "data:image/png" in html


def test_evaluate_rejects_a_bad_cutoff_and_an_empty_run(tmp_path: Path) -> None:
    bad = CliRunner().invoke(app, ["evaluate", "--cutoff", "soon", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--cutoff" in bad.output
    empty = CliRunner().invoke(app, ["evaluate", "--skip-retail", "--out", str(tmp_path)])
    assert empty.exit_code == 2 and "nothing to evaluate" in empty.output
