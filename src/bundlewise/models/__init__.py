"""Interest models: customer -> item (or bundle) scores."""

from __future__ import annotations

from bundlewise.models.base import Recommender, check_random_state
from bundlewise.models.ease import EASERecommender
from bundlewise.models.item_knn import ItemKNNRecommender
from bundlewise.models.matrix_factorization import ALSRecommender, BPRRecommender
from bundlewise.models.popularity import PopularityRecommender

__all__ = [
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "check_random_state",
]
