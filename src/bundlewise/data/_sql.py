"""Small SQL helpers shared by the data layer (no validation: callers pass trusted names)."""

from __future__ import annotations

import duckdb


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB SQL.

    Examples
    --------
    >>> quote_ident('Customer ID')
    '"Customer ID"'
    """
    return '"' + name.replace('"', '""') + '"'


def connect(database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the terminal progress bar off (library code never prints)."""
    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con


__all__ = ["connect", "quote_ident"]
