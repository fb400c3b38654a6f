"""Pricing: guardrails, price response, the profit-maximizing optimizer and the trained pricer."""

from __future__ import annotations

from bundlewise.pricing.guardrails import (
    BINDING_RULES,
    Guardrails,
    PriceBounds,
    check_feasible,
    price_bounds,
    violated_rules,
)
from bundlewise.pricing.optimizer import PriceQuotes, optimal_logit_price, quote_prices
from bundlewise.pricing.pricer import ANONYMOUS, CatalogItem, Pricer, Quote
from bundlewise.pricing.response import (
    acceptance_at_list_from_score,
    acceptance_probability,
    intercept_for_acceptance,
)

__all__ = [
    "ANONYMOUS",
    "BINDING_RULES",
    "CatalogItem",
    "Guardrails",
    "PriceBounds",
    "PriceQuotes",
    "Pricer",
    "Quote",
    "acceptance_at_list_from_score",
    "acceptance_probability",
    "check_feasible",
    "intercept_for_acceptance",
    "optimal_logit_price",
    "price_bounds",
    "quote_prices",
    "violated_rules",
]
