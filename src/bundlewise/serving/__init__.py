"""HTTP serving: an authenticated FastAPI app over a trained workspace, a durable feedback store,
and the merchant dashboard.

The submodules :mod:`~bundlewise.serving.buckets` and :mod:`~bundlewise.serving.snapshot` (the
partitioned served-offers snapshot that ``train`` writes) need no ``serve`` extra; the rest does,
so :class:`ServeSettings` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bundlewise.serving.settings import ServeSettings


def __getattr__(name: str) -> Any:
    if name == "ServeSettings":
        from bundlewise.serving.settings import ServeSettings

        return ServeSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServeSettings"]
