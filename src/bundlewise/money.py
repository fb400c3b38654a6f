"""Money helpers: amounts are integer minor units with the currency carried alongside.

Every conversion from a float (an optimizer's output, a parsed price) to money goes through
:func:`to_minor_units` so that rounding happens in exactly one place.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from iso4217 import Currency

from bundlewise.exceptions import ConfigError


@lru_cache(maxsize=1024)
def currency_exponent(currency: str) -> int:
    """Decimals between the major and the minor unit of ``currency`` (2 for GBP, 0 for JPY).

    The exponents come from the ISO 4217 table as published by its maintenance agency (the
    ``iso4217`` package carries it), so every active currency is known.

    Raises
    ------
    ConfigError
        If ``currency`` is not an active ISO 4217 code, or is one without a minor unit (gold,
        special drawing rights, ...).

    Examples
    --------
    >>> [currency_exponent(c) for c in ("GBP", "JPY", "BHD", "CLF")]
    [2, 0, 3, 4]
    """
    code = currency.strip().upper()
    try:
        exponent = Currency(code).exponent
    except ValueError:
        raise ConfigError(
            f"unknown currency {currency!r}: not an active ISO 4217 code (e.g. 'GBP', 'EUR', "
            "'JPY')."
        ) from None
    if exponent is None:
        raise ConfigError(
            f"currency {code!r} has no minor unit in ISO 4217 (a metal or a fund code); "
            "prices need a currency such as 'GBP', 'EUR' or 'JPY'."
        )
    return int(exponent)


def to_minor_units(amount: float | Decimal, currency: str = "GBP") -> int:
    """Round an amount in major units to integer minor units, half to even.

    Examples
    --------
    >>> to_minor_units(6.95)
    695
    >>> to_minor_units(Decimal("0.125"))
    12
    >>> to_minor_units(1234, "JPY")
    1234
    """
    scale = Decimal(10) ** currency_exponent(currency)
    # repr() gives the shortest decimal that round-trips the float: 6.95 -> "6.95", not 6.9499...
    value = amount if isinstance(amount, Decimal) else Decimal(repr(float(amount)))
    return int((value * scale).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def array_to_minor_units(amounts: npt.ArrayLike, currency: str = "GBP") -> npt.NDArray[np.int64]:
    """Vectorized :func:`to_minor_units` for float arrays (half to even, like ``np.rint``).

    Scaled amounts are first rounded to 6 decimals so that binary noise (6.95 stored as 6.9499...)
    does not change the result.

    Examples
    --------
    >>> array_to_minor_units([6.95, 0.125, 2.1]).tolist()
    [695, 12, 210]
    """
    scale = 10 ** currency_exponent(currency)
    values: npt.NDArray[np.float64] = np.round(np.asarray(amounts, dtype=np.float64) * scale, 6)
    return np.rint(values).astype(np.int64)


def round_minor_units(values_minor: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Round float amounts already in minor units (optimizer output) to integers, half to even.

    Examples
    --------
    >>> round_minor_units([788.6, 788.5, 789.5]).tolist()
    [789, 788, 790]
    """
    return np.rint(np.round(np.asarray(values_minor, dtype=np.float64), 6)).astype(np.int64)


def from_minor_units(amount_minor: int, currency: str = "GBP") -> Decimal:
    """Convert integer minor units to a ``Decimal`` in major units.

    Examples
    --------
    >>> from_minor_units(695)
    Decimal('6.95')
    """
    exponent = currency_exponent(currency)
    return Decimal(int(amount_minor)).scaleb(-exponent)


def format_money(amount_minor: int, currency: str = "GBP") -> str:
    """Format minor units for people, e.g. ``"GBP 6.95"``.

    Examples
    --------
    >>> format_money(1299)
    'GBP 12.99'
    """
    exponent = currency_exponent(currency)
    return f"{currency} {from_minor_units(amount_minor, currency):.{exponent}f}"


__all__ = [
    "array_to_minor_units",
    "currency_exponent",
    "format_money",
    "from_minor_units",
    "round_minor_units",
    "to_minor_units",
]
