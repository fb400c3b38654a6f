"""Pricing guardrails as pure functions (no I/O, no state).

For a bundle with list total :math:`L` (sum of its items' list prices) and unit cost :math:`C`,
a price :math:`p` (integer minor units) is allowed when

.. math::

    \\max\\big(\\lceil C (1 + m) \\rceil,\\ \\lceil L (1 - d) \\rceil\\big) \\le p \\le L,
    \\qquad p \\bmod M \\in R \\text{ (when such a price exists in the interval)}

with :math:`m` the minimum margin, :math:`d` the maximum discount, and :math:`M, R` the price
ending rule. When the interval is empty the bundle is not offered (:class:`GuardrailViolation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bundlewise.config import PricingConfig
from bundlewise.exceptions import GuardrailViolation

OPTIMUM = "optimum"
LIST_TOTAL_CAP = "list_total_cap"
MAX_DISCOUNT = "max_discount"
MARGIN_FLOOR = "margin_floor"
FAIRNESS_BAND = "fairness_band"
DISCOUNT_BUDGET = "discount_budget"
SEGMENT_PRICE = "segment_price"
INFEASIBLE = "infeasible"
BINDING_RULES: tuple[str, ...] = (
    OPTIMUM,
    LIST_TOTAL_CAP,
    MAX_DISCOUNT,
    MARGIN_FLOOR,
    FAIRNESS_BAND,
    DISCOUNT_BUDGET,
    SEGMENT_PRICE,
)


@dataclass(frozen=True)
class Guardrails:
    """The guardrails in force.

    Parameters
    ----------
    min_margin
        :math:`m`: price at least ``cost * (1 + min_margin)``.
    max_discount
        :math:`d`: price at least ``list_total * (1 - max_discount)``.
    ending_modulus, ending_residues
        :math:`M, R`; modulus 1 disables endings.
    """

    min_margin: float = 0.10
    max_discount: float = 0.30
    ending_modulus: int = 10
    ending_residues: tuple[int, ...] = (9,)

    def __post_init__(self) -> None:
        PricingConfig(  # reuse the config's validation of the same quantities
            min_margin=self.min_margin,
            max_discount=self.max_discount,
            price_ending_modulus=self.ending_modulus,
            price_ending_residues=self.ending_residues,
        )

    @classmethod
    def from_config(cls, config: PricingConfig) -> Guardrails:
        """The guardrails of a :class:`~bundlewise.config.PricingConfig`."""
        return cls(
            min_margin=config.min_margin,
            max_discount=config.max_discount,
            ending_modulus=config.price_ending_modulus,
            ending_residues=config.price_ending_residues,
        )


def _ceil(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.int64]:
    # Round to 6 decimals first so that 700 * (1 - 0.3) = 489.99999999999994 gives 490, not 491.
    return np.ceil(np.round(x, 6)).astype(np.int64)


@dataclass(frozen=True)
class PriceBounds:
    """Feasible price interval per bundle (arrays of equal length, integer minor units)."""

    lower: npt.NDArray[np.int64]
    upper: npt.NDArray[np.int64]
    lower_rule: npt.NDArray[np.str_]
    is_feasible: npt.NDArray[np.bool_]


def price_bounds(
    list_total_minor: npt.ArrayLike, cost_minor: npt.ArrayLike, guardrails: Guardrails
) -> PriceBounds:
    """Feasible interval ``[lower, upper]`` for each bundle and the rule that sets ``lower``.

    Examples
    --------
    >>> b = price_bounds([1000, 1000], [600, 950], Guardrails(min_margin=0.1, max_discount=0.3))
    >>> b.lower.tolist(), b.upper.tolist(), b.lower_rule.tolist(), b.is_feasible.tolist()
    ([700, 1045], [1000, 1000], ['max_discount', 'margin_floor'], [True, False])
    """
    list_total = np.asarray(list_total_minor, dtype=np.int64)
    cost = np.asarray(cost_minor, dtype=np.int64)
    margin_floor = _ceil(cost * (1.0 + guardrails.min_margin))
    discount_floor = _ceil(list_total * (1.0 - guardrails.max_discount))
    lower = np.maximum(margin_floor, discount_floor)
    rule = np.where(margin_floor >= discount_floor, MARGIN_FLOOR, MAX_DISCOUNT)
    return PriceBounds(lower, list_total.copy(), rule, lower <= list_total)


def violated_rules(
    price_minor: int, list_total_minor: int, cost_minor: int, guardrails: Guardrails
) -> list[str]:
    """Every guardrail a price breaks (empty when the price is allowed).

    Price endings are a preference, not a hard rule, and are not checked here.

    Examples
    --------
    >>> violated_rules(1200, 1000, 600, Guardrails())
    ['list_total_cap']
    >>> violated_rules(500, 1000, 600, Guardrails())
    ['margin_floor', 'max_discount']
    """
    # The same floor arithmetic as price_bounds, so the two can never disagree.
    margin_floor, discount_floor = _ceil(
        np.array(
            [
                cost_minor * (1.0 + guardrails.min_margin),
                list_total_minor * (1.0 - guardrails.max_discount),
            ]
        )
    ).tolist()
    rules = []
    if price_minor > list_total_minor:
        rules.append(LIST_TOTAL_CAP)
    if price_minor < margin_floor:
        rules.append(MARGIN_FLOOR)
    if price_minor < discount_floor:
        rules.append(MAX_DISCOUNT)
    return rules


def check_feasible(list_total_minor: int, cost_minor: int, guardrails: Guardrails) -> None:
    """Raise if no price satisfies the guardrails of one bundle.

    Raises
    ------
    GuardrailViolation
        When ``cost * (1 + min_margin)`` exceeds the list total.
    """
    bounds = price_bounds([list_total_minor], [cost_minor], guardrails)
    if not bounds.is_feasible[0]:
        raise GuardrailViolation(
            MARGIN_FLOOR,
            f"cost {cost_minor} * (1 + min_margin {guardrails.min_margin}) = "
            f"{int(bounds.lower[0])} exceeds the list total {list_total_minor}",
        )


def ending_candidates(
    price: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    guardrails: Guardrails,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Nearest prices with an allowed ending below and above ``price``, inside the bounds.

    Returns ``(down, up)``; an entry is -1 where no such price lies in ``[lower, upper]``.

    Examples
    --------
    >>> down, up = ending_candidates([745.3], [700], [1000], Guardrails())
    >>> down.tolist(), up.tolist()
    ([739], [749])
    """
    x = np.asarray(price, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.int64)
    hi = np.asarray(upper, dtype=np.int64)
    modulus = guardrails.ending_modulus
    base = (np.floor(x / modulus) * modulus).astype(np.int64)
    offsets = np.array(
        [r + k * modulus for r in guardrails.ending_residues for k in (-1, 0, 1)], dtype=np.int64
    )
    cands = base[:, None] + offsets[None, :]
    inside = (cands >= lo[:, None]) & (cands <= hi[:, None])
    below = inside & (cands <= x[:, None])
    above = inside & (cands >= x[:, None])
    down = np.where(below.any(axis=1), np.where(below, cands, np.iinfo(np.int64).min).max(1), -1)
    up = np.where(above.any(axis=1), np.where(above, cands, np.iinfo(np.int64).max).min(1), -1)
    return down.astype(np.int64), up.astype(np.int64)


__all__ = [
    "BINDING_RULES",
    "DISCOUNT_BUDGET",
    "FAIRNESS_BAND",
    "INFEASIBLE",
    "SEGMENT_PRICE",
    "LIST_TOTAL_CAP",
    "MARGIN_FLOOR",
    "MAX_DISCOUNT",
    "OPTIMUM",
    "Guardrails",
    "PriceBounds",
    "check_feasible",
    "ending_candidates",
    "price_bounds",
    "violated_rules",
]
