"""Settings of the HTTP server (a frozen dataclass; the CLI and tests build it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bundlewise.exceptions import ConfigError


@dataclass(frozen=True)
class ServeSettings:
    """What ``create_app`` needs.

    Parameters
    ----------
    workspace
        A trained workspace directory (``bundlewise train`` has run).
    feedback_url
        SQLAlchemy URL of the feedback store; default SQLite (WAL) in the workspace. A
        ``postgresql+psycopg://`` URL uses PostgreSQL.
    keys_file
        JSON file of hashed API keys (``bundlewise keys create``); default in the workspace.
    rate_limit_per_minute
        Requests per minute per API key (token bucket, burst of the same size).
    max_body_bytes
        Larger request bodies are refused with 413.
    pseudonym_salt
        Secret mixed into the pseudonyms of customer ids in logs.
    """

    workspace: Path
    feedback_url: str | None = None
    keys_file: Path | None = None
    rate_limit_per_minute: int = 6000
    max_body_bytes: int = 64 * 1024
    pseudonym_salt: str = "bundlewise"

    def __post_init__(self) -> None:
        if self.rate_limit_per_minute < 1:
            raise ConfigError(f"rate_limit_per_minute={self.rate_limit_per_minute} must be >= 1.")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes={self.max_body_bytes} must be >= 1024.")

    @property
    def resolved_feedback_url(self) -> str:
        return self.feedback_url or f"sqlite:///{Path(self.workspace) / 'feedback.db'}"

    @property
    def resolved_keys_file(self) -> Path:
        return self.keys_file or Path(self.workspace) / "api_keys.json"


__all__ = ["ServeSettings"]
