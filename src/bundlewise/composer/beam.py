"""Beam search over item sets: interest x complementarity.

Given each customer's interest in every item (any recommender or a blend of them) and the mined
complement pairs, grow bundles one item at a time:

1. seeds: the customer's ``n_anchors`` most interesting items;
2. pairs: each seed with each of its complements (shrunk lift above 1); keep the best
   ``beam_width``;
3. triples: each kept pair with an item that complements both of its members; keep the best
   ``beam_width``;

and rank all pairs and triples by

.. math::

    \\mathrm{score}(u, B) = \\overline{s_{u,B}}
    \\times \\overline{\\log \\widehat{\\mathrm{lift}}}_B

(mean interest of the items, interest max-normalized per customer, times the mean log shrunk
lift over the bundle's pairs). The output has the columns of
:func:`bundlewise.composer.compose_candidates`, so :func:`bundlewise.composer.price_offers`
prices it unchanged.

Customers are handled in blocks (``composer.block_size``): a block's interest is a sparse
matrix (only the items it bought and their neighbours), and its search is array operations over
all its customers at once, so memory grows with the block, not with customers x items. The
result does not depend on the block size and is, bit for bit, what searching one customer at a
time over dense interest gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from bundlewise.composer.interest import InterestMatrix, row_max
from bundlewise.config import ComposerConfig

#: ``on_progress(done, total)``: items done inside a long step.
ItemProgress = Callable[[int, int], None]


#: Columns of a block of beam-search output (as :data:`bundlewise.composer.CANDIDATE_COLUMNS`).
_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("offer_rank", pa.int32()),
        ("item_ids", pa.list_(pa.string())),
        ("score", pa.float64()),
        ("source", pa.string()),
        ("anchor_id", pa.string()),
        ("anchor_n_orders", pa.int64()),
        ("min_pair_count", pa.int64()),
        ("min_pair_lift", pa.float64()),
    ]
)

#: The Arrow schema of candidate tables (:data:`bundlewise.composer.CANDIDATE_COLUMNS`).
CANDIDATE_SCHEMA = _SCHEMA

#: Interest blocks: (customer ids, interest of those customers as CSR rows).
InterestBlocks = Iterable[tuple[Sequence[str], sp.csr_matrix]]

#: Cells (customers x items) of the dense scratch array the search looks interest up in.
SCRATCH_CELLS = 2**22


def _ranges(starts: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenated ``arange(start, start + length)`` for each pair, in order."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(total, dtype=np.int64)


class _Complements:
    """Each item's ``max_partners`` best complements (shrunk lift above 1), over a vocabulary
    of integer ids sorted like the item strings, so that integer order is string order.

    Item ``a``'s complements are ``dst[indptr[a]:indptr[a + 1]]`` with their log shrunk lift
    ``c`` and co-purchase count ``n``, in the order of the search: strongest lift first, then
    most co-purchases, then partner id.
    """

    def __init__(self, item_ids: Sequence[str], pairs: pa.Table, max_partners: int) -> None:
        lifts = pairs.column("lift_shrunk").to_numpy(zero_copy_only=False)
        keep = np.flatnonzero(lifts > 1.0)
        item_a = pc.take(pairs.column("item_a"), keep).to_pylist()
        item_b = pc.take(pairs.column("item_b"), keep).to_pylist()
        self.vocab: list[str] = sorted(set(item_ids).union(item_a, item_b))
        index = {item: k for k, item in enumerate(self.vocab)}
        #: vocabulary id of each interest column
        self.of_column = np.fromiter((index[i] for i in item_ids), np.int64, len(item_ids))
        a = np.fromiter((index[i] for i in item_a), np.int64, len(item_a))
        b = np.fromiter((index[i] for i in item_b), np.int64, len(item_b))
        c = np.array([math.log(x) for x in lifts[keep].tolist()], dtype=np.float64)
        n = pairs.column("n_ab").to_numpy(zero_copy_only=False)[keep].astype(np.int64)
        src, dst = np.concatenate([a, b]), np.concatenate([b, a])
        cc, nn = np.concatenate([c, c]), np.concatenate([n, n])
        order = np.lexsort((dst, -nn, -cc, src))
        src, dst, cc, nn = src[order], dst[order], cc[order], nn[order]
        size = len(self.vocab)
        first = np.searchsorted(src, np.arange(size + 1))
        kept = np.arange(src.size) - first[src] < max_partners
        src, self.dst, self.c, self.n = src[kept], dst[kept], cc[kept], nn[kept]
        self.indptr = np.searchsorted(src, np.arange(size + 1)).astype(np.int64)
        # (a, b) -> position in the lists above, to look a complement up
        pair_key = src * size + self.dst
        self._order = np.argsort(pair_key, kind="stable")
        self._keys = pair_key[self._order]

    def find(
        self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
        """Whether ``b`` is among ``a``'s complements, and its position in the lists."""
        key = a * len(self.vocab) + b
        pos = np.minimum(np.searchsorted(self._keys, key), max(self._keys.size - 1, 0))
        if self._keys.size == 0:
            return np.zeros(key.shape, dtype=np.bool_), pos
        return self._keys[pos] == key, self._order[pos]


def _first_of_groups(*keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """For rows sorted by ``keys``: True where a new group of equal keys starts."""
    n = keys[0].size
    new = np.zeros(n, dtype=np.bool_)
    if n:
        new[0] = True
        for key in keys:
            new[1:] |= key[1:] != key[:-1]
    return new


def _rank_in_groups(group: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """For rows sorted by ``group``: 0, 1, 2... within each run of equal values."""
    starts = np.flatnonzero(_first_of_groups(group))
    lengths = np.diff(np.r_[starts, group.size])
    return np.arange(group.size, dtype=np.int64) - np.repeat(starts, lengths)


def _top_per_group(
    group: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
    k: int,
    ties: tuple[npt.NDArray[np.int64], ...],
) -> npt.NDArray[np.int64]:
    """Row indices of each group's ``k`` highest values (values >= 0, groups < 2**31), sorted
    by (group, value descending, then ``ties`` ascending in the order given).

    One integer sort on a float32 copy of the values first (float32 rounding keeps the order,
    ties aside): everything tied with or above a group's k-th float32 value holds its exact
    top k, and only those few rows are then sorted exactly.
    """
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    bits = value.astype(np.float32).view(np.int32).astype(np.int64)  # monotone for values >= 0
    key = (group.astype(np.int64) << 32) | (0x7FFFFFFF - bits)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(_first_of_groups(group[order]))
    sizes = np.diff(np.r_[starts, group.size])
    cut = np.repeat(key[starts + np.minimum(sizes, k) - 1], sizes)
    near = order[key <= cut]
    exact = near[np.lexsort((*(t[near] for t in reversed(ties)), -value[near], group[near]))]
    return exact[_rank_in_groups(group[exact]) < k]


def _group_order(
    keys: tuple[npt.NDArray[np.int64], ...], bounds: tuple[int, ...]
) -> npt.NDArray[np.int64]:
    """A stable sort of the rows by ``keys`` (``0 <= keys[i] < bounds[i]``): one integer sort
    of a combined key where it fits in 63 bits."""
    if math.prod(bounds) < 2**63:
        combined = np.zeros(keys[0].size, dtype=np.int64)
        for key, bound in zip(keys, bounds, strict=True):
            combined = combined * bound + key
        return np.argsort(combined, kind="stable")
    return np.lexsort(tuple(reversed(keys)))


class _BeamSearch:
    """The beam search of :func:`beam_search_bundles` for a block of customers at once, as
    array operations: the same bundles, scores (bit for bit) and ties as searching customer
    by customer.

    Interest is looked up in a dense scratch array of at most :data:`SCRATCH_CELLS` cells
    (customers x items), so the block is searched in pieces of that many customers.
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        pairs: pa.Table,
        *,
        n_offers: int,
        n_anchors: int,
        beam_width: int,
        max_bundle_size: int,
        max_partners: int,
    ) -> None:
        if max_bundle_size not in (2, 3):
            raise ValueError(f"max_bundle_size={max_bundle_size} should be 2 or 3.")
        sizes = {"n_offers": n_offers, "n_anchors": n_anchors, "beam_width": beam_width,
                 "max_partners": max_partners}  # fmt: skip
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name}={value} should be >= 1.")
        self.comp = _Complements(item_ids, pairs, max_partners)
        self.vocab = pa.array(self.comp.vocab, pa.string())
        self.n_offers, self.n_anchors = n_offers, n_anchors
        self.beam_width, self.max_bundle_size = beam_width, max_bundle_size
        size = max(1, len(self.comp.vocab))
        self.scratch = np.zeros((max(1, SCRATCH_CELLS // size), size), dtype=np.float64)

    def block(self, customer_ids: Sequence[str], interest: sp.csr_matrix) -> pa.Table:
        """Top bundles of the customers of one block (rows of ``interest``)."""
        scores = sp.csr_matrix(interest, dtype=np.float64)
        if not scores.has_sorted_indices:
            scores = scores.sorted_indices()
        step = self.scratch.shape[0]
        tables = [_SCHEMA.empty_table()]
        for lo in range(0, scores.shape[0], step):
            tables.append(self._piece(customer_ids[lo : lo + step], scores[lo : lo + step]))
        return pa.concat_tables(tables)

    def _piece(self, customer_ids: Sequence[str], scores: sp.csr_matrix) -> pa.Table:
        comp = self.comp
        n_rows = scores.shape[0]
        top = row_max(scores)
        counts = np.diff(scores.indptr)
        # each customer's interest max-normalized, as in max_normalize(row)
        s_data = np.maximum(scores.data, 0.0) / np.repeat(np.where(top > 0, top, 1.0), counts)
        s_rows = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
        s_cols = scores.indices.astype(np.int64)
        s_items = comp.of_column[s_cols]
        scratch = self.scratch
        scratch[s_rows, s_items] = s_data
        try:
            found = self._bundles(n_rows, s_rows, s_cols, s_data, scratch)
        finally:
            scratch[s_rows, s_items] = 0.0
        fu, f1, f2, f3, f_score, f_anchor, f_n, f_c = (
            np.concatenate(x) for x in zip(*found, strict=True)
        )
        best = _top_per_group(fu, f_score, self.n_offers, (f1, f2, f3))
        return self._table(
            customer_ids, fu[best], f1[best], f2[best], f3[best], f_score[best],
            f_anchor[best], f_n[best], f_c[best],
        )  # fmt: skip

    def _bundles(
        self,
        n_rows: int,
        s_rows: npt.NDArray[np.int64],
        s_cols: npt.NDArray[np.int64],
        s_data: npt.NDArray[np.float64],
        interest: npt.NDArray[np.float64],
    ) -> list[tuple[npt.NDArray[Any], ...]]:
        """Every customer's pairs and triples: (customer, item 1, item 2, item 3 or -1, score,
        anchor, min n_ab, min log lift); items are vocabulary ids, ``interest`` is indexed by
        (customer, vocabulary id)."""
        comp, size = self.comp, len(self.comp.vocab)
        # anchors: each customer's n_anchors most interesting items (ties by column)
        positive = np.flatnonzero(s_data > 0)
        chosen = positive[
            _top_per_group(s_rows[positive], s_data[positive], self.n_anchors, (s_cols[positive],))
        ]
        anchor_u, anchor = s_rows[chosen], comp.of_column[s_cols[chosen]]

        # pairs: each anchor with each of its complements, in the order of the search
        degree = comp.indptr[anchor + 1] - comp.indptr[anchor]
        at = _ranges(comp.indptr[anchor], degree)
        u, a = np.repeat(anchor_u, degree), np.repeat(anchor, degree)
        b, c, n = comp.dst[at], comp.c[at], comp.n[at]
        k1, k2 = np.minimum(a, b), np.maximum(a, b)
        score = (interest[u, a] + interest[u, b]) / 2 * c
        # a pair reached twice keeps its best score (the first one among equals)
        order = _group_order((u, k1, k2), (n_rows, size, size))
        starts = np.flatnonzero(_first_of_groups(u[order], k1[order], k2[order]))
        sizes = np.diff(np.r_[starts, order.size])
        best_score = np.maximum.reduceat(score[order], starts) if order.size else score
        is_best = np.flatnonzero(score[order] == np.repeat(best_score, sizes))
        group_of = np.repeat(np.arange(starts.size), sizes)[is_best]
        best = order[is_best[_first_of_groups(group_of)]]
        none = np.full(best.size, -1, np.int64)
        found: list[tuple[npt.NDArray[Any], ...]] = [
            (u[best], k1[best], k2[best], none, score[best], a[best], n[best], c[best])
        ]
        if self.max_bundle_size == 2:
            return found

        # the beam: each customer's beam_width best pairs (by score, then items, then order)
        seq = np.arange(u.size, dtype=np.int64)
        beam = _top_per_group(u, score, self.beam_width, (k1, k2, seq))
        bu, bx, by = u[beam], k1[beam], k2[beam]
        # triples: a beam pair with an item that complements both of its items
        degree = comp.indptr[bx + 1] - comp.indptr[bx]
        at = _ranges(comp.indptr[bx], degree)
        t = np.repeat(np.arange(beam.size, dtype=np.int64), degree)
        z = comp.dst[at]
        hit, yz = comp.find(by[t], z)
        at, z, t, yz = at[hit], z[hit], t[hit], yz[hit]
        tu, tx, ty = bu[t], bx[t], by[t]
        c_xy, c_xz, c_yz = c[beam][t], comp.c[at], comp.c[yz]
        s_xy = interest[tu, tx] + interest[tu, ty]
        t_score = (s_xy + interest[tu, z]) / 3 * (c_xy + c_xz + c_yz) / 3
        t1 = np.minimum(z, tx)
        t2 = np.where(z < tx, tx, np.minimum(z, ty))
        t3 = np.maximum(z, ty)
        # a triple reached from several beam pairs keeps the first pair's (rows are in beam
        # order and the sort is stable)
        order = _group_order((tu, t1, t2, t3), (n_rows, size, size, size))
        first = order[_first_of_groups(tu[order], t1[order], t2[order], t3[order])]
        t_n = np.minimum(np.minimum(n[beam][t], comp.n[at]), comp.n[yz])
        t_c = np.minimum(np.minimum(c_xy, c_xz), c_yz)
        found.append((tu[first], t1[first], t2[first], t3[first], t_score[first],
                      a[beam][t][first], t_n[first], t_c[first]))  # fmt: skip
        return found

    def _table(
        self,
        customer_ids: Sequence[str],
        u: npt.NDArray[np.int64],
        k1: npt.NDArray[np.int64],
        k2: npt.NDArray[np.int64],
        k3: npt.NDArray[np.int64],
        score: npt.NDArray[np.float64],
        anchor: npt.NDArray[np.int64],
        n_min: npt.NDArray[np.int64],
        c_min: npt.NDArray[np.float64],
    ) -> pa.Table:
        items = np.stack([k1, k2, k3], axis=1)
        flat = items[items >= 0]
        offsets = np.r_[0, np.cumsum(np.where(k3 >= 0, 3, 2))].astype(np.int32)
        rank = _rank_in_groups(u) + 1
        return pa.table(
            {
                "customer_id": pc.take(pa.array(list(customer_ids), pa.string()), u),
                "offer_rank": pa.array(rank, pa.int32()),
                "item_ids": pa.ListArray.from_arrays(
                    pa.array(offsets, pa.int32()), pc.take(self.vocab, flat)
                ),
                "score": pa.array(score, pa.float64()),
                "source": pa.array(["history"] * u.size, pa.string()),
                "anchor_id": pc.take(self.vocab, anchor),
                "anchor_n_orders": pa.nulls(u.size, pa.int64()),
                "min_pair_count": pa.array(n_min, pa.int64()),
                # math.exp, as the lifts' logs were taken with math.log
                "min_pair_lift": pa.array([math.exp(x) for x in c_min.tolist()], pa.float64()),
            },
            schema=_SCHEMA,
        )


def beam_search_bundles(
    customer_ids: Sequence[str],
    item_ids: Sequence[str],
    interest: npt.ArrayLike | sp.spmatrix,
    pairs: pa.Table,
    *,
    n_offers: int = 5,
    n_anchors: int = 10,
    beam_width: int = 30,
    max_bundle_size: int = 3,
    max_partners: int = 30,
    block_size: int = 4096,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """Top bundles per customer by beam search.

    Parameters
    ----------
    customer_ids
        One per row of ``interest``.
    item_ids
        One per column of ``interest``.
    interest
        Array or sparse matrix of shape (n_customers, n_items): higher = more interesting;
        non-positive values mean no interest.
    pairs
        ``PairMiner.pairs_``.
    n_offers, n_anchors, beam_width, max_bundle_size, max_partners
        Search sizes; ``max_bundle_size`` is 2 or 3.
    block_size
        Customers searched at once (the result does not depend on it).
    on_progress
        Called as ``on_progress(customers_done, n_customers)`` about a hundred times.

    Returns
    -------
    pyarrow.Table
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS` (``source`` = ``"history"``).

    Raises
    ------
    ValueError
        Shape mismatch or invalid sizes.
    """
    matrix = (
        sp.csr_matrix(interest, dtype=np.float64)
        if sp.issparse(interest)
        else np.asarray(interest, dtype=np.float64)
    )
    if matrix.shape != (len(customer_ids), len(item_ids)):
        raise ValueError(
            f"interest has shape {matrix.shape}, expected ({len(customer_ids)}, {len(item_ids)})."
        )
    if block_size < 1:
        raise ValueError(f"block_size={block_size} should be >= 1.")
    blocks = (
        (customer_ids[lo : lo + block_size], sp.csr_matrix(matrix[lo : lo + block_size]))
        for lo in range(0, len(customer_ids), block_size)
    )
    return search_blocks(
        len(customer_ids),
        blocks,
        item_ids,
        pairs,
        n_offers=n_offers,
        n_anchors=n_anchors,
        beam_width=beam_width,
        max_bundle_size=max_bundle_size,
        max_partners=max_partners,
        on_progress=on_progress,
    )


def search_blocks(
    n_customers: int,
    blocks: InterestBlocks,
    item_ids: Sequence[str],
    pairs: pa.Table,
    *,
    n_offers: int = 5,
    n_anchors: int = 10,
    beam_width: int = 30,
    max_bundle_size: int = 3,
    max_partners: int = 30,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """:func:`beam_search_bundles` over interest given block by block (``(customer ids, CSR
    rows)``, ``n_customers`` in all), so that only one block's interest is alive at a time.

    Raises
    ------
    ValueError
        A block whose shape does not match, or invalid sizes.
    """
    search = _BeamSearch(
        item_ids,
        pairs,
        n_offers=n_offers,
        n_anchors=n_anchors,
        beam_width=beam_width,
        max_bundle_size=max_bundle_size,
        max_partners=max_partners,
    )
    # searched in pieces of about a hundredth of the customers, for progress reports
    piece = max(1, -(-n_customers // 100))
    done = 0
    tables = [_SCHEMA.empty_table()]
    for ids, block in blocks:
        if block.shape != (len(ids), len(item_ids)):
            raise ValueError(
                f"interest block has shape {block.shape}, expected ({len(ids)}, {len(item_ids)})."
            )
        block = sp.csr_matrix(block)
        for lo in range(0, len(ids), piece):
            if on_progress is not None:
                on_progress(done, n_customers)
            tables.append(search.block(ids[lo : lo + piece], block[lo : lo + piece]))
            done += len(ids[lo : lo + piece])
    if on_progress is not None:
        on_progress(n_customers, n_customers)
    return pa.concat_tables(tables).combine_chunks()


def compose_beam_candidates(
    order_lines: pa.Table,
    pairs: pa.Table,
    config: ComposerConfig | None = None,
    customer_ids: list[str] | None = None,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """Candidate bundles for every customer: blended interest, beam search, popular top-up.

    Interest is the purchase-history view (frequency x recency) plus ``knn_weight`` x the
    item-kNN view fitted on who bought what; see :mod:`bundlewise.composer.interest`.

    Returns
    -------
    pyarrow.Table
        Columns of :data:`bundlewise.composer.CANDIDATE_COLUMNS`.
    """
    from bundlewise.composer.candidates import add_popular_fallback
    from bundlewise.composer.interest import history_interest

    config = config or ComposerConfig()
    interest = history_interest(order_lines, config.recency_half_life_days)
    similarity = fit_knn_similarity(interest.binary(), config)
    personal = search_interest(interest, pairs, config, similarity, on_progress=on_progress)
    return add_popular_fallback(personal, order_lines, pairs, config.n_offers, customer_ids)


def fit_knn_similarity(binary: sp.csr_matrix, config: ComposerConfig) -> sp.csr_matrix | None:
    """The item-kNN neighbours of the composer, fitted on which items every customer bought
    (rows: customers, in any order); ``None`` when the kNN view is off or there are no
    customers."""
    from bundlewise.models.item_knn import ItemKNNRecommender

    if config.knn_weight <= 0 or binary.shape[0] == 0:
        return None
    similarity: sp.csr_matrix = ItemKNNRecommender(n_neighbors=100).fit(binary).similarity_
    return similarity


def search_interest(
    interest: InterestMatrix,
    pairs: pa.Table,
    config: ComposerConfig,
    similarity: sp.csr_matrix | None,
    on_progress: ItemProgress | None = None,
) -> pa.Table:
    """The personal bundles of the customers of ``interest`` (any subset of all customers, with
    all the items as columns): history interest blended with the kNN view of ``similarity``
    (:func:`fit_knn_similarity` over all customers), searched ``config.block_size`` customers at
    a time. A customer's bundles depend on their own row only."""
    from bundlewise.composer.interest import blend_csr
    from bundlewise.models.base import as_interactions
    from bundlewise.models.item_knn import knn_scores

    n_customers = len(interest.customer_ids)
    weights = {"history": 1.0}
    user_items = None
    if similarity is not None:
        weights["item_knn"] = config.knn_weight
        user_items = as_interactions(interest.binary())

    def blocks() -> Iterator[tuple[Sequence[str], sp.csr_matrix]]:
        """Each block's blended interest, computed only when the search reaches it."""
        for lo in range(0, n_customers, config.block_size):
            rows = np.arange(lo, min(lo + config.block_size, n_customers))
            views = {"history": interest.matrix[rows]}
            if similarity is not None and user_items is not None:
                views["item_knn"] = knn_scores(user_items[rows], similarity)
            yield interest.customer_ids[lo : lo + config.block_size], blend_csr(views, weights)

    return search_blocks(
        n_customers,
        blocks(),
        interest.item_ids,
        pairs,
        n_offers=config.n_offers,
        n_anchors=config.n_anchors,
        beam_width=config.beam_width,
        max_bundle_size=config.max_bundle_size,
        on_progress=on_progress,
    )


__all__ = [
    "CANDIDATE_SCHEMA",
    "beam_search_bundles",
    "compose_beam_candidates",
    "fit_knn_similarity",
    "search_blocks",
    "search_interest",
]
