"""The train progress callback: two-level reports, one-argument callables still accepted."""

from __future__ import annotations

import pyarrow as pa

from bundlewise.pipeline import _titles_are_ids, _two_level


def test_one_argument_callable_hears_step_starts_only() -> None:
    heard: list[str] = []
    report = _two_level(heard.append)
    report("mine")
    report("personalize", 3, 10)
    report("price")
    assert heard == ["mine", "price"]


def test_full_callable_hears_items_done() -> None:
    heard: list[tuple[str, int | None, int | None]] = []

    def progress(step: str, done: int | None = None, total: int | None = None) -> None:
        heard.append((step, done, total))

    report = _two_level(progress)
    report("personalize")
    report("personalize", 4, 9)
    assert heard == [("personalize", None, None), ("personalize", 4, 9)]


def test_titles_that_are_only_ids_are_detected() -> None:
    ids = pa.table({"item_id": ["A", "B"], "title": ["A", None]})
    named = pa.table({"item_id": ["A", "B"], "title": ["A", "Red mug"]})
    assert _titles_are_ids(ids)
    assert not _titles_are_ids(named)
