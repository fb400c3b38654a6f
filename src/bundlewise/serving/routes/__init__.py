"""One router per resource, aggregated by :func:`bundlewise.serving.app.create_app`."""

from __future__ import annotations

from bundlewise.serving.routes import (
    admin,
    carts,
    dashboard,
    docs,
    feedback,
    items,
    learning,
    offers,
    ops,
    quotes,
)

ROUTERS = [
    offers.router,
    carts.router,
    quotes.router,
    feedback.router,
    learning.router,
    items.router,
    admin.router,
    dashboard.router,
    ops.router,
    docs.router,
]

__all__ = ["ROUTERS"]
