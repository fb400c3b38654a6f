"""Reloading the model while requests are in flight drops none of them."""

from __future__ import annotations

import threading

import httpx
import pytest
from served import Served

from bundlewise.data import Workspace
from bundlewise.serving.loadgen import LoadResult, load, running_server

pytestmark = pytest.mark.integration


def test_reload_during_load_drops_no_request(served: Served) -> None:
    customers = sorted(
        set(Workspace(served.workspace).table("offers").column("customer_id").to_pylist())
        - {"__anonymous__"}
    )
    paths = [f"/v1/customers/{c}/offers" for c in customers[:200]] + ["/v1/customers/x/offers"]
    results: list[LoadResult] = []
    with running_server(
        served.workspace, served.feedback_url, served.keys_file, ["--rate-limit", "1000000"]
    ) as server:
        worker = threading.Thread(
            target=lambda: results.append(
                load(server.url, paths, served.read_key, rps=100, seconds=4)
            )
        )
        worker.start()
        reloads = []
        for _ in range(2):
            r = httpx.post(
                server.url + "/v1/admin/reload",
                headers={"X-API-Key": served.admin_key},
                timeout=60,
            )
            reloads.append(r.status_code)
        worker.join(timeout=60)
    assert reloads == [200, 200]
    assert results and results[0].requests == 400
    assert results[0].errors == 0
