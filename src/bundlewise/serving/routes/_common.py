"""What several routers share: id path parameters and bundle pricing."""

from __future__ import annotations

import math
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
    anonymously, with their pair evidence; ``cache`` keeps the quotes of this snapshot.

    Bundles are priced in order, a window at a time in one pass of the pricer
    (:meth:`Snapshot.quote_many`, the prices of ``snap.quote``): the first window is the ``n``
    bundles that could fill the answer; when some are infeasible the next window is what the
    bundles still missing need at the feasible share seen so far, so a cart prices about ``n``
    bundles however many candidates it has.
    """
    todo: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for items in bundles:
        key = tuple(sorted(items))
        if key not in seen:
            seen.add(key)
            todo.append(items)
    out: list[dict[str, Any]] = []
    done = feasible = 0
    while done < len(todo) and len(out) < n:
        missing = n - len(out)
        size = missing if feasible == 0 else math.ceil(missing * done / feasible)
        window = todo[done : done + max(missing, size)]
        done += len(window)
        quotes = _quotes(snap, window, cache)
        for items, q in zip(window, quotes, strict=True):
            if q is None or not q["feasible"]:
                continue
            feasible += 1
            if len(out) < n:
                evidence = q.get("explanation", {}).get("pairs", [])
                out.append({"item_ids": items, "quote": q, "evidence": evidence})
    return out


def _quotes(
    snap: Snapshot,
    bundles: list[list[str]],
    cache: dict[tuple[str, ...], dict[str, Any]] | None,
) -> list[dict[str, Any] | None]:
    """The anonymous quote of each bundle (``None``: not priceable), from ``cache`` where it
    has them and from one batch of the pricer for the rest (kept in ``cache``)."""
    got = [cache.get(tuple(items)) if cache is not None else None for items in bundles]
    todo = [k for k, q in enumerate(got) if q is None]
    if todo:
        priced = snap.quote_many(None, [bundles[k] for k in todo])
        for k, q in zip(todo, priced, strict=True):
            got[k] = q
            if cache is not None and q is not None:
                if len(cache) >= QUOTE_CACHE_SIZE:
                    cache.clear()
                cache[tuple(bundles[k])] = q
    return got
