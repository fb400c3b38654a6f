"""Small SQL helpers shared by the data layer (no validation: callers pass trusted names)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB SQL.

    Examples
    --------
    >>> quote_ident('Customer ID')
    '"Customer ID"'
    """
    return '"' + name.replace('"', '""') + '"'


__all__ = ["quote_ident"]
