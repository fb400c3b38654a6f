"""Training at scale: seconds and peak memory per step on synthetic stores built from the
bundled orders.

Usage::

    python benchmarks/scale.py [--store grocery] [--store bundled] [--max-rss-gb 12]
                               [--set composer.block_size=4096] [--json OUT.json]
    python benchmarks/scale.py --build OUT.parquet [--lines N --customers N --items N]

A synthetic store replicates the bundled Online Retail orders with new ids: ``k`` copies of
the catalog (item ``85048`` of copy 2 is ``85048-2``), each copy a random sample of whole
purchase invoices (so basket sizes and item popularity are those of the bundled data), and
the orders of one original customer in one copy split among ``m`` new customers. Orders
without a customer get one of their own (a store shaped like Ta-Feng, where every line has a
customer). ``k``, the sampling share and ``m`` are chosen to come closest to the asked
numbers of lines, items and customers (customers lie between the copies' own customers, at
``m = 1``, and one per order). Only lines that cleaning would keep are sampled (no
cancellations, postage or fees, zero quantities or prices), so the counts are about those of
the cleaned store (exact duplicate lines are still removed at ingest).

``grocery`` is the shape of the Ta-Feng grocery dataset (817,741 lines, 32,266 customers,
23,812 products); ``bundled`` is the bundled file itself.

Each store is ingested into a fresh temporary workspace and trained with the default
configuration (plus ``--set`` overrides) in a child process. Seconds are ``train``'s own step
timings; the peak resident memory of a step is the process's high-water mark (``VmHWM``),
reset at the start of each step (Linux only). The parent kills the child when its resident
memory passes ``--max-rss-gb`` and reports the step it was in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import duckdb

from bundlewise import __version__
from bundlewise.config import ONLINE_RETAIL_NON_PRODUCTS, Config, load_config
from bundlewise.pipeline import bundled_dataset_path

#: (lines, customers, items) of the named synthetic shapes.
SHAPES: dict[str, tuple[int, int, int]] = {
    "grocery": (817_741, 32_266, 23_812),
}

_PURCHASES = """
CREATE OR REPLACE TEMP TABLE src AS
SELECT *, "Customer ID" AS cust FROM read_parquet($path)
WHERE NOT starts_with(Invoice, 'C') AND Quantity > 0 AND Price > 0
  AND NOT regexp_matches(StockCode, $pattern, 'i');
CREATE OR REPLACE TEMP TABLE invoices AS
SELECT Invoice, any_value(cust) AS cust, count(*) AS n_lines FROM src GROUP BY Invoice
"""

_SAMPLE = """
CREATE OR REPLACE TEMP TABLE picked AS
SELECT i.Invoice, c.j, i.cust, i.n_lines,
       CASE WHEN i.cust IS NULL THEN printf('a%s-%d', i.Invoice, c.j)
            ELSE printf('%d-%d-%d', CAST(i.cust AS BIGINT), c.j,
                        hash(i.Invoice, c.j, $seed + 1) % $m) END AS new_customer
FROM invoices i, range($k) c(j)
WHERE hash(i.Invoice, c.j, $seed) % 1000000 < $share * 1000000
"""

_WRITE = """
COPY (
    WITH ids AS (
        SELECT new_customer, CAST(100000 + row_number() OVER (ORDER BY new_customer) AS DOUBLE)
                   AS customer_number
        FROM (SELECT DISTINCT new_customer FROM picked)
    )
    SELECT printf('%d%s', p.j, s.Invoice) AS Invoice,
           printf('%s-%d', s.StockCode, p.j) AS StockCode,
           s.Description, s.Quantity, s.InvoiceDate, s.Price,
           ids.customer_number AS "Customer ID", s.Country
    FROM picked p JOIN src s USING (Invoice) JOIN ids USING (new_customer)
    ORDER BY s.InvoiceDate, Invoice
) TO '{out}' (FORMAT parquet)
"""


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """(lines, customers, product items) of the current ``picked`` sample."""
    row = con.execute(
        """
        SELECT (SELECT sum(n_lines) FROM picked),
               (SELECT count(DISTINCT new_customer) FROM picked),
               (SELECT count(DISTINCT (s.StockCode, p.j)) FROM picked p JOIN src s USING (Invoice))
        """
    ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1]), int(row[2])


def build_store(
    out: Path, n_lines: int, n_customers: int, n_items: int, seed: int = 0
) -> dict[str, Any]:
    """Write a synthetic store of about the asked shape to ``out`` (Parquet, the bundled
    file's columns) and return its parameters and counts."""
    pattern = "^(" + "|".join(f"(?:{p})" for p in ONLINE_RETAIL_NON_PRODUCTS) + ")$"
    con = duckdb.connect()
    try:
        source, invoices = _PURCHASES.split(";\n")
        con.execute(source, {"path": str(bundled_dataset_path()), "pattern": pattern})
        con.execute(invoices)
        src_lines, src_items = con.execute(
            "SELECT count(*), count(DISTINCT StockCode) FROM src"
        ).fetchone() or (0, 0)
        best: tuple[float, int, float, int, tuple[int, int, int]] | None = None
        for k in range(max(1, n_items // src_items), n_items // src_items + 3):
            share = min(1.0, n_lines / (k * src_lines))

            def sample(m: int, k: int = k, share: float = share) -> tuple[int, int, int]:
                con.execute(_SAMPLE, {"k": k, "share": share, "m": m, "seed": seed})
                return _counts(con)

            # customers grow with m: the smallest m that reaches the target, or the one below
            low, high = 1, 256
            while low < high:
                mid = (low + high) // 2
                if sample(mid)[1] >= n_customers:
                    high = mid
                else:
                    low = mid + 1
            tried = {m: sample(m) for m in {max(1, low - 1), low}}
            m = min(tried, key=lambda m: abs(tried[m][1] / n_customers - 1))
            counts = tried[m]
            m_miss = abs(counts[1] / n_customers - 1)
            miss = abs(counts[0] / n_lines - 1) + abs(counts[2] / n_items - 1) + m_miss
            if best is None or miss < best[0]:
                best = (miss, k, share, m, counts)
        assert best is not None
        _, k, share, m, counts = best
        con.execute(_SAMPLE, {"k": k, "share": share, "m": m, "seed": seed})
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute(_WRITE.format(out=str(out).replace("'", "''")))
    finally:
        con.close()
    return {
        "copies": k,
        "invoice_share": round(share, 4),
        "customer_split": m,
        "seed": seed,
        "n_lines": counts[0],
        "n_customers": counts[1],
        "n_items": counts[2],
    }


def _peak_kib() -> int:
    """This process's resident high-water mark (KiB), then reset it."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(r"VmHWM:\s+(\d+)", status)
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    return int(match.group(1)) if match else 0


def _child(orders: Path, config_toml: str, log: Path) -> None:
    """Ingest and train ``orders`` in a fresh workspace; one JSON line per finished step."""
    from bundlewise.data import Workspace
    from bundlewise.pipeline import ingest, train

    config = load_config(_write_tmp(config_toml)) if config_toml else Config()

    def emit(record: dict[str, Any]) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(tmp)
        _peak_kib()
        emit({"start": "ingest", "at": time.time()})
        start = time.perf_counter()
        ingested = ingest(workspace, orders, config)
        emit({"step": "ingest", "seconds": time.perf_counter() - start, "peak_kib": _peak_kib()})
        current: list[Any] = [None, 0.0]

        def on_step(message: str) -> None:
            now = time.perf_counter()
            if current[0] is not None:
                emit({"step": current[0], "seconds": now - current[1], "peak_kib": _peak_kib()})
            else:
                _peak_kib()
            current[:] = [None, now] if " skipped: " in message else [message, now]
            if current[0] is not None:
                emit({"start": message, "at": time.time()})

        result = train(workspace, config, on_step)
        if current[0] is not None:
            emit(
                {
                    "step": current[0],
                    "seconds": time.perf_counter() - current[1],
                    "peak_kib": _peak_kib(),
                }
            )
        emit(
            {
                "done": True,
                "timings": result.timings,
                "n_lines": ingested.report.n_rows_kept,
                "n_orders": result.n_orders,
                "n_customers": result.n_customers,
                "n_offers": result.n_offers,
                "n_pairs": result.n_pairs,
            }
        )


def _write_tmp(text: str) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False, encoding="utf-8")
    with handle:
        handle.write(text)
    return Path(handle.name)


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) if match else 0


def measure(orders: Path, config_toml: str, max_rss_gb: float) -> dict[str, Any]:
    """Train ``orders`` in a child process; per-step seconds and peak RSS, or where it was
    killed."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "steps.jsonl"
        log.touch()
        cmd = [sys.executable, __file__, "--child", str(orders), "--log", str(log)]
        if config_toml:
            cmd += ["--config-text", config_toml]
        start = time.perf_counter()
        child = subprocess.Popen(cmd)
        peak, killed, killed_at = 0, False, 0.0
        while child.poll() is None:
            rss = _rss_kib(child.pid)
            peak = max(peak, rss)
            if rss > max_rss_gb * 2**20:
                killed_at = time.time()
                child.kill()
                killed = True
                child.wait()
                break
            time.sleep(0.1)
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    steps = [r for r in records if "step" in r]
    done = next((r for r in records if r.get("done")), None)
    out: dict[str, Any] = {
        "steps": [
            {"step": r["step"], "seconds": r["seconds"], "peak_rss_gib": r["peak_kib"] / 2**20}
            for r in steps
        ],
        "wall_seconds": wall,
        "peak_rss_gib": max([peak / 2**20] + [r["peak_kib"] / 2**20 for r in steps]),
        "exit_code": child.returncode,
    }
    if killed:
        started = [r for r in records if "start" in r]
        out["killed"] = {
            "above_gib": max_rss_gb,
            "after_seconds": wall,
            "in_step": started[-1]["start"] if started else "?",
            "in_step_seconds": killed_at - started[-1]["at"] if started else None,
        }
    if done is not None:
        out.update({k: v for k, v in done.items() if k not in ("done", "timings")})
    return out


def _config_text(overrides: list[str]) -> str:
    """TOML for ``section.key=value`` overrides (values parsed as TOML)."""
    sections: dict[str, list[str]] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        if not name or not value:
            raise SystemExit(f"--set {item!r}: expected section.key=value")
        tomllib.loads(f"x = {value}")  # a valid TOML value
        sections.setdefault(section, []).append(f"{name} = {value}")
    return "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", action="append", help="grocery, bundled or a file")
    parser.add_argument("--build", type=Path, help="only write a synthetic store here")
    parser.add_argument("--lines", type=int, default=SHAPES["grocery"][0])
    parser.add_argument("--customers", type=int, default=SHAPES["grocery"][1])
    parser.add_argument("--items", type=int, default=SHAPES["grocery"][2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rss-gb", type=float, default=12.0)
    parser.add_argument("--set", action="append", default=[], help="config override a.b=value")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results/scale.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config-text", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.config_text, args.log)
        return
    if args.build is not None:
        built = build_store(args.build, args.lines, args.customers, args.items, args.seed)
        print(json.dumps(built, indent=2))
        return
    config_toml = _config_text(args.set)
    if config_toml:
        load_config(_write_tmp(config_toml))  # fail early on a bad override
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.store or ["grocery", "bundled"]:
            facts: dict[str, Any] = {}
            if store == "bundled":
                orders = bundled_dataset_path()
            elif store in SHAPES:
                orders = Path(tmp) / f"{store}.parquet"
                facts = build_store(orders, *SHAPES[store], seed=args.seed)
            else:
                orders = Path(store)
            print(f"{store}: {facts or orders.name}", flush=True)
            measured = measure(orders, config_toml, args.max_rss_gb)
            results.append({"store": store, "synthetic": facts, **measured})
            print(f"{'step':<18}{'seconds':>10}{'peak RSS GiB':>14}")
            for row in measured["steps"]:
                print(f"{row['step']:<18}{row['seconds']:>10.1f}{row['peak_rss_gib']:>14.2f}")
            if "killed" in measured:
                k = measured["killed"]
                print(
                    f"killed in {k['in_step']} above {k['above_gib']} GiB after "
                    f"{k['in_step_seconds'] or 0:.0f} s in that step "
                    f"({k['after_seconds']:.0f} s in all)"
                )
            print(
                f"total {measured['wall_seconds']:.1f} s, peak {measured['peak_rss_gib']:.2f} GiB"
                f"\n",
                flush=True,
            )
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "benchmark": "scale",
                "version": __version__,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average_at_end": load,
                "overrides": args.set,
                "stores": results,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
