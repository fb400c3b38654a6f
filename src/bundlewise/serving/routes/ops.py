"""``/health`` and ``/metrics`` (no key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import generate_latest

from bundlewise._version import __version__
from bundlewise.serving.deps import StateDep
from bundlewise.serving.schemas import HealthOut

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthOut)
async def health(state: StateDep) -> dict[str, Any]:
    """Liveness and readiness (no key needed). ``degraded`` when the feedback store cannot take
    a write now (locked, read-only, unreachable): offers, carts and quotes still answer;
    feedback answers 503."""
    snap = state.snapshot
    problem = await state.store_problem()
    return {
        "status": "ok" if problem is None else "degraded",
        "version": __version__,
        "model_version": snap.model_version,
        "customers": snap.n_customers,
        "feedback_store": problem is None,
        "feedback_store_detail": problem,
    }


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics (no key needed)."""
    return Response(generate_latest(state.metrics.registry), media_type="text/plain; version=0.0.4")
