"""Interest views for the beam composer: history weights, normalization, blending."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from bundlewise.composer.interest import blend, history_interest, max_normalize

END = datetime(2010, 6, 30)


def _lines(rows: list[tuple[str, str | None, str, datetime]]) -> pa.Table:
    return pa.table(
        {
            "order_id": [r[0] for r in rows],
            "customer_id": pa.array([r[1] for r in rows], pa.string()),
            "item_id": [r[2] for r in rows],
            "ts": pa.array([r[3] for r in rows], pa.timestamp("us")),
        }
    )


def test_history_interest_is_frequency_times_recency() -> None:
    lines = _lines(
        [
            ("1", "u", "A", END - timedelta(days=120)),
            ("2", "u", "A", END - timedelta(days=120)),
            ("3", "u", "B", END),
            ("4", None, "C", END),  # anonymous: a column, never a row
        ]
    )
    interest = history_interest(lines, half_life_days=120.0)
    assert interest.customer_ids == ["u"]
    assert interest.item_ids == ["A", "B", "C"]
    a, b, c = interest.values[0]
    assert a == pytest.approx(math.log(3) * 0.5)  # two orders, one half-life ago
    assert b == pytest.approx(math.log(2))  # one order, today
    assert c == 0.0
    assert interest.binary().toarray().tolist() == [[1.0, 1.0, 0.0]]


def test_max_normalize_and_blend() -> None:
    views = {"h": np.array([[2.0, 1.0, 0.0]]), "k": np.array([[0.0, -3.0, 4.0]])}
    assert max_normalize(views["k"]).tolist() == [[0.0, 0.0, 1.0]]
    mixed = blend(views, {"h": 1.0, "k": 0.5})
    np.testing.assert_allclose(mixed, [[1.0, 0.5, 0.5]])
    assert blend(views, {"h": 1.0}).tolist() == [[1.0, 0.5, 0.0]]
    with pytest.raises(KeyError, match="unknown views"):
        blend(views, {"x": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        blend(views, {"h": -1.0})
    with pytest.raises(ValueError, match="shape"):
        blend({"h": np.ones((1, 3)), "k": np.ones((2, 3))}, {"h": 1.0, "k": 1.0})
