"""Training at scale: seconds and peak memory per step on synthetic stores built from the
bundled orders.

Usage::

    python benchmarks/scale.py [--store grocery] [--store bundled] [--max-rss-gb 12]
                               [--set composer.block_size=4096] [--json OUT.json]
    python benchmarks/scale.py --series grow --series fixed [--peers [--spark]] [--max-rss-gb 12]
    python benchmarks/scale.py --store grow-2m --mining-only [--spark] [--peer-timeout 300]
    python benchmarks/scale.py --build OUT.parquet [--lines N --customers N --items N]
                               [--fixed-catalog]

A synthetic store replicates the bundled Online Retail orders with new ids: ``k`` copies of
the catalog (item ``85048`` of copy 2 is ``85048-2``), each copy a random sample of whole
purchase invoices (so basket sizes and item popularity are those of the bundled data), and
the orders of one original customer in one copy split among ``m`` new customers; a copy's
titles carry its number (``WHITE HANGING HEART (2)``), so there are as many distinct titles as
items. Orders without a customer get one of their own (a store shaped like Ta-Feng, where
every line has a customer). ``k``, the sampling share and ``m`` are chosen to come closest to
the asked numbers of lines, items and customers (customers lie between the copies' own customers, at
``m = 1``, and one per order). Only lines that cleaning would keep are sampled (no
cancellations, postage or fees, zero quantities or prices), so the counts are about those of
the cleaned store (exact duplicate lines are still removed at ingest).

``grocery`` is the shape of the Ta-Feng grocery dataset (817,741 lines, 32,266 customers,
23,812 products); ``bundled`` is the bundled file itself. The series ``grow`` (0.5M, 2M, 10M
lines, the catalog growing with the store) and ``fixed`` (the same sizes on the bundled
catalog, whose copies keep their item ids) fit each step's growth exponent: the slope of
log(seconds) and log(peak memory) against log(lines), 1 being linear. ``--peers`` also mines
each store's baskets with mlxtend's fpgrowth and efficient-apriori (pairs only, the same
minimum count, each stopped after ``--peer-timeout`` seconds) and checks they find the same
pairs with the same counts.

Each store is ingested into a fresh temporary workspace and trained with the default
configuration (plus ``--set`` overrides), in two child processes as ``bundlewise ingest`` and
``bundlewise train`` would. Seconds are ``train``'s own step
timings; the peak resident memory of a step is the process's high-water mark (``VmHWM``),
reset at the start of each step (Linux only). The parent kills the child when its resident
memory passes ``--max-rss-gb`` and reports the step it was in.
"""

from __future__ import annotations

import argparse
import hashlib
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

#: (lines, customers, items) of the named synthetic shapes. ``grow-*``: the catalog grows with
#: the store (10M lines: about 400k orders, 80k products, 80k customers); ``fixed-*``: the
#: bundled catalog (about 4.2k products) with more orders and customers (85k at 10M lines).
SHAPES: dict[str, tuple[int, int, int]] = {
    "grocery": (817_741, 32_266, 23_812),
    "grow-0.5m": (500_000, 4_000, 4_000),
    "grow-2m": (2_000_000, 16_000, 16_000),
    "grow-10m": (10_000_000, 80_000, 80_000),
    "fixed-0.5m": (500_000, 4_250, 0),
    "fixed-2m": (2_000_000, 17_000, 0),
    "fixed-10m": (10_000_000, 85_000, 0),
}

#: Named series of shapes whose per-step growth exponents are fitted.
SERIES: dict[str, tuple[str, ...]] = {
    "grow": ("grow-0.5m", "grow-2m", "grow-10m"),
    "fixed": ("fixed-0.5m", "fixed-2m", "fixed-10m"),
}


def _is_fixed(shape: str) -> bool:
    return shape.startswith("fixed-")


def growth_exponents(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per step, the least-squares slope of log(seconds) and log(peak RSS) against log(lines)
    over the finished runs of one series (1.0 is linear growth)."""
    import math

    by_step: dict[str, list[tuple[float, float, float]]] = {}
    for run in runs:
        lines = run.get("n_lines")
        if not lines or "killed" in run:
            continue
        for row in run["steps"]:
            by_step.setdefault(row["step"], []).append(
                (
                    math.log(lines),
                    math.log(max(row["seconds"], 1e-3)),
                    math.log(row["peak_rss_gib"]),
                )
            )
    out: dict[str, dict[str, float]] = {}
    for step, points in by_step.items():
        if len(points) < 2:
            continue
        xs = [p[0] for p in points]
        mean_x = sum(xs) / len(xs)
        var = sum((x - mean_x) ** 2 for x in xs)

        slopes = []
        for k in (1, 2):
            mean_y = sum(p[k] for p in points) / len(points)
            slopes.append(sum((p[0] - mean_x) * (p[k] - mean_y) for p in points) / var)
        out[step] = {"seconds": round(slopes[0], 3), "peak_rss": round(slopes[1], 3)}
    return out


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
           {stock_code} AS StockCode,
           {description} AS Description, s.Quantity, s.InvoiceDate, s.Price,
           ids.customer_number AS "Customer ID", s.Country
    FROM picked p JOIN src s USING (Invoice) JOIN ids USING (new_customer)
    ORDER BY s.InvoiceDate, Invoice
) TO '{out}' (FORMAT parquet)
"""


def _counts(con: duckdb.DuckDBPyConnection, new_item_ids: bool = True) -> tuple[int, int, int]:
    """(lines, customers, product items) of the current ``picked`` sample."""
    item = "(s.StockCode, p.j)" if new_item_ids else "s.StockCode"
    row = con.execute(
        f"""
        SELECT (SELECT sum(n_lines) FROM picked),
               (SELECT count(DISTINCT new_customer) FROM picked),
               (SELECT count(DISTINCT {item}) FROM picked p JOIN src s USING (Invoice))
        """
    ).fetchone()
    assert row is not None
    return int(row[0] or 0), int(row[1]), int(row[2])


def build_store(
    out: Path,
    n_lines: int,
    n_customers: int,
    n_items: int,
    seed: int = 0,
    new_item_ids: bool = True,
) -> dict[str, Any]:
    """Write a synthetic store of about the asked shape to ``out`` (Parquet, the bundled
    file's columns) and return its parameters and counts.

    With ``new_item_ids=False`` every copy sells the bundled catalog itself (the fixed-catalog
    shape: more orders and customers, the same items; ``n_items`` is then ignored)."""
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
        if new_item_ids:
            copies = range(max(1, n_items // src_items), n_items // src_items + 3)
        else:
            copies = range(max(1, -(-n_lines // src_lines)), -(-n_lines // src_lines) + 2)
            n_items = src_items
        for k in copies:
            share = min(1.0, n_lines / (k * src_lines))

            def sample(m: int, k: int = k, share: float = share) -> tuple[int, int, int]:
                con.execute(_SAMPLE, {"k": k, "share": share, "m": m, "seed": seed})
                return _counts(con, new_item_ids)

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
        # a copy's items are new products: their titles differ too (the text encoder sees as
        # many distinct titles as a store of that size has)
        stock_code, description = (
            ("printf('%s-%d', s.StockCode, p.j)", "printf('%s (%d)', s.Description, p.j)")
            if new_item_ids
            else ("s.StockCode", "s.Description")
        )
        con.execute(
            _WRITE.format(
                out=str(out).replace("'", "''"), stock_code=stock_code, description=description
            )
        )
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
        "new_item_ids": new_item_ids,
    }


def _peak_kib() -> int:
    """This process's resident high-water mark (KiB), then reset it."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(r"VmHWM:\s+(\d+)", status)
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    return int(match.group(1)) if match else 0


def _child(orders: Path, config_toml: str, log: Path, workspace_dir: Path, phase: str) -> None:
    """One CLI command's worth of work in this process: ``ingest`` ``orders`` into the
    workspace, or ``train`` it; one JSON line per finished step."""
    from bundlewise.data import Workspace
    from bundlewise.pipeline import ingest, train

    config = load_config(_write_tmp(config_toml)) if config_toml else Config()

    def emit(record: dict[str, Any]) -> None:
        with log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    workspace = Workspace(workspace_dir)
    if phase == "ingest":
        _peak_kib()
        emit({"start": "ingest", "at": time.time()})
        start = time.perf_counter()
        ingested = ingest(workspace, orders, config)
        emit({"step": "ingest", "seconds": time.perf_counter() - start, "peak_kib": _peak_kib()})
        emit({"ingested": True, "n_lines": ingested.report.n_rows_kept})
        return
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
    """Ingest then train ``orders`` in two child processes (as ``bundlewise ingest`` and
    ``bundlewise train`` do); per-step seconds and peak RSS, or where it was stopped."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "steps.jsonl"
        log.touch()
        wall, peak, exit_code, stopped = 0.0, 0.0, 0, ""
        for phase in ("ingest", "train"):
            cmd = [sys.executable, __file__, "--child", str(orders), "--log", str(log)]
            cmd += ["--workspace", str(Path(tmp) / "ws"), "--phase", phase]
            if config_toml:
                cmd += ["--config-text", config_toml]
            ran = _watch(cmd, max_rss_gb, float("inf"))
            wall += ran["wall_seconds"]
            peak = max(peak, ran["peak_rss_gib"])
            exit_code = ran["exit_code"]
            stopped_at = time.time()
            stopped = ran.get("stopped", "")
            if stopped or exit_code != 0:
                break
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    steps = [r for r in records if "step" in r]
    done = next((r for r in records if r.get("done")), None)
    ingested = next((r for r in records if r.get("ingested")), None)
    out: dict[str, Any] = {
        "steps": [
            {"step": r["step"], "seconds": r["seconds"], "peak_rss_gib": r["peak_kib"] / 2**20}
            for r in steps
        ],
        "wall_seconds": wall,
        "peak_rss_gib": max([peak] + [r["peak_kib"] / 2**20 for r in steps]),
        "exit_code": exit_code,
    }
    if stopped:
        started = [r for r in records if "start" in r]
        out["killed"] = {
            "above_gib": max_rss_gb,
            "after_seconds": wall,
            "in_step": started[-1]["start"] if started else "?",
            "in_step_seconds": stopped_at - started[-1]["at"] if started else None,
        }
    if ingested is not None:
        out["n_lines"] = ingested["n_lines"]
    if done is not None:
        out.update({k: v for k, v in done.items() if k not in ("done", "timings")})
    return out


#: The mining tools compared on the same baskets: bundlewise's DuckDB pair statistics, the same
#: statistics on Spark local (``local[2]``; session start not counted), then mlxtend's fpgrowth
#: and efficient-apriori with the same minimum count and pairs only.
MINERS = ("bundlewise", "bundlewise-spark", "mlxtend-fpgrowth", "efficient-apriori")

_BASKETS = """
COPY (
    WITH lines AS (
        SELECT DISTINCT Invoice AS order_id, CAST(StockCode AS VARCHAR) AS item_id
        FROM read_parquet($path)
        WHERE NOT starts_with(Invoice, 'C') AND Quantity > 0 AND Price > 0
    ), sizes AS (SELECT order_id, count(*) AS n FROM lines GROUP BY order_id)
    SELECT order_id, item_id FROM lines JOIN sizes USING (order_id) WHERE n <= {max_items}
    ORDER BY order_id, item_id
) TO '{out}' (FORMAT parquet)
"""


def _pair_counts(pair_stats: Any) -> dict[tuple[str, str], int]:
    """(item_a, item_b) -> n_ab of a ``pair_stats`` Arrow table."""
    columns = [pair_stats.column(c).to_pylist() for c in ("item_a", "item_b", "n_ab")]
    return {(a, b): int(n) for a, b, n in zip(*columns, strict=True)}


def _mine_child(miner: str, baskets: Path, min_count: int, out: Path) -> None:
    """Count the pairs of ``baskets`` with ``miner``; write the count and a checksum."""
    import pyarrow.parquet as pq

    lines = pq.read_table(baskets)
    start = time.perf_counter()
    pairs: dict[tuple[str, str], int] = {}
    if miner == "bundlewise":
        from bundlewise.mining import PairMiner

        fitted = PairMiner(min_count=min_count).fit(lines)  # baskets are capped already
        seconds = time.perf_counter() - start
        n_orders = fitted.n_orders_
        t = fitted.pairs_
        pairs = _pair_counts(t)
    elif miner == "bundlewise-spark":
        from bundlewise.config import MiningConfig
        from bundlewise.spark import spark_session
        from bundlewise.spark.mining import mine_pairs

        spark = spark_session()
        spark.range(1).count()  # the JVM is up before the clock starts
        start = time.perf_counter()
        mined = mine_pairs(
            spark, spark.read.parquet(str(baskets)), MiningConfig(min_count=min_count)
        )
        t = mined.pairs_table()
        seconds = time.perf_counter() - start
        n_orders = mined.n_orders
        pairs = _pair_counts(t)
        spark.stop()
    else:
        grouped = lines.group_by("order_id").aggregate([("item_id", "list")])
        baskets_list = grouped.column("item_id_list").to_pylist()
        n_orders = len(baskets_list)
        support = min_count / n_orders
        if miner == "mlxtend-fpgrowth":
            import pandas as pd  # type: ignore[import-untyped]
            from mlxtend.frequent_patterns import fpgrowth
            from mlxtend.preprocessing import TransactionEncoder

            encoder = TransactionEncoder()
            onehot = encoder.fit(baskets_list).transform(baskets_list, sparse=True)
            frame = pd.DataFrame.sparse.from_spmatrix(onehot, columns=encoder.columns_)
            found = fpgrowth(frame, min_support=support - 1e-12, use_colnames=True, max_len=2)
            for itemset, share in zip(found["itemsets"], found["support"], strict=True):
                if len(itemset) == 2:
                    a, b = sorted(itemset)
                    pairs[(a, b)] = round(share * n_orders)
        elif miner == "efficient-apriori":
            from efficient_apriori import apriori

            itemsets, _ = apriori(
                [tuple(b) for b in baskets_list],
                min_support=support - 1e-12,
                min_confidence=0.0,
                max_length=2,
            )
            for (a, b), n in itemsets.get(2, {}).items():
                x, y = sorted((a, b))
                pairs[(x, y)] = int(n)
        else:
            raise SystemExit(f"unknown miner {miner!r}")
        seconds = time.perf_counter() - start
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(pairs):
        digest.update(f"{key[0]}\t{key[1]}\t{pairs[key]}\n".encode())
    out.write_text(
        json.dumps(
            {
                "seconds": seconds,
                "n_orders": n_orders,
                "n_pairs": len(pairs),
                "pairs_digest": digest.hexdigest(),
            }
        ),
        encoding="utf-8",
    )


def compare_miners(
    orders: Path,
    max_rss_gb: float,
    timeout_s: float,
    min_count: int = 5,
    max_items: int = 150,
    spark: bool = False,
) -> list[dict[str, Any]]:
    """Every tool of :data:`MINERS` (Spark only with ``spark``) on the same baskets (orders of
    at most ``max_items`` distinct items), each in a child process stopped after
    ``timeout_s``."""
    import importlib.util

    missing = [m for m in ("mlxtend", "efficient_apriori") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"--peers needs {' and '.join(missing)}: pip install -e './benchmarks[peers]'"
        )
    miners = [m for m in MINERS if m != "bundlewise-spark" or spark]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        baskets = Path(tmp) / "baskets.parquet"
        con = duckdb.connect()
        con.execute(
            _BASKETS.format(out=str(baskets).replace("'", "''"), max_items=int(max_items)),
            {"path": str(orders)},
        )
        con.close()
        for miner in miners:
            out = Path(tmp) / f"{miner}.json"
            cmd = [
                sys.executable,
                __file__,
                "--mine-child",
                miner,
                "--baskets",
                str(baskets),
                "--min-count",
                str(min_count),
                "--mine-out",
                str(out),
            ]
            ran = _watch(cmd, max_rss_gb, timeout_s)
            row: dict[str, Any] = {"miner": miner, **ran}
            if out.exists():
                row.update(json.loads(out.read_text(encoding="utf-8")))
            results.append(row)
    first = results[0].get("pairs_digest")
    for row in results:
        if "pairs_digest" in row:
            row["same_pairs_as_bundlewise"] = row["pairs_digest"] == first
    return results


def _watch(cmd: list[str], max_rss_gb: float, timeout_s: float) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, peak RSS, and whether it was stopped (memory or time)."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    peak, stopped = 0, ""
    while child.poll() is None:
        rss = _rss_kib(child.pid)
        peak = max(peak, rss)
        if rss > max_rss_gb * 2**20:
            stopped = f"above {max_rss_gb} GiB"
        elif time.perf_counter() - start > timeout_s:
            stopped = f"after {timeout_s:.0f} s"
        if stopped:
            child.kill()
            child.wait()
            break
        time.sleep(0.1)
    out: dict[str, Any] = {
        "wall_seconds": time.perf_counter() - start,
        "peak_rss_gib": peak / 2**20,
        "exit_code": child.returncode,
    }
    if stopped:
        out["stopped"] = stopped
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
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("ingest", "train"), help=argparse.SUPPRESS)
    parser.add_argument("--series", action="append", default=[], choices=sorted(SERIES))
    parser.add_argument("--fixed-catalog", action="store_true", help="with --build")
    parser.add_argument("--peers", action="store_true", help="compare mining tools too")
    parser.add_argument("--spark", action="store_true", help="--peers: Spark local too")
    parser.add_argument("--mining-only", action="store_true", help="only --peers, no train")
    parser.add_argument("--peer-timeout", type=float, default=300.0, help="seconds per tool")
    parser.add_argument("--mine-child", choices=MINERS, help=argparse.SUPPRESS)
    parser.add_argument("--baskets", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--min-count", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--mine-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.config_text, args.log, args.workspace, args.phase)
        return
    if args.mine_child is not None:
        _mine_child(args.mine_child, args.baskets, args.min_count, args.mine_out)
        return
    if args.build is not None:
        built = build_store(
            args.build,
            args.lines,
            args.customers,
            args.items,
            args.seed,
            new_item_ids=not args.fixed_catalog,
        )
        print(json.dumps(built, indent=2))
        return
    config_toml = _config_text(args.set)
    if config_toml:
        load_config(_write_tmp(config_toml))  # fail early on a bad override
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = list(args.store or [])
        for name in args.series:
            stores += [s for s in SERIES[name] if s not in stores]
        for store in stores or ["grocery", "bundled"]:
            facts: dict[str, Any] = {}
            if store == "bundled":
                orders = bundled_dataset_path()
            elif store in SHAPES:
                orders = Path(tmp) / f"{store}.parquet"
                facts = build_store(
                    orders, *SHAPES[store], seed=args.seed, new_item_ids=not _is_fixed(store)
                )
            else:
                orders = Path(store)
            print(f"{store}: {facts or orders.name}", flush=True)
            measured: dict[str, Any] = (
                {"steps": [], "wall_seconds": 0.0, "peak_rss_gib": 0.0}
                if args.mining_only
                else measure(orders, config_toml, args.max_rss_gb)
            )
            if args.peers or args.mining_only:
                measured["miners"] = compare_miners(
                    orders, args.max_rss_gb, args.peer_timeout, spark=args.spark
                )
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
            for row in measured.get("miners", []):
                same = row.get("same_pairs_as_bundlewise")
                state = row.get("stopped") or (
                    f"{row['n_pairs']:,} pairs, same as bundlewise: {same}"
                    if "n_pairs" in row
                    else f"exit {row['exit_code']}"
                )
                mined = f"{row['seconds']:.1f} s mining" if "seconds" in row else "-"
                print(
                    f"  {row['miner']:<20}{mined:>16}{row['peak_rss_gib']:>8.2f} GiB  {state}",
                    flush=True,
                )
        exponents = {
            name: growth_exponents([r for r in results if r["store"] in SERIES[name]])
            for name in args.series
        }
        for name, by_step in exponents.items():
            print(f"growth exponents ({name}): step, seconds, peak RSS")
            for step, fit in by_step.items():
                print(f"  {step:<18}{fit['seconds']:>8.2f}{fit['peak_rss']:>8.2f}")
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
                "growth_exponents": exponents,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
