"""Server model load time and memory at a million customers: from the partitioned snapshot,
from one fleet server's buckets of it, and from the workspace tables.

Builds the synthetic workspace of :mod:`synthetic_workspace` (default 100,000 items, 1,000,000
customers, 5 offers each), stores its served offers with explanations as ``train`` does (in
DuckDB, then the partitioned snapshot), and then, each in a fresh child process, loads the model
as ``bundlewise serve`` does at start (:func:`bundlewise.serving.state.load_model`: the snapshot
of offers and explanations, the pricer, the offer ids) and reports the seconds, the resident
memory the load added and the process's peak.

    python benchmarks/snapshot_load.py                     # 1M customers, 16 buckets
    python benchmarks/snapshot_load.py --customers 20000   # quick
    python benchmarks/snapshot_load.py --keep DIR          # build once into DIR, reuse it
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _status_kib(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (this process image's peak) in KiB."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(field + r":\s+(\d+)", status)
    return int(match.group(1)) if match else 0


def _child(workspace: Path, buckets: str | None) -> None:
    """Load the model once and print one JSON line."""
    from bundlewise.serving.settings import ServeSettings
    from bundlewise.serving.state import load_model, settle_heap

    fleet: dict[str, Any] = {"buckets": buckets} if buckets is not None else {}
    settings = ServeSettings(workspace=workspace, **fleet)
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    model = load_model(settings, None)
    settle_heap()
    seconds = time.perf_counter() - start
    after = _status_kib("VmRSS")
    print(
        json.dumps(
            {
                "source": getattr(model.snapshot, "source", "workspace"),
                "buckets": buckets,
                "customers_loaded": model.snapshot.n_customers,
                "offer_ids": len(model.offer_ids),
                "seconds": round(seconds, 2),
                "rss_before_gib": round(before / 2**20, 3),
                "rss_after_gib": round(after / 2**20, 3),
                "added_gib": round((after - before) / 2**20, 3),
                "peak_gib": round(_status_kib("VmHWM") / 2**20, 3),
            }
        ),
        flush=True,
    )


def build(path: Path, n_items: int, n_customers: int, n_buckets: int) -> dict[str, Any]:
    """The synthetic workspace with its served offers and snapshot; seconds and peak RSS."""
    import synthetic_workspace
    from bundlewise.composer.explain import store_served_offers
    from bundlewise.serving.snapshot import write_snapshot

    start = time.perf_counter()
    workspace = synthetic_workspace.build(path, n_items, n_customers)
    tables = time.perf_counter() - start
    with workspace.connect() as con:
        store_served_offers(con)
        served = time.perf_counter() - start - tables
        write_snapshot(con, workspace.path, "synthetic", n_buckets)
    snapshot = time.perf_counter() - start - tables - served
    size = sum(f.stat().st_size for f in (path / "snapshot").rglob("*") if f.is_file())
    return {
        "items": n_items,
        "customers": n_customers,
        "n_buckets": n_buckets,
        "tables_seconds": round(tables, 1),
        "served_offers_seconds": round(served, 1),
        "snapshot_seconds": round(snapshot, 1),
        "snapshot_mib": round(size / 2**20, 1),
        "build_peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def _measure(workspace: Path, buckets: str | None, src: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(workspace)]
    if buckets is not None:
        cmd += ["--child-buckets", buckets]
    env = dict(os.environ)
    if src is not None:  # another checkout's loader (e.g. main's, before snapshots)
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--buckets", type=int, default=16, help="snapshot buckets")
    parser.add_argument("--fleet", default="0-3/16", help="one fleet server's buckets")
    parser.add_argument("--repeat", type=int, default=2, help="loads of each kind")
    parser.add_argument("--keep", type=Path, help="build into (or reuse) this directory")
    parser.add_argument(
        "--before-src",
        type=Path,
        help="also load the workspace tables with the bundlewise of this src directory",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results/snapshot_load.json"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-buckets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.child_buckets)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "synthetic"
        report: dict[str, Any] = {
            "benchmark": "snapshot_load",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        }
        if (path / "snapshot").is_dir():
            report["build"] = "reused"
        else:
            report["build"] = build(path, args.items, args.customers, args.buckets)
            print(f"built: {report['build']}", flush=True)
        runs = []
        aside = path / ".snapshot-aside"
        for _ in range(args.repeat):
            kinds = ["snapshot", "fleet", "workspace"] + (["before"] if args.before_src else [])
            for kind in kinds:
                if kind in ("workspace", "before"):
                    os.replace(path / "snapshot", aside)  # the tables only, as before snapshots
                try:
                    run = _measure(
                        path,
                        args.fleet if kind == "fleet" else None,
                        args.before_src if kind == "before" else None,
                    )
                finally:
                    if kind in ("workspace", "before"):
                        os.replace(aside, path / "snapshot")
                runs.append({"kind": kind, **run})
                print(json.dumps(runs[-1]), flush=True)
        report["runs"] = runs
        report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average: start {report['load_average_start']}, end {report['load_average_end']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
