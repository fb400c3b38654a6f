"""Settings of the HTTP server: pydantic-settings, read from ``BUNDLEWISE_*`` environment
variables; keyword arguments (the CLI's flags, tests) take precedence over the environment.

Every field is also an environment variable: ``workspace`` is ``BUNDLEWISE_WORKSPACE``,
``rate_limit_per_minute`` is ``BUNDLEWISE_RATE_LIMIT_PER_MINUTE``, and so on. With
``bundlewise serve --workers N`` the command puts its settings in the environment and each worker
process builds the same settings from it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bundlewise.serving.buckets import BucketRange


class ServeSettings(BaseSettings):
    """What ``create_app`` needs.

    Examples
    --------
    >>> import os
    >>> os.environ["BUNDLEWISE_RATE_LIMIT_PER_MINUTE"] = "120"
    >>> ServeSettings(workspace="ws").rate_limit_per_minute
    120
    >>> ServeSettings(workspace="ws", rate_limit_per_minute=60).rate_limit_per_minute
    60
    >>> del os.environ["BUNDLEWISE_RATE_LIMIT_PER_MINUTE"]
    """

    model_config = SettingsConfigDict(env_prefix="BUNDLEWISE_", frozen=True, extra="ignore")

    workspace: Path = Field(
        default=Path(".bundlewise"), description="A trained workspace (`bundlewise train` has run)."
    )
    config_file: Path | None = Field(
        default=None,
        description="TOML config the server prices with (default: the config the model was "
        "trained with).",
    )
    reprice: bool = Field(
        default=False,
        description="Price with the config's guardrails even when they differ from the trained "
        "model's (otherwise such a config is refused at start).",
    )
    feedback_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the feedback store; default SQLite (WAL) in the workspace. "
        "A postgresql+psycopg:// URL uses PostgreSQL.",
    )
    keys_file: Path | None = Field(
        default=None,
        description="JSON file of hashed API keys (`bundlewise keys create`); default "
        "api_keys.json in the workspace. Re-read within `keys_check_seconds` of a change.",
    )
    keys_check_seconds: float = Field(
        default=1.0, ge=0.0, le=60.0, description="How often the key file is checked for changes."
    )
    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port.")
    workers: int = Field(default=1, ge=1, le=64, description="Server processes.")
    rate_limit_per_minute: int = Field(
        default=6000,
        ge=1,
        description="Requests per minute per API key (token bucket, burst of the same size), "
        "for the whole server: with several workers the bucket lives in `rate_limit_file`.",
    )
    rate_limit_file: Path | None = Field(
        default=None,
        description="File holding the token buckets shared by the worker processes (set by "
        "`bundlewise serve --workers N`); unset: the buckets live in the process.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    max_concurrency: int = Field(
        default=256,
        ge=1,
        description="Open connections and requests in progress per worker; beyond it the server "
        "answers 503 at once.",
    )
    timeout_keep_alive_seconds: int = Field(
        default=5, ge=1, le=300, description="An idle keep-alive connection is closed after this."
    )
    feedback_timeout_seconds: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="A feedback write not committed within this answers 503 with Retry-After.",
    )
    feedback_threads: int = Field(
        default=4, ge=1, le=64, description="Threads that write to the feedback store."
    )
    learn: bool | None = Field(
        default=None,
        description="Run the learning loop (prices from the learning policy, learning from "
        "feedback sent with policy_version); default: the config's `[learning] enabled`. One "
        "worker process only.",
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="Secret of the customer pseudonyms in logs; default: a random secret "
        "generated once per workspace and kept in it.",
    )

    buckets: str | None = Field(
        default=None,
        description="Serve only the offers of the customers in these buckets of the partitioned "
        "snapshot, e.g. `0-3/16` (buckets 0 to 3 of 16) or `5/16`: one server of a fleet. Offer "
        "requests for a customer of another bucket answer 421 (Misdirected Request); quotes, "
        "carts and the anonymous fallback are answered for every customer.",
    )

    @field_validator("buckets")
    @classmethod
    def _bucket_range(cls, value: str | None) -> str | None:
        if value is not None:
            BucketRange.parse(value)
        return value

    @property
    def bucket_range(self) -> BucketRange | None:
        """:attr:`buckets` parsed (``None``: every customer)."""
        return BucketRange.parse(self.buckets) if self.buckets is not None else None

    @model_validator(mode="after")
    def _shared_limit_for_workers(self) -> ServeSettings:
        if self.workers > 1 and self.rate_limit_file is None:
            raise ValueError(
                f"workers={self.workers} needs rate_limit_file (the token buckets the worker "
                "processes share); `bundlewise serve --workers N` sets it"
            )
        return self

    @property
    def resolved_feedback_url(self) -> str:
        return self.feedback_url or f"sqlite:///{Path(self.workspace) / 'feedback.db'}"

    @property
    def resolved_keys_file(self) -> Path:
        return self.keys_file or Path(self.workspace) / "api_keys.json"

    def to_environment(self) -> dict[str, str]:
        """These settings as ``BUNDLEWISE_*`` variables (for worker processes)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            out[f"BUNDLEWISE_{name.upper()}"] = str(value)
        return out


__all__ = ["ServeSettings"]
