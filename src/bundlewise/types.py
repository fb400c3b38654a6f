"""Type aliases shared across the package."""

from __future__ import annotations

from typing import TypeAlias

CustomerId: TypeAlias = str
ItemId: TypeAlias = str
OrderId: TypeAlias = str
#: An amount of money in integer minor units of its currency (pence for GBP).
MinorUnits: TypeAlias = int

__all__ = ["CustomerId", "ItemId", "MinorUnits", "OrderId"]
