"""API keys with scopes, stored only as SHA-256 hashes.

A key is ``bw_<key id>_<secret>``: the id finds the record, the hash of the whole key checks it
(in constant time). Keys are random 256-bit tokens, so a fast hash is enough; the plain key is
shown once, when created.

A running server sees key changes (``bundlewise keys create`` / ``revoke``) within a second,
without a reload: its :class:`KeyStore` re-reads the file when the file changes, checking at most
every ``check_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bundlewise.exceptions import ConfigError

logger = logging.getLogger(__name__)

SCOPES: tuple[str, ...] = ("read", "admin")


@dataclass(frozen=True)
class KeyRecord:
    """One stored key: id, hash, scopes and a label."""

    key_id: str
    sha256: str
    scopes: tuple[str, ...]
    label: str
    created: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """API keys in a JSON file (hashes only).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = KeyStore(pathlib.Path(tempfile.mkdtemp()) / "keys.json")
    >>> key = store.create(("read",), "storefront")
    >>> store.verify(key).scopes, store.verify(key + "x")
    (('read',), None)
    """

    def __init__(self, path: Path, check_seconds: float | None = None) -> None:
        self.path = Path(path)
        self.check_seconds = check_seconds
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()
        self._records: dict[str, KeyRecord] = self._read()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def _read(self) -> dict[str, KeyRecord]:
        records: dict[str, KeyRecord] = {}
        if not self.path.exists():
            return records
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            for r in raw["keys"]:
                rec = KeyRecord(
                    r["key_id"], r["sha256"], tuple(r["scopes"]), r["label"], r["created"]
                )
                records[rec.key_id] = rec
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: not a valid API key file ({exc}).") from None
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read the API key file ({exc}).") from None
        return records

    def refresh(self) -> bool:
        """Re-read the file if it changed since it was read; True when the keys were re-read.

        A file that cannot be read or parsed keeps the keys in force (and logs why); a removed
        file means no keys.
        """
        self._checked = time.monotonic()
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            records = self._read()
        except ConfigError as exc:
            logger.warning("API keys not reloaded, the previous ones stay in force: %s", exc)
            return False
        self._records, self._stamp = records, stamp
        logger.info("API keys reloaded from %s: %d key(s)", self.path, len(records))
        return True

    def _maybe_refresh(self) -> None:
        if self.check_seconds is not None and (
            time.monotonic() - self._checked >= self.check_seconds
        ):
            self.refresh()

    def create(self, scopes: tuple[str, ...], label: str = "") -> str:
        """Add a key with ``scopes``; returns the plain key (shown once, never stored)."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ConfigError(f"scopes {list(scopes)}: expected some of {list(SCOPES)}.")
        key_id = secrets.token_hex(4)
        key = f"bw_{key_id}_{secrets.token_urlsafe(32)}"
        self._records[key_id] = KeyRecord(
            key_id, _hash(key), tuple(scopes), label, datetime.now(UTC).isoformat()
        )
        self._save()
        return key

    def revoke(self, key_id: str) -> bool:
        """Remove a key by id; False when there was none."""
        found = self._records.pop(key_id, None) is not None
        if found:
            self._save()
        return found

    def records(self) -> list[KeyRecord]:
        return list(self._records.values())

    def verify(self, key: str | None) -> KeyRecord | None:
        """The record of a valid key, or None (re-reads a changed key file first, at most every
        ``check_seconds``)."""
        self._maybe_refresh()
        if not key or not key.startswith("bw_") or key.count("_") < 2:
            return None
        key_id = key.split("_", 2)[1]
        rec = self._records.get(key_id)
        if rec is None or not hmac.compare_digest(rec.sha256, _hash(key)):
            return None
        return rec

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"keys": [asdict(r) | {"scopes": list(r.scopes)} for r in self._records.values()]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, indent=2))
            os.replace(tmp, self.path)  # atomic: a server never reads half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = self._file_stamp()


__all__ = ["SCOPES", "KeyRecord", "KeyStore"]
