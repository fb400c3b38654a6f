"""The HTML report of the pricing simulation (one self-contained page, plots as data URIs)."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
import matplotlib
import numpy as np

import bundlewise.evaluation.report  # noqa: F401  (the product's matplotlib setup: backend, fonts)
from bundlewise import __version__
from bundlewise.evaluation.fonts import fonts_for, plain_label
from bundlewise_bench.simulator import A_BOUND, B_BOUND, OURS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_simulation_report(result: dict[str, Any]) -> str:
    """Render a :func:`bundlewise_bench.pricing_track.pricing_track` result as HTML."""
    plots: dict[str, str] = {}
    curve = result["noise_curve"]
    if len(curve["noise"]) > 1:
        fig, ax = plt.subplots(figsize=(7.2, 3.6))
        for name, values in curve["pct_of_B"].items():
            if len(values) == len(curve["noise"]) and name not in (A_BOUND, B_BOUND):
                ours = name == OURS
                ax.plot(
                    curve["noise"],
                    values,
                    "-o" if ours else "--",
                    label=curve["labels"].get(name, name),
                    linewidth=2 if ours else 1,
                )
        ax.set_xlabel("noise in the engine's estimate of each shopper's price level (sd, log)")
        ax.set_ylabel("profit, % of bound B")
        ax.set_title("Profit vs estimation noise")
        ax.legend(fontsize=7)
        plots["noise"] = _png(fig)
    samples = result["scenarios"][0].get("price_samples", {})
    names = list(samples)
    with fonts_for(names):  # bundle names are product titles, in any script
        fig, ax = plt.subplots(figsize=(7.2, 3.6))
        if names:
            ax.boxplot(
                [samples[n] or [np.nan] for n in names], orientation="horizontal", whis=(5, 95)
            )
            ax.set_yticks(range(1, len(names) + 1), [plain_label(n, 48) for n in names], fontsize=7)
        ax.set_xlabel("bundlewise price / list total (one seed, default scenario)")
        ax.set_title("Personalized price distribution per bundle")
        plots["prices"] = _png(fig)
    template = resources.files("bundlewise_bench") / "templates" / "simulation.html.j2"
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template.read_text(encoding="utf-8")).render(
        version=__version__,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        result=result,
        plots=plots,
        a_bound=A_BOUND,
    )


__all__ = ["build_simulation_report"]
