"""Command-line interface (typer)."""

from __future__ import annotations
