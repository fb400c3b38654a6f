"""``GET /v1/learning``: what the learning loop has learned (policy, budget, posterior)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from bundlewise.serving.deps import Reader, StateDep
from bundlewise.serving.schemas import ERRORS, LearningOut

router = APIRouter(tags=["learning"])


@router.get("/v1/learning", response_model=LearningOut, responses={**ERRORS})
async def learning_state(_: Reader, state: StateDep) -> dict[str, Any]:
    """The learning loop now: the policy version serving, its explore rate, the exploration
    budget spent, per segment the prior and learned price sensitivity, and the whole posterior
    (equal to what `bundlewise learn` replays from the same feedback store).
    ``enabled: false`` on a server that does not learn."""
    loop = state.learning
    if loop is None:
        return {"enabled": False, "model_version": state.snapshot.model_version}
    # The copy waits for the learning lock (a feedback commit): off the event loop.
    return await anyio.to_thread.run_sync(loop.summary)
