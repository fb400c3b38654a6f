"""Serving: a bounded load test of the offers endpoint against a local server (127.0.0.1 only).

Usage::

    python benchmarks/serving.py [--orders FILE] [--seconds 20] [--connections 8 32]
        [--paced-rate 200] [--cart-rate 33.3] [--crash] [--synthetic ITEMS CUSTOMERS]
        [--json OUT.json]

Trains a workspace on the orders (default: the bundled data), starts ``bundlewise serve`` in a
child process, and loads GET /v1/customers/{id}/offers with ``wrk`` (an established C load
generator, one thread, so that the generator does not saturate before the server) for
``--seconds`` at each ``--connections`` over customers with offers and some unknown ones;
reports throughput, p50 / p90 / p99 / max latency and non-2xx answers. A further run loads offers
while a second ``wrk`` posts worst-case carts (50 items, n=50) as fast as they are answered, to
show what heavy carts cost the offers at saturation. Then, on a second server with the default
rate limit (6,000 requests per minute per key), offers at a moderate paced rate
(``--paced-rate``, spread over 4 read keys) alone and while one more read key posts worst-case
carts at a third of its limit (``--cart-rate``); ``wrk`` paces each connection with a Lua
``delay()``, so the rates are approximate and the achieved ones are reported. The machine's load
average is printed (and stored) at the start and the end. With ``--crash``, also sends feedback
events and kills the server with SIGKILL mid-load, then counts acknowledged events missing from
the store (must be 0). Needs ``wrk`` on the PATH (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bundlewise import __version__
from bundlewise.composer.explain import offers_by_customer
from bundlewise.config import Config
from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path, ingest, train
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.loadgen import feedback_until_killed, running_server
from bundlewise.serving.store import FeedbackStore

sys.path.insert(0, str(Path(__file__).parent))
import synthetic_workspace  # noqa: E402  (the script's own folder)

# BW_KEY: one key, or several separated by commas (taken in turn); BW_DELAY_MS: a pause before
# each request of a connection (wrk's delay()), to pace the load.
PACE = """
local pause = tonumber(os.getenv("BW_DELAY_MS") or "0")
if pause > 0 then
  delay = function() return pause end
end
"""

GET_SCRIPT = (
    """
local paths = {}
for line in io.lines(os.getenv("BW_PATHS")) do paths[#paths + 1] = line end
local keys = {}
for k in string.gmatch(os.getenv("BW_KEY"), "[^,]+") do keys[#keys + 1] = k end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], {["X-API-Key"] = keys[i % #keys + 1]})
end
"""
    + PACE
)

POST_SCRIPT = (
    """
wrk.method = "POST"
wrk.body = os.getenv("BW_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BW_KEY")
"""
    + PACE
)

#: ``bundlewise serve``'s default rate limit (requests, or tokens, per minute per key).
DEFAULT_RATE_LIMIT = 6000

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * _UNITS[unit], 2)


def _wrk_cmd(url: str, script: Path, connections: int, seconds: float) -> list[str]:
    assert url.startswith("http://127.0.0.1:"), url
    return [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
        "--timeout", "5s", "-s", str(script), url,
    ]  # fmt: skip


def wrk(
    url: str, script: Path, env: dict[str, str], connections: int, seconds: float
) -> dict[str, Any]:
    """One bounded ``wrk`` run against 127.0.0.1; its figures, parsed."""
    out = subprocess.run(
        _wrk_cmd(url, script, connections, seconds),
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    return parse_wrk(out, connections, seconds)


def parse_wrk(out: str, connections: int, seconds: float) -> dict[str, Any]:
    """The figures of one ``wrk --latency`` report."""
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    max_ms = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    return {
        "connections": connections,
        "seconds": round(seconds),
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else "none",
        "p50_ms": _ms(latency["50"]),
        "p90_ms": _ms(latency["90"]),
        "p99_ms": _ms(latency["99"]),
        "max_ms": _ms(max_ms.group(1)) if max_ms else None,
    }


def _print_run(label: str, r: dict[str, Any]) -> None:
    print(
        f"{label:>28s} {r['connections']:5d} {r['rps']:9.1f} {r['requests']:9d} "
        f"{r['non_2xx']:7d} {r['p50_ms']:7.2f} {r['p90_ms']:7.2f} {r['p99_ms']:7.2f} "
        f"{r['max_ms']:8.2f}"
    )


def _scripts(paths: list[str], tmp: Path) -> None:
    (tmp / "paths.txt").write_text("\n".join(paths) + "\n", encoding="utf-8")
    (tmp / "get.lua").write_text(GET_SCRIPT, encoding="utf-8")
    (tmp / "post.lua").write_text(POST_SCRIPT, encoding="utf-8")


def _header() -> None:
    print(f"{'run':>28s} {'conns':>5s} {'req/s':>9s} {'requests':>9s} {'non2xx':>7s} "
          f"{'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} {'max ms':>8s}")  # fmt: skip


def _pause_ms(connections: int, rate: float, latency_ms: float) -> int:
    """wrk's per-connection pause for about ``rate`` requests per second in all."""
    return max(1, round(1000.0 * connections / rate - latency_ms))


def load_runs(
    url: str, paths: list[str], key: str, carts: list[str], args: argparse.Namespace, tmp: Path
) -> list[dict[str, Any]]:
    _scripts(paths, tmp)
    env = {"BW_PATHS": str(tmp / "paths.txt"), "BW_KEY": key}
    wrk(url + "/", tmp / "get.lua", env, 4, 2)  # warm up
    _header()
    runs = []
    for c in args.connections:
        r = wrk(url + "/", tmp / "get.lua", env, c, args.seconds) | {"load": "offers"}
        _print_run("offers", r)
        runs.append(r)
    # Offers while worst-case carts are posted alongside (the carts' own figures too).
    body = json.dumps({"item_ids": carts, "n": 50})
    cart_env = {"BW_BODY": body, "BW_KEY": key}
    cart_cmd = [
        "wrk", "-t1", "-c2", f"-d{round(args.seconds)}s", "--latency", "--timeout", "5s",
        "-s", str(tmp / "post.lua"), url + "/v1/carts/offers",
    ]  # fmt: skip
    carts_process = subprocess.Popen(
        cart_cmd, env=os.environ | cart_env, stdout=subprocess.PIPE, text=True
    )
    c = min(args.connections)
    r = wrk(url + "/", tmp / "get.lua", env, c, args.seconds) | {"load": "offers + carts"}
    cart_out, _ = carts_process.communicate(timeout=args.seconds + 60)
    cart_rps = re.search(r"Requests/sec:\s+([\d.]+)", cart_out)
    r["carts_per_second"] = float(cart_rps.group(1)) if cart_rps else None
    _print_run("offers, 2 conns posting carts", r)
    print(f"{'':>28s} carts of 50 items, n=50: {r['carts_per_second']} per second")
    runs.append(r)
    return runs


def paced_runs(
    url: str,
    paths: list[str],
    offer_keys: list[str],
    cart_key: str,
    carts: list[str],
    args: argparse.Namespace,
    tmp: Path,
) -> list[dict[str, Any]]:
    """Offers at about ``args.paced_rate`` per second (8 connections, over ``offer_keys``), alone
    and while ``cart_key`` posts worst-case carts at about ``args.cart_rate`` per second (2
    connections), against a server with the default rate limit."""
    _scripts(paths, tmp)
    connections = 8
    env = {
        "BW_PATHS": str(tmp / "paths.txt"),
        "BW_KEY": ",".join(offer_keys),
        "BW_DELAY_MS": str(_pause_ms(connections, args.paced_rate, 1.0)),
    }
    wrk(url + "/", tmp / "get.lua", env, 4, 2)  # warm up
    _header()
    runs = []
    r = wrk(url + "/", tmp / "get.lua", env, connections, args.seconds)
    r |= {"load": "offers, paced", "target_rps": args.paced_rate}
    _print_run("offers, paced", r)
    runs.append(r)
    body = json.dumps({"item_ids": carts, "n": 50})
    cart_env = {
        "BW_BODY": body,
        "BW_KEY": cart_key,
        "BW_DELAY_MS": str(_pause_ms(2, args.cart_rate, 2.0)),
    }
    carts_process = subprocess.Popen(
        _wrk_cmd(url + "/v1/carts/offers", tmp / "post.lua", 2, args.seconds),
        env=os.environ | cart_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    r = wrk(url + "/", tmp / "get.lua", env, connections, args.seconds)
    cart_out, _ = carts_process.communicate(timeout=args.seconds + 60)
    r |= {
        "load": "offers, paced, + carts at a third of a key's limit",
        "target_rps": args.paced_rate,
        "carts": parse_wrk(cart_out, 2, args.seconds) | {"target_rps": args.cart_rate},
    }
    _print_run("offers, paced, + carts", r)
    _print_run("the carts themselves", r["carts"])
    runs.append(r)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=Path, default=bundled_dataset_path())
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--crash", action="store_true")
    parser.add_argument(
        "--paced-rate", type=float, default=200.0, help="offers per second of the paced runs"
    )
    parser.add_argument(
        "--cart-rate",
        type=float,
        default=DEFAULT_RATE_LIMIT / 60 / 3,
        help="worst-case carts per second posted alongside (default: a third of a key's limit)",
    )
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
    if shutil.which("wrk") is None:
        sys.exit("benchmarks/serving.py needs wrk (Debian: apt-get install wrk)")
    print(
        f"bundlewise {__version__}; {os.cpu_count()} CPUs, {platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    print(wrk_version)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the start: {load_at_start}")
    report: dict[str, Any] = {
        "version": __version__,
        "cpus": os.cpu_count(),
        "load_generator": wrk_version.strip(),
        "load_average_start": load_at_start,
        "runs": [],
    }
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
        paths = [f"/v1/customers/{quote(c, safe='')}/offers?n=5" for c in ids]
        keys = Path(tmp) / "keys.json"
        key = KeyStore(keys).create(("read",), "load test")
        feedback_url = f"sqlite:///{Path(tmp) / 'feedback.db'}"
        with running_server(workspace.path, feedback_url, keys, ["--rate-limit", "1000000"]) as s:
            partners = workspace.table("partners").to_pylist()
            carts = sorted({r["item_id"] for r in partners})[:50]
            report["runs"] = load_runs(s.url, paths, key, carts, args, Path(tmp))
        offer_keys = [KeyStore(keys).create(("read",), f"offers {k}") for k in range(4)]
        cart_key = KeyStore(keys).create(("read",), "carts")
        paced_url = f"sqlite:///{Path(tmp) / 'paced.db'}"
        limit = ["--rate-limit", str(DEFAULT_RATE_LIMIT)]
        with running_server(workspace.path, paced_url, keys, limit) as s:
            print(f"paced, rate limit {DEFAULT_RATE_LIMIT} per minute per key:")
            report["paced_runs"] = paced_runs(
                s.url, paths, offer_keys, cart_key, carts, args, Path(tmp)
            )
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
                served = offers_by_customer(con)
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
                report["synthetic_runs"] = [
                    r | {"items": n_items, "customers": n_customers,
                         "build_seconds": round(built, 1), "startup_seconds": round(startup, 1)}
                    for r in load_runs(s.url, paths, key, carts, args, Path(tmp))
                ]  # fmt: skip
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average at the end: {report['load_average_end']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
