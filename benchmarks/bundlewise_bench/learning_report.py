"""The HTML report of the learning track (one self-contained page, plots as data URIs)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import matplotlib

import bundlewise.evaluation.report  # noqa: F401  (the product's matplotlib setup: backend, fonts)
from bundlewise import __version__
from bundlewise_bench.learning_track import ORACLE
from bundlewise_bench.report import _png

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)

_STYLE = {
    "thompson": ("-", 2.2),
    "epsilon_greedy": ("--", 1.2),
    "ucb": ("-.", 1.2),
    "epsilon_greedy_one_value": ("--", 0.8),
    "ucb_one_value": ("-.", 0.8),
}


def _grid(n: int) -> tuple[Any, list[Any]]:
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7.2 * cols / 1.6, 3.0 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _regret_plot(result: dict[str, Any]) -> str:
    markets = result["markets"]
    fig, axes = _grid(len(markets))
    for ax, (name, r) in zip(axes, markets.items(), strict=True):
        for key, e in r["policies"].items():
            if key == ORACLE:  # its regret is 0
                continue
            c = e["curves"]
            style, width = _STYLE.get(key, (":", 1.0))
            x = c["offers"]
            mean = [v / 100 for v in c["cum_regret"]["mean"]]
            (line,) = ax.plot(x, mean, style, linewidth=width, label=e["label"])
            ax.fill_between(
                x,
                [v / 100 for v in c["cum_regret"]["lo"]],
                [v / 100 for v in c["cum_regret"]["hi"]],
                color=line.get_color(),
                alpha=0.12,
            )
        if r["market"]["scale_after"] is not None:
            ax.axvline(r["market"]["shift_at"] * result["n_offers"], color="grey", linewidth=0.8)
        ax.set_title(f"{name}: {r['market']['label']}", fontsize=9)
        ax.set_xlabel("offers", fontsize=8)
        ax.set_ylabel("cumulative regret (major units)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def _profit_plot(result: dict[str, Any]) -> str:
    markets = result["markets"]
    fig, axes = _grid(len(markets))
    for ax, (name, r) in zip(axes, markets.items(), strict=True):
        for key, e in r["policies"].items():
            if key == ORACLE:
                continue
            c = e["curves"]
            style, width = _STYLE.get(key, (":", 1.0))
            ax.plot(c["bin_end"], c["pct_of_oracle"], style, linewidth=width, label=e["label"])
        ax.axhline(97.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{name}: {r['market']['label']}", fontsize=9)
        ax.set_xlabel("offers (end of each bin)", fontsize=8)
        ax.set_ylabel("profit per offer, % of oracle", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def build_learning_report(result: dict[str, Any]) -> str:
    """Render a :func:`bundlewise_bench.learning_track.learning_track` result as HTML."""
    plots = {"regret": _regret_plot(result), "profit": _profit_plot(result)}
    template = resources.files("bundlewise_bench") / "templates" / "learning.html.j2"
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template.read_text(encoding="utf-8")).render(
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        result=result,
        plots=plots,
    )


__all__ = ["build_learning_report"]
