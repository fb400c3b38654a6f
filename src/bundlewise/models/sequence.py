"""SASRec-style Transformer over each customer's item sequence (PyTorch, CPU or GPU).

A causal Transformer encoder reads the last ``max_len`` items a customer bought (oldest first)
and predicts the next one with a softmax over all items (weights tied to the item embeddings).
Item embeddings can start from pretrained text embeddings (projected to ``d_model`` by PCA),
so products with few purchases begin near their textual neighbours.

Install with ``pip install 'bundlewise[seq]'`` (torch).

References
----------
Kang & McAuley (2018), "Self-attentive sequential recommendation", ICDM.
Klenitskiy & Vasilev (2023), "Turning dross into gold loss: is BERT4Rec really better than
SASRec?", RecSys (full cross-entropy instead of sampled BCE).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from bundlewise._version import __version__
from bundlewise.models.base import (
    FloatMatrix,
    IntArray,
    Recommender,
    as_interactions,
)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("the sequence model needs torch: pip install 'bundlewise[seq]'") from exc
    return torch


def _build_network(n_items: int, max_len: int, d_model: int, n_heads: int, n_layers: int,
                   dropout: float) -> Any:  # fmt: skip
    torch = _torch()
    nn = torch.nn

    class SASRecNet(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, d_model, padding_idx=0)  # 0 = padding
            self.positions = nn.Embedding(max_len, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, dim_feedforward=2 * d_model, dropout=dropout,
                batch_first=True, norm_first=True,
            )  # fmt: skip
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.dropout = nn.Dropout(dropout)

        def forward(self, seq: Any) -> Any:
            positions = torch.arange(seq.shape[1], device=seq.device)
            h = self.items(seq) * (d_model**0.5) + self.positions(positions)[None]
            h = self.dropout(h)
            causal = torch.triu(
                torch.ones(seq.shape[1], seq.shape[1], dtype=torch.bool, device=seq.device), 1
            )
            h = self.encoder(h, mask=causal, src_key_padding_mask=seq == 0)
            h = self.norm(h)
            return h @ self.items.weight[1:].T  # logits over items (n_items)

    return SASRecNet()


class SASRecRecommender(Recommender):
    """Next-item Transformer; scores every item for a customer from their recent sequence.

    Parameters
    ----------
    max_len
        Items of history read per customer.
    d_model, n_heads, n_layers, dropout
        Transformer size.
    epochs, batch_size, learning_rate
        Adam training with full softmax cross-entropy.
    random_state
        Seeds torch and the batch order.
    device
        ``"cpu"`` or ``"cuda"``.
    """

    _fitted_arrays = ("seq_items_", "seq_indptr_")

    def __init__(
        self,
        max_len: int = 50,
        d_model: int = 64,
        n_heads: int = 2,
        n_layers: int = 2,
        dropout: float = 0.2,
        epochs: int = 30,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.max_len = max_len
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.device = device

    @classmethod
    def _unit_test_params(cls) -> dict[str, object]:
        return {"max_len": 8, "d_model": 16, "n_layers": 1, "epochs": 2, "batch_size": 16}

    def _validate_params(self) -> None:
        for name in ("max_len", "d_model", "n_heads", "n_layers", "epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} should be an integer >= 1.")
        if self.max_len < 2:
            raise ValueError(f"max_len={self.max_len} should be >= 2.")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}.")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout={self.dropout!r} should be in [0, 1).")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} should be > 0.")

    def fit(
        self,
        interactions: sp.spmatrix | npt.ArrayLike,
        sequences: Sequence[npt.ArrayLike] | None = None,
        item_embeddings: npt.ArrayLike | None = None,
    ) -> Self:
        """Train on each user's time-ordered item sequence.

        Parameters
        ----------
        interactions
            Shape (n_users, n_items); used for ``exclude_seen`` and, when ``sequences`` is
            None, as unordered sequences (item index order).
        sequences
            One array of item indices per user, oldest first.
        item_embeddings
            Shape (n_items, dim): pretrained (e.g. text) embeddings to start from.

        Raises
        ------
        ValueError
            Invalid hyperparameters, sequence count or item index, embedding shape.
        """
        matrix = as_interactions(interactions)
        n_users, n_items = matrix.shape
        if sequences is None:
            sequences = [matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]]
                         for u in range(n_users)]  # fmt: skip
        if len(sequences) != n_users:
            raise ValueError(f"got {len(sequences)} sequences for {n_users} users.")
        arrays = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
        for u, s in enumerate(arrays):
            if s.size and (s.min() < 0 or s.max() >= n_items):
                raise ValueError(f"sequence of user {u} has an item index outside [0, {n_items}).")
        self.seq_indptr_ = np.concatenate([[0], np.cumsum([len(s) for s in arrays])])
        self.seq_items_ = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        if item_embeddings is not None:
            emb = np.asarray(item_embeddings, dtype=np.float64)
            if emb.shape[0] != n_items:
                raise ValueError(f"item_embeddings has {emb.shape[0]} rows, expected {n_items}.")
            self._init_embeddings: npt.NDArray[np.float64] | None = emb
        else:
            self._init_embeddings = None
        super().fit(matrix)
        return self

    def _windows(self, users: IntArray) -> IntArray:
        """Last ``max_len`` items of each user, left-padded with 0 (items shifted by +1)."""
        out = np.zeros((len(users), self.max_len), dtype=np.int64)
        for row, u in enumerate(users):
            seq = self.seq_items_[self.seq_indptr_[u] : self.seq_indptr_[u + 1]][-self.max_len :]
            if len(seq):
                out[row, -len(seq) :] = seq + 1
        return out

    def _fit(self, interactions: sp.csr_matrix) -> None:
        torch = _torch()
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        net = _build_network(self.n_items_, self.max_len, self.d_model, self.n_heads,
                             self.n_layers, self.dropout).to(self.device)  # fmt: skip
        if self._init_embeddings is not None:
            emb = self._init_embeddings - self._init_embeddings.mean(axis=0)
            _, _, vt = np.linalg.svd(emb, full_matrices=False)
            projected = emb @ vt[: self.d_model].T
            if projected.shape[1] < self.d_model:
                projected = np.hstack(
                    [projected, np.zeros((len(projected), self.d_model - projected.shape[1]))]
                )
            projected *= 0.02 / max(projected.std(), 1e-12)  # the init scale of nn.Embedding/50
            with torch.no_grad():
                net.items.weight[1:] = torch.as_tensor(projected, dtype=torch.float32)
        # training windows: every prefix of every sequence, next item as the target
        inputs, targets = [], []
        for u in range(self.n_users_):
            seq = self.seq_items_[self.seq_indptr_[u] : self.seq_indptr_[u + 1]] + 1
            if len(seq) < 2:
                continue
            window = np.zeros(self.max_len + 1, dtype=np.int64)
            for end in range(len(seq), 1, -self.max_len):
                chunk = seq[max(0, end - self.max_len - 1) : end]
                window[:] = 0
                window[-len(chunk) :] = chunk
                inputs.append(window[:-1].copy())
                targets.append(window[1:].copy())
        self.n_train_windows_ = len(inputs)
        if not inputs:
            self._net = net.eval()
            return
        x_all = torch.as_tensor(np.stack(inputs))
        y_all = torch.as_tensor(np.stack(targets)) - 1  # -1 = padding, ignored
        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
        net.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(x_all))
            for start in range(0, len(order), self.batch_size):
                batch = torch.as_tensor(order[start : start + self.batch_size])
                x = x_all[batch].to(self.device)
                y = y_all[batch].to(self.device)
                logits = net(x)
                loss = loss_fn(logits.reshape(-1, self.n_items_), y.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self._net = net.eval()

    def _score(self, user_idx: IntArray) -> FloatMatrix:
        torch = _torch()
        windows = torch.as_tensor(self._windows(user_idx)).to(self.device)
        with torch.no_grad():
            logits = self._net(windows)[:, -1, :]
        scores: FloatMatrix = logits.cpu().numpy().astype(np.float64)
        empty = (windows[:, -1] == 0).cpu().numpy()
        scores[empty] = 0.0  # no history: no preference
        return scores

    def save(self, path: str | Path) -> None:
        """Write ``<path>.npz`` (sequences and network weights) and ``<path>.json``."""
        super().save(path)
        path = Path(path)
        state = {f"net__{k}": v.cpu().numpy() for k, v in self._net.state_dict().items()}
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        np.savez(path.with_suffix(".npz"), **arrays, **state)
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        meta["bundlewise_version"] = __version__
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load what :meth:`save` wrote (no pickle)."""
        model = super().load(path)
        torch = _torch()
        net = _build_network(model.n_items_, model.max_len, model.d_model, model.n_heads,
                             model.n_layers, model.dropout)  # fmt: skip
        with np.load(Path(path).with_suffix(".npz"), allow_pickle=False) as data:
            state = {k[5:]: torch.as_tensor(data[k]) for k in data.files if k.startswith("net__")}
        net.load_state_dict(state)
        model._net = net.to(model.device).eval()
        return model


__all__ = ["SASRecRecommender"]
