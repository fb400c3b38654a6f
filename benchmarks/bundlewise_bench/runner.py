"""Offline experiment driver for the Youshu bundle-recommendation track.

Every model is trained on ``user_bundle_train`` (and, for the two-view model, the user-item and
bundle-item affiliations) and scored with the protocol of :mod:`bundlewise.evaluation.youshu`
on ``tune`` and, when the folder has it, ``test``. Hyperparameters are chosen on tune only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise.composer.interest import max_normalize
from bundlewise.evaluation.youshu import YoushuData, evaluate_ranking
from bundlewise.models import (
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
)

logger = logging.getLogger(__name__)


def item_view(data: YoushuData, transform: str = "log") -> sp.csr_matrix:
    """Users' item interactions projected onto bundles: ``user_item @ bundle_item.T``.

    Entry (u, b) counts the items of bundle b that user u interacted with; ``transform`` is
    ``"raw"``, ``"log"`` (log1p) or ``"binary"``.

    Raises
    ------
    ValueError
        Unknown transform.
    """
    counts = (data.user_item @ data.bundle_item.T).tocsr().astype(np.float32)
    if transform == "raw":
        return counts
    if transform == "log":
        counts.data = np.log1p(counts.data)
        return counts
    if transform == "binary":
        counts.data[:] = 1.0
        return counts
    raise ValueError(f"transform={transform!r} should be 'raw', 'log' or 'binary'.")


@dataclass(frozen=True)
class ModelSpec:
    """A named model and how to fit it on Youshu."""

    name: str
    build: Callable[[], Recommender]
    uses_item_view: bool = False
    item_view_transform: str = "log"
    uses_content: bool = False
    #: Weight of the direct item view added to the model's scores at ranking time, both
    #: max-normalized per user (0 = off): score = norm(model) + w * norm(item view).
    item_view_blend: float = 0.0


@dataclass
class ModelResult:
    """Metrics of one model on each split, with its training time in seconds."""

    name: str
    fit_seconds: float
    params: dict[str, object]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


def default_youshu_models() -> list[ModelSpec]:
    """The models of the benchmark table, baselines first, ours last.

    Hyperparameters were chosen on the tune split (see ``benchmarks/README.md``).
    """
    return [
        ModelSpec("popularity", PopularityRecommender),
        ModelSpec("item-kNN", lambda: ItemKNNRecommender(n_neighbors=200, shrinkage=10.0)),
        ModelSpec("ALS (implicit)", lambda: ALSRecommender(factors=128, iterations=20)),
        ModelSpec("BPR (implicit)", lambda: BPRRecommender(factors=128, iterations=200)),
        ModelSpec("EASE (bundle view)", lambda: EASERecommender(l2=300.0)),
        ModelSpec(
            "EASE two-view (bundle + item view)",
            lambda: EASERecommender(l2=300.0, side_weight=0.05),
            uses_item_view=True,
            item_view_transform="raw",
        ),
        ModelSpec(
            "EASE two-view + bundle content",
            lambda: EASERecommender(l2=300.0, side_weight=0.05, content_weight=0.3),
            uses_item_view=True,
            item_view_transform="raw",
            uses_content=True,
        ),
        ModelSpec(
            "EASE two-view + content + item-view blend",
            lambda: EASERecommender(l2=300.0, side_weight=0.05, content_weight=0.3),
            uses_item_view=True,
            item_view_transform="raw",
            uses_content=True,
            item_view_blend=0.15,
        ),
    ]


def run_youshu(
    data: YoushuData,
    models: list[ModelSpec] | None = None,
    ks: tuple[int, ...] = (20, 40),
    progress: Callable[[str], None] | None = None,
) -> list[ModelResult]:
    """Fit and score every model on every available split.

    Returns one :class:`ModelResult` per model, in the given order.
    """
    results = []
    train = data.user_bundle_train
    for spec in default_youshu_models() if models is None else models:
        if progress is not None:
            progress(spec.name)
        model = spec.build()
        start = time.perf_counter()
        if spec.uses_item_view or spec.uses_content:
            if not isinstance(model, EASERecommender):
                raise TypeError(f"{spec.name}: only EASERecommender takes side or content.")
            model.fit(
                train,
                side=item_view(data, spec.item_view_transform) if spec.uses_item_view else None,
                content=data.bundle_item if spec.uses_content else None,
            )
        else:
            model.fit(train)
        fit_seconds = time.perf_counter() - start
        result = ModelResult(spec.name, fit_seconds, model.get_params())

        direct = item_view(data, "raw") if spec.item_view_blend > 0 else None

        def scorer(
            users: npt.NDArray[np.int64],
            model: Recommender = model,
            direct: sp.csr_matrix | None = direct,
            weight: float = spec.item_view_blend,
        ) -> np.ndarray:
            scores = model.score(users)
            if direct is None:
                return scores
            return max_normalize(scores) + weight * max_normalize(direct[users].toarray())

        for split in data.splits():
            result.metrics[split] = evaluate_ranking(scorer, train, data.split(split), ks=ks)
        logger.info("%s: %s (fit %.1f s)", spec.name, result.metrics, fit_seconds)
        results.append(result)
    return results


__all__ = ["ModelResult", "ModelSpec", "default_youshu_models", "item_view", "run_youshu"]
