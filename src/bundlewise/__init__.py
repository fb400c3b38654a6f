"""bundlewise."""
from __future__ import annotations
from bundlewise._version import __version__
__all__ = ["__version__"]
