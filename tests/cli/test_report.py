"""The HTML report: top bundles by title, the data actually used, uplift, margins, fonts."""

from __future__ import annotations

import html
import logging
import warnings
from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from cli_store import CJK_TITLE

from bundlewise.config import Config, PricingConfig
from bundlewise.data import Workspace
from bundlewise.evaluation import report
from bundlewise.evaluation.fonts import font_covering, fonts_for, missing_characters
from bundlewise.pipeline import ANONYMOUS, export, last_train_result

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pytestmark = pytest.mark.integration


def _render(workspace: Path, offers: pa.Table | None = None, **kwargs: object) -> str:
    ws = Workspace(workspace)
    arguments: dict[str, object] = {
        "offers": offers if offers is not None else ws.table("offers"),
        "cleaning_reports": ws.cleaning_reports(),
        "pairs": ws.table("pair_stats"),
        "items": ws.table("items"),
        "train_result": last_train_result(ws),
        "not_offered": ws.table("not_offered"),
        "config": Config(),
        "sources": ws.table("ingests").to_pylist(),
    }
    arguments.update(kwargs)
    return report.build_report(**arguments)  # type: ignore[arg-type]


def _with_response(offers: pa.Table) -> pa.Table:
    """The offers with an ``appeal``/``sensitivity`` pair (as the trained pricer stores it)."""
    for name, value in (("appeal", 8.0 - 0.85), ("sensitivity", 8.0)):
        if name not in offers.column_names:
            offers = offers.append_column(name, pa.array([value] * offers.num_rows, pa.float64()))
    return offers


def test_money_has_thousands_separators() -> None:
    assert report.money(123_456_789, "GBP") == "GBP 1,234,567.89"
    assert report.money(1_234_567, "JPY") == "JPY 1,234,567"
    assert report.money(-99.6, "GBP") == "GBP -1.00"


def test_report_shows_the_top_bundles_by_title(small_trained: Path, tmp_path: Path) -> None:
    _, report_path = export(Workspace(small_trained), tmp_path)
    page = report_path.read_text(encoding="utf-8")
    assert "built-in method" not in page
    offers = Workspace(small_trained).table("offers")
    profit: dict[tuple[str, ...], float] = defaultdict(float)
    titles: dict[tuple[str, ...], list[str]] = {}
    for row in offers.filter(pc.not_equal(offers.column("customer_id"), ANONYMOUS)).to_pylist():
        key = tuple(row["item_ids"])
        profit[key] += row["expected_profit_minor"]
        titles[key] = row["titles"]
    top = sorted(profit, key=lambda k: (-profit[k], k))[:3]
    table = page[page.index("Top bundles by total expected profit") :]
    for key in top:
        assert f"<td>{html.escape(' + '.join(titles[key]))}</td>" in table
        assert f"<td>{', '.join(key)}</td>" in table
    assert 'alt="margin plot"' in page and 'alt="top bundles plot"' in page


def test_footer_names_the_data_used_and_the_licence_only_for_the_demo_data(
    small_trained: Path,
) -> None:
    page = _render(small_trained)
    footer = page[page.rindex('<p class="sub">') :]
    assert "<code>orders.csv</code> (online_retail_ii, 583 order lines kept" in footer
    assert "CC BY 4.0" not in page and "Online Retail II" not in footer
    bundled = report._bundled_sha256()
    assert bundled is not None
    demo = _render(
        small_trained,
        sources=[{"path": "x/online_retail_ii_2009_2010.parquet", "sha256": bundled}],
    )
    assert "UCI Online Retail II (Chen, D. 2012" in demo and "CC BY 4.0" in demo
    assert "<code>online_retail_ii_2009_2010.parquet</code>" in demo


def test_uplift_says_when_it_cannot_be_computed(small_trained: Path) -> None:
    offers = Workspace(small_trained).table("offers")
    for name in ("appeal", "sensitivity"):
        if name in offers.column_names:
            offers = offers.drop_columns([name])
    page = _render(small_trained, offers=offers)
    assert "The uplift cannot be computed" in page
    assert "best uniform discount (" not in page


def test_uplift_section_from_the_offers_price_response(small_trained: Path) -> None:
    page = _render(small_trained, offers=_with_response(Workspace(small_trained).table("offers")))
    uplift = page[page.index('id="uplift"') : page.index("<h2>Assumptions")]
    assert "bundlewise offers (personalized prices)" in uplift
    assert "list price (no discount)" in uplift and "best uniform discount (" in uplift
    assert "Personalized prices vs list price: profit " in uplift


def _one_offer(price: int, a: float, b: float, list_total: int = 1000, cost: int = 500) -> pa.Table:
    return pa.table(
        {
            "list_total_minor": [list_total],
            "cost_minor": [cost],
            "price_minor": [price],
            "appeal": [a],
            "sensitivity": [b],
            "currency": ["GBP"],
        }
    )


def test_uplift_with_flat_demand_has_no_uniform_discount() -> None:
    """b = 0: P(accept) is the same at every price, so the best uniform discount is none, and a
    10% discount loses 20% of the profit (margin 500 -> 400) and 10% of the revenue."""
    uplift = report._uplift(_one_offer(900, a=0.3, b=0.0), PricingConfig())
    assert uplift is not None
    assert uplift["best_discount"] == "0.0%"
    assert uplift["vs_list"] == {"profit": "-20.0%", "revenue": "-10.0%"}
    assert uplift["vs_uniform"] == uplift["vs_list"]


def test_uplift_uniform_baseline_is_never_worse_than_list() -> None:
    rng = np.random.default_rng(1)
    n = 200
    list_total = rng.integers(500, 5000, n)
    offers = pa.table(
        {
            "list_total_minor": list_total,
            "cost_minor": (list_total * rng.uniform(0.2, 0.7, n)).astype(int),
            "price_minor": (list_total * rng.uniform(0.75, 1.0, n)).astype(int),
            "appeal": rng.uniform(2.0, 10.0, n),
            "sensitivity": rng.uniform(0.0, 12.0, n),
            "currency": ["GBP"] * n,
        }
    )
    uplift = report._uplift(offers, PricingConfig())
    assert uplift is not None
    offered, at_list, uniform = (uplift["raw"][k] for k in ("offers", "list", "uniform"))
    assert uniform["profit"] >= at_list["profit"]
    assert 0.0 <= float(uplift["best_discount"].rstrip("%")) <= 30.0
    assert offered["accepts"] > 0


def test_warning_when_most_offers_are_at_list(small_trained: Path) -> None:
    offers = Workspace(small_trained).table("offers")
    assert "Most offers are priced at the list total" not in _render(
        small_trained, offers=offers.set_column(
            offers.column_names.index("discount_pct"), "discount_pct",
            pa.array([0.2] * offers.num_rows, pa.float64()),
        )
    )  # fmt: skip
    near = offers.set_column(
        offers.column_names.index("discount_pct"),
        "discount_pct",
        pa.array([0.005] * offers.num_rows, pa.float64()),
    )
    page = _render(small_trained, offers=near)
    assert "Most offers are priced at the list total" in page
    assert "100% of the offers are\nwithin 1% of their list total" in page


def _glyph_warnings(record: list[warnings.WarningMessage], logs: list[str]) -> list[str]:
    return [str(w.message) for w in record if "Glyph" in str(w.message)] + [
        m for m in logs if "Glyph" in m
    ]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _needs_cjk_font() -> None:
    if font_covering(missing_characters([CJK_TITLE])) is None:
        pytest.skip("no installed font covers Chinese (install e.g. fonts-wqy-zenhei)")


def test_chinese_titles_plot_without_missing_glyphs() -> None:
    _needs_cjk_font()
    handler = _Collect()
    logging.getLogger("matplotlib").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            with fonts_for([CJK_TITLE]) as family:
                fig, ax = plt.subplots()
                ax.barh([CJK_TITLE], [1.0])
                ax.set_title(CJK_TITLE)
                report._png(fig)
    finally:
        logging.getLogger("matplotlib").removeHandler(handler)
    assert family is not None
    assert _glyph_warnings(record, handler.messages) == []


def test_report_of_chinese_titles_has_no_missing_glyphs(small_trained: Path) -> None:
    _needs_cjk_font()
    offers = Workspace(small_trained).table("offers")
    assert any(CJK_TITLE in t for t in offers.column("titles").to_pylist())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _render(small_trained)
    assert _glyph_warnings(record, []) == []
