"""``POST /v1/admin/reload``: switch to the workspace's newest trained model."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from fastapi import APIRouter

from bundlewise.exceptions import BundlewiseError
from bundlewise.serving.deps import Admin, StateDep
from bundlewise.serving.middleware import ApiError
from bundlewise.serving.schemas import ERRORS, RELOAD_FAILED, ReloadOut

logger = logging.getLogger("bundlewise.serving")

router = APIRouter(tags=["admin"])


@router.post("/v1/admin/reload", response_model=ReloadOut, responses={**ERRORS, **RELOAD_FAILED})
async def reload_model(_: Admin, state: StateDep) -> dict[str, Any]:
    """Load the workspace's newest trained model and switch to it atomically; requests in
    flight finish on the old one. A missing or corrupt model answers 409 with the reason, and
    the server goes on serving the model it had."""
    start = time.perf_counter()
    old = state.snapshot.model_version
    try:
        new = await anyio.to_thread.run_sync(state.reload)
    except BundlewiseError as exc:
        raise ApiError(
            409, "reload_failed", f"model not reloaded (still serving {old}): {exc}"
        ) from None
    except Exception as exc:  # a corrupt workspace: any reader's error, said in one line
        logger.warning("reload failed: %s: %s", type(exc).__name__, exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ApiError(
            409,
            "reload_failed",
            f"model not reloaded (still serving {old}): the workspace could not be read "
            f"({type(exc).__name__}: {first})",
        ) from None
    return {
        "model_version": new.snapshot.model_version,
        "customers": new.snapshot.n_customers,
        "seconds": round(time.perf_counter() - start, 3),
    }
