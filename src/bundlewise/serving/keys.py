"""API keys with scopes, stored only as SHA-256 hashes.

A key is ``bw_<key id>_<secret>``: the id finds the record, the hash of the whole key checks it
(in constant time). Keys are random 256-bit tokens, so a fast hash is enough; the plain key is
shown once, when created.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bundlewise.exceptions import ConfigError

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

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._records: dict[str, KeyRecord] = {}
        if self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                for r in raw["keys"]:
                    rec = KeyRecord(
                        r["key_id"], r["sha256"], tuple(r["scopes"]), r["label"], r["created"]
                    )
                    self._records[rec.key_id] = rec
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{self.path}: not a valid API key file ({exc}).") from None

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
        """The record of a valid key, or None."""
        if not key or not key.startswith("bw_") or key.count("_") < 2:
            return None
        key_id = key.split("_", 2)[1]
        rec = self._records.get(key_id)
        if rec is None or not hmac.compare_digest(rec.sha256, _hash(key)):
            return None
        return rec

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = {"keys": [asdict(r) | {"scopes": list(r.scopes)} for r in self._records.values()]}
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(self.path)


__all__ = ["SCOPES", "KeyRecord", "KeyStore"]
