from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from bundlewise.composer.cold_start import cold_start_partners
from bundlewise.mining.cooccurrence import PAIR_COLUMNS, PairMiner

COLUMNS = ["item_id", "partner_id", "rank", "score", "via_item_id", "via_similarity"]


def unit(degrees: float) -> list[float]:
    rad = math.radians(degrees)
    return [math.cos(rad), math.sin(rad)]


def embeddings(*angles: float) -> npt.NDArray[np.float32]:
    return np.array([unit(a) for a in angles], dtype=np.float32).reshape(len(angles), 2)


def mine(baskets: list[tuple[int, list[str]]]) -> pa.Table:
    """PairMiner pairs over ``count`` copies of each basket."""
    order_ids: list[str] = []
    item_ids: list[str] = []
    k = 0
    for count, items in baskets:
        for _ in range(count):
            order_ids += [f"o{k}"] * len(items)
            item_ids += items
            k += 1
    lines = pa.table(
        {"order_id": pa.array(order_ids, pa.string()), "item_id": pa.array(item_ids, pa.string())}
    )
    return PairMiner(min_count=1, prior_strength=0.0).fit(lines).pairs_


# Sold products S1 (0 deg), S2 (90 deg), S3 (45 deg); the new product N sits at 10 deg:
# cos(N, S1) = cos 10, cos(N, S3) = cos 35, cos(N, S2) = cos 80.
SOLD = ["S1", "S2", "S3"]
SOLD_EMB = embeddings(0, 90, 45)
C1, C2, C3 = (math.cos(math.radians(d)) for d in (10, 80, 35))

#: S1-P1 x3, S1-P2 x1, S3-P2 x4, S3-P3 x1, S2-P3 x5, and N bought with S1 ten times.
PAIRS = mine(
    [
        (3, ["S1", "P1"]),
        (1, ["S1", "P2"]),
        (4, ["S3", "P2"]),
        (1, ["S3", "P3"]),
        (5, ["S2", "P3"]),
        (10, ["S1", "N"]),
    ]
)


def rows(table: pa.Table) -> list[dict[str, object]]:
    return table.to_pylist()


def test_nearest_sold_product_lends_its_partners() -> None:
    out = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, PAIRS, n_neighbors=1)
    assert out.column_names == COLUMNS
    got = rows(out)
    # N is S1's most frequent partner but never its own
    assert [r["partner_id"] for r in got] == ["P1", "P2"]
    assert [r["rank"] for r in got] == [1, 2]
    assert [r["score"] for r in got] == pytest.approx([3 * C1, 1 * C1], rel=1e-6)
    assert {r["item_id"] for r in got} == {"N"}
    assert {r["via_item_id"] for r in got} == {"S1"}
    assert [r["via_similarity"] for r in got] == pytest.approx([C1, C1], rel=1e-6)


def test_scores_sum_cos_times_count_over_neighbours() -> None:
    out = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, PAIRS, n_neighbors=3)
    got = {r["partner_id"]: r for r in rows(out)}
    assert list(got) == ["P2", "P1", "P3"]  # ranked by score
    assert got["P2"]["score"] == pytest.approx(1 * C1 + 4 * C3, rel=1e-6)
    assert got["P1"]["score"] == pytest.approx(3 * C1, rel=1e-6)
    assert got["P3"]["score"] == pytest.approx(1 * C3 + 5 * C2, rel=1e-6)
    assert [r["rank"] for r in got.values()] == [1, 2, 3]
    # via = the neighbour whose vote was largest, not the most similar one
    assert got["P2"]["via_item_id"] == "S3"  # 4 cos35 > 1 cos10
    assert got["P2"]["via_similarity"] == pytest.approx(C3, rel=1e-6)
    assert got["P3"]["via_item_id"] == "S2"  # 5 cos80 > 1 cos35
    assert got["P3"]["via_similarity"] == pytest.approx(C2, rel=1e-6)
    assert got["P1"]["via_item_id"] == "S1"
    assert "N" not in got


def test_product_is_never_its_own_partner_even_when_sold() -> None:
    # P2 (at 40 deg) is a partner of both its neighbours, S3 and S1: it must be skipped
    out = cold_start_partners(
        ["P2"], embeddings(40), SOLD, SOLD_EMB, PAIRS, n_neighbors=2, n_partners=10
    )
    got = {r["partner_id"]: r["score"] for r in rows(out)}
    c5, c40 = math.cos(math.radians(5)), math.cos(math.radians(40))
    assert got == pytest.approx({"N": 10 * c40, "P1": 3 * c40, "P3": 1 * c5}, rel=1e-6)
    assert list(got) == ["N", "P1", "P3"]


def test_n_partners_is_respected() -> None:
    out = cold_start_partners(
        ["N"], embeddings(10), SOLD, SOLD_EMB, PAIRS, n_neighbors=3, n_partners=2
    )
    assert [r["partner_id"] for r in rows(out)] == ["P2", "P1"]
    assert out.num_rows == 2


def test_several_new_products_each_get_their_own_partners() -> None:
    out = cold_start_partners(["N", "M"], embeddings(10, 85), SOLD, SOLD_EMB, PAIRS, n_neighbors=1)
    got = rows(out)
    assert [(r["item_id"], r["partner_id"], r["rank"]) for r in got] == [
        ("N", "P1", 1),
        ("N", "P2", 2),
        ("M", "P3", 1),
    ]
    assert got[2]["via_item_id"] == "S2"
    assert got[2]["score"] == pytest.approx(5 * math.cos(math.radians(5)), rel=1e-6)


def test_neighbour_without_partners_gives_no_votes() -> None:
    pairs = mine([(2, ["S2", "P3"])])
    out = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, pairs, n_neighbors=1)
    assert out.num_rows == 0
    out = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, pairs, n_neighbors=3)
    assert [r["partner_id"] for r in rows(out)] == ["P3"]
    assert rows(out)[0]["score"] == pytest.approx(2 * C2, rel=1e-6)


def test_equal_scores_rank_by_partner_id() -> None:
    pairs = mine([(2, ["S1", "Q2"]), (2, ["S1", "Q1"])])
    out = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, pairs, n_neighbors=1)
    assert [r["partner_id"] for r in rows(out)] == ["Q1", "Q2"]


@pytest.mark.parametrize(
    ("new_ids", "new_emb", "sold_ids"),
    [
        (["N", "M"], embeddings(10), SOLD),
        (["N"], embeddings(10, 20), SOLD),
        (["N"], embeddings(10), ["S1", "S2"]),
    ],
)
def test_mismatched_lengths_raise(
    new_ids: list[str], new_emb: npt.NDArray[np.float32], sold_ids: list[str]
) -> None:
    with pytest.raises(ValueError, match="one embedding row per id"):
        cold_start_partners(new_ids, new_emb, sold_ids, SOLD_EMB, PAIRS)


@pytest.mark.parametrize(("n_neighbors", "n_partners"), [(0, 5), (5, 0)])
def test_bad_counts_raise(n_neighbors: int, n_partners: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, PAIRS, n_neighbors, n_partners)


def empty_pairs() -> pa.Table:
    return mine([(1, ["A"])])


def test_empty_inputs_give_an_empty_table() -> None:
    no_new = cold_start_partners([], np.zeros((0, 2), np.float32), SOLD, SOLD_EMB, PAIRS)
    no_sold = cold_start_partners(
        ["N"], embeddings(10), [], np.zeros((0, 2), np.float32), empty_pairs()
    )
    no_pairs = cold_start_partners(["N"], embeddings(10), SOLD, SOLD_EMB, empty_pairs())
    assert empty_pairs().num_rows == 0
    assert empty_pairs().column_names == list(PAIR_COLUMNS)
    for out in (no_new, no_sold, no_pairs):
        assert out.num_rows == 0
        assert out.column_names == COLUMNS
        assert out.schema.field("rank").type == pa.int32()
        assert out.schema.field("score").type == pa.float64()
        assert out.schema.field("partner_id").type == pa.string()
    assert no_new.schema == no_sold.schema == no_pairs.schema
