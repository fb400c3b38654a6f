"""Typed, validated configuration, loadable from a TOML file.

Every section is a frozen dataclass validated in ``__post_init__``; unknown keys in a TOML file are
errors (a typo must not silently fall back to a default).

Example ``store.toml``::

    [input]
    format = "generic"          # or "online_retail" (auto-detected when omitted)
    encoding = "utf-8"
    date_format = "%d/%m/%Y %H:%M"   # or day_first = true; unambiguous dates need neither
    decimal_separator = ","     # "1,50" is 1.50; unambiguous numbers need no setting
    thousands_separator = "."
    currency = "GBP"
    order_id = "column"         # or "customer+day" for exports without an order id

    [columns]                   # canonical field = column in your file
    order_id = "order_number"
    item_id = "sku"
    title = "product_name"
    quantity = "qty"
    ts = "ordered_at"
    unit_price = "price"
    customer_id = "customer"

    [pricing]
    min_margin = 0.10
    max_discount = 0.30

    [learning]
    enabled = true
    max_explore_share = 0.2

A top-level ``engine = "spark"`` (before any section) runs ingestion and training on Spark, set up
by the ``[spark]`` section (needs the ``bundlewise[spark]`` extra and Java 17)::

    engine = "spark"

    [spark]
    master = "local[2]"         # or a cluster's master URL, e.g. "spark://host:7077", "yarn"
    shuffle_partitions = 8
    offer_buckets = 16
    conf = { "spark.executor.memory" = "4g" }
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundlewise.exceptions import ConfigError

#: Canonical order-line fields an input must provide (``title``, ``customer_id`` and ``country``
#: may be absent: anonymous orders are kept for mining).
REQUIRED_FIELDS: tuple[str, ...] = ("order_id", "item_id", "quantity", "ts", "unit_price")
OPTIONAL_FIELDS: tuple[str, ...] = ("title", "customer_id", "country", "unit_cost")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        raise ConfigError(f"`{name}` must be a number, got {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"`{name}`={value!r} should be in [{low}, {high}].")


def _check_int(name: str, value: int, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"`{name}` must be an integer, got {value!r}.")
    if value < low:
        raise ConfigError(f"`{name}`={value!r} should be >= {low}.")


#: Separators allowed in numbers (``decimal_separator`` takes the first two only).
DECIMAL_SEPARATORS: tuple[str, ...] = (".", ",")
THOUSANDS_SEPARATORS: tuple[str, ...] = (",", ".", " ", "'", "\u00a0", "\u202f", "")
#: Values of ``input.order_id``.
ORDER_ID_SOURCES: tuple[str, ...] = ("column", "customer+day")


@dataclass(frozen=True)
class InputConfig:
    """How to read an orders file.

    Parameters
    ----------
    format
        ``"auto"`` (Online Retail when its columns are present, else generic), ``"online_retail"``
        or ``"generic"`` (needs ``[columns]``).
    encoding
        Text encoding of CSV files.
    date_format
        ``strptime`` format of the timestamp column; ``None`` detects a common format. A column
        whose dates read both day-first and month-first is an error unless ``day_first`` (or
        ``date_format``) says which.
    day_first
        ``True``: ``03/04/2010`` is 3 April; ``False``: 4 March; ``None``: only unambiguous
        columns are accepted.
    decimal_separator
        ``"."`` or ``","``; ``None`` accepts a decimal point, and a comma only where the column
        shows it is a thousands separator (``1,299.50``); ``1,50`` is then an error.
    thousands_separator
        Digit grouping character (``","``, ``"."``, space, apostrophe, no-break spaces) or
        ``""`` for none; ``None`` infers it with the decimal separator.
    currency
        ISO 4217 code of the prices in the file.
    order_id
        ``"column"``: the mapped order id column; ``"customer+day"``: one order per customer and
        calendar day, for exports without an order id (Ta-Feng style).
    """

    format: str = "auto"
    encoding: str = "utf-8"
    date_format: str | None = None
    currency: str = "GBP"
    day_first: bool | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = None
    order_id: str = "column"

    def __post_init__(self) -> None:
        from bundlewise.money import currency_exponent  # money imports this module's errors

        if self.format not in ("auto", "online_retail", "generic"):
            raise ConfigError(
                f"`input.format`={self.format!r} should be 'auto', 'online_retail' or 'generic'."
            )
        if not isinstance(self.currency, str) or not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ConfigError(f"`input.currency`={self.currency!r} should be an ISO 4217 code.")
        try:
            currency_exponent(self.currency)
        except ConfigError as exc:
            raise ConfigError(f"`input.currency`: {exc}") from None
        if self.day_first is not None and not isinstance(self.day_first, bool):
            raise ConfigError(f"`input.day_first` must be true or false, got {self.day_first!r}.")
        if self.date_format is not None and (
            not isinstance(self.date_format, str) or "%" not in self.date_format
        ):
            raise ConfigError(
                f"`input.date_format`={self.date_format!r} should be a strptime format such as "
                "'%d/%m/%Y %H:%M'."
            )
        if self.date_format is not None and self.day_first is not None:
            raise ConfigError(
                "set `input.date_format` or `input.day_first`, not both (the format already "
                "says where the day is)."
            )
        if self.decimal_separator is not None and self.decimal_separator not in DECIMAL_SEPARATORS:
            raise ConfigError(
                f"`input.decimal_separator`={self.decimal_separator!r} should be '.' or ','."
            )
        if (
            self.thousands_separator is not None
            and self.thousands_separator not in THOUSANDS_SEPARATORS
        ):
            raise ConfigError(
                f"`input.thousands_separator`={self.thousands_separator!r} should be one of "
                f"{list(THOUSANDS_SEPARATORS)} ('' for none)."
            )
        if (
            self.decimal_separator is not None
            and self.decimal_separator == self.thousands_separator
        ):
            raise ConfigError(
                f"`input.decimal_separator` and `input.thousands_separator` are both "
                f"{self.decimal_separator!r}; they must differ."
            )
        if self.order_id not in ORDER_ID_SOURCES:
            raise ConfigError(
                f"`input.order_id`={self.order_id!r} should be 'column' or 'customer+day'."
            )


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the input holds each canonical field (``None``: not present)."""

    order_id: str | None = None
    item_id: str | None = None
    title: str | None = None
    quantity: str | None = None
    ts: str | None = None
    unit_price: str | None = None
    customer_id: str | None = None
    country: str | None = None
    unit_cost: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Canonical field -> source column, for the fields that are mapped."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


#: Item ids of UCI Online Retail that are not products: postage, fees, manual adjustments,
#: vouchers, test codes (regular expressions, full match, case-insensitive).
ONLINE_RETAIL_NON_PRODUCTS: tuple[str, ...] = (
    "POST",
    "DOT",
    "M",
    "C2",
    "D",
    "S",
    "B",
    "CRUK",
    "ADJUST\\d*",
    "BANK CHARGES",
    "AMAZONFEE",
    "TEST\\d*",
    "GIFT(_.*)?",
)
#: Order ids of UCI Online Retail that start with this are cancellations.
ONLINE_RETAIL_CANCELLATION_PREFIX = "C"


@dataclass(frozen=True)
class CleaningConfig:
    """Cleaning rules.

    Parameters
    ----------
    cancellation_prefix
        Order ids starting with this are cancellations (Online Retail uses ``"C"``); ``""``: none
        (a line with a negative quantity is still a return). Unset: ``"C"`` on an Online Retail
        export, none on any other file (a store whose order ids start with C keeps its orders).
    non_product_patterns
        Regular expressions (full match, case-insensitive) of item ids that are not products:
        postage, fees, manual adjustments, vouchers, test items. Unset: Online Retail's
        (:data:`ONLINE_RETAIL_NON_PRODUCTS`, e.g. ``POST``, ``M``, ``D``) on an Online Retail
        export, none on any other file (where ``M`` or ``D`` may well be products).
    max_quantity
        Lines whose absolute quantity exceeds this are treated as data errors and removed.
    """

    cancellation_prefix: str | None = None
    non_product_patterns: tuple[str, ...] | None = None
    max_quantity: int = 10_000

    def __post_init__(self) -> None:
        _check_int("cleaning.max_quantity", self.max_quantity, 1)
        if self.cancellation_prefix is not None and not isinstance(self.cancellation_prefix, str):
            raise ConfigError(
                f"`cleaning.cancellation_prefix` should be a string, got "
                f"{self.cancellation_prefix!r}."
            )
        for pattern in self.non_product_patterns or ():
            try:
                re.compile(pattern)
            except (re.error, TypeError) as exc:
                raise ConfigError(
                    f"`cleaning.non_product_patterns` entry {pattern!r} is not a valid "
                    f"regular expression: {exc}."
                ) from None

    def for_dialect(self, dialect: str) -> CleaningConfig:
        """The rules in force for a file of this dialect (``online_retail_ii``,
        ``online_retail_2011``, ``online_retail`` or ``generic``): unset rules become Online
        Retail's on an Online Retail export and none on any other file."""
        online_retail = dialect.startswith("online_retail")
        prefix = self.cancellation_prefix
        if prefix is None:
            prefix = ONLINE_RETAIL_CANCELLATION_PREFIX if online_retail else ""
        patterns = self.non_product_patterns
        if patterns is None:
            patterns = ONLINE_RETAIL_NON_PRODUCTS if online_retail else ()
        return dataclasses.replace(
            self, cancellation_prefix=prefix, non_product_patterns=tuple(patterns)
        )


@dataclass(frozen=True)
class MiningConfig:
    """Pair mining.

    Parameters
    ----------
    min_count
        Pairs bought together in fewer orders are not reported.
    prior_strength
        Pseudo-orders of the Gamma prior that shrinks lift toward 1 (independence).
    max_basket_items
        Orders with more distinct items are left out of pair counting (their pairs grow
        quadratically and mostly reflect bulk restocking); the report states how many.
    n_partners
        Length of each item's "bought together" list.
    """

    min_count: int = 5
    prior_strength: float = 5.0
    max_basket_items: int = 150
    n_partners: int = 20

    def __post_init__(self) -> None:
        _check_int("mining.min_count", self.min_count, 1)
        _check_range("mining.prior_strength", self.prior_strength, 0.0, 1e6)
        _check_int("mining.max_basket_items", self.max_basket_items, 2)
        _check_int("mining.n_partners", self.n_partners, 1)


#: A DuckDB memory size: a number and a unit (``"4GB"``, ``"512MiB"``).
_MEMORY_SIZE = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass(frozen=True)
class ResourcesConfig:
    """What the embedded engine (DuckDB) may use on this machine.

    Parameters
    ----------
    memory_limit
        Memory of each DuckDB connection (``"4GB"``, ``"512MiB"``); past it, joins, sorts and
        aggregations spill to ``temp_directory`` instead of growing. ``""``: DuckDB's own
        default (80% of the machine's memory). The Arrow tables the pipeline holds in Python
        come on top of it.
    temp_directory
        Where DuckDB spills; ``""``: a ``bundlewise-duckdb`` folder in the system's temporary
        directory.
    threads
        Threads of each DuckDB connection; 0: one per core.
    """

    memory_limit: str = "3GB"
    temp_directory: str = ""
    threads: int = 0

    def __post_init__(self) -> None:
        if self.memory_limit and not _MEMORY_SIZE.match(self.memory_limit):
            raise ConfigError(
                f"`resources.memory_limit`={self.memory_limit!r} is not a memory size; "
                'write a number and a unit, e.g. "4GB" or "512MiB" ("" for DuckDB\'s default).'
            )
        _check_int("resources.threads", self.threads, 0)


@dataclass(frozen=True)
class ComposerConfig:
    """Candidate bundles per customer.

    Parameters
    ----------
    n_offers
        Bundles offered per customer.
    max_bundle_size
        2 or 3 items.
    n_anchors
        How many of the customer's own items seed candidates.
    recency_half_life_days
        Weight of a past purchase halves every this many days.
    method
        ``"beam"``: beam search over item sets from the customer's interest (purchase history
        blended with item-kNN); ``"heuristic"``: the first, SQL-only composer.
    knn_weight
        Weight of the item-kNN view against the history view (chosen on a validation window
        of Online Retail; see ``benchmarks/README.md``).
    beam_width
        Partial bundles kept per customer and size.
    block_size
        Customers whose interest is computed and searched at once (beam composer): memory
        grows with it, never with the number of customers; the offers do not depend on it.
    """

    n_offers: int = 5
    max_bundle_size: int = 3
    n_anchors: int = 10
    recency_half_life_days: float = 120.0
    method: str = "beam"
    knn_weight: float = 0.5
    beam_width: int = 30
    block_size: int = 4096

    def __post_init__(self) -> None:
        if self.method not in ("beam", "heuristic"):
            raise ConfigError(f"`composer.method`={self.method!r} should be 'beam' or 'heuristic'.")
        _check_range("composer.knn_weight", self.knn_weight, 0.0, 100.0)
        _check_int("composer.beam_width", self.beam_width, 1)
        _check_int("composer.block_size", self.block_size, 1)
        _check_int("composer.n_offers", self.n_offers, 1)
        _check_int("composer.max_bundle_size", self.max_bundle_size, 2)
        if self.max_bundle_size > 3:
            raise ConfigError(
                f"`composer.max_bundle_size`={self.max_bundle_size} should be 2 or 3."
            )
        _check_int("composer.n_anchors", self.n_anchors, 1)
        _check_range("composer.recency_half_life_days", self.recency_half_life_days, 1e-3, 1e5)


@dataclass(frozen=True)
class PricingConfig:
    """Guardrails and the price-response prior.

    Parameters
    ----------
    min_margin
        Price must be at least ``cost * (1 + min_margin)``.
    max_discount
        Price must be at least ``list_total * (1 - max_discount)``.
    assumed_cost_share
        Unit cost as a share of list price where the catalog gives no cost (reports state it).
    sensitivity_prior
        Prior price sensitivity ``b`` of the logit ``P = sigmoid(a - b * price / list_total)``.
    accept_at_list_low, accept_at_list_high
        Acceptance probability at the list total for the weakest and the strongest candidate;
        a bundle's score maps log-linearly between them.
    price_ending_modulus, price_ending_residues
        Prices in minor units must satisfy ``price % modulus in residues`` (10 and (9,) make
        every price end in 9); modulus 1 turns endings off.
    objective_profit, objective_revenue, objective_surplus
        Weights of expected profit, expected revenue and expected customer surplus in the
        pricing objective (default: profit only).
    fairness_band
        One bundle's prices across customers stay within a factor ``1 + fairness_band`` of each
        other; a negative value turns the band off.
    discount_budget
        Cap on the expected discount spend of one training run's offers, in major units
        (e.g. pounds); a negative value means no budget.
    segment_only
        Price per customer segment and bundle only, never per customer.
    rank_by
        How a customer's offers are ordered: ``expected_profit`` (of the priced offer) or
        ``score`` (the interest score).
    sensitivity_source
        ``estimated``: each customer's segment sensitivity estimated from observed prices and
        purchases, shrunk toward ``sensitivity_prior`` (:mod:`bundlewise.pricing.estimation`);
        ``prior``: ``sensitivity_prior`` for everyone.
    sensitivity_prior_sd
        Standard deviation of the prior the estimates are shrunk toward.
    stock_weight
        The objective's stock-clearing term: when a bundle sells a unit of an item with excess
        stock (catalog ``stock`` above ``excess_stock_weeks`` of its sales), this share of the
        unit's cost counts as recovered (holding cost avoided), so such bundles get the deeper
        discount that clears them; 0 turns it off. Prices stay inside every guardrail (the
        margin floor is on the true cost), and an item whose catalog stock is 0 or less is never
        offered.
    excess_stock_weeks
        Stock above this many weeks of an item's average weekly sales (in the training history)
        is excess; an item with stock and no sales at all has excess stock.
    """

    min_margin: float = 0.10
    max_discount: float = 0.30
    assumed_cost_share: float = 0.60
    sensitivity_prior: float = 8.0
    accept_at_list_low: float = 0.01
    accept_at_list_high: float = 0.10
    price_ending_modulus: int = 10
    price_ending_residues: tuple[int, ...] = (9,)
    objective_profit: float = 1.0
    objective_revenue: float = 0.0
    objective_surplus: float = 0.0
    fairness_band: float = 0.25
    discount_budget: float = -1.0
    segment_only: bool = False
    rank_by: str = "expected_profit"
    sensitivity_source: str = "estimated"
    sensitivity_prior_sd: float = 4.0
    stock_weight: float = 0.5
    excess_stock_weeks: float = 12.0

    def __post_init__(self) -> None:
        _check_range("pricing.stock_weight", self.stock_weight, 0.0, 1.0)
        _check_range("pricing.excess_stock_weeks", self.excess_stock_weeks, 0.0, 1e4)
        for name in ("objective_profit", "objective_revenue", "objective_surplus"):
            _check_range(f"pricing.{name}", getattr(self, name), 0.0, 1e6)
        if self.objective_profit + self.objective_revenue <= 0:
            raise ConfigError(
                "`pricing.objective_profit` + `pricing.objective_revenue` must be > 0."
            )
        _check_range("pricing.fairness_band", self.fairness_band, -1.0, 100.0)
        _check_range("pricing.discount_budget", self.discount_budget, -1.0, 1e15)
        if not isinstance(self.segment_only, bool):
            raise ConfigError(
                f"`pricing.segment_only` must be true or false, got {self.segment_only!r}."
            )
        _check_range("pricing.sensitivity_prior_sd", self.sensitivity_prior_sd, 1e-6, 1e3)
        if self.sensitivity_source not in ("estimated", "prior"):
            raise ConfigError(
                f"`pricing.sensitivity_source`={self.sensitivity_source!r}; "
                "expected 'estimated' or 'prior'."
            )
        if self.rank_by not in ("expected_profit", "score"):
            raise ConfigError(
                f"`pricing.rank_by`={self.rank_by!r}; expected 'expected_profit' or 'score'."
            )
        _check_range("pricing.min_margin", self.min_margin, 0.0, 10.0)
        _check_range("pricing.max_discount", self.max_discount, 0.0, 1.0)
        _check_range("pricing.assumed_cost_share", self.assumed_cost_share, 0.0, 1.0)
        _check_range("pricing.sensitivity_prior", self.sensitivity_prior, 1e-6, 1e3)
        _check_range("pricing.accept_at_list_low", self.accept_at_list_low, 1e-9, 1 - 1e-9)
        _check_range("pricing.accept_at_list_high", self.accept_at_list_high, 1e-9, 1 - 1e-9)
        if self.accept_at_list_low > self.accept_at_list_high:
            raise ConfigError(
                f"`pricing.accept_at_list_low`={self.accept_at_list_low} should be <= "
                f"`pricing.accept_at_list_high`={self.accept_at_list_high}."
            )
        _check_int("pricing.price_ending_modulus", self.price_ending_modulus, 1)
        if not self.price_ending_residues:
            raise ConfigError("`pricing.price_ending_residues` must not be empty.")
        for residue in self.price_ending_residues:
            if not isinstance(residue, int) or not 0 <= residue < self.price_ending_modulus:
                raise ConfigError(
                    f"`pricing.price_ending_residues` entry {residue!r} should be an integer in "
                    f"[0, {self.price_ending_modulus})."
                )


@dataclass(frozen=True)
class LearningConfig:
    """The learning loop: a guarded price ladder, a price-response posterior, Thompson sampling.

    Parameters
    ----------
    enabled
        Serve prices from the learning policy (``false``: the trained pricer's prices only).
    n_rungs
        Prices on each bundle's ladder (allowed prices between the guardrail floor and the list
        total, inside the fairness band).
    prior_sd_appeal, prior_sd_sensitivity
        Prior standard deviations of each segment's appeal offset (logits, around 0) and price
        sensitivity (around the trained pricer's sensitivity of the segment).
    bundle_sd
        Prior standard deviation of each bundle's appeal offset (logits, around 0): a bundle
        with little feedback borrows from its segment's parameters.
    forgetting
        Before each update the posterior's precision is multiplied by this factor and topped
        up with the prior's (``1``: no forgetting; below 1 old feedback fades, so a demand shift
        is followed, with a memory of about ``1 / (1 - forgetting)`` events per segment).
    max_explore_share
        Cap on the share of offers that explore (a price other than the posterior's best).
    max_profit_given_up
        Cap on the expected profit given up by exploring, as a share of the expected profit.
    mc_draws
        Posterior draws that estimate each offer's Thompson probabilities (logged propensities).
    refresh_events
        Feedback events between two policy versions (the posterior is updated at every event;
        the served policy is refreshed every this many).
    holdout_share
        Share of customers in the holdout that sees list prices (the experiment's control).
    experiment_id
        Name of the experiment; with the customer id it fixes each customer's variant.
    seed
        Seed of the policies' random draws (with the policy version and the decision key).
    """

    enabled: bool = False
    n_rungs: int = 5
    prior_sd_appeal: float = 4.0
    prior_sd_sensitivity: float = 4.0
    bundle_sd: float = 0.5
    forgetting: float = 0.9999
    max_explore_share: float = 0.1
    max_profit_given_up: float = 0.05
    mc_draws: int = 256
    refresh_events: int = 50
    holdout_share: float = 0.1
    experiment_id: str = "pricing"
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"`learning.enabled` must be true or false, got {self.enabled!r}.")
        _check_int("learning.n_rungs", self.n_rungs, 2)
        if self.n_rungs > 100:
            raise ConfigError(f"`learning.n_rungs`={self.n_rungs} should be <= 100.")
        _check_range("learning.prior_sd_appeal", self.prior_sd_appeal, 1e-6, 1e3)
        _check_range("learning.prior_sd_sensitivity", self.prior_sd_sensitivity, 1e-6, 1e3)
        _check_range("learning.bundle_sd", self.bundle_sd, 1e-6, 1e3)
        _check_range("learning.forgetting", self.forgetting, 1e-3, 1.0)
        _check_range("learning.max_explore_share", self.max_explore_share, 0.0, 1.0)
        _check_range("learning.max_profit_given_up", self.max_profit_given_up, 0.0, 1.0)
        _check_int("learning.mc_draws", self.mc_draws, 1)
        if self.mc_draws > 100_000:
            raise ConfigError(f"`learning.mc_draws`={self.mc_draws} should be <= 100000.")
        _check_int("learning.refresh_events", self.refresh_events, 1)
        _check_range("learning.holdout_share", self.holdout_share, 0.0, 0.99)
        if not isinstance(self.experiment_id, str) or not self.experiment_id.strip():
            raise ConfigError(
                f"`learning.experiment_id`={self.experiment_id!r} should be a non-empty string."
            )
        _check_int("learning.seed", self.seed, 0)


#: Values of the top-level ``engine`` key.
ENGINES: tuple[str, ...] = ("duckdb", "spark")


@dataclass(frozen=True)
class SparkConfig:
    """The Spark engine (``engine = "spark"``).

    Parameters
    ----------
    master
        Spark master URL: ``local[N]`` (N cores of this machine, the tests use ``local[2]``),
        ``local[*]``, or a cluster's (``spark://host:7077``, ``yarn``, ``k8s://...``).
    app_name
        Application name shown in the Spark UI.
    shuffle_partitions
        ``spark.sql.shuffle.partitions``: partitions of joins and aggregations (Spark's default
        of 200 is far too many for local mode).
    customer_partitions
        Partitions of the customers for candidate composition and pricing; 0: as many as
        ``shuffle_partitions``.
    offer_buckets
        Buckets of the partitioned served-offers snapshot that ``train`` writes with either
        engine (a server, or each server of a fleet, loads all or some of them).
    conf
        Further Spark settings passed to the session as they are, e.g.
        ``{"spark.executor.memory" = "4g"}``.
    """

    master: str = "local[2]"
    app_name: str = "bundlewise"
    shuffle_partitions: int = 8
    customer_partitions: int = 0
    offer_buckets: int = 16
    conf: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.master, str) or not self.master.strip():
            raise ConfigError(
                f"`spark.master`={self.master!r} should be a Spark master URL such as "
                "'local[2]' or 'spark://host:7077'."
            )
        if not isinstance(self.app_name, str) or not self.app_name.strip():
            raise ConfigError(f"`spark.app_name`={self.app_name!r} should be a non-empty string.")
        _check_int("spark.shuffle_partitions", self.shuffle_partitions, 1)
        _check_int("spark.customer_partitions", self.customer_partitions, 0)
        _check_int("spark.offer_buckets", self.offer_buckets, 1)
        if self.offer_buckets > 4096:
            raise ConfigError(f"`spark.offer_buckets`={self.offer_buckets} should be <= 4096.")
        conf = self.conf
        if isinstance(conf, dict):
            items = list(conf.items())
        elif isinstance(conf, tuple | list) and all(
            isinstance(p, tuple | list) and len(p) == 2 for p in conf
        ):
            items = [(p[0], p[1]) for p in conf]
        else:
            raise ConfigError(f"`spark.conf` should be a table of Spark settings, got {conf!r}.")
        pairs: list[tuple[str, str]] = []
        for key, value in items:
            if not isinstance(key, str) or not key.startswith("spark."):
                raise ConfigError(
                    f"`spark.conf` key {key!r} should be a Spark setting (starting with 'spark.')."
                )
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str | int | float):
                raise ConfigError(
                    f"`spark.conf.{key}`={value!r} should be a string, number or boolean."
                )
            pairs.append((key, str(value)))
        object.__setattr__(self, "conf", tuple(sorted(pairs)))

    @property
    def n_customer_partitions(self) -> int:
        """Partitions of the customers (``customer_partitions``, or ``shuffle_partitions``)."""
        return self.customer_partitions or self.shuffle_partitions


@dataclass(frozen=True)
class Config:
    """The whole configuration; every section has working defaults.

    ``engine`` (``"duckdb"``, the default, or ``"spark"``) and ``spark`` say where ingestion and
    training run; they never change the offers (and so are left out of the model version).
    """

    input: InputConfig = field(default_factory=InputConfig)
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    composer: ComposerConfig = field(default_factory=ComposerConfig)
    pricing: PricingConfig = field(default_factory=PricingConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    engine: str = "duckdb"
    spark: SparkConfig = field(default_factory=SparkConfig)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"`engine`={self.engine!r} should be 'duckdb' or 'spark'.")


#: Top-level keys of a config file that are values, not sections.
_TOP_LEVEL_KEYS: tuple[str, ...] = ("engine",)

_SECTIONS: dict[str, type[Any]] = {
    "input": InputConfig,
    "columns": ColumnMapping,
    "cleaning": CleaningConfig,
    "mining": MiningConfig,
    "composer": ComposerConfig,
    "pricing": PricingConfig,
    "learning": LearningConfig,
    "resources": ResourcesConfig,
    "spark": SparkConfig,
}


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Build a :class:`Config` from nested dicts (as parsed from TOML).

    Raises
    ------
    ConfigError
        On an unknown section or key, or an invalid value.

    Examples
    --------
    >>> config_from_dict({"pricing": {"max_discount": 0.2}}).pricing.max_discount
    0.2
    """
    sections: dict[str, Any] = {}
    for name, values in data.items():
        if name in _TOP_LEVEL_KEYS:
            if isinstance(values, dict):
                raise ConfigError(
                    f'{source}: `{name}` is a value (e.g. {name} = "spark"), not a table.'
                )
            sections[name] = values
            continue
        if name not in _SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{name}]; expected one of {sorted(_SECTIONS)} "
                f"(or the top-level key {', '.join(f'`{k}`' for k in _TOP_LEVEL_KEYS)})."
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table.")
        cls = _SECTIONS[name]
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{source}: unknown key `{name}.{key}`; expected one of {sorted(known)}."
                )
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        try:
            sections[name] = cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    try:
        return Config(**sections)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file; ``None`` gives the defaults.

    Raises
    ------
    ConfigError
        If the file is missing, is not valid TOML, or holds unknown keys or invalid values.
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}.") from None
    return config_from_dict(data, source=str(path))


__all__ = [
    "DECIMAL_SEPARATORS",
    "ENGINES",
    "ONLINE_RETAIL_CANCELLATION_PREFIX",
    "ONLINE_RETAIL_NON_PRODUCTS",
    "OPTIONAL_FIELDS",
    "ORDER_ID_SOURCES",
    "THOUSANDS_SEPARATORS",
    "REQUIRED_FIELDS",
    "CleaningConfig",
    "ColumnMapping",
    "ComposerConfig",
    "Config",
    "InputConfig",
    "LearningConfig",
    "MiningConfig",
    "PricingConfig",
    "ResourcesConfig",
    "SparkConfig",
    "config_from_dict",
    "load_config",
]
