"""A guarded price ladder per bundle: the few prices the learning policy chooses between.

A bundle's ladder holds up to ``n_rungs`` prices (integer minor units, ascending), each of which
the trained :class:`~bundlewise.pricing.Pricer` would accept:

- inside the guardrail interval ``[max(cost (1 + min_margin), L (1 - max_discount)), L]``
  (:func:`bundlewise.pricing.price_bounds`; :func:`bundlewise.pricing.violated_rules` is empty);
- with an allowed price ending (:func:`bundlewise.pricing.optimizer.allowed_prices`; when no
  price in the interval has one, the interval's ends);
- inside the fairness band: with ``fairness_band = b >= 0`` the highest rung is at most
  ``1 + b`` times the lowest, so whatever rungs different customers are shown, one bundle's
  prices stay within the band.

The top rung is the list total when its ending is allowed (else the highest allowed price below
it); the other rungs are spread evenly down to the lowest allowed price the band permits.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bundlewise.pricing.guardrails import Guardrails, price_bounds
from bundlewise.pricing.optimizer import allowed_prices
from bundlewise.pricing.pricer import BundleKey, Pricer


@dataclass(frozen=True, eq=False)
class PriceLadder:
    """The allowed prices of one bundle (money in minor units).

    Attributes
    ----------
    bundle
        The bundle's sorted item ids (the key the pricer and the posterior use).
    list_total_minor, cost_minor
        The bundle's list total and unit cost.
    rungs
        The prices, ascending, without repeats (int64).
    """

    bundle: BundleKey
    list_total_minor: int
    cost_minor: int
    rungs: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        rungs = np.asarray(self.rungs, dtype=np.int64)
        if rungs.ndim != 1 or rungs.size == 0:
            raise ValueError("a price ladder needs at least one rung.")
        if np.any(np.diff(rungs) <= 0):
            raise ValueError(f"ladder rungs must be strictly ascending, got {rungs.tolist()}.")
        rungs.setflags(write=False)
        object.__setattr__(self, "rungs", rungs)

    @property
    def n_arms(self) -> int:
        """How many prices the ladder has."""
        return int(self.rungs.size)

    @property
    def rel_prices(self) -> npt.NDArray[np.float64]:
        """Each rung divided by the list total (the model's ``p / L``)."""
        return np.asarray(self.rungs / float(self.list_total_minor), dtype=np.float64)

    def arm_of(self, price_minor: int) -> int | None:
        """The rung index of a price, or ``None`` when the price is not on the ladder."""
        k = int(np.searchsorted(self.rungs, price_minor))
        if k < self.rungs.size and int(self.rungs[k]) == int(price_minor):
            return k
        return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceLadder):
            return NotImplemented
        return (
            self.bundle == other.bundle
            and self.list_total_minor == other.list_total_minor
            and self.cost_minor == other.cost_minor
            and np.array_equal(self.rungs, other.rungs)
        )

    def __hash__(self) -> int:
        return hash((self.bundle, self.list_total_minor, self.cost_minor, self.rungs.tobytes()))

    def to_dict(self) -> dict[str, object]:
        """The JSON shape of a ladder (for reports and the dashboard)."""
        return {
            "item_ids": list(self.bundle),
            "list_total_minor": self.list_total_minor,
            "cost_minor": self.cost_minor,
            "rungs_minor": [int(p) for p in self.rungs],
        }


def ladder_rungs(
    list_total_minor: int,
    cost_minor: int,
    guardrails: Guardrails,
    n_rungs: int,
    fairness_band: float | None,
) -> npt.NDArray[np.int64]:
    """The rungs of one bundle's ladder (empty when no price satisfies the guardrails).

    ``fairness_band`` ``None`` (or negative) means no band.

    Examples
    --------
    >>> from bundlewise.pricing import Guardrails
    >>> ladder_rungs(1000, 600, Guardrails(), 5, 0.25).tolist()
    [809, 859, 909, 949, 999]
    """
    if n_rungs < 1:
        raise ValueError(f"n_rungs must be >= 1, got {n_rungs}.")
    bounds = price_bounds([list_total_minor], [cost_minor], guardrails)
    if not bool(bounds.is_feasible[0]):
        return np.zeros(0, dtype=np.int64)
    lower, upper = int(bounds.lower[0]), int(bounds.upper[0])
    cands = allowed_prices(lower, upper, guardrails)
    top = int(cands[-1])
    if fairness_band is not None and fairness_band >= 0:
        # The same float comparison a check of max <= (1 + b) * min makes.
        cands = cands[cands.astype(np.float64) * (1.0 + fairness_band) >= float(top)]
    if cands.size <= n_rungs:
        return cands.astype(np.int64)
    # evenly spread from the top down (one rung: the top)
    index = np.unique(np.round(np.linspace(cands.size - 1, 0, n_rungs)).astype(np.int64))
    return cands[index].astype(np.int64)


def build_ladder(pricer: Pricer, item_ids: Sequence[str], n_rungs: int) -> PriceLadder | None:
    """The price ladder of one bundle under a pricer's guardrails; ``None`` when no price
    satisfies them (or an item has no list price).

    Raises
    ------
    KeyError
        For an item id the pricer's catalog does not have (the message names it).
    """
    missing = [i for i in item_ids if i not in pricer.catalog]
    if missing:
        raise KeyError(f"unknown item id(s): {', '.join(missing)}")
    # The pricer's lookups without its price optimization (the totals price_rows starts from).
    rows = pricer._inputs([None], [list(item_ids)])
    if not bool(rows["usable"][0]):
        return None
    L = int(rows["list_total"][0])
    C = int(rows["cost"][0])
    band = pricer.pricing.fairness_band
    rungs = ladder_rungs(L, C, pricer.guardrails, n_rungs, band if band >= 0 else None)
    if rungs.size == 0:
        return None
    return PriceLadder(tuple(sorted(item_ids)), L, C, rungs)


class LadderCache:
    """The ladders of one pricer's bundles, built once each (at most ``max_size`` kept)."""

    def __init__(self, pricer: Pricer, n_rungs: int, max_size: int = 65_536) -> None:
        self.pricer = pricer
        self.n_rungs = int(n_rungs)
        self.max_size = int(max_size)
        self._ladders: OrderedDict[BundleKey, PriceLadder | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item_ids: Sequence[str]) -> PriceLadder | None:
        """:func:`build_ladder` for these items, cached.

        Raises
        ------
        KeyError
            For an item id the pricer's catalog does not have.
        """
        key = tuple(sorted(item_ids))
        with self._lock:
            if key in self._ladders:
                self._ladders.move_to_end(key)
                return self._ladders[key]
        ladder = build_ladder(self.pricer, key, self.n_rungs)
        with self._lock:
            self._ladders[key] = ladder
            while len(self._ladders) > self.max_size:
                self._ladders.popitem(last=False)
        return ladder


_CACHES: weakref.WeakKeyDictionary[Pricer, dict[int, LadderCache]] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def ladder_cache(pricer: Pricer, n_rungs: int) -> LadderCache:
    """The one :class:`LadderCache` of a pricer and rung count (shared by every policy built on
    that pricer, so a policy refresh rebuilds no ladder)."""
    with _CACHES_LOCK:
        by_rungs = _CACHES.setdefault(pricer, {})
        cache = by_rungs.get(int(n_rungs))
        if cache is None:
            cache = by_rungs[int(n_rungs)] = LadderCache(pricer, n_rungs)
        return cache


__all__ = ["LadderCache", "PriceLadder", "build_ladder", "ladder_cache", "ladder_rungs"]
