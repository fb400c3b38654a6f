from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundlewise.config import CleaningConfig
from bundlewise.data.catalog import derive_items
from bundlewise.data.cleaning import (
    CHANGED,
    FLAGGED,
    REMOVED,
    CleaningReport,
    clean_order_lines,
)
from bundlewise.data.readers import read_orders
from bundlewise.data.schemas import ORDER_LINES

D1, D2, D3, D4 = (datetime(2010, 12, d, 9, 0) for d in (1, 2, 3, 4))

#: (order_id, item_id, title, quantity, ts, unit_price_minor, customer_id); row n = position n.
WORLD = [
    ("O1", "A", "Apple mug", 5, D1, 100, "c1"),  # 1 partially returned: 5 -> 4
    ("O2", "A", "Apple mug", 3, D2, 100, "c1"),  # 2 fully returned (latest purchase first)
    ("C3", "A", "Apple mug", -4, D3, 100, "c1"),  # 3 return netted (4 units)
    ("O1", "K", "Bowl", 2, D1, 200, "c2"),  # 4 fully returned
    ("C4", "K", "Bowl", -5, D3, 200, "c2"),  # 5 return netted; 3 units unmatched
    ("O5", "L", "Dish", 1, D1, 300, "c3"),  # 6 kept
    ("O5", "L", "Dish", 1, D1, 300, "c3"),  # 7 exact duplicate of 6
    ("O5", "POST", "POSTAGE", 1, D1, 1800, "c3"),  # 8 non product
    ("O5", "E", "Egg cup", 1, D1, 0, "c3"),  # 9 zero price
    ("O6", "F", "Fork", 20_000, D1, 10, "c3"),  # 10 absurd quantity
    ("C7", "A", "Apple mug", -1, D2, 100, None),  # 11 return without customer
    ("O8", "G", "Glass", 1, D2, 150, None),  # 12 anonymous, kept
    ("O9", "H", "nan", 2, D2, 250, "c3"),  # 13 'nan' title, kept
    ("O10", "H", "Real H", 3, D2, 250, "c4"),  # 14 partially returned: 3 -> 2
    ("O11", "J", "Jug", 0, D2, 500, "c3"),  # 15 zero quantity
    ("O12", "dot", "Dotcom postage", 1, D2, 500, "c3"),  # 16 non product (any case)
    ("O13", "I", None, 1, D3, 700, "c4"),  # 17 no title, kept
    ("O14", "H", "Real H", -1, D4, 250, "c4"),  # 18 negative quantity, no 'C': netted
]

EXPECTED_COUNTS = {
    "exact_duplicate": 1,
    "non_product": 2,
    "zero_quantity": 1,
    "absurd_quantity": 1,
    "non_positive_price": 1,
    "return_without_customer": 1,
    "return_netted": 3,
    "purchase_fully_returned": 2,
    "purchase_partially_returned": 2,
    "anonymous": 1,
    "missing_title": 2,
}


def _check_world_report(report: CleaningReport) -> None:
    assert {r.rule: r.n_rows for r in report.rules} == EXPECTED_COUNTS
    assert report.n_rows_read == 18
    assert report.n_rows_kept == 6
    assert report.n_rows_removed == 12
    assert report.n_rows_read == report.n_rows_kept + report.n_rows_removed
    actions = {r.rule: r.action for r in report.rules}
    assert actions["purchase_partially_returned"] == CHANGED
    assert actions["missing_title"] == CHANGED
    assert actions["anonymous"] == FLAGGED
    assert actions["return_netted"] == REMOVED
    assert actions["purchase_fully_returned"] == REMOVED
    netted = next(r for r in report.rules if r.rule == "return_netted")
    # 4 (c1, A) + 2 (c2, K) + 1 (c4, H) netted; c2 returned 3 more bowls than it bought.
    assert "(7 units netted; 3 units in 1 customer-item pairs" in netted.description


def test_tiny_world_counts_and_clean_lines(make_raw: Callable[..., pa.Table]) -> None:
    result = clean_order_lines(make_raw(WORLD), source="world")
    report = result.report
    _check_world_report(report)
    assert report.source == "world"

    lines = result.order_lines
    assert lines.schema == ORDER_LINES
    kept = {r["source_row"]: r for r in lines.to_pylist()}
    assert sorted(kept) == [1, 6, 12, 13, 14, 17]
    assert kept[1]["quantity"] == 4  # the earlier purchase absorbs what the later one could not
    assert kept[14]["quantity"] == 2
    assert kept[6]["quantity"] == 1
    assert kept[12]["customer_id"] is None
    assert all(q > 0 for q in lines.column("quantity").to_pylist())
    assert all(p > 0 for p in lines.column("unit_price_minor").to_pylist())

    titles = {r["item_id"]: r["title"] for r in result.titles.to_pylist()}
    assert titles["H"] == "Real H"  # the 'nan' title is not a title
    assert "I" not in titles
    items = {r["item_id"]: r for r in derive_items(lines, result.titles).to_pylist()}
    assert sorted(items) == ["A", "G", "H", "I", "L"]
    assert items["I"]["title"] == "I"  # no title anywhere: the item id
    assert items["H"]["title"] == "Real H"
    assert items["A"]["list_price_minor"] == 100


def test_tiny_world_through_a_csv_file(tmp_path: Path) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    rows = [
        f"{o},{i},{t or ''},{q},{ts:%Y-%m-%d %H:%M:%S},{p / 100:.2f},{c or ''},United Kingdom"
        for o, i, t, q, ts, p, c in WORLD
    ]
    path = tmp_path / "world.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    raw, _ = read_orders(path)
    result = clean_order_lines(raw, source=str(path))
    _check_world_report(result.report)
    assert result.report.source == str(path)


def test_netting_takes_the_latest_purchases_first(make_raw: Callable[..., pa.Table]) -> None:
    rows = [
        ("O1", "A", "a", 2, D1, 100, "c"),
        ("O2", "A", "a", 2, D3, 100, "c"),  # latest: returned first
        ("O3", "A", "a", 2, D2, 100, "c"),  # then this one, partially
        ("C4", "A", "a", -3, D4, 100, "c"),
        ("O5", "A", "a", 2, D2, 100, "other"),  # another customer's purchase is untouched
    ]
    result = clean_order_lines(make_raw(rows))
    kept = {r["source_row"]: r["quantity"] for r in result.order_lines.to_pylist()}
    assert kept == {1: 2, 3: 1, 5: 2}
    assert result.report.count("purchase_fully_returned") == 1
    assert result.report.count("purchase_partially_returned") == 1


def test_custom_cleaning_config(make_raw: Callable[..., pa.Table]) -> None:
    rows = [
        ("R1", "A", "a", 2, D1, 100, "c"),
        ("X2", "A", "a", 1, D2, 100, "c"),  # a return under prefix 'X'
        ("R3", "C", "c", 60, D1, 100, "c"),  # above max_quantity 50
        ("R4", "FEE7", "fee", 1, D1, 100, "c"),  # custom non-product pattern
        ("R5", "POST", "post", 1, D1, 100, "c"),  # a product under this config
    ]
    config = CleaningConfig(
        cancellation_prefix="X", non_product_patterns=("FEE\\d+",), max_quantity=50
    )
    report = clean_order_lines(make_raw(rows), config).report
    assert report.count("absurd_quantity") == 1
    assert report.count("non_product") == 1
    assert report.count("return_netted") == 1
    assert report.count("purchase_partially_returned") == 1
    assert report.n_rows_kept == 2


def test_report_round_trip_and_unknown_rule(make_raw: Callable[..., pa.Table]) -> None:
    report = clean_order_lines(make_raw(WORLD)).report
    data = report.to_dict()
    assert data["n_rows_removed"] == 12
    assert CleaningReport.from_dict(data) == report
    with pytest.raises(KeyError, match="unknown cleaning rule 'typo'"):
        report.count("typo")


# --- property: random small raw tables ---------------------------------------------------------

MAX_Q = 50
NON_PRODUCTS = ("POST", "m")  # default non-product patterns, matched case-insensitively
_row = st.tuples(
    st.sampled_from(["1", "2", "3", "4", "C5", "C6"]),  # order id
    st.sampled_from(["A", "K", "A", "K", *NON_PRODUCTS]),  # item id
    st.sampled_from(["t", "nan", None]),  # title
    # mostly ordinary purchases; returns without the 'C' prefix, zeros and absurd values too
    st.sampled_from([1, 2, 3, 5, 8, 1, 2, 4, -1, -2, -6, 0, MAX_Q, MAX_Q + 1, -(MAX_Q + 1)]),
    st.integers(0, 3),  # day
    st.sampled_from([1, 99, 250, 99, 250, 0, -50]),  # unit price (minor units)
    st.sampled_from([None, "u1", "u2", "u1", "u2"]),  # customer
)


@st.composite
def _raw_rows(draw: st.DrawFn) -> list[tuple[object, ...]]:
    rows = draw(st.lists(_row, min_size=1, max_size=25))
    copies = draw(st.lists(st.integers(0, len(rows) - 1), max_size=4))
    rows += [rows[i] for i in copies]  # exact duplicates
    return [(o, i, t, q, D1 + timedelta(days=d), p, c) for o, i, t, q, d, p, c in rows]


def _reference_totals(rows: list[tuple[object, ...]]) -> dict[tuple[object, object], int]:
    """Units each (customer, item) keeps: valid purchases minus valid returns, at least 0."""
    seen: set[tuple[object, ...]] = set()
    bought: Counter[tuple[object, object]] = Counter()
    returned: Counter[tuple[object, object]] = Counter()
    for row in rows:
        order, item, _, q, _, price, customer = row
        duplicate = row in seen
        seen.add(row)
        assert isinstance(q, int) and isinstance(price, int) and isinstance(order, str)
        if duplicate or item in NON_PRODUCTS or q == 0 or abs(q) > MAX_Q or price <= 0:
            continue
        if order.startswith("C") or q < 0:
            if customer is not None:
                returned[(customer, item)] += abs(q)
        else:
            bought[(customer, item)] += q
    return {
        key: max(0, n - (returned[key] if key[0] is not None else 0))
        for key, n in bought.items()
        if n - (returned[key] if key[0] is not None else 0) > 0
    }


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=_raw_rows())
def test_cleaning_properties(
    make_raw: Callable[..., pa.Table], rows: list[tuple[object, ...]]
) -> None:
    raw = make_raw(rows)
    result = clean_order_lines(raw, CleaningConfig(max_quantity=MAX_Q))
    report = result.report
    lines = result.order_lines.to_pylist()

    assert report.n_rows_read == len(rows)
    assert report.n_rows_read == report.n_rows_kept + report.n_rows_removed
    assert report.n_rows_kept == len(lines)
    assert all(line["quantity"] > 0 for line in lines)
    assert all(line["unit_price_minor"] > 0 for line in lines)
    assert report.count("anonymous") == sum(line["customer_id"] is None for line in lines)

    clean_total: defaultdict[tuple[object, object], int] = defaultdict(int)
    for line in lines:
        clean_total[(line["customer_id"], line["item_id"])] += line["quantity"]
    purchased: Counter[tuple[object, object]] = Counter()
    for order, item, _, q, _, _, customer in rows:
        assert isinstance(order, str) and isinstance(q, int)
        if not order.startswith("C") and q > 0:
            purchased[(customer, item)] += q
    for key, total in clean_total.items():
        assert total <= purchased[key]
    assert dict(clean_total) == _reference_totals(rows)
