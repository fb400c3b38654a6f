"""Per-key rate limits: token buckets of ``per_minute`` tokens, refilled continuously.

Where the limit lives: with one server process the buckets are in its memory
(:class:`TokenBucket`); with ``bundlewise serve --workers N`` they live in one small file that all
worker processes map into memory and update under an exclusive ``flock``
(:class:`SharedTokenBucket`), so a key gets ``per_minute`` requests per minute from the whole
server, whichever worker answers. Buckets start full when the server starts; they are not kept
across restarts.

A request costs one token; a request whose work grows with its input (a cart) can cost more: it
takes one token at the key check like every request and the rest once its input is known
(``take(key, tokens, held=1)``), and when the rest is refused the token it held is given back,
so a refused request costs nothing and ``Retry-After`` says when all its tokens will be there.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bundlewise.exceptions import ConfigError


@dataclass(frozen=True)
class Decision:
    """One request's answer from the limiter, and what the ``X-RateLimit-*`` headers say."""

    allowed: bool
    limit_per_minute: int
    remaining: int
    retry_after_seconds: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit_per_minute),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after_seconds)
        return out


class Limiter(Protocol):
    per_minute: int

    def take(self, key: str, tokens: int = 1, held: int = 0) -> Decision: ...


def _decide(
    per_minute: int, tokens: float, now: float, last: float, take: int = 1, held: int = 0
) -> tuple[Decision, float]:
    """Refill since ``last`` and take ``take`` tokens if there are as many; when there are not,
    give back the ``held`` tokens this request took before. Returns the tokens left.

    ``take + held`` must not exceed ``per_minute`` (the bucket's size), or it is never allowed.
    """
    capacity = float(per_minute)
    refill = per_minute / 60.0
    tokens = min(capacity, tokens + max(0.0, now - last) * refill)
    allowed = tokens >= take
    if allowed:
        tokens -= take
    else:
        tokens = min(capacity, tokens + held)
    need = take + held  # what the same request needs when it comes again
    return (
        Decision(
            allowed=allowed,
            limit_per_minute=per_minute,
            remaining=int(tokens),
            retry_after_seconds=0 if allowed else max(1, math.ceil((need - tokens) / refill)),
            reset_seconds=math.ceil((capacity - tokens) / refill),
        ),
        tokens,
    )


class TokenBucket:
    """Buckets in this process's memory.

    Examples
    --------
    >>> bucket = TokenBucket(2)
    >>> [bucket.take("k").allowed for _ in range(3)]
    [True, True, False]
    >>> bucket.take("k").retry_after_seconds, bucket.take("other").allowed
    (30, True)

    A request that costs 3 tokens, of which it took 1 at the key check:

    >>> bucket = TokenBucket(4)
    >>> bucket.take("k").remaining, bucket.take("k", 2, held=1).remaining
    (3, 1)
    >>> bucket.take("k").remaining  # the next such request's key check takes the last one
    0
    >>> refused = bucket.take("k", 2, held=1)  # its 2 more are refused: the 1 is given back
    >>> refused.allowed, refused.remaining, refused.retry_after_seconds
    (False, 1, 30)
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, tokens: int = 1, held: int = 0) -> Decision:
        """Take ``tokens`` of ``key``'s bucket; when refused, give back ``held`` (tokens the
        same request took before)."""
        now = time.monotonic()
        with self._lock:
            left, last = self._state.get(key, (float(self.per_minute), now))
            decision, left = _decide(self.per_minute, left, now, last, tokens, held)
            self._state[key] = (left, now)
        return decision


_SLOT = struct.Struct("<32sdd")  # key (utf-8, NUL padded), tokens, last refill (monotonic s)
N_SLOTS = 4096


class SharedTokenBucket:
    """Buckets in a file shared by processes (memory-mapped, updated under ``flock``).

    The file has room for ``N_SLOTS`` keys (open addressing on a CRC of the key id); times are
    ``time.monotonic()``, one clock for every process of a Linux machine. A key beyond the file's
    room (more than ``N_SLOTS`` keys used since the start) falls back to a bucket in the process.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "buckets"
    >>> SharedTokenBucket.create(path)
    >>> a, b = SharedTokenBucket(path, 3), SharedTokenBucket(path, 3)  # two processes
    >>> [a.take("k").allowed, b.take("k").allowed, a.take("k").allowed, b.take("k").allowed]
    [True, True, True, False]
    """

    def __init__(self, path: Path, per_minute: int) -> None:
        self.path = Path(path)
        self.per_minute = per_minute
        try:
            self._fd = os.open(self.path, os.O_RDWR)
        except OSError as exc:
            raise ConfigError(
                f"{self.path}: cannot open the shared rate-limit file ({exc.strerror})."
            ) from None
        if os.fstat(self._fd).st_size != _SLOT.size * N_SLOTS:
            os.close(self._fd)
            raise ConfigError(f"{self.path}: not a rate-limit file (wrong size).")
        self._map = mmap.mmap(self._fd, _SLOT.size * N_SLOTS)
        self._lock = threading.Lock()  # flock excludes processes, not this process's threads
        self._overflow = TokenBucket(per_minute)

    @staticmethod
    def create(path: Path) -> None:
        """Create (or reset) the file: every bucket full."""
        Path(path).write_bytes(b"\0" * (_SLOT.size * N_SLOTS))

    def take(self, key: str, tokens: int = 1, held: int = 0) -> Decision:
        """As :meth:`TokenBucket.take`, in the shared file."""
        name = key.encode()[:32]
        start = zlib.crc32(name) % N_SLOTS
        now = time.monotonic()
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                for probe in range(N_SLOTS):
                    offset = ((start + probe) % N_SLOTS) * _SLOT.size
                    stored, left, last = _SLOT.unpack_from(self._map, offset)
                    stored = stored.rstrip(b"\0")
                    if stored == name or not stored:
                        if not stored:
                            left, last = float(self.per_minute), now
                        decision, left = _decide(self.per_minute, left, now, last, tokens, held)
                        _SLOT.pack_into(self._map, offset, name, left, now)
                        return decision
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return self._overflow.take(key, tokens, held)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


__all__ = ["N_SLOTS", "Decision", "Limiter", "SharedTokenBucket", "TokenBucket"]
