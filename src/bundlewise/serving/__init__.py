"""HTTP serving: an authenticated FastAPI app over a trained workspace, a durable feedback store,
and the merchant dashboard."""

from __future__ import annotations

from bundlewise.serving.settings import ServeSettings

__all__ = ["ServeSettings"]
