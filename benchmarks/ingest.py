"""Reading speed of orders files: the bundled Parquet and CSV / CSV.gz exports of it.

Usage::

    python benchmarks/ingest.py [--repeat 5] [--json OUT.json]

For each file: ``load`` is parsing the file into columns (for CSV: DuckDB's CSV reader, every
column as text), ``read`` adds mapping and validating every value (``read_orders``), ``ingest``
adds cleaning and storing in a fresh workspace (``Workspace.ingest``). The table shows the
minimum and the median seconds over the repeats (minimum: the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bundlewise import __version__
from bundlewise.data import Workspace
from bundlewise.data.readers import load_source, read_orders
from bundlewise.pipeline import bundled_dataset_path


def _export_csv(parquet: Path, out: Path, gzip: bool) -> Path:
    table = pq.read_table(parquet)
    ts = table.column_names.index("InvoiceDate")
    table = table.set_column(ts, "InvoiceDate", table.column(ts).cast(pa.timestamp("s")))
    if gzip:
        with pa.CompressedOutputStream(str(out), "gzip") as stream:
            pacsv.write_csv(table, stream)
    else:
        pacsv.write_csv(table, out)
    return out


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/ingest.json"))
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        parquet = bundled_dataset_path()
        files = {
            "parquet": parquet,
            "csv": _export_csv(parquet, Path(tmp) / "orders.csv", gzip=False),
            "csv.gz": _export_csv(parquet, Path(tmp) / "orders.csv.gz", gzip=True),
        }
        load_source(files["parquet"])  # imports and first connection outside the timings
        for name, path in files.items():

            def load(path: Path = path) -> None:
                load_source(path)

            def read(path: Path = path) -> None:
                read_orders(path)

            def ingest(path: Path = path) -> None:
                with tempfile.TemporaryDirectory() as ws:
                    Workspace(ws).ingest(path)

            results[name] = {
                "load": _times(load, args.repeat),
                "read": _times(read, args.repeat),
                "ingest": _times(ingest, max(1, args.repeat // 2)),
            }
            size = path.stat().st_size / 1e6
            print(f"{name:8s} ({size:5.1f} MB)", end="")
            for step, values in results[name].items():
                print(
                    f"  {step} min {min(values):.2f} s, median {statistics.median(values):.2f} s",
                    end="",
                )
            print()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "bundlewise": __version__,
                },
                "seconds": results,
            },
            indent=2,
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
