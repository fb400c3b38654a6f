"""Customer x item interest matrices for the beam-search composer, and their blend.

``history_interest`` is the frequency x recency weight of the first composer,
:math:`\\log(1 + n_{ui})\\, 2^{-\\Delta_{ui}/h}`, as a sparse matrix; any
:class:`~bundlewise.models.Recommender` fitted on the binary customer x item matrix adds a
collaborative view; :func:`blend` mixes max-normalized views with weights chosen on a validation
window (:func:`blend_csr`: the same for sparse views, a block of customers at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from bundlewise.data import _sql


@dataclass(frozen=True)
class InterestMatrix:
    """Interest of each customer (rows) in each item (columns), sparse: a customer's row holds
    only the items they bought."""

    customer_ids: list[str]
    item_ids: list[str]
    matrix: sp.csr_matrix

    @property
    def values(self) -> npt.NDArray[np.float64]:
        """The same interest as a dense array (customers x items): for small stores only."""
        return np.asarray(self.matrix.toarray(), dtype=np.float64)

    def binary(self) -> sp.csr_matrix:
        """Which items each customer bought (for fitting recommenders)."""
        return sp.csr_matrix((self.matrix > 0).astype(np.float32))


def history_interest(order_lines: pa.Table, half_life_days: float = 120.0) -> InterestMatrix:
    """Frequency x recency interest over the items sold in ``order_lines``.

    Customers are those with an id; items are all sold items (anonymous baskets included),
    so that complements bought only by others are columns too.
    """
    items, end_ts = interest_globals(order_lines)
    weights = interest_weights(order_lines, end_ts, half_life_days)
    return interest_matrix(weights, items)


def interest_globals(order_lines: pa.Table) -> tuple[list[str], pa.Table]:
    """What the interest of every customer depends on beyond their own lines: the sorted item
    ids (the columns) and the end of the data (a one-row table ``t``, of the type of ``ts``)."""
    con = _sql.connect()
    try:
        con.register("lines", order_lines.select(["item_id", "ts"]))
        items = [r[0] for r in con.execute(
            "SELECT DISTINCT item_id FROM lines ORDER BY 1").fetchall()]  # fmt: skip
        end_ts = con.sql("SELECT max(ts) AS t FROM lines").to_arrow_table()
    finally:
        con.close()
    return items, end_ts


def interest_weights(order_lines: pa.Table, end_ts: pa.Table, half_life_days: float) -> pa.Table:
    """``customer_id, item_id, w`` of the customers with an id in ``order_lines`` (all their
    lines), recency counted back from ``end_ts`` (of :func:`interest_globals`, over all lines)."""
    known = order_lines.filter(pc.is_valid(order_lines.column("customer_id")))
    con = _sql.connect()
    try:
        con.register("known", known.select(["order_id", "customer_id", "item_id", "ts"]))
        con.register("end_ts", end_ts.select(["t"]))
        weights = con.sql(
            """
            SELECT customer_id, item_id,
                   ln(1 + count(DISTINCT order_id))
                   * pow(0.5, date_diff('second', max(ts), any_value(end_ts.t)) / 86400.0
                         / $half_life) AS w
            FROM known, end_ts GROUP BY customer_id, item_id
            """,
            params={"half_life": half_life_days},
        ).to_arrow_table()
    finally:
        con.close()
    return weights


def interest_matrix(weights: pa.Table, items: list[str]) -> InterestMatrix:
    """:func:`interest_weights` as a matrix: customers sorted, columns ``items``."""
    customers = sorted(set(pc.unique(weights.column("customer_id")).to_pylist()))
    rows = pc.index_in(weights.column("customer_id"), value_set=pa.array(customers, pa.string()))
    cols = pc.index_in(weights.column("item_id"), value_set=pa.array(items, pa.string()))
    matrix = sp.csr_matrix(
        (
            weights.column("w").to_numpy().astype(np.float64),
            (rows.to_numpy().astype(np.int64), cols.to_numpy().astype(np.int64)),
        ),
        shape=(len(customers), len(items)),
    )
    matrix.sort_indices()
    return InterestMatrix(customers, items, matrix)


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
    _check_weights(views, weights)
    total: npt.NDArray[np.float64] | None = None
    for name, weight in weights.items():
        part = weight * max_normalize(views[name])
        if total is not None and part.shape != total.shape:
            raise ValueError(f"view {name!r} has shape {part.shape}, expected {total.shape}.")
        total = part if total is None else total + part
    if total is None:
        raise ValueError("no weights given.")
    return total


def row_max(matrix: sp.csr_matrix) -> npt.NDArray[np.float64]:
    """Each row's largest stored value, 0 for a row without stored values (clipped at 0).

    Examples
    --------
    >>> row_max(sp.csr_matrix([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])).tolist()
    [2.0, 0.0, 0.0]
    """
    counts = np.diff(matrix.indptr)
    top = np.zeros(matrix.shape[0], dtype=np.float64)
    filled = counts > 0
    if matrix.nnz:
        top[filled] = np.maximum.reduceat(matrix.data, matrix.indptr[:-1][filled])
    return np.maximum(top, 0.0)


def max_normalize_csr(values: sp.spmatrix) -> sp.csr_matrix:
    """:func:`max_normalize` of a sparse matrix, without densifying it: the same values, bit
    for bit, where the matrix stores one (a copy; float64 CSR).

    Examples
    --------
    >>> max_normalize_csr(sp.csr_matrix([[2.0, -1.0, 1.0], [0.0, 0.0, 0.0]])).toarray().tolist()
    [[1.0, 0.0, 0.5], [0.0, 0.0, 0.0]]
    """
    x = sp.csr_matrix(values, dtype=np.float64, copy=True)
    np.maximum(x.data, 0.0, out=x.data)
    top = row_max(x)
    x.data /= np.repeat(np.where(top > 0, top, 1.0), np.diff(x.indptr))
    return x


def blend_csr(views: dict[str, sp.spmatrix], weights: dict[str, float]) -> sp.csr_matrix:
    """:func:`blend` of sparse views: the same values, bit for bit, as a float64 CSR matrix
    with sorted indices.

    Raises
    ------
    KeyError, ValueError
        As :func:`blend`.

    Examples
    --------
    >>> a, b = sp.csr_matrix([[1.0, 0.0]]), sp.csr_matrix([[0.0, 2.0]])
    >>> blend_csr({"a": a, "b": b}, {"a": 1.0, "b": 0.5}).toarray().tolist()
    [[1.0, 0.5]]
    """
    _check_weights(views, weights)
    total: sp.csr_matrix | None = None
    for name, weight in weights.items():
        part = sp.csr_matrix(weight * max_normalize_csr(views[name]))
        if total is not None and part.shape != total.shape:
            raise ValueError(f"view {name!r} has shape {part.shape}, expected {total.shape}.")
        total = part if total is None else sp.csr_matrix(total + part)
    if total is None:
        raise ValueError("no weights given.")
    total.sort_indices()
    return total


def _check_weights(views: Mapping[str, object], weights: dict[str, float]) -> None:
    unknown = set(weights) - set(views)
    if unknown:
        raise KeyError(f"weights for unknown views {sorted(unknown)}; views: {sorted(views)}")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0, got {weights}.")


__all__ = [
    "InterestMatrix",
    "blend",
    "blend_csr",
    "customer_sequences",
    "history_interest",
    "interest_globals",
    "interest_matrix",
    "interest_weights",
    "max_normalize",
    "max_normalize_csr",
    "row_max",
]
