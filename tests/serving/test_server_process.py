"""`bundlewise serve` as a real process on 127.0.0.1: what it prints, idle connections closed,
the concurrency limit, and one rate limit for all the workers of ``--workers N``."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from served import Served

from bundlewise.serving.loadgen import HOST, free_port, running_server

pytestmark = pytest.mark.integration


def _request(sock: socket.socket, path: str, key: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {key}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_serve_prints_where_it_listens(served: Served) -> None:
    port = free_port()
    cmd = [
        sys.executable, "-m", "bundlewise", "serve", "--workspace", str(served.workspace),
        "--host", HOST, "--port", str(port), "--feedback-url", served.feedback_url,
        "--keys-file", str(served.keys_file),
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        url = f"http://{HOST}:{port}"
        assert f"at {url}" in lines[0], lines
        assert lines[1].split() == ["dashboard:", f"{url}/dashboard"], lines
        assert lines[2].split() == ["API", "docs:", f"{url}/docs"], lines
        deadline = time.monotonic() + 60
        while True:
            try:
                root = httpx.get(url + "/", follow_redirects=True, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert root.status_code == 200 and str(root.url) == f"{url}/dashboard"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_bad_serve_settings_are_one_line(served: Served) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bundlewise", "serve", "--workspace", str(served.workspace),
         "--feedback-timeout", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "feedback_timeout_seconds" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_idle_connections_are_closed_and_concurrency_is_bounded(served: Served) -> None:
    path = "/v1/customers/x/offers"
    with running_server(
        served.workspace,
        served.feedback_url,
        served.keys_file,
        ["--keep-alive-timeout", "1", "--max-concurrency", "3"],
    ) as server:
        port = int(server.url.rsplit(":", 1)[1])
        idle = socket.create_connection((HOST, port), timeout=10)
        assert _request(idle, path, served.read_key).startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # past the keep-alive timeout: the server hangs up
        idle.settimeout(5)
        assert idle.recv(1) == b"", "an idle connection was kept open"
        idle.close()
        # With a limit of 3 (uvicorn counts the asking connection too), two open connections
        # are served and a third gets 503 at once.
        held = [socket.create_connection((HOST, port), timeout=10) for _ in range(2)]
        try:
            for sock in held:
                assert _request(sock, path, served.read_key).startswith(b"HTTP/1.1 200")
            extra = socket.create_connection((HOST, port), timeout=10)
            try:
                assert _request(extra, path, served.read_key).startswith(b"HTTP/1.1 503")
            finally:
                extra.close()
        finally:
            for sock in held:
                sock.close()


def test_workers_share_one_rate_limit(served: Served) -> None:
    path = "/v1/customers/x/offers"
    with running_server(
        served.workspace,
        served.feedback_url,
        served.keys_file,
        ["--workers", "2", "--rate-limit", "6"],
        ready_timeout=180,
    ) as server:
        statuses = []
        for _ in range(12):  # a new connection each time: either worker may answer
            r = httpx.get(server.url + path, headers={"X-API-Key": served.read_key}, timeout=10)
            statuses.append(r.status_code)
        # A per-process bucket would let up to 12 through; one shared bucket lets 6.
        assert statuses.count(200) == 6, statuses
        assert statuses.count(429) == 6, statuses


def test_changed_guardrails_are_refused_in_one_line_unless_reprice(
    served: Served, tmp_path: Path
) -> None:
    config = tmp_path / "store.toml"
    config.write_text("[pricing]\nmax_discount = 0.2\n", encoding="utf-8")
    cmd = [
        sys.executable, "-m", "bundlewise", "serve", "--workspace", str(served.workspace),
        "--keys-file", str(served.keys_file), "--feedback-url", served.feedback_url,
        "--port", str(free_port()), "--config", str(config),
    ]  # fmt: skip
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "max_discount" in refused.stderr and "--reprice" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    with running_server(
        served.workspace,
        served.feedback_url,
        served.keys_file,
        ["--config", str(config), "--reprice"],
    ) as server:
        offers = httpx.get(
            server.url + "/v1/customers/x/offers", headers={"X-API-Key": served.read_key}
        ).json()["offers"]
        assert offers and all(o["discount_pct"] <= 0.2 + 1e-9 for o in offers)
