"""Memory hygiene between the steps of a big ingest or train."""

from __future__ import annotations

import gc

import pyarrow as pa


def release_unused_memory() -> None:
    """Give the memory Arrow's pool keeps for reuse back to the operating system.

    After a step frees large tables the pool holds their pages (gigabytes on a 10M-line store),
    so the next step's peak would start from there.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()


__all__ = ["release_unused_memory"]
