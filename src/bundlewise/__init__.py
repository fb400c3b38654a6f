"""bundlewise: personalized product bundles with personalized, guard-railed prices.

The public API is :mod:`bundlewise.pipeline` (ingest, train, customer offers, demo); the pieces
live in ``data`` (reading, cleaning, workspace), ``mining`` (pair statistics), ``composer``
(candidate bundles and offers) and ``pricing`` (guardrails, price response, optimizer).
"""

from __future__ import annotations

from bundlewise._version import __version__
from bundlewise.config import Config, load_config
from bundlewise.data import Workspace
from bundlewise.exceptions import (
    BundlewiseError,
    DataValidationError,
    GuardrailViolation,
    NotFittedError,
)

__all__ = [
    "BundlewiseError",
    "Config",
    "DataValidationError",
    "GuardrailViolation",
    "NotFittedError",
    "Workspace",
    "__version__",
    "load_config",
]
