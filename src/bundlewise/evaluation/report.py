"""The HTML report: cleaning, mining, offers, prices and the assumptions behind them.

Plots are rendered with matplotlib (Agg backend) to PNG and embedded as data URIs, so the report
is one self-contained file.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import matplotlib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bundlewise._version import __version__
from bundlewise.config import Config, PricingConfig
from bundlewise.data.cleaning import CleaningReport
from bundlewise.evaluation.fonts import fonts_for, plain_label
from bundlewise.money import currency_exponent, from_minor_units
from bundlewise.pricing.response import acceptance_probability

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

ANONYMOUS = "__anonymous__"

#: Share of offers within 1% of the list total above which the report warns.
NEAR_LIST_WARNING_SHARE = 0.5


def money(amount_minor: float, currency: str) -> str:
    """Money for the report, with thousands separators: ``GBP 12,345.67``."""
    exponent = currency_exponent(currency)
    return f"{currency} {from_minor_units(round(amount_minor), currency):,.{exponent}f}"


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
                "title": " + ".join(t or i for t, i in zip(group[0]["titles"], key, strict=True)),
                "ids": ", ".join(key),
                "n_customers": len(group),
                "list_total": money(group[0]["list_total_minor"], currency),
                "price_range": (
                    money(min(prices), currency)
                    if min(prices) == max(prices)
                    else f"{money(min(prices), currency)} - {money(max(prices), currency)}"
                ),
                "mean_p_accept": f"{np.mean([r['p_accept'] for r in group]):.3f}",
                "profit_minor": sum(r["expected_profit_minor"] for r in group),
                "expected_profit": money(sum(r["expected_profit_minor"] for r in group), currency),
            }
        )
    return out


def _uplift(personal: pa.Table, pricing: PricingConfig) -> dict[str, Any] | None:
    """Expected profit and revenue of the offers vs list price and the best uniform discount.

    P(accept) at any price comes from each offer's own price response (``appeal`` a and
    ``sensitivity`` b: ``sigmoid(a - b * price / list total)``). The uniform-discount baseline
    takes one discount for every offer (a 0.5% grid up to ``pricing.max_discount``), raised to
    the margin floor ``cost * (1 + min_margin)`` where it would go below, never above the list
    total; the discount with the highest expected profit is reported. None when the offers do
    not carry their price response (trained by an older version).
    """
    if personal.num_rows == 0 or not {"appeal", "sensitivity"} <= set(personal.column_names):
        return None
    a = personal.column("appeal").to_numpy(zero_copy_only=False).astype(np.float64)
    b = personal.column("sensitivity").to_numpy(zero_copy_only=False).astype(np.float64)
    known = ~(np.isnan(a) | np.isnan(b))
    if not known.any():
        return None

    def column(name: str) -> np.ndarray:
        values = personal.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        return np.asarray(values[known], dtype=np.float64)

    a, b = a[known], b[known]
    list_total, cost = column("list_total_minor"), column("cost_minor")
    price = column("price_minor")

    def totals(prices: np.ndarray) -> tuple[float, float, float]:
        p = acceptance_probability(prices, list_total, a, b)
        return float(np.sum(p * (prices - cost))), float(np.sum(p * prices)), float(np.sum(p))

    floor = cost * (1.0 + pricing.min_margin)
    grid = np.round(np.arange(0.0, pricing.max_discount + 1e-9, 0.005), 4)
    uniform = [
        (d, totals(np.minimum(np.maximum(list_total * (1.0 - d), floor), list_total))) for d in grid
    ]
    best_discount, best = max(uniform, key=lambda item: (item[1][0], -item[0]))
    offered, at_list = totals(price), totals(list_total)

    def versus(base: tuple[float, float, float]) -> dict[str, str]:
        def change(ours: float, theirs: float) -> str:
            if theirs == 0:
                return "n/a"
            return f"{(ours - theirs) / abs(theirs):+.1%}"

        return {"profit": change(offered[0], base[0]), "revenue": change(offered[1], base[1])}

    currency = personal.column("currency")[0].as_py()

    def row(name: str, values: tuple[float, float, float]) -> dict[str, str]:
        return {
            "policy": name,
            "profit": money(values[0], currency),
            "revenue": money(values[1], currency),
            "accepts": f"{values[2]:,.0f}",
        }

    return {
        "n_offers": int(known.sum()),
        "n_missing": int((~known).sum()),
        "best_discount": f"{best_discount:.1%}",
        "rows": [
            row("bundlewise offers (personalized prices)", offered),
            row("list price (no discount)", at_list),
            row(f"best uniform discount ({best_discount:.1%} off every offer)", best),
        ],
        "vs_list": versus(at_list),
        "vs_uniform": versus(best),
        "raw": {
            name: {"profit": values[0], "revenue": values[1], "accepts": values[2]}
            for name, values in (("offers", offered), ("list", at_list), ("uniform", best))
        },
    }


def _margin_plot(personal: pa.Table, pricing: PricingConfig, currency: str) -> str:
    """Price against cost per offer, real and assumed costs apart, with the margin floor."""
    scale = 10.0 ** currency_exponent(currency)
    cost = personal.column("cost_minor").to_numpy(zero_copy_only=False).astype(np.float64) / scale
    price = personal.column("price_minor").to_numpy(zero_copy_only=False).astype(np.float64)
    price = price / scale
    assumed = personal.column("is_cost_assumed").to_numpy(zero_copy_only=False).astype(bool)
    if len(cost) > 5000:  # a sample keeps the picture (and the file) small
        keep = np.random.default_rng(0).choice(len(cost), 5000, replace=False)
        cost, price, assumed = cost[keep], price[keep], assumed[keep]
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    for mask, label, color in (
        (~assumed, f"real unit cost ({int((~assumed).sum()):,})", "#3b6ea8"),
        (assumed, f"assumed cost ({int(assumed.sum()):,})", "#d08b2c"),
    ):
        if mask.any():
            ax.scatter(cost[mask], price[mask], s=6, alpha=0.5, color=color, label=label)
    top = float(max(cost.max(initial=0.0), price.max(initial=0.0))) * 1.05 or 1.0
    ax.plot([0, top], [0, top], ":", color="#888", label="price = cost")
    ax.plot(
        [0, top / (1 + pricing.min_margin)],
        [0, top],
        "--",
        color="#b04040",
        label=f"margin floor (cost x {1 + pricing.min_margin:g})",
    )
    ax.set_xlabel(f"bundle cost ({currency})")
    ax.set_ylabel(f"offered price ({currency})")
    n_real, n_assumed = int((~assumed).sum()), int(assumed.sum())
    if n_assumed == 0:
        costs = "all costs real (from the data)"
    elif n_real == 0:
        costs = f"all costs assumed ({pricing.assumed_cost_share:.0%} of list)"
    else:
        costs = f"costs: {n_real:,} real, {n_assumed:,} assumed"
    ax.set_title(f"Price vs cost per offer; {costs}", fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _top_bundles_plot(top: list[dict[str, Any]], currency: str) -> str:
    """Expected profit of the top bundles, labelled by their titles."""
    shown = top[:10]
    scale = 10.0 ** currency_exponent(currency)
    fig, ax = plt.subplots(figsize=(7.2, 0.35 * len(shown) + 1.2))
    ax.barh(
        [plain_label(b["title"], 60) for b in shown],
        [b["profit_minor"] / scale for b in shown],
        color="#6a9f58",
    )
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel(f"total expected profit ({currency})")
    ax.set_title("Top bundles")
    return _png(fig)


@lru_cache(maxsize=1)
def _bundled_sha256() -> str | None:
    from bundlewise.data.workspace import file_sha256
    from bundlewise.pipeline import bundled_dataset_path

    try:
        return file_sha256(bundled_dataset_path())
    except OSError:
        return None


def _data_sources(sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ingested files, each marked ``bundled`` when it is the bundled demo dataset."""
    bundled = _bundled_sha256()
    out = []
    for source in sources:
        ingested = source.get("ingested_at")
        out.append(
            {
                "name": Path(str(source.get("path", "?"))).name,
                "adapter": source.get("adapter") or "",
                "n_rows_kept": source.get("n_rows_kept"),
                "ingested_at": ingested.strftime("%Y-%m-%d %H:%M UTC")
                if isinstance(ingested, datetime)
                else (str(ingested) if ingested is not None else ""),
                "sha256": str(source.get("sha256") or "")[:12],
                "bundled": bundled is not None and source.get("sha256") == bundled,
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
    sources: Sequence[Mapping[str, Any]] = (),
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
    sources
        Rows of the workspace ``ingests`` table (``path``, ``adapter``, ``sha256``,
        ``n_rows_kept``, ``ingested_at``): the footer names them, and gives the demo dataset's
        licence only when it is one of them.
    """
    personal = offers.filter(pc.not_equal(offers.column("customer_id"), ANONYMOUS))
    discount = personal.column("discount_pct").to_numpy(zero_copy_only=False)
    profit = personal.column("expected_profit_minor").to_numpy(zero_copy_only=False)
    p_accept = personal.column("p_accept").to_numpy(zero_copy_only=False)
    currency = personal.column("currency")[0].as_py() if personal.num_rows else "GBP"
    scale = 10.0 ** currency_exponent(currency)
    rules = Counter(personal.column("binding_rule").to_pylist())
    sources_count = Counter(personal.column("source").to_pylist())
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
    pricing = config.pricing
    top_bundles = _top_bundles(personal, items)
    n_assumed = int(pc.sum(personal.column("is_cost_assumed")).as_py() or 0)
    near_list = float(np.mean(discount < 0.01)) if discount.size else 0.0
    plots = {}
    response_plot = None
    train = train_result.to_dict()
    response = train.get("price_response") or None
    plotted_text = [b["title"] for b in top_bundles]
    with fonts_for(plotted_text):
        if personal.num_rows:
            plots["top bundles"] = _top_bundles_plot(top_bundles, currency)
            plots["margin"] = _margin_plot(personal, pricing, currency)
            plots["discount"] = _hist(discount * 100, "Discount off the list total", "discount (%)")
            plots["profit"] = _hist(
                profit / scale, "Expected profit per offer", f"expected profit ({currency})"
            )
            plots["p_accept"] = _hist(p_accept, "Acceptance probability at the offered price", "P")
            plots["rules"] = _bars(dict(rules), "Which rule set the price")
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
    data_sources = _data_sources(sources)
    context: dict[str, Any] = {
        "response": response,
        "response_plot": response_plot,
        "train": train,
        "cleaning": [r.to_dict() for r in cleaning_reports],
        "n_offers": personal.num_rows,
        "n_customers": len(set(personal.column("customer_id").to_pylist())),
        "total_profit": money(float(profit.sum()), currency),
        "expected_accepts": f"{float(p_accept.sum()):,.0f}",
        "mean_discount": f"{float(discount.mean()) if discount.size else 0.0:.1%}",
        "median_discount": f"{float(np.median(discount)) if discount.size else 0.0:.1%}",
        "rules": dict(rules),
        "sources": dict(sources_count),
        "sizes": {str(k): v for k, v in sorted(sizes.items())},
        "plots": plots,
        "top_bundles": top_bundles,
        "top_pairs": top_pairs,
        "n_items": items.num_rows,
        "n_cost_known": n_cost_known,
        "n_cost_assumed": n_assumed,
        "near_list_share": near_list,
        "near_list_warning": personal.num_rows > 0 and near_list > NEAR_LIST_WARNING_SHARE,
        "uplift": _uplift(personal, pricing),
        "data_sources": data_sources,
        "bundled_data": any(s["bundled"] for s in data_sources),
        "not_offered": not_offered.num_rows,
        "pricing": asdict(pricing),
        "mining": asdict(config.mining),
        "composer": asdict(config.composer),
        "examples": personal.slice(0, 10).to_pylist(),
        "money": money,
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
    env.filters["num"] = lambda value: f"{value:,}"
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
