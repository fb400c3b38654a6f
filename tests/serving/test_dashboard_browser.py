"""The merchant dashboard in a real browser (Debian Chromium driven by Playwright).

Runs against a real server process on 127.0.0.1; needs ``/usr/bin/chromium`` (or
``BUNDLEWISE_CHROMIUM``); when ``CI`` is set a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from served import Served

from bundlewise.data import Workspace
from bundlewise.serving.loadgen import running_server

pytestmark = pytest.mark.integration

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    path = os.environ.get("BUNDLEWISE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("CI must provide Debian chromium (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    return path


def _logged_in(browser: Any, url: str, key: str) -> Any:
    """A dashboard page, logged in with ``key``, once its offers table has rows."""
    page = browser.new_page()
    page.goto(url + "/dashboard")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_selector("#offers tbody tr.offer")
    return page


def test_dashboard_shows_offers_waterfall_and_explanation(served: Served, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    offers = Workspace(served.workspace).table("offers").to_pylist()
    first = next(o for o in offers if o["customer_id"] != "__anonymous__")
    with running_server(served.workspace, served.feedback_url, served.keys_file) as server:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/dashboard")
                # A wrong key is refused with a clear message.
                page.fill("#key", "bw_nope_nope")
                page.click("button[type=submit]")
                page.wait_for_selector("text=error: missing or invalid API key")
                page.fill("#key", served.read_key)
                page.click("button[type=submit]")
                page.wait_for_selector("#offers tbody tr.offer")
                assert "max_discount" in page.inner_text("#guardrails")
                page.fill("#f-customer", first["customer_id"])
                rows = page.locator("#offers tbody tr.offer")
                assert rows.count() >= 1
                rows.first.click()
                page.wait_for_selector("#waterfall")
                waterfall = page.inner_text("#waterfall")
                assert "list total" in waterfall and "price" in waterfall
                assert page.inner_text("#binding") in {
                    "optimum", "list_total_cap", "max_discount", "margin_floor",
                    "fairness_band", "discount_budget", "segment_price",
                }  # fmt: skip
                explanation = page.inner_text("#detail")
                assert "bought together in" in explanation or "History" in explanation
                assert "list total" in explanation
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                assert (tmp_path / "dashboard.png").stat().st_size > 10_000
                assert not errors, errors
            finally:
                browser.close()


def test_dashboard_renders_chinese_product_text(served: Served, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    copy = tmp_path / "ws"
    shutil.copytree(served.workspace, copy)
    workspace = Workspace(copy)
    with workspace.connect() as con:
        customer = con.execute(
            "SELECT customer_id FROM offers WHERE customer_id <> '__anonymous__' "
            "ORDER BY customer_id LIMIT 1"
        ).fetchall()[0][0]
        con.execute(
            "UPDATE offers SET titles = list_transform(titles, lambda t: '蓝色茶杯 ' || t) "
            "WHERE customer_id = $c",
            {"c": customer},
        ).fetchall()
        con.execute("DROP TABLE IF EXISTS served_offers").fetchall()  # recomputed at load
    shutil.rmtree(copy / "snapshot")  # the served offers are recomputed at load
    with running_server(copy, served.feedback_url, served.keys_file) as server:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = _logged_in(browser, server.url, served.read_key)
                page.fill("#f-customer", customer)
                row = page.locator("#offers tbody tr.offer").first
                assert "蓝色茶杯" in row.inner_text()
                row.click()
                page.wait_for_selector("#waterfall")
                assert "蓝色茶杯" in page.inner_text("#detail h3")
                page.screenshot(path=str(tmp_path / "dashboard_zh.png"), full_page=True)
            finally:
                browser.close()


def test_dashboard_fetches_a_customer_beyond_the_first_page(served: Served, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    customers = sorted(
        {o for o in Workspace(served.workspace).table("offers").column("customer_id").to_pylist()}
        - {"__anonymous__"}
    )
    last = customers[-1]  # the summary holds only the first 200 customers
    assert len(customers) > 200
    with running_server(served.workspace, served.feedback_url, served.keys_file) as server:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = _logged_in(browser, server.url, served.read_key)
                page.fill("#f-customer", last)
                page.press("#f-customer", "Enter")
                page.wait_for_selector(f"#offers tbody tr.offer >> text={last}")
                assert page.locator("#offers tbody tr.offer").count() >= 1
            finally:
                browser.close()


def test_dashboard_shows_the_learning_loop(served: Served, tmp_path: Path) -> None:
    """A learning server after feedback: the segments' learned sensitivity and, per bundle, the
    price ladder with the preferred rung, the feedback and what exploring cost."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    customers = sorted(
        {o for o in Workspace(served.workspace).table("offers").column("customer_id").to_pylist()}
        - {"__anonymous__"}
    )[:40]
    extra = ["--learn"]
    with running_server(served.workspace, served.feedback_url, served.keys_file, extra) as server:
        headers = {"X-API-Key": served.read_key}
        for k in range(50):
            customer = customers[k % len(customers)]
            offer = httpx.get(
                f"{server.url}/v1/customers/{quote(customer, safe='')}/offers?n=1", headers=headers
            ).json()["offers"][0]
            event = {
                "event_id": f"dash-{k}",
                "offer_id": offer["offer_id"],
                "customer_id": customer,
                "outcome": "accepted" if k % 4 == 0 else "rejected",
                "occurred_at": "2026-12-01T10:00:00Z",
                "policy_version": offer["decision"]["policy_version"],
            }
            r = httpx.post(f"{server.url}/v1/feedback", json=event, headers=headers)
            assert r.status_code == 200, r.text
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/dashboard")
                page.fill("#key", served.read_key)
                page.click("button[type=submit]")
                page.wait_for_selector("#learning-bundles tbody tr.bundle")
                assert "50 events learned from" in page.inner_text("#learning-status")
                assert page.locator("#learning-segments tbody tr").count() >= 1
                first = page.locator("#learning-bundles tbody tr.bundle").first
                assert first.locator(".rung").count() >= 2
                assert first.locator(".rung.preferred").count() == 1
                assert "GBP" in first.inner_text()
                page.screenshot(path=str(tmp_path / "dashboard_learning.png"), full_page=True)
                assert not errors, errors
            finally:
                browser.close()
