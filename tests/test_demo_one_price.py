"""The issue's acceptance check on the whole bundled demo: for every stored offer (all customers
and the anonymous ones) the quote route gives the stored price, rule and P(accept).

Slow (a full ingest and train of 525k order lines): ``pytest -m slow tests/test_demo_one_price.py``.
The default suite runs the same check on a one-month slice (tests/serving/test_one_price.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from bundlewise.data import Workspace
from bundlewise.pipeline import bundled_dataset_path, ingest, train
from bundlewise.pricing import ANONYMOUS

pytestmark = [pytest.mark.slow, pytest.mark.integration]


class _LengthEncoder:
    """Titles to unit vectors by length: prices never depend on the encoder."""

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        angle = np.array([len(t) for t in texts], dtype=np.float64)
        return np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)


def test_quote_route_gives_every_stored_demo_offers_price(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from bundlewise.serving.app import create_app
    from bundlewise.serving.keys import KeyStore
    from bundlewise.serving.settings import ServeSettings

    workspace = Workspace(tmp_path / "ws")
    ingest(workspace, bundled_dataset_path())
    train(workspace, encoder=_LengthEncoder())
    offers = workspace.table("offers").to_pylist()
    assert len(offers) > 20_000
    key = KeyStore(tmp_path / "keys.json").create(("read",), "test")
    settings = ServeSettings(
        workspace=workspace.path,
        keys_file=tmp_path / "keys.json",
        feedback_url=f"sqlite:///{tmp_path / 'feedback.db'}",
        rate_limit_per_minute=10_000_000,
    )
    mismatches = []
    with TestClient(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        for offer in offers:
            customer = offer["customer_id"]
            body = {"item_ids": list(reversed(offer["item_ids"]))}
            if customer != ANONYMOUS:
                body["customer_id"] = customer
            quote = client.post("/v1/quotes", json=body).json()
            got = (quote.get("price_minor"), quote.get("binding_rule"))
            if got != (offer["price_minor"], offer["binding_rule"]):
                mismatches.append((offer["offer_id"], got, offer["price_minor"]))
            elif abs(quote["p_accept"] - offer["p_accept"]) > 1e-12:
                mismatches.append((offer["offer_id"], quote["p_accept"], offer["p_accept"]))
    assert mismatches == [], f"{len(mismatches)} of {len(offers)} offers differ: {mismatches[:5]}"
