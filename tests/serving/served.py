"""What the serving tests' ``served`` fixture gives: a trained workspace and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Served:
    workspace: Path
    keys_file: Path
    read_key: str
    admin_key: str
    feedback_url: str
