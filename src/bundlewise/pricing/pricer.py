"""One pricer, built by ``train`` and saved with the model: every route prices through it.

A :class:`Pricer` holds what a price depends on:

- the catalog at train time (list price, unit cost or the assumed cost share, currency);
- each customer's segment and each segment's price sensitivity :math:`b` (the price-response
  fit of :mod:`bundlewise.pricing.estimation`, or the prior);
- each stored (customer, bundle)'s appeal :math:`a` (from the candidate's score quantile,
  :func:`bundlewise.pricing.response.acceptance_at_list_from_score`); a pair not seen at train
  time gets the default appeal, acceptance ``sqrt(low * high)`` at the list total;
- optionally each stored (customer, bundle)'s opportunity cost: the profit a declined offer
  still earns (the customer buys some of the items at list price anyway), so the price maximizes
  ``(p - cost - opportunity) * P(accept)``. ``train`` has no estimate of it and records none
  (0); a pricer built from logged offers (the pricing benchmark's engine) does;
- the guardrails and the objective (the full config ``train`` ran with), with its
  stock-clearing term: a unit of an item with excess stock (catalog ``stock`` above
  ``pricing.excess_stock_weeks`` of its weekly sales) sold in a bundle recovers
  ``pricing.stock_weight`` of its cost, which the optimizer counts like a negative opportunity
  cost; an item with stock 0 or less is never priced (no offer, the reason says why);
- the decisions that couple the training batch, solved once by
  :func:`bundlewise.pricing.optimizer.solve_batch`: the discount budget's Lagrange multiplier,
  each bundle's fairness window and the segment prices.

With these, :meth:`Pricer.quote` is a deterministic function of one (customer, bundle): the
stored offers are *produced* by it (:func:`bundlewise.composer.price_offers` calls
:meth:`Pricer.price_rows`), so the offers, cart and quote routes agree to the minor unit.

A customer the pricer does not know (no segment, no stored offer) is priced as the anonymous
customer (``customer_id=None``): the popular offers such a customer is shown carry exactly those
prices.

Saved as the workspace tables ``pricer`` (model version, the full config as JSON, the batch
decisions and sensitivities as JSON), ``pricer_appeals``, ``pricer_catalog`` and
``customer_segments``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from bundlewise.config import Config, PricingConfig, config_from_dict
from bundlewise.exceptions import WorkspaceError
from bundlewise.money import currency_exponent, format_money, round_minor_units
from bundlewise.pricing.guardrails import (
    DISCOUNT_BUDGET,
    FAIRNESS_BAND,
    INFEASIBLE,
    LIST_TOTAL_CAP,
    MARGIN_FLOOR,
    MAX_DISCOUNT,
    OPTIMUM,
    SEGMENT_PRICE,
    Guardrails,
)
from bundlewise.pricing.optimizer import (
    BatchState,
    Objective,
    PriceQuotes,
    apply_prices,
    solve_batch,
)
from bundlewise.pricing.response import intercept_for_acceptance

#: Customer id under which the non-personalized (popular) offers are stored.
ANONYMOUS = "__anonymous__"
#: Segment of a customer the price-response fit has not placed.
UNKNOWN_SEGMENT = "unknown"
#: The one segment of a pricer without a price-response fit.
ALL_SEGMENT = "all"

#: Pricing settings that do not change a price (everything else in ``[pricing]`` does).
_NOT_PRICE_SETTINGS = frozenset({"rank_by"})

RULE_TEXT: dict[str, str] = {
    OPTIMUM: "optimal price",
    LIST_TOTAL_CAP: "held at the list total (the optimal price would exceed it)",
    MAX_DISCOUNT: "at the discount cap (the optimal price would be lower)",
    MARGIN_FLOOR: "at the margin floor (the optimal price would be lower)",
    FAIRNESS_BAND: "kept inside the bundle's fairness band across customers",
    DISCOUNT_BUDGET: "raised to stay within the discount budget",
    SEGMENT_PRICE: "one price for the customer's whole segment",
    INFEASIBLE: "no price satisfies the guardrails",
}

BundleKey = tuple[str, ...]


@dataclass(frozen=True)
class CatalogItem:
    """One catalog item as the pricer sees it (money in minor units)."""

    item_id: str
    title: str
    list_price_minor: int | None
    unit_cost_minor: int | None
    currency: str
    #: Units in stock (catalog ``stock``); ``None`` when the catalog does not say.
    stock: int | None = None
    #: Average units sold a week in the training history (0 when it never sold; ``None``
    #: when the sales are not known, and then no stock counts as excess).
    weekly_units: float | None = None

    def has_excess_stock(self, weeks: float) -> bool:
        """More stock than ``weeks`` of its average sales (any stock, if it never sold)."""
        if self.stock is None or self.weekly_units is None or self.stock <= 0:
            return False
        return self.stock > weeks * self.weekly_units

    @property
    def is_out_of_stock(self) -> bool:
        return self.stock is not None and self.stock <= 0


@dataclass(frozen=True)
class Quote:
    """The price of one bundle for one customer, with what set it."""

    item_ids: list[str]
    titles: list[str]
    currency: str
    feasible: bool
    reason: str
    list_total_minor: int
    cost_minor: int
    is_cost_assumed: bool
    price_minor: int
    discount_minor: int
    discount_pct: float
    p_accept: float
    expected_profit_minor: float
    binding_rule: str
    segment: str
    sensitivity: float
    appeal: float
    accept_at_list: float
    rule_text: str
    personalized: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a quote (``POST /v1/quotes``); pair evidence is left to the caller."""
        if not self.feasible:
            return {"item_ids": self.item_ids, "feasible": False, "reason": self.reason}
        return {
            "item_ids": self.item_ids,
            "titles": self.titles,
            "feasible": True,
            "currency": self.currency,
            "list_total_minor": self.list_total_minor,
            "cost_minor": self.cost_minor,
            "is_cost_assumed": self.is_cost_assumed,
            "price_minor": self.price_minor,
            "discount_minor": self.discount_minor,
            "discount_pct": self.discount_pct,
            "p_accept": self.p_accept,
            "expected_profit_minor": self.expected_profit_minor,
            "binding_rule": self.binding_rule,
            "explanation": {
                "history_items": [],
                "pairs": [],
                "price_response": {
                    "segment": self.segment,
                    "sensitivity": self.sensitivity,
                    "appeal": self.appeal,
                    "accept_at_list": self.accept_at_list,
                },
                "binding_rule": self.binding_rule,
                "rule": self.rule_text,
                "personalized_price": self.personalized,
                "compared_with_list_total_minor": self.list_total_minor,
            },
        }


@dataclass(frozen=True)
class PricedRows:
    """:meth:`Pricer.price_rows`: arrays of one length, one entry per requested bundle."""

    customer_key: list[str]
    usable: npt.NDArray[np.bool_]
    unusable_reason: list[str]
    titles: list[list[str]]
    currency: list[str]
    list_total_minor: npt.NDArray[np.int64]
    cost_minor: npt.NDArray[np.int64]
    is_cost_assumed: npt.NDArray[np.bool_]
    segment: list[str]
    sensitivity: npt.NDArray[np.float64]
    appeal: npt.NDArray[np.float64]
    quotes: PriceQuotes

    @property
    def offered(self) -> npt.NDArray[np.bool_]:
        """Rows with a price inside the guardrails."""
        return np.asarray(self.usable & self.quotes.is_feasible, dtype=np.bool_)


def _bundle_key(item_ids: Sequence[str]) -> BundleKey:
    return tuple(sorted(item_ids))


class Pricer:
    """The trained pricer: see the module docstring.

    Build it with :meth:`from_batch` (``train`` does) or :meth:`load`; never mutate it.
    """

    def __init__(
        self,
        *,
        model_version: str,
        config: Config,
        catalog: dict[str, CatalogItem],
        customer_segment: dict[str, str],
        sensitivity: dict[str, float],
        appeals: dict[str, dict[BundleKey, float]],
        state: BatchState,
        opportunities: dict[str, dict[BundleKey, float]] | None = None,
    ) -> None:
        self.model_version = model_version
        self.config = config
        self.catalog = catalog
        self.customer_segment = customer_segment
        self.sensitivity = sensitivity
        self.appeals = appeals
        self.state = state
        #: Opportunity cost (minor units) per (customer, bundle); absent pairs have none.
        self.opportunities: dict[str, dict[BundleKey, float]] = opportunities or {}
        share = config.pricing.assumed_cost_share
        # Per item: unit cost (or the assumed share of the list price) and whether assumed.
        self._item_cost: dict[str, tuple[int, bool]] = {}
        for item in catalog.values():
            if item.unit_cost_minor is not None:
                self._item_cost[item.item_id] = (int(item.unit_cost_minor), False)
            elif item.list_price_minor is not None:
                assumed = int(round_minor_units([item.list_price_minor * share])[0])
                self._item_cost[item.item_id] = (assumed, True)
        # Stock-clearing value of selling one unit of each item with excess stock.
        weeks, weight = config.pricing.excess_stock_weeks, config.pricing.stock_weight
        self._clearing: dict[str, float] = {
            i: weight * cost
            for i, (cost, _) in self._item_cost.items()
            if weight > 0 and catalog[i].has_excess_stock(weeks)
        }

    # -- the pricing function -------------------------------------------------------------

    @property
    def pricing(self) -> PricingConfig:
        return self.config.pricing

    @property
    def guardrails(self) -> Guardrails:
        return Guardrails.from_config(self.pricing)

    @property
    def default_accept_at_list(self) -> float:
        """Acceptance at the list total of a (customer, bundle) not seen at train time."""
        return math.sqrt(self.pricing.accept_at_list_low * self.pricing.accept_at_list_high)

    @property
    def currency(self) -> str:
        """The store's currency (the most common one of the catalog)."""
        counts: dict[str, int] = {}
        for item in self.catalog.values():
            counts[item.currency] = counts.get(item.currency, 0) + 1
        if not counts:
            return self.config.input.currency
        return max(sorted(counts), key=lambda c: counts[c])

    def discount_budget_minor(self) -> float | None:
        """``pricing.discount_budget`` (major units) in minor units of the store's currency."""
        budget = self.pricing.discount_budget
        if budget < 0:
            return None
        return float(budget) * float(10 ** currency_exponent(self.currency))

    def customer_key(self, customer_id: str | None) -> str:
        """The id a customer is priced under: itself when known, else the anonymous one."""
        if customer_id is None:
            return ANONYMOUS
        if customer_id in self.customer_segment or customer_id in self.appeals:
            return customer_id
        return ANONYMOUS

    def segment_of(self, customer_key: str) -> str:
        """A customer's segment; ``unknown`` outside the fit, ``all`` when there is no fit."""
        if not self.customer_segment:
            return ALL_SEGMENT
        return self.customer_segment.get(customer_key, UNKNOWN_SEGMENT)

    def sensitivity_of_segment(self, segment: str) -> float:
        return self.sensitivity.get(segment, self.pricing.sensitivity_prior)

    def _inputs(
        self, customer_ids: Sequence[str | None], bundles: Sequence[Sequence[str]]
    ) -> dict[str, Any]:
        n = len(bundles)
        keys = [self.customer_key(c) for c in customer_ids]
        usable = np.ones(n, dtype=bool)
        why: list[str] = [""] * n
        titles: list[list[str]] = []
        currency: list[str] = []
        list_total = np.zeros(n, dtype=np.int64)
        cost = np.zeros(n, dtype=np.int64)
        assumed = np.zeros(n, dtype=bool)
        for k, ids in enumerate(bundles):
            rows = [self.catalog.get(i) for i in ids]
            titles.append([r.title if r is not None else i for r, i in zip(rows, ids, strict=True)])
            known = [r for r in rows if r is not None]
            currency.append(known[0].currency if known else self.currency)
            if len(known) < len(rows):
                usable[k] = False
                why[k] = "unknown item id(s): " + ", ".join(
                    i for r, i in zip(rows, ids, strict=True) if r is None
                )
                continue
            if any(r.list_price_minor is None for r in known):
                usable[k] = False
                why[k] = "an item has no list price"
                continue
            if any(r.is_out_of_stock for r in known):
                usable[k] = False
                why[k] = "out of stock: " + ", ".join(r.item_id for r in known if r.is_out_of_stock)
                continue
            list_total[k] = sum(int(r.list_price_minor or 0) for r in known)
            costs = [self._item_cost[r.item_id] for r in known]
            cost[k] = sum(c for c, _ in costs)
            assumed[k] = any(flag for _, flag in costs)
            if list_total[k] <= 0:
                usable[k] = False
                why[k] = "the list total is not positive"
        segment = [self.segment_of(c) for c in keys]
        b = np.array([self.sensitivity_of_segment(s) for s in segment], dtype=np.float64)
        default_a = intercept_for_acceptance(self.default_accept_at_list, b)
        bundle_keys = [_bundle_key(ids) for ids in bundles]
        a = np.array(
            [
                self.appeals.get(c, {}).get(bk, float(default_a[k]))
                for k, (c, bk) in enumerate(zip(keys, bundle_keys, strict=True))
            ],
            dtype=np.float64,
        )
        opportunity = np.array(
            [
                self.opportunities.get(c, {}).get(bk, 0.0)
                for c, bk in zip(keys, bundle_keys, strict=True)
            ]
            if self.opportunities
            else np.zeros(n),
            dtype=np.float64,
        )
        if self._clearing:  # stock cleared by a sale counts like a negative opportunity cost
            opportunity -= np.array(
                [sum(self._clearing.get(i, 0.0) for i in ids) for ids in bundles],
                dtype=np.float64,
            )
        return {
            "keys": keys,
            "usable": usable,
            "why": why,
            "titles": titles,
            "currency": currency,
            "list_total": list_total,
            "cost": cost,
            "assumed": assumed,
            "segment": segment,
            "b": b,
            "a": a,
            "opportunity": opportunity,
            "bundle_keys": bundle_keys,
        }

    def _optimizer_kwargs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        p = self.pricing
        return {
            "objective": Objective.from_config(p),
            "bundle_keys": inputs["bundle_keys"],
            "fairness_band": p.fairness_band if p.fairness_band >= 0 else None,
            "segments": inputs["segment"] if p.segment_only else None,
            "opportunity_cost_minor": (
                inputs["opportunity"] if self.opportunities or self._clearing else None
            ),
        }

    def price_rows(
        self, customer_ids: Sequence[str | None], bundles: Sequence[Sequence[str]]
    ) -> PricedRows:
        """Price many (customer, bundle) rows at once; row ``k`` gets exactly the price
        ``quote(customer_ids[k], bundles[k])`` gives (every row is priced on its own, given the
        stored batch decisions)."""
        x = self._inputs(customer_ids, bundles)
        usable = x["usable"]
        quotes = apply_prices(
            np.where(usable, x["list_total"], 1),
            np.where(usable, x["cost"], 0),
            x["a"],
            x["b"],
            self.guardrails,
            self.state,
            **self._optimizer_kwargs(x),
        )
        return PricedRows(
            customer_key=x["keys"],
            usable=usable,
            unusable_reason=x["why"],
            titles=x["titles"],
            currency=x["currency"],
            list_total_minor=x["list_total"],
            cost_minor=x["cost"],
            is_cost_assumed=x["assumed"],
            segment=x["segment"],
            sensitivity=x["b"],
            appeal=x["a"],
            quotes=quotes,
        )

    def infeasible_reason(self, list_total_minor: int, cost_minor: int, currency: str) -> str:
        return (
            f"no feasible price: cost {format_money(cost_minor, currency)} x (1 + min_margin "
            f"{self.pricing.min_margin}) exceeds the list total "
            f"{format_money(list_total_minor, currency)}"
        )

    def quote_many(
        self, customer_ids: Sequence[str | None], bundles: Sequence[Sequence[str]]
    ) -> list[Quote]:
        """:meth:`quote` for many rows (same prices, one pass)."""
        rows = self.price_rows(customer_ids, bundles)
        q = rows.quotes
        out = []
        for k, ids in enumerate(bundles):
            L = int(rows.list_total_minor[k])
            cost = int(rows.cost_minor[k])
            feasible = bool(rows.offered[k])
            b = float(rows.sensitivity[k])
            a = float(rows.appeal[k])
            price = int(q.price_minor[k]) if feasible else -1
            if not rows.usable[k]:
                reason = rows.unusable_reason[k]
            elif not feasible:
                reason = self.infeasible_reason(L, cost, rows.currency[k])
            else:
                reason = ""
            rule = str(q.binding_rule[k]) if feasible else INFEASIBLE
            out.append(
                Quote(
                    item_ids=list(ids),
                    titles=rows.titles[k],
                    currency=rows.currency[k],
                    feasible=feasible,
                    reason=reason,
                    list_total_minor=L,
                    cost_minor=cost,
                    is_cost_assumed=bool(rows.is_cost_assumed[k]),
                    price_minor=price,
                    discount_minor=L - price if feasible else 0,
                    discount_pct=(L - price) / L if feasible and L > 0 else 0.0,
                    p_accept=float(q.p_accept[k]) if feasible else 0.0,
                    expected_profit_minor=float(q.expected_profit_minor[k]) if feasible else 0.0,
                    binding_rule=rule,
                    segment=rows.segment[k],
                    sensitivity=b,
                    appeal=a,
                    accept_at_list=float(1.0 / (1.0 + math.exp(-(a - b)))),
                    rule_text=RULE_TEXT.get(rule, rule),
                    personalized=rows.customer_key[k] != ANONYMOUS,
                )
            )
        return out

    def quote(self, customer_id: str | None, item_ids: Sequence[str]) -> Quote:
        """Price one bundle for one customer (``None``: anonymous).

        Raises
        ------
        KeyError
            For an item id the catalog does not have (the message names it).
        """
        missing = [i for i in item_ids if i not in self.catalog]
        if missing:
            raise KeyError(f"unknown item id(s): {', '.join(missing)}")
        return self.quote_many([customer_id], [list(item_ids)])[0]

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_batch(
        cls,
        *,
        model_version: str,
        config: Config,
        catalog: dict[str, CatalogItem],
        customer_segment: dict[str, str],
        sensitivity: dict[str, float],
        customer_ids: Sequence[str],
        bundles: Sequence[Sequence[str]],
        appeals: Sequence[float],
        opportunities: Sequence[float] | None = None,
    ) -> Pricer:
        """Solve the batch decisions over a training batch of (customer, bundle, appeal) rows.

        ``opportunities`` (minor units, one per row) is the profit each declined offer still
        earns; none by default. When a (customer, bundle) repeats, its last appeal (and
        opportunity cost) is kept (one per pair).
        """
        table: dict[str, dict[BundleKey, float]] = {}
        for c, ids, a in zip(customer_ids, bundles, appeals, strict=True):
            table.setdefault(c, {})[_bundle_key(ids)] = float(a)
        forgone: dict[str, dict[BundleKey, float]] = {}
        if opportunities is not None:
            for c, ids, o in zip(customer_ids, bundles, opportunities, strict=True):
                forgone.setdefault(c, {})[_bundle_key(ids)] = float(o)
        pricer = cls(
            model_version=model_version,
            config=config,
            catalog=catalog,
            customer_segment=customer_segment,
            sensitivity=sensitivity,
            appeals=table,
            state=BatchState(),
            opportunities=forgone,
        )
        return pricer.resolved(customer_ids, bundles)

    def resolved(
        self, customer_ids: Sequence[str | None], bundles: Sequence[Sequence[str]]
    ) -> Pricer:
        """A copy whose batch decisions are solved again over these rows (this pricer's
        config; e.g. after :meth:`with_pricing`)."""
        x = self._inputs(customer_ids, bundles)
        usable = x["usable"]
        state = solve_batch(
            np.where(usable, x["list_total"], 1),
            np.where(usable, x["cost"], 0),
            x["a"],
            x["b"],
            self.guardrails,
            discount_budget_minor=self.discount_budget_minor(),
            **self._optimizer_kwargs(x),
        )
        return self._replace(state=state)

    def _replace(self, **changes: Any) -> Pricer:
        fields: dict[str, Any] = {
            "model_version": self.model_version,
            "config": self.config,
            "catalog": self.catalog,
            "customer_segment": self.customer_segment,
            "sensitivity": self.sensitivity,
            "appeals": self.appeals,
            "state": self.state,
            "opportunities": self.opportunities,
        }
        fields.update(changes)
        return Pricer(**fields)

    def restricted_to(
        self, customer_ids: Sequence[str], bundles: Sequence[Sequence[str]]
    ) -> Pricer:
        """A copy that keeps the appeals of these (customer, bundle) pairs only (the offers
        kept); prices of those pairs are unchanged."""
        table: dict[str, dict[BundleKey, float]] = {}
        forgone: dict[str, dict[BundleKey, float]] = {}
        for c, ids in zip(customer_ids, bundles, strict=True):
            key = _bundle_key(ids)
            value = self.appeals.get(c, {}).get(key)
            if value is not None:
                table.setdefault(c, {})[key] = value
            o = self.opportunities.get(c, {}).get(key)
            if o is not None:
                forgone.setdefault(c, {})[key] = o
        return self._replace(appeals=table, opportunities=forgone)

    def with_pricing(self, pricing: PricingConfig) -> Pricer:
        """A copy with another ``[pricing]`` section (batch decisions not yet re-solved:
        call :meth:`resolved` over the offers to re-price)."""
        sensitivity = {} if pricing.sensitivity_source == "prior" else self.sensitivity
        return self._replace(
            config=dataclasses.replace(self.config, pricing=pricing), sensitivity=sensitivity
        )

    # -- guardrails check -----------------------------------------------------------------

    def guardrails_differ(self, other: PricingConfig) -> list[str]:
        """Names of the price-setting ``[pricing]`` settings where ``other`` differs from the
        trained ones (``rank_by`` orders offers, it sets no price)."""
        mine = self.pricing
        return [
            f.name
            for f in dataclasses.fields(PricingConfig)
            if f.name not in _NOT_PRICE_SETTINGS
            and _normal(getattr(other, f.name)) != _normal(getattr(mine, f.name))
        ]

    def guardrail_changes(self, other: PricingConfig) -> list[str]:
        """``"max_discount 0.3 (trained 0.25)"`` for each of :meth:`guardrails_differ`."""
        return [
            f"{name} {_show(getattr(other, name))} (trained {_show(getattr(self.pricing, name))})"
            for name in self.guardrails_differ(other)
        ]

    # -- persistence ----------------------------------------------------------------------

    def _state_json(self) -> str:
        s = self.state
        return json.dumps(
            {
                "sensitivity": self.sensitivity,
                "budget_multiplier": s.budget_multiplier,
                "budget_at_list": s.budget_at_list,
                "windows": [[list(k), lo, hi] for k, (lo, hi) in s.windows.items()],
                "segment_prices": [[seg, list(k), p] for (seg, k), p in s.segment_prices.items()],
                "segment_prices_free": [
                    [seg, list(k), p] for (seg, k), p in s.segment_prices_free.items()
                ],
            },
            allow_nan=False,
        )

    def save(self, workspace: Any) -> None:
        """Write the pricer into a workspace (tables ``pricer``, ``pricer_appeals``,
        ``pricer_catalog``, ``customer_segments``)."""
        customers: list[str] = []
        bundles: list[list[str]] = []
        values: list[float] = []
        forgone: list[float] = []
        for c, by_bundle in self.appeals.items():
            for key, a in by_bundle.items():
                customers.append(c)
                bundles.append(list(key))
                values.append(a)
                forgone.append(self.opportunities.get(c, {}).get(key, 0.0))
        items = list(self.catalog.values())
        workspace.replace_table(
            "pricer_catalog",
            pa.table(
                {
                    "item_id": pa.array([i.item_id for i in items], pa.string()),
                    "title": pa.array([i.title for i in items], pa.string()),
                    "list_price_minor": pa.array([i.list_price_minor for i in items], pa.int64()),
                    "unit_cost_minor": pa.array([i.unit_cost_minor for i in items], pa.int64()),
                    "currency": pa.array([i.currency for i in items], pa.string()),
                    "stock": pa.array([i.stock for i in items], pa.int64()),
                    "weekly_units": pa.array([i.weekly_units for i in items], pa.float64()),
                }
            ),
        )
        workspace.replace_table(
            "pricer_appeals",
            pa.table(
                {
                    "customer_id": pa.array(customers, pa.string()),
                    "item_ids": pa.array(bundles, pa.list_(pa.string())),
                    "appeal": pa.array(values, pa.float64()),
                    "opportunity_minor": pa.array(forgone, pa.float64()),
                }
            ),
        )
        workspace.replace_table(
            "customer_segments",
            pa.table(
                {
                    "customer_id": pa.array(list(self.customer_segment), pa.string()),
                    "segment": pa.array(list(self.customer_segment.values()), pa.string()),
                }
            ),
        )
        workspace.replace_table(
            "pricer",
            pa.table(
                {
                    "model_version": [self.model_version],
                    "config_json": [json.dumps(dataclasses.asdict(self.config), allow_nan=False)],
                    "state_json": [self._state_json()],
                }
            ),
        )

    @classmethod
    def load(cls, workspace: Any) -> Pricer:
        """The pricer ``train`` saved in a workspace.

        Raises
        ------
        WorkspaceError
            If the workspace has no trained pricer (``train`` has not run, or ran with an
            older version: retrain).
        """
        with workspace.connect(read_only=True) as con:
            names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            needed = {"pricer", "pricer_appeals", "pricer_catalog", "customer_segments"}
            if not needed <= names:
                raise WorkspaceError(
                    f"no trained pricer in {workspace.path}: run `bundlewise train` first."
                )
            appeal_columns = {r[0] for r in con.execute("DESCRIBE pricer_appeals").fetchall()}
            catalog_columns = {r[0] for r in con.execute("DESCRIBE pricer_catalog").fetchall()}
            if "opportunity_minor" not in appeal_columns or "stock" not in catalog_columns:
                raise WorkspaceError(
                    f"the pricer in {workspace.path} was saved by an older bundlewise: run "
                    "`bundlewise train` again."
                )
            version, config_json, state_json = con.execute(
                "SELECT model_version, config_json, state_json FROM pricer"
            ).fetchall()[0]
            catalog = {
                r[0]: CatalogItem(*r)
                for r in con.execute(
                    "SELECT item_id, title, list_price_minor, unit_cost_minor, currency, stock, "
                    "weekly_units FROM pricer_catalog"
                ).fetchall()
            }
            appeals: dict[str, dict[BundleKey, float]] = {}
            opportunities: dict[str, dict[BundleKey, float]] = {}
            for c, ids, a, o in con.execute(
                "SELECT customer_id, item_ids, appeal, opportunity_minor FROM pricer_appeals"
            ).fetchall():
                appeals.setdefault(c, {})[tuple(ids)] = float(a)
                if o:
                    opportunities.setdefault(c, {})[tuple(ids)] = float(o)
            segments = dict(
                con.execute("SELECT customer_id, segment FROM customer_segments").fetchall()
            )
        config = config_from_dict(json.loads(config_json), source="the trained model's config")
        s = json.loads(state_json)
        state = BatchState(
            budget_multiplier=float(s["budget_multiplier"]),
            budget_at_list=bool(s["budget_at_list"]),
            windows={tuple(k): (float(lo), float(hi)) for k, lo, hi in s["windows"]},
            segment_prices={(seg, tuple(k)): int(p) for seg, k, p in s["segment_prices"]},
            segment_prices_free={(seg, tuple(k)): int(p) for seg, k, p in s["segment_prices_free"]},
        )
        return cls(
            model_version=str(version),
            config=config,
            catalog=catalog,
            customer_segment=segments,
            sensitivity={str(k): float(v) for k, v in s["sensitivity"].items()},
            appeals=appeals,
            state=state,
            opportunities=opportunities,
        )


def catalog_from_items(
    items: pa.Table,
    default_currency: str = "GBP",
    weekly_units: dict[str, float] | None = None,
) -> dict[str, CatalogItem]:
    """The pricer's catalog from the workspace ``items`` table (title defaults to the id);
    ``weekly_units``: each item's average units sold a week (for the excess-stock rule; an
    item it lacks never sold; without it no stock counts as excess)."""
    cols = items.to_pydict()
    weekly = weekly_units if weekly_units is not None else {}
    out = {}
    for k, item_id in enumerate(cols["item_id"]):
        title = cols["title"][k] if "title" in cols else None
        out[item_id] = CatalogItem(
            item_id=item_id,
            title=title if title is not None else item_id,
            list_price_minor=cols["list_price_minor"][k],
            unit_cost_minor=cols["unit_cost_minor"][k] if "unit_cost_minor" in cols else None,
            currency=(cols["currency"][k] if "currency" in cols else None) or default_currency,
            stock=cols["stock"][k] if "stock" in cols else None,
            weekly_units=None if weekly_units is None else float(weekly.get(item_id, 0.0)),
        )
    return out


def _normal(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


__all__ = [
    "ALL_SEGMENT",
    "ANONYMOUS",
    "RULE_TEXT",
    "UNKNOWN_SEGMENT",
    "CatalogItem",
    "PricedRows",
    "Pricer",
    "Quote",
    "catalog_from_items",
]
