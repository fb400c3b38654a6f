"""Customer x item interest matrices for the beam-search composer, and their blend.

``history_interest`` is the frequency x recency weight of the first composer,
:math:`\\log(1 + n_{ui})\\, 2^{-\\Delta_{ui}/h}`; any :class:`~bundlewise.models.Recommender`
fitted on the binary customer x item matrix adds a collaborative view; :func:`blend` mixes
max-normalized views with weights chosen on a validation window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from bundlewise.data import _sql


@dataclass(frozen=True)
class InterestMatrix:
    """Dense interest of each customer (rows) in each item (columns)."""

    customer_ids: list[str]
    item_ids: list[str]
    values: npt.NDArray[np.float64]

    def binary(self) -> sp.csr_matrix:
        """Which items each customer bought (for fitting recommenders)."""
        return sp.csr_matrix((self.values > 0).astype(np.float32))


def history_interest(order_lines: pa.Table, half_life_days: float = 120.0) -> InterestMatrix:
    """Frequency x recency interest over the items sold in ``order_lines``.

    Customers are those with an id; items are all sold items (anonymous baskets included),
    so that complements bought only by others are columns too.
    """
    known = order_lines.filter(pc.is_valid(order_lines.column("customer_id")))
    con = _sql.connect()
    try:
        con.register("lines", order_lines.select(["item_id", "ts"]))
        con.register("known", known.select(["order_id", "customer_id", "item_id", "ts"]))
        items = [r[0] for r in con.execute(
            "SELECT DISTINCT item_id FROM lines ORDER BY 1").fetchall()]  # fmt: skip
        rows = con.execute(
            """
            WITH end_ts AS (SELECT max(ts) AS t FROM lines)
            SELECT customer_id, item_id,
                   ln(1 + count(DISTINCT order_id))
                   * pow(0.5, date_diff('second', max(ts), any_value(end_ts.t)) / 86400.0
                         / $half_life) AS w
            FROM known, end_ts GROUP BY customer_id, item_id
            """,
            {"half_life": half_life_days},
        ).fetchall()
    finally:
        con.close()
    customers = sorted({r[0] for r in rows})
    row_of = {c: i for i, c in enumerate(customers)}
    col_of = {item: j for j, item in enumerate(items)}
    values = np.zeros((len(customers), len(items)), dtype=np.float64)
    for customer, item, weight in rows:
        values[row_of[customer], col_of[item]] = weight
    return InterestMatrix(customers, items, values)


def customer_sequences(
    order_lines: pa.Table, interest: InterestMatrix, max_len: int = 200
) -> list[npt.NDArray[np.int64]]:
    """Each customer's purchased items as column indices of ``interest``, oldest first.

    One entry per row of ``interest``; repeated purchases are kept (in time order), and only
    the last ``max_len`` items.
    """
    col_of = {item: j for j, item in enumerate(interest.item_ids)}
    row_of = {c: i for i, c in enumerate(interest.customer_ids)}
    known = order_lines.filter(pc.is_valid(order_lines.column("customer_id")))
    known = known.sort_by([("ts", "ascending"), ("order_id", "ascending")])
    sequences: list[list[int]] = [[] for _ in interest.customer_ids]
    for customer, item in zip(
        known.column("customer_id").to_pylist(), known.column("item_id").to_pylist(), strict=True
    ):
        row = row_of.get(customer)
        if row is not None and item in col_of:
            sequences[row].append(col_of[item])
    return [np.asarray(seq[-max_len:], dtype=np.int64) for seq in sequences]


def max_normalize(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Clip at 0 and divide each row by its maximum (rows of zeros stay zero).

    Examples
    --------
    >>> max_normalize([[2.0, -1.0, 1.0], [0.0, 0.0, 0.0]]).tolist()
    [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]
    """
    x = np.maximum(np.asarray(values, dtype=np.float64), 0.0)
    top = x.max(axis=1, keepdims=True)
    return np.asarray(x / np.where(top > 0, top, 1.0), dtype=np.float64)


def blend(views: dict[str, npt.ArrayLike], weights: dict[str, float]) -> npt.NDArray[np.float64]:
    """Weighted sum of max-normalized views (same shape); views without a weight are ignored.

    Raises
    ------
    KeyError
        A weight names no view.
    ValueError
        Negative weights or shapes that differ.

    Examples
    --------
    >>> blend({"a": [[1.0, 0.0]], "b": [[0.0, 2.0]]}, {"a": 1.0, "b": 0.5}).tolist()
    [[1.0, 0.5]]
    """
    unknown = set(weights) - set(views)
    if unknown:
        raise KeyError(f"weights for unknown views {sorted(unknown)}; views: {sorted(views)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0, got {weights}.")
    total: npt.NDArray[np.float64] | None = None
    for name, weight in weights.items():
        part = weight * max_normalize(views[name])
        if total is not None and part.shape != total.shape:
            raise ValueError(f"view {name!r} has shape {part.shape}, expected {total.shape}.")
        total = part if total is None else total + part
    if total is None:
        raise ValueError("no weights given.")
    return total


__all__ = ["InterestMatrix", "blend", "customer_sequences", "history_interest", "max_normalize"]
