"""Data layer: reading, validating and cleaning orders, and the DuckDB workspace."""

from __future__ import annotations

from bundlewise.data.catalog import derive_items, read_catalog
from bundlewise.data.cleaning import CleaningReport, CleanResult, RuleCount, clean_order_lines
from bundlewise.data.events import read_events
from bundlewise.data.readers import read_orders
from bundlewise.data.workspace import IngestResult, Workspace

__all__ = [
    "CleanResult",
    "CleaningReport",
    "IngestResult",
    "RuleCount",
    "Workspace",
    "clean_order_lines",
    "derive_items",
    "read_catalog",
    "read_events",
    "read_orders",
]
