"""The Youshu track end to end on a small Youshu-format world, and its text table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bundlewise_bench.tracks import format_youshu, youshu_track


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


def test_youshu_track_scores_every_model(tmp_path: Path) -> None:
    folder = _youshu_folder(tmp_path / "youshu")
    report = json.loads(json.dumps(youshu_track(folder)))  # JSON-ready
    table = format_youshu(report)
    assert "EASE (bundle view)" in table and "tune R@20" in table
    models = report["models"]
    assert len(models) == 8
    assert report["splits"] == ["tune", "test"]
    for model in models:
        for split in ("tune", "test"):
            assert 0.0 <= model["metrics"][split]["recall@20"] <= 1.0
    # the taste groups are easy: the best model must rank better than popularity (NDCG: with
    # 20 bundles every list holds all of them, so recall@20 is 1 for everyone)
    best = max(m["metrics"]["tune"]["ndcg@20"] for m in models)
    popularity = next(m for m in models if m["name"] == "popularity")
    assert best > popularity["metrics"]["tune"]["ndcg@20"]
