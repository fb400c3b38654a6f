"""What a running server holds: the model snapshot, the offer ids it serves, the feedback store
and its writer threads, the learning loop (when on), the API keys, the rate limiter, the
pseudonym secret and the metrics.

Routes get these through the dependencies of :mod:`bundlewise.serving.deps`, never as globals.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from prometheus_client import CollectorRegistry, Counter, Histogram

from bundlewise.config import Config, load_config
from bundlewise.exceptions import BundlewiseError, WorkspaceError
from bundlewise.serving.keys import KeyStore
from bundlewise.serving.learning import LearningLoop
from bundlewise.serving.model import Snapshot, load_snapshot
from bundlewise.serving.offer_ids import OfferIds, load_offer_ids
from bundlewise.serving.privacy import workspace_secret
from bundlewise.serving.ratelimit import Limiter, SharedTokenBucket, TokenBucket
from bundlewise.serving.settings import ServeSettings
from bundlewise.serving.store import FeedbackStore, StoreUnavailable

logger = logging.getLogger("bundlewise.serving")

T = TypeVar("T")

#: Carts priced at once (each on a worker thread); more wait their turn.
CARTS_AT_ONCE = 2
#: /health waits this long for the feedback store's answer.
HEALTH_TIMEOUT = 1.0


def settle_heap() -> None:
    """Collect, then move every object alive now (the model just loaded, the imported modules)
    to the collector's permanent generation (:func:`gc.freeze`).

    The model is some hundred thousand long-lived objects; left in the oldest generation, each
    full collection walks them all (about 0.1 s with the GIL held, every few seconds under
    load, since every request's short-lived objects count towards the next one), and any
    request then waits for it. Frozen, they are never walked; a reload unfreezes them first,
    so that the old model's cycles are collected once it is dropped, and closing the state
    unfreezes them for good.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Metrics:
    """Prometheus metrics of one app (its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bundlewise_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bundlewise_request_seconds",
            "Request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.feedback = Counter(
            "bundlewise_feedback_events", "Feedback events", ["status"], registry=self.registry
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


class StoreBusy(Exception):
    """The feedback store did not answer within the timeout (or its writers are all busy)."""


@dataclass
class Model:
    """A snapshot and the ids of the offers it serves (swapped together on reload)."""

    snapshot: Snapshot
    offer_ids: OfferIds
    loaded_at: float = field(default_factory=time.time)
    #: Anonymous quotes of this snapshot (exact: they depend only on the model).
    quotes: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)


def load_model(settings: ServeSettings, config: Config | None) -> Model:
    """Load the workspace's trained model.

    Raises
    ------
    BundlewiseError
        When the workspace, the model or the config is missing or invalid.
    """
    snapshot = load_snapshot(
        settings.workspace, config, reprice=settings.reprice, buckets=settings.bucket_range
    )
    return Model(snapshot, load_offer_ids(settings.workspace, snapshot.model_version))


def resolve_config(settings: ServeSettings, config: Config | None) -> Config | None:
    if config is not None:
        return config
    if settings.config_file is not None:
        return load_config(settings.config_file)
    return None


class ServingState:
    """Everything the routes answer from, opened once per process."""

    def __init__(self, settings: ServeSettings, config: Config | None = None) -> None:
        """Open the model, the feedback store, the keys and the rate limiter.

        Raises
        ------
        BundlewiseError
            With one line that says what is wrong (no trained model, a bad config or key
            file, a feedback store that cannot be opened).
        """
        self.settings = settings
        self.config = resolve_config(settings, config)
        try:
            self.model = load_model(settings, self.config)
        except BundlewiseError:
            raise
        except Exception as exc:  # a corrupt workspace: any reader's error, in one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise WorkspaceError(
                f"cannot load the model in {settings.workspace}: {type(exc).__name__}: {first}"
            ) from None
        self.previous_offer_ids: OfferIds | None = None
        self.keys = KeyStore(settings.resolved_keys_file, check_seconds=settings.keys_check_seconds)
        self.limiter: Limiter = (
            SharedTokenBucket(settings.rate_limit_file, settings.rate_limit_per_minute)
            if settings.rate_limit_file is not None
            else TokenBucket(settings.rate_limit_per_minute)
        )
        secret = settings.pseudonym_secret
        self.secret = (
            secret.get_secret_value()
            if secret is not None
            else workspace_secret(settings.workspace)
        )
        try:
            self.store = FeedbackStore(
                settings.resolved_feedback_url,
                busy_timeout_seconds=settings.feedback_timeout_seconds,
            )
        except Exception as exc:  # any driver's error: one line, no parameters
            raise BundlewiseError(
                f"cannot open the feedback store: {type(exc).__name__}: "
                f"{str(getattr(exc, 'orig', exc)).splitlines()[0] if str(exc) else ''}"
            ) from None
        self.learning: LearningLoop | None = None
        if self.learns(self.model):
            if settings.workers > 1:
                self.store.close()
                raise BundlewiseError(
                    f"learning runs in one server process, not {settings.workers}: serve "
                    "with --workers 1 (or without --learn and with `[learning] enabled = false`)"
                )
            try:
                self.learning = LearningLoop(
                    self.model.snapshot.pricer, self.model.snapshot.config.learning, self.store
                )
            except StoreUnavailable as exc:
                self.store.close()
                raise BundlewiseError(
                    f"cannot replay the feedback store to rebuild the learning loop: {exc}"
                ) from None
        self.writer = ThreadPoolExecutor(
            max_workers=settings.feedback_threads, thread_name_prefix="bundlewise-feedback"
        )
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.reload_lock = threading.Lock()
        self.metrics = Metrics()
        self.summary_cache: dict[int, bytes] = {}
        self._cart_limiter: anyio.CapacityLimiter | None = None
        self._prober = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bundlewise-health")
        self._probe: asyncio.Future[str | None] | None = None
        settle_heap()

    def learns(self, model: Model) -> bool:
        """Whether the learning loop prices ``model``'s offers: ``--learn`` / ``BUNDLEWISE_LEARN``
        when given, else the model config's ``[learning] enabled``."""
        if self.settings.learn is not None:
            return bool(self.settings.learn)
        return bool(model.snapshot.config.learning.enabled)

    def quotes_for(self, snapshot: Snapshot) -> dict[tuple[str, ...], dict[str, Any]] | None:
        """The anonymous-quote cache of ``snapshot`` if it is the model in force (a request that
        started before a reload gets none)."""
        model = self.model
        return model.quotes if snapshot is model.snapshot else None

    def cart_limiter(self) -> anyio.CapacityLimiter:
        """Carts priced at once (their threads), made in the event loop on first use."""
        if self._cart_limiter is None:
            self._cart_limiter = anyio.CapacityLimiter(CARTS_AT_ONCE)
        return self._cart_limiter

    async def store_problem(self) -> str | None:
        """Why the feedback store cannot take a write now, or None; answers within a second
        whatever the store does (one probe at a time, on its own thread)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().run_in_executor(
                self._prober, self.store.check_writable
            )
        try:
            return await asyncio.wait_for(asyncio.shield(self._probe), timeout=HEALTH_TIMEOUT)
        except TimeoutError:
            return f"no answer within {HEALTH_TIMEOUT:g} s (locked or slow)"

    @property
    def snapshot(self) -> Snapshot:
        return self.model.snapshot

    def reload(self) -> Model:
        """Load the newest trained model and switch to it; the old one stays on failure.

        Raises
        ------
        BundlewiseError
            Or any error of a corrupt workspace: the caller says why; nothing was switched.
        """
        with self.reload_lock:
            new = load_model(self.settings, self.config)
            old = self.model
            learns = self.learns(new)
            if learns and self.settings.workers > 1:
                raise BundlewiseError(
                    f"the new model learns ([learning] enabled), which needs one server "
                    f"process, not {self.settings.workers}"
                )
            loop = self.learning
            snap = new.snapshot
            if learns and loop is None:
                loop = LearningLoop(snap.pricer, snap.config.learning, self.store)
            elif learns and loop is not None:
                loop.install(loop.prepare(snap.pricer, snap.config.learning))
            if new.offer_ids.model_version != old.offer_ids.model_version:
                self.previous_offer_ids = old.offer_ids
            self.learning = loop if learns else None
            self.model = new
            self.summary_cache = {}
            del old
            settle_heap()
        self.keys.refresh()
        return new

    async def in_writer(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a store call) on the writer threads, never on the event loop and never
        on the shared thread pool; :class:`StoreBusy` after ``feedback_timeout_seconds`` or at
        once when twice as many calls as writer threads are already waiting."""
        limit = 2 * self.settings.feedback_threads
        with self._pending_lock:
            if self._pending >= limit:
                raise StoreBusy(f"{self._pending} feedback writes already waiting")
            self._pending += 1

        def run() -> T:
            try:
                return fn()
            finally:
                with self._pending_lock:
                    self._pending -= 1

        future = asyncio.get_running_loop().run_in_executor(self.writer, run)
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), timeout=self.settings.feedback_timeout_seconds
            )
        except TimeoutError:
            future.add_done_callback(_swallow)
            raise StoreBusy(
                f"no commit within {self.settings.feedback_timeout_seconds:g} s"
            ) from None

    def close(self) -> None:
        gc.unfreeze()  # the model goes back to the collector (the next one freezes its own)
        self.writer.shutdown(wait=False, cancel_futures=True)
        self._prober.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        if isinstance(self.limiter, SharedTokenBucket):
            self.limiter.close()


def _swallow(future: Any) -> None:
    """A write that finished after its request timed out: its outcome is not anyone's answer
    (the client was told 503 and sends the same event again; the store is idempotent)."""
    if not future.cancelled():
        future.exception()


__all__ = ["Metrics", "Model", "ServingState", "StoreBusy", "load_model", "settle_heap"]
