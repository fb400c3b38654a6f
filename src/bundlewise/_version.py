"""The single source of the package version (read by the build backend and ``__init__``)."""

from __future__ import annotations

__version__ = "0.1.0"
