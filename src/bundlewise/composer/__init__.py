"""Composer: candidate bundles per customer, priced into offers."""

from __future__ import annotations

from bundlewise.composer.candidates import CANDIDATE_COLUMNS, compose_candidates
from bundlewise.composer.offers import OFFER_COLUMNS, PricedOffers, price_offers

__all__ = [
    "CANDIDATE_COLUMNS",
    "OFFER_COLUMNS",
    "PricedOffers",
    "compose_candidates",
    "price_offers",
]
