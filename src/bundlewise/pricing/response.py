"""Logit price response.

.. math::

    P(\\text{accept} \\mid p) = \\sigma\\!\\left(a - b\\,\\frac{p}{L}\\right)

with :math:`L` the bundle's list total, :math:`b > 0` the price sensitivity (how many logits a
100% discount is worth) and :math:`a` the customer-bundle appeal. In this first version :math:`b`
is a configured prior and :math:`a` is set so that acceptance at the list total equals a
probability mapped from the bundle's score (:func:`intercept_for_acceptance`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import expit, logit


def acceptance_probability(
    price: npt.ArrayLike, list_total: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """:math:`\\sigma(a - b p / L)`, elementwise.

    Examples
    --------
    >>> float(acceptance_probability(1000, 1000, 8.0, 8.0))
    0.5
    """
    p = np.asarray(price, dtype=np.float64)
    L = np.asarray(list_total, dtype=np.float64)
    return np.asarray(expit(np.asarray(a) - np.asarray(b) * p / L), dtype=np.float64)


def intercept_for_acceptance(
    accept_at_list: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The :math:`a` that gives acceptance ``accept_at_list`` at the list total.

    Examples
    --------
    >>> round(float(intercept_for_acceptance(0.5, 8.0)), 6)
    8.0
    """
    return np.asarray(logit(np.asarray(accept_at_list, dtype=np.float64)) + np.asarray(b))


def acceptance_at_list_from_score(
    score_quantile: npt.ArrayLike, low: float, high: float
) -> npt.NDArray[np.float64]:
    """Map a score quantile in [0, 1] log-linearly to acceptance at list total in [low, high].

    Examples
    --------
    >>> acceptance_at_list_from_score([0.0, 0.5, 1.0], 0.01, 0.09).round(4).tolist()
    [0.01, 0.03, 0.09]
    """
    q = np.clip(np.asarray(score_quantile, dtype=np.float64), 0.0, 1.0)
    return np.asarray(low * (high / low) ** q, dtype=np.float64)


__all__ = [
    "acceptance_at_list_from_score",
    "acceptance_probability",
    "intercept_for_acceptance",
]
