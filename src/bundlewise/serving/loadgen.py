"""Run the server in a child process, load it, and crash it: for the load test and the
durability test. Only ever aimed at 127.0.0.1, bounded in requests and time."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@contextmanager
def running_server(
    workspace: Path,
    feedback_url: str,
    keys_file: Path,
    extra: Sequence[str] = (),
    ready_timeout: float = 120.0,
) -> Iterator[Server]:
    """``bundlewise serve`` on a free local port; waits for /health; stops it on exit."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "bundlewise", "serve", "--workspace", str(workspace),
        "--host", HOST, "--port", str(port), "--feedback-url", feedback_url,
        "--keys-file", str(keys_file), *extra,
    ]  # fmt: skip
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(process, f"http://{HOST}:{port}")
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"server exited with {process.returncode}: {err[-2000:]}")
            try:
                if httpx.get(server.url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if process.stderr:
            process.stderr.close()


@dataclass(frozen=True)
class CrashResult:
    """Feedback events sent during a kill -9, and what the store kept."""

    sent: int
    acknowledged: int
    stored_after_crash: int
    acknowledged_lost: int


def feedback_until_killed(
    server: Server,
    key: str,
    offer: tuple[str, str],
    kill_after_acks: int = 300,
    threads: int = 4,
    max_seconds: float = 30.0,
    outcomes: Sequence[str] = ("shown",),
    policy_version: str | None = None,
) -> tuple[set[str], int]:
    """Send feedback events for ``offer`` (offer id, the customer it was served to) from
    ``threads`` threads; SIGKILL the server after ``kill_after_acks`` acknowledgements. Returns
    the acknowledged event ids and the number sent.

    Each thread's events cycle through ``outcomes``; with ``policy_version`` (the offer's
    decision on a learning server) every event carries it.
    """
    offer_id, customer_id = offer
    acked: set[str] = set()
    sent = [0]
    lock = threading.Lock()
    stop = threading.Event()
    run = uuid.uuid4().hex[:8]

    def worker(t: int) -> None:
        with httpx.Client(base_url=server.url, timeout=5.0) as client:
            k = 0
            while not stop.is_set():
                event_id = f"crash-{run}-{t}-{k}"
                body = {
                    "event_id": event_id,
                    "offer_id": offer_id,
                    "customer_id": customer_id,
                    "outcome": outcomes[k % len(outcomes)],
                    "occurred_at": "2026-11-23T12:00:00Z",
                }
                if policy_version is not None:
                    body["policy_version"] = policy_version
                k += 1
                with lock:
                    sent[0] += 1
                try:
                    r = client.post("/v1/feedback", json=body, headers={"X-API-Key": key})
                except httpx.HTTPError:
                    if server.process.poll() is not None:
                        return
                    continue
                if r.status_code == 200 and r.json().get("status") in ("stored", "duplicate"):
                    with lock:
                        acked.add(event_id)

    pool = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for th in pool:
        th.start()
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= kill_after_acks:
                break
        time.sleep(0.005)
    server.kill()
    stop.set()
    for th in pool:
        th.join(timeout=10)
    return acked, sent[0]


@dataclass(frozen=True)
class LoadResult:
    """Latency and throughput of a bounded load run."""

    target_rps: float
    seconds: float
    requests: int
    errors: int
    achieved_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def _open_loop(
    url: str, paths: Sequence[str], key: str, rps: float, seconds: float, concurrency: int
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=5.0, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(path: str) -> None:
            nonlocal errors
            async with sem:
                start = time.perf_counter()
                try:
                    r = await client.get(path, headers={"X-API-Key": key})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors += 1

        n = int(rps * seconds)
        begin = time.perf_counter()
        tasks = []
        for i in range(n):
            due = begin + i / rps
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    return latencies, errors, elapsed


def load(
    url: str, paths: Sequence[str], key: str, rps: float, seconds: float, concurrency: int = 32
) -> LoadResult:
    """An open-loop run: ``rps`` GET requests per second for ``seconds`` over ``paths``."""
    latencies, errors, elapsed = asyncio.run(_open_loop(url, paths, key, rps, seconds, concurrency))
    ms = np.asarray(latencies) * 1000.0
    return LoadResult(
        target_rps=rps,
        seconds=round(elapsed, 2),
        requests=len(latencies),
        errors=errors,
        achieved_rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(float(np.percentile(ms, 50)), 2),
        p95_ms=round(float(np.percentile(ms, 95)), 2),
        p99_ms=round(float(np.percentile(ms, 99)), 2),
        max_ms=round(float(ms.max()), 2),
    )


__all__ = [
    "CrashResult",
    "LoadResult",
    "Server",
    "feedback_until_killed",
    "free_port",
    "load",
    "running_server",
]
