"""What several routers share: id path parameters and bundle pricing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from bundlewise.serving.model import Snapshot
from bundlewise.serving.schemas import MAX_ID_CHARS

#: Any text without control characters: every id the data layer keeps (it trims and keeps the
#: rest, ``@ + # / space`` and non-ASCII letters included).
NO_CONTROL = r"^[^\x00-\x1f\x7f]+$"

_URL_ENCODED = (
    " Any id the data layer accepts, percent-encoded as a URL path segment: `/` as `%2F`, "
    "`#` as `%23`, `?` as `%3F`, `%` as `%25`, a space as `%20`, non-ASCII as UTF-8 bytes "
    f"(`é` as `%C3%A9`). 1 to {MAX_ID_CHARS} characters, no control characters."
)

CustomerPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_CONTROL,
        description="The customer id." + _URL_ENCODED,
    ),
]
ItemPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_CONTROL,
        description="The item id." + _URL_ENCODED,
    ),
]


#: Anonymous quotes kept per model (an exact cache: the anonymous price of a bundle depends
#: only on the model); emptied on reload and when it reaches this size.
QUOTE_CACHE_SIZE = 200_000


def priced_bundles(
    snap: Snapshot,
    bundles: list[list[str]],
    n: int,
    cache: dict[tuple[str, ...], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The first ``n`` feasible bundles of ``bundles`` (duplicates skipped), priced
    anonymously, with their pair evidence; ``cache`` keeps the quotes of this snapshot."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for items in bundles:
        key = tuple(sorted(items))
        if key in seen:
            continue
        seen.add(key)
        q = cache.get(tuple(items)) if cache is not None else None
        if q is None:
            try:
                q = snap.quote(None, items)
            except (KeyError, ValueError):
                continue
            if cache is not None:
                if len(cache) >= QUOTE_CACHE_SIZE:
                    cache.clear()
                cache[tuple(items)] = q
        if not q["feasible"]:
            continue
        evidence = q.get("explanation", {}).get("pairs", [])
        out.append({"item_ids": items, "quote": q, "evidence": evidence})
        if len(out) == n:
            break
    return out
