"""The offer ids a model serves, to check feedback against them.

Offer ids are 64-bit hashes written as 16 hex digits; they are kept as one sorted ``uint64``
array (8 bytes an offer: 40 MB for a million customers with five offers each) and looked up by
binary search. Ids of another form are kept as a set of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bundlewise.data import Workspace
from bundlewise.exceptions import WorkspaceError

_HEX16 = "^[0-9a-f]{16}$"


@dataclass(frozen=True)
class OfferIds:
    """The offer ids of one model version."""

    model_version: str
    hashed: np.ndarray  # sorted uint64
    other: frozenset[str] = field(default_factory=frozenset)

    def __len__(self) -> int:
        return int(self.hashed.size) + len(self.other)

    def __contains__(self, offer_id: object) -> bool:
        if not isinstance(offer_id, str):
            return False
        if len(offer_id) == 16:
            try:
                value = np.uint64(int(offer_id, 16))
            except ValueError:
                return offer_id in self.other
            i = int(np.searchsorted(self.hashed, value))
            return i < self.hashed.size and self.hashed[i] == value and offer_id == offer_id.lower()
        return offer_id in self.other


def load_offer_ids(workspace_path: Path, model_version: str) -> OfferIds:
    """The ids in the workspace's ``offers`` table.

    Raises
    ------
    WorkspaceError
        When the workspace has no offers table (train has not run).
    """
    workspace = Workspace(workspace_path)
    with workspace.connect(read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "offers" not in names:
            raise WorkspaceError(f"no offers in {workspace.path}: run `bundlewise train` first.")
        hashed = (
            con.sql(
                "SELECT CAST('0x' || offer_id AS UBIGINT) AS h FROM offers "
                "WHERE regexp_full_match(offer_id, ?) ORDER BY h",
                params=[_HEX16],
            )
            .to_arrow_table()
            .column("h")
            .to_numpy()
        )
        other = [
            r[0]
            for r in con.execute(
                "SELECT offer_id FROM offers WHERE NOT regexp_full_match(offer_id, ?)", [_HEX16]
            ).fetchall()
        ]
    return OfferIds(model_version, np.ascontiguousarray(hashed, dtype=np.uint64), frozenset(other))


__all__ = ["OfferIds", "load_offer_ids"]
