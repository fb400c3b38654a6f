"""The HTML report: cleaning, mining, offers, prices and the assumptions behind them.

Plots are rendered with matplotlib (Agg backend) to PNG and embedded as data URIs, so the report
is one self-contained file.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise._version import __version__
from bundlewise.config import Config
from bundlewise.data.cleaning import CleaningReport
from bundlewise.money import format_money

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

ANONYMOUS = "__anonymous__"


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _hist(values: np.ndarray, title: str, xlabel: str, bins: int = 40) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.hist(values, bins=bins, color="#3b6ea8", edgecolor="white")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("offers")
    return _png(fig)


def _bars(counts: dict[str, int], title: str) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    labels = list(counts)
    ax.barh(labels, [counts[k] for k in labels], color="#6a9f58")
    ax.set_title(title)
    ax.set_xlabel("offers")
    ax.invert_yaxis()
    return _png(fig)


def _top_bundles(offers: pa.Table, items: pa.Table, n: int = 20) -> list[dict[str, Any]]:
    rows = offers.select(
        [
            "item_ids",
            "titles",
            "list_total_minor",
            "price_minor",
            "p_accept",
            "expected_profit_minor",
            "currency",
        ]
    ).to_pylist()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row["item_ids"]), []).append(row)
    ranked = sorted(
        groups.items(),
        key=lambda kv: (-sum(r["expected_profit_minor"] for r in kv[1]), kv[0]),
    )[:n]
    out = []
    for key, group in ranked:
        prices = [r["price_minor"] for r in group]
        currency = group[0]["currency"]
        out.append(
            {
                "items": " + ".join(group[0]["titles"]),
                "ids": ", ".join(key),
                "n_customers": len(group),
                "list_total": format_money(group[0]["list_total_minor"], currency),
                "price_range": (
                    f"{format_money(min(prices), currency)} - {format_money(max(prices), currency)}"
                ),
                "mean_p_accept": f"{np.mean([r['p_accept'] for r in group]):.3f}",
                "expected_profit": format_money(
                    round(sum(r["expected_profit_minor"] for r in group)), currency
                ),
            }
        )
    return out


def build_report(
    *,
    offers: pa.Table,
    cleaning_reports: list[CleaningReport],
    pairs: pa.Table,
    items: pa.Table,
    train_result: Any,
    not_offered: pa.Table,
    config: Config,
) -> str:
    """Render the report as one self-contained HTML page.

    Parameters
    ----------
    offers
        The workspace ``offers`` table (including the anonymous/popular offers).
    cleaning_reports
        One per ingested source.
    pairs
        Mined pair statistics.
    items
        The ``items`` table.
    train_result
        :class:`bundlewise.pipeline.TrainResult` of the run.
    not_offered
        Candidates dropped for want of a feasible price.
    config
        The configuration used (its assumptions are stated in the report).
    """
    personal = offers.filter(pc.not_equal(offers.column("customer_id"), ANONYMOUS))
    discount = personal.column("discount_pct").to_numpy(zero_copy_only=False)
    profit = personal.column("expected_profit_minor").to_numpy(zero_copy_only=False)
    p_accept = personal.column("p_accept").to_numpy(zero_copy_only=False)
    currency = personal.column("currency")[0].as_py() if personal.num_rows else "GBP"
    rules = Counter(personal.column("binding_rule").to_pylist())
    sources = Counter(personal.column("source").to_pylist())
    sizes = Counter(len(x) for x in personal.column("item_ids").to_pylist())
    top_pairs = (
        pairs.sort_by([("lift_shrunk", "descending"), ("n_ab", "descending")])
        .slice(0, 15)
        .to_pylist()
    )
    titles = dict(
        zip(items.column("item_id").to_pylist(), items.column("title").to_pylist(), strict=True)
    )
    for row in top_pairs:
        row["title_a"] = titles.get(row["item_a"], row["item_a"])
        row["title_b"] = titles.get(row["item_b"], row["item_b"])
    n_cost_known = int(
        np.sum(
            ~np.isnan(
                items.column("unit_cost_minor").to_numpy(zero_copy_only=False).astype(np.float64)
            )
        )
    )
    plots = {}
    if personal.num_rows:
        plots["discount"] = _hist(discount * 100, "Discount off the list total", "discount (%)")
        plots["profit"] = _hist(
            profit / 100.0, "Expected profit per offer", f"expected profit ({currency})"
        )
        plots["p_accept"] = _hist(p_accept, "Acceptance probability at the offered price", "P")
        plots["rules"] = _bars(dict(rules), "Which rule set the price")
    pricing = config.pricing
    train = train_result.to_dict()
    response = train.get("price_response") or None
    response_plot = None
    bins = (response or {}).get("calibration", {}).get("reliability", [])
    if bins:
        fig, ax = plt.subplots(figsize=(4.4, 4.0))
        pred = [b["predicted"] for b in bins]
        obs = [b["observed"] for b in bins]
        top = max(max(pred), max(obs)) * 1.05
        ax.plot([0, top], [0, top], ":", color="#888")
        ax.plot(pred, obs, "o-")
        ax.set_xlabel("predicted P(buy)")
        ax.set_ylabel("observed share")
        ax.set_title("Reliability on held-out weeks")
        response_plot = _png(fig)
    context: dict[str, Any] = {
        "response": response,
        "response_plot": response_plot,
        "train": train,
        "cleaning": [r.to_dict() for r in cleaning_reports],
        "n_offers": personal.num_rows,
        "n_customers": len(set(personal.column("customer_id").to_pylist())),
        "total_profit": format_money(round(float(profit.sum())), currency),
        "expected_accepts": f"{float(p_accept.sum()):,.0f}",
        "mean_discount": f"{float(discount.mean()) if discount.size else 0.0:.1%}",
        "median_discount": f"{float(np.median(discount)) if discount.size else 0.0:.1%}",
        "rules": dict(rules),
        "sources": dict(sources),
        "sizes": {str(k): v for k, v in sorted(sizes.items())},
        "plots": plots,
        "top_bundles": _top_bundles(personal, items),
        "top_pairs": top_pairs,
        "n_items": items.num_rows,
        "n_cost_known": n_cost_known,
        "not_offered": not_offered.num_rows,
        "pricing": asdict(pricing),
        "mining": asdict(config.mining),
        "composer": asdict(config.composer),
        "examples": personal.slice(0, 10).to_pylist(),
        "format_money": format_money,
    }
    return _render("report.html.j2", **context)


def _grouped_bars(
    groups: list[str], series: dict[str, list[float]], title: str, ylabel: str
) -> str:
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for j, (name, values) in enumerate(series.items()):
        ax.bar(x + j * width - 0.4 + width / 2, values, width, label=name)
    ax.set_xticks(x, groups, rotation=15, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return _png(fig)


def _render(template: str, **context: Any) -> str:
    """Render a packaged template with the version and generation time added."""
    text = (resources.files("bundlewise") / "templates" / template).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(text).render(
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        **context,
    )


def build_evaluation_report(result: dict[str, Any]) -> str:
    """Render a next-orders backtest (:func:`bundlewise.evaluation.backtest.backtest`)."""
    methods = [m["method"] for m in result["methods"]]
    plot = _grouped_bars(
        methods,
        {f"HR@{k}": [m["hit_rate"][str(k)] for m in result["methods"]] for k in (1, 3, 10)},
        "Next-orders bundle hit rate",
        "share of customers",
    )
    return _render("evaluation.html.j2", result=result, plot=plot)


__all__ = ["build_evaluation_report", "build_report"]
