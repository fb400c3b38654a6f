"""Serving: a bounded load test of the offers endpoint against a local server (127.0.0.1 only).

Usage::

    python benchmarks/serving.py [--orders FILE] [--seconds 30] [--rps 200 400]
        [--crash] [--json OUT.json]

Trains a workspace on the orders (default: the bundled data), starts ``bundlewise serve`` in a
child process, and sends GET /v1/customers/{id}/offers at a fixed rate (open loop) for each
``--rps`` over customers with offers and some unknown ones; reports throughput, p50 / p95 / p99
latency and errors. With ``--crash``, also sends feedback events and kills the server with
SIGKILL mid-load, then counts acknowledged events missing from the store (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from bundlewise import __version__
from bundlewise.composer.explain import offers_by_customer
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path, ingest, train
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.loadgen import feedback_until_killed, load, running_server
from bundlewise.serving.store import FeedbackStore

sys.path.insert(0, str(Path(__file__).parent))
import synthetic_workspace  # noqa: E402  (the script's own folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rps", type=float, nargs="+", default=[200.0, 400.0])
    parser.add_argument("--crash", action="store_true")
    parser.add_argument(
        "--synthetic",
        type=int,
        nargs=2,
        metavar=("ITEMS", "CUSTOMERS"),
        help="also load-test a synthetic workspace of this size (e.g. 100000 1000000)",
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "serving.json"
    )
    args = parser.parse_args()
    print(
        f"bundlewise {__version__}; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    report: dict[str, object] = {"version": __version__, "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp) / "ws")
        ingest(workspace, args.orders, Config())
        train(workspace, Config())
        customers = sorted(
            {c for c in workspace.table("offers").column("customer_id").to_pylist()}
            - {"__anonymous__"}
        )
        rng = random.Random(0)
        ids = [rng.choice(customers) for _ in range(950)] + [f"new-{i}" for i in range(50)]
        paths = [f"/v1/customers/{c}/offers?n=5" for c in ids]
        keys = Path(tmp) / "keys.json"
        key = KeyStore(keys).create(("read",), "load test")
        feedback_url = f"sqlite:///{Path(tmp) / 'feedback.db'}"
        with running_server(workspace.path, feedback_url, keys, ["--rate-limit", "1000000"]) as s:
            load(s.url, paths[:50], key, rps=50, seconds=2)  # warm up
            print(f"{'target rps':>10s} {'achieved':>9s} {'requests':>9s} {'errors':>7s} "
                  f"{'p50 ms':>7s} {'p95 ms':>7s} {'p99 ms':>7s} {'max ms':>7s}")  # fmt: skip
            for rps in args.rps:
                r = load(s.url, paths, key, rps=rps, seconds=args.seconds)
                print(
                    f"{r.target_rps:10.0f} {r.achieved_rps:9.1f} {r.requests:9d} {r.errors:7d} "
                    f"{r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.p99_ms:7.2f} {r.max_ms:7.2f}"
                )
                report["runs"].append(r.to_dict())  # type: ignore[attr-defined]
        if args.crash:
            crash_url = f"sqlite:///{Path(tmp) / 'crash.db'}"
            with running_server(workspace.path, crash_url, keys, ["--rate-limit", "1000000"]) as s:
                offer = next(
                    (r["offer_id"], r["customer_id"])
                    for r in workspace.table("offers").to_pylist()
                    if r["customer_id"] != "__anonymous__"
                )
                acked, sent = feedback_until_killed(s, key, offer, kill_after_acks=2000)
            store = FeedbackStore(crash_url)
            stored = store.event_ids()
            store.close()
            crash = {
                "sent": sent,
                "acknowledged": len(acked),
                "stored": len(stored),
                "acknowledged_lost": len(acked - stored),
            }
            print(f"crash (SIGKILL mid-load, SQLite): {crash}")
            report["crash_sqlite"] = crash
        if args.synthetic:
            n_items, n_customers = args.synthetic
            start = time.perf_counter()
            synthetic = synthetic_workspace.build(Path(tmp) / "synthetic", n_items, n_customers)
            with synthetic.connect() as con:
                served = offers_by_customer(con, None, {}, Config().pricing.sensitivity_prior)
            synthetic.replace_table("served_offers", served)
            built = time.perf_counter() - start
            print(f"synthetic workspace: {n_items:,} items, {n_customers:,} customers, "
                  f"{5 * n_customers:,} offers, built in {built:.0f} s")  # fmt: skip
            rng = random.Random(1)
            paths = [
                f"/v1/customers/C{rng.randrange(n_customers):07d}/offers?n=5" for _ in range(1000)
            ]
            url = f"sqlite:///{Path(tmp) / 'synthetic.db'}"
            start = time.perf_counter()
            with running_server(
                synthetic.path, url, keys, ["--rate-limit", "1000000"], ready_timeout=1200
            ) as s:
                startup = time.perf_counter() - start
                print(f"server ready in {startup:.0f} s")
                load(s.url, paths[:50], key, rps=50, seconds=2)
                for rps in args.rps:
                    r = load(s.url, paths, key, rps=rps, seconds=args.seconds)
                    print(
                        f"synthetic {r.target_rps:6.0f} rps: achieved {r.achieved_rps:.1f}, "
                        f"errors {r.errors}, p50 {r.p50_ms:.2f} ms, p95 {r.p95_ms:.2f} ms, "
                        f"p99 {r.p99_ms:.2f} ms, max {r.max_ms:.2f} ms"
                    )
                    report.setdefault("synthetic_runs", []).append(  # type: ignore[attr-defined]
                        {**r.to_dict(), "items": n_items, "customers": n_customers,
                         "build_seconds": round(built, 1), "startup_seconds": round(startup, 1)}
                    )  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
