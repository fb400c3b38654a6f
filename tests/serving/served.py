"""What the serving tests' ``served`` fixture gives: a trained workspace and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Customer ids the data layer accepts that a URL path needs encoded (issue 9): three real
#: customers of the slice are renamed to these before training.
ODD_CUSTOMER_IDS = ("ann+shop@example.com", "a/b #1", "müller 顾客")


@dataclass(frozen=True)
class Served:
    workspace: Path
    keys_file: Path
    read_key: str
    admin_key: str
    feedback_url: str
