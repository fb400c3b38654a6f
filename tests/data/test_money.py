from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundlewise.exceptions import ConfigError
from bundlewise.money import (
    array_to_minor_units,
    currency_exponent,
    format_money,
    from_minor_units,
    round_minor_units,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (6.95, "GBP", 695),
        (2.55, "GBP", 255),
        (0.1 + 0.2, "GBP", 30),
        (Decimal("0.125"), "GBP", 12),  # half to even
        (Decimal("0.135"), "GBP", 14),
        (0.125, "GBP", 12),
        (-0.125, "GBP", -12),
        (2.675, "GBP", 268),  # the decimal 2.675, not the binary 2.67499999...
        (0.545, "GBP", 54),  # 0.545 * 100 is 54.50000000000001 in binary
        (0.575, "GBP", 58),  # 0.575 * 100 is 57.49999999999999 in binary
        (1.015, "GBP", 102),
        (1234, "JPY", 1234),
        (1234.5, "jpy", 1234),
        (1.2345, "BHD", 1234),
        (1234, "ISK", 1234),
        (1.2345, "CLF", 12345),
    ],
)
def test_to_minor_units(amount: float | Decimal, currency: str, expected: int) -> None:
    assert to_minor_units(amount, currency) == expected
    if not isinstance(amount, Decimal):
        assert array_to_minor_units([amount], currency).tolist() == [expected]


def test_currency_exponents() -> None:
    assert [currency_exponent(c) for c in ("GBP", "EUR", "JPY", "krw", "KWD")] == [2, 2, 0, 0, 3]
    # Beyond any hand table: the whole ISO 4217 list is known.
    assert [currency_exponent(c) for c in ("IQD", "UYW", "VND", "TND", "CLP", "XOF")] == [
        3,
        4,
        0,
        3,
        0,
        0,
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("XYZ", "unknown currency 'XYZ': not an active ISO 4217 code (e.g. 'GBP', 'EUR', 'JPY')."),
        (
            "XAU",
            "currency 'XAU' has no minor unit in ISO 4217 (a metal or a fund code); prices need "
            "a currency such as 'GBP', 'EUR' or 'JPY'.",
        ),
    ],
)
def test_unknown_currency_is_a_config_error(code: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        currency_exponent(code)
    assert str(info.value) == message
    with pytest.raises(ConfigError):
        to_minor_units(1.0, code)


def test_array_to_minor_units_is_int64() -> None:
    out = array_to_minor_units(np.array([6.95, 0.125, 2.1, 1e9]))
    assert out.dtype == np.int64
    assert out.tolist() == [695, 12, 210, 100_000_000_000]


def test_round_minor_units_half_to_even() -> None:
    assert round_minor_units([788.6, 788.5, 789.5, -0.5, 788.4999999999]).tolist() == [
        789,
        788,
        790,
        0,
        788,
    ]


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1299, "GBP", "GBP 12.99"),
        (5, "GBP", "GBP 0.05"),
        (-5, "EUR", "EUR -0.05"),
        (1234, "JPY", "JPY 1234"),
        (1234, "BHD", "BHD 1.234"),
    ],
)
def test_format_money(minor: int, currency: str, text: str) -> None:
    assert format_money(minor, currency) == text


@given(st.integers(-(10**12), 10**12), st.sampled_from(["GBP", "JPY", "BHD"]))
def test_minor_units_round_trip(minor: int, currency: str) -> None:
    major = from_minor_units(minor, currency)
    assert to_minor_units(major, currency) == minor
    assert to_minor_units(float(major), currency) == minor
    assert array_to_minor_units([float(major)], currency).tolist() == [minor]


@given(st.integers(-(10**7), 10**7))
def test_scalar_and_vector_rounding_agree_on_half_cents(cents: int) -> None:
    amount = (10 * cents + 5) / 1000  # x.xx5: exactly half a cent, the hard case
    expected = to_minor_units(amount)
    assert abs(expected - amount * 100) == pytest.approx(0.5)
    assert expected % 2 == 0  # half to even
    assert array_to_minor_units([amount]).tolist() == [expected]
