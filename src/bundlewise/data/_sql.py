"""Small SQL helpers shared by the data layer (no validation: callers pass trusted names)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from bundlewise.config import ResourcesConfig

#: The limits every new connection gets (set by :func:`limits` for one ingest or train).
_limits: list[tuple[str, str, int]] = []


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB SQL.

    Examples
    --------
    >>> quote_ident('Customer ID')
    '"Customer ID"'
    """
    return '"' + name.replace('"', '""') + '"'


def _default_temp_directory() -> str:
    return str(Path(tempfile.gettempdir()) / "bundlewise-duckdb")


@contextlib.contextmanager
def limits(resources: ResourcesConfig) -> Iterator[None]:
    """Within the block, every connection gets ``resources``' memory limit, spill directory
    and threads (DuckDB spills joins, sorts and aggregations past the limit)."""
    _limits.append(
        (
            resources.memory_limit,
            resources.temp_directory or _default_temp_directory(),
            resources.threads,
        )
    )
    try:
        yield
    finally:
        _limits.pop()


def connect(database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the terminal progress bar off (library code never prints),
    spilling to the system's temporary directory (never the working directory), under the
    limits of the enclosing :func:`limits` block."""
    memory_limit, temp_directory, threads = (
        _limits[-1] if _limits else ("", _default_temp_directory(), 0)
    )
    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET temp_directory = $dir", {"dir": temp_directory})
    if memory_limit:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    if threads:
        con.execute("SET threads = $n", {"n": threads})
    return con


__all__ = ["connect", "limits", "quote_ident"]
