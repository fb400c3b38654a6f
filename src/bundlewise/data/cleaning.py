"""Clean validated order lines, reporting every rule and how many rows it touched.

Rules, applied in this order (a row is counted under the first removal rule that matches it):

1. ``exact_duplicate``: a row identical to an earlier one in every source field is removed.
2. ``non_product``: postage, fees, manual adjustments, vouchers and test codes are removed
   (Online Retail's codes on an Online Retail export; on another file only the patterns the
   config sets).
3. ``zero_quantity``: quantity 0 is removed.
4. ``absurd_quantity``: ``|quantity| > max_quantity`` is removed as a data error.
5. ``non_positive_price``: a unit price of 0 or less (after rounding to minor units) is removed.
6. ``return_without_customer``: a cancellation/return (a negative quantity, or on an Online
   Retail export an order id starting with ``C``) with no customer cannot be netted against a
   purchase and is removed.
7. ``return_netted``: a cancellation/return with a customer is netted against that customer's
   purchases of the same item, latest purchase first; the return line itself is removed.
   Returned quantity with no matching purchase (bought before the data starts) is reported.
8. ``purchase_fully_returned``: a purchase line whose whole quantity was returned is removed;
   ``purchase_partially_returned``: its quantity is reduced (changed, kept).
9. ``anonymous``: lines with no customer are kept for mining (they are real baskets) but are never
   used to personalize (flagged, kept).
10. ``missing_title``: an empty title (or pandas' ``"nan"``) is filled with the item's most common
    title elsewhere, else the item id (changed, kept).

Invariant: ``rows_read == rows_kept + sum(rows of every removal rule)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from bundlewise.config import CleaningConfig
from bundlewise.data import _sql
from bundlewise.data.schemas import ORDER_LINES

REMOVED = "removed"
CHANGED = "changed"
FLAGGED = "kept, flagged"


@dataclass(frozen=True)
class RuleCount:
    """How many rows one cleaning rule touched.

    Parameters
    ----------
    rule
        Rule name, e.g. ``"exact_duplicate"``.
    action
        ``"removed"``, ``"changed"`` or ``"kept, flagged"``.
    n_rows
        Rows affected.
    description
        What the rule does, with any extra figures (e.g. quantity netted).
    """

    rule: str
    action: str
    n_rows: int
    description: str


@dataclass(frozen=True)
class CleaningReport:
    """Rows read, rows kept, and every rule with its count."""

    source: str
    n_rows_read: int
    n_rows_kept: int
    rules: tuple[RuleCount, ...]

    @property
    def n_rows_removed(self) -> int:
        """Rows removed by all removal rules together."""
        return sum(r.n_rows for r in self.rules if r.action == REMOVED)

    def count(self, rule: str) -> int:
        """Rows touched by ``rule`` (0 when it touched none).

        Raises
        ------
        KeyError
            If ``rule`` is not a rule of this report.
        """
        for r in self.rules:
            if r.rule == rule:
                return r.n_rows
        raise KeyError(f"unknown cleaning rule {rule!r}; known: {[r.rule for r in self.rules]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "n_rows_read": self.n_rows_read,
            "n_rows_kept": self.n_rows_kept,
            "n_rows_removed": self.n_rows_removed,
            "rules": [asdict(r) for r in self.rules],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=str(data["source"]),
            n_rows_read=int(data["n_rows_read"]),
            n_rows_kept=int(data["n_rows_kept"]),
            rules=tuple(RuleCount(**r) for r in data["rules"]),
        )


@dataclass(frozen=True)
class CleanResult:
    """Clean order lines plus the report of how they were obtained."""

    order_lines: pa.Table
    titles: pa.Table
    report: CleaningReport


_REMOVAL_RULES: tuple[tuple[str, str], ...] = (
    ("exact_duplicate", "identical to an earlier row in every source field"),
    ("non_product", "item id is postage, a fee, an adjustment, a voucher or a test code"),
    ("zero_quantity", "quantity is 0"),
    ("absurd_quantity", "absolute quantity above cleaning.max_quantity"),
    ("non_positive_price", "unit price is 0 or negative after rounding to minor units"),
    ("return_without_customer", "cancellation/return with no customer id cannot be netted"),
)


def cleaning_report(
    source: str,
    n_read: int,
    n_kept: int,
    counts: dict[str | None, int],
    *,
    n_full: int,
    n_partial: int,
    q_netted: int,
    q_unmatched: int,
    n_unmatched_keys: int,
    n_anonymous: int,
    n_no_title: int,
) -> CleaningReport:
    """The report of one cleaning run from its counts (``counts``: rows by first matching
    removal rule), with every rule's description; shared by the embedded and Spark engines."""
    n_returns = int(counts.get("return_netted", 0))
    rules = [
        RuleCount(rule, REMOVED, int(counts.get(rule, 0)), text) for rule, text in _REMOVAL_RULES
    ]
    rules += [
        RuleCount(
            "return_netted",
            REMOVED,
            n_returns,
            f"cancellation/return netted against the customer's purchases of the item, latest "
            f"first ({q_netted} units netted; {q_unmatched} units in {n_unmatched_keys} "
            "customer-item pairs had no earlier purchase in the data)",
        ),
        RuleCount(
            "purchase_fully_returned",
            REMOVED,
            n_full,
            "purchase line whose whole quantity was returned",
        ),
        RuleCount(
            "purchase_partially_returned",
            CHANGED,
            n_partial,
            "purchase line whose quantity was reduced by a return",
        ),
        RuleCount(
            "anonymous",
            FLAGGED,
            n_anonymous,
            "no customer id: kept as an anonymous basket for mining, not used to personalize",
        ),
        RuleCount(
            "missing_title",
            CHANGED,
            n_no_title,
            "empty title: the item's most common title elsewhere (or its id) is used",
        ),
    ]
    report = CleaningReport(
        source=source, n_rows_read=n_read, n_rows_kept=n_kept, rules=tuple(rules)
    )
    # every engine's report ends here: rows read = kept + removed, or it is a bug
    if report.n_rows_read != report.n_rows_kept + report.n_rows_removed:  # pragma: no cover
        raise AssertionError(f"cleaning lost rows silently: {report.to_dict()}")
    return report


def clean_order_lines(
    raw: pa.Table,
    config: CleaningConfig | None = None,
    source: str = "<table>",
    dialect: str = "online_retail",
) -> CleanResult:
    """Apply the cleaning rules to validated raw order lines.

    Parameters
    ----------
    raw
        Table with schema :data:`bundlewise.data.schemas.RAW_ORDER_LINES`.
    config
        Cleaning settings.
    source
        Name of the input, for the report.
    dialect
        What the file is (:func:`bundlewise.data.readers.read_orders` says): Online Retail's
        cancellation and non-product rules apply to an Online Retail export unless the config
        sets its own; ``"generic"`` files get none unless the config sets them
        (:meth:`bundlewise.config.CleaningConfig.for_dialect`).

    Returns
    -------
    CleanResult
        Clean order lines (schema :data:`~bundlewise.data.schemas.ORDER_LINES`), the title of
        every item (``item_id``, ``title``, ``n_lines``), and the cleaning report.
    """
    config = (config or CleaningConfig()).for_dialect(dialect)
    patterns = config.non_product_patterns or ()
    # no pattern: a regular expression that matches no item id
    pattern = "^(" + "|".join(f"(?:{p})" for p in patterns) + ")$" if patterns else "$^."
    prefix = config.cancellation_prefix
    con = _sql.connect()
    try:
        con.register("raw", raw)
        is_return = "((length($prefix) > 0 AND starts_with(order_id, $prefix)) OR quantity < 0)"
        con.execute(
            f"""
            CREATE TEMP TABLE tagged AS
            SELECT order_id, customer_id, ts, item_id, quantity, unit_price_minor, currency,
              country, source_row,
              (title IS NULL OR lower(title) IN ('nan', 'none', 'null', '?')) AS no_title,
              CASE
                WHEN row_number() OVER (
                    PARTITION BY order_id, item_id, title, quantity, ts, unit_price_minor,
                                 customer_id, country, unit_cost_minor
                    ORDER BY source_row) > 1 THEN 'exact_duplicate'
                WHEN regexp_matches(item_id, $pattern, 'i') THEN 'non_product'
                WHEN quantity = 0 THEN 'zero_quantity'
                WHEN abs(quantity) > $max_quantity THEN 'absurd_quantity'
                WHEN unit_price_minor <= 0 THEN 'non_positive_price'
                WHEN {is_return} AND customer_id IS NULL THEN 'return_without_customer'
                WHEN {is_return} THEN 'return_netted'
                ELSE NULL
              END AS rule
            FROM raw
            """,
            {"pattern": pattern, "max_quantity": config.max_quantity, "prefix": prefix},
        )
        # Netting: each (customer, item)'s returned quantity is taken from its purchases, latest
        # first. `later` is the quantity bought after this line; the line absorbs what is left.
        con.execute(
            """
            CREATE TEMP TABLE returned AS
            SELECT customer_id, item_id, sum(abs(quantity)) AS q_returned, count(*) AS n_lines
            FROM tagged WHERE rule = 'return_netted' GROUP BY ALL;
            CREATE TEMP TABLE netted AS
            SELECT p.*,
              -- (DuckDB's least/greatest skip NULLs, hence the explicit CASE)
              CASE WHEN r.q_returned IS NULL THEN 0
                   ELSE greatest(0, least(p.quantity, r.q_returned - coalesce(sum(p.quantity) OVER (
                       PARTITION BY p.customer_id, p.item_id ORDER BY p.ts DESC, p.source_row DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
              END AS q_netted
            FROM (SELECT * FROM tagged WHERE rule IS NULL) p
            LEFT JOIN returned r USING (customer_id, item_id);
            """
        )
        counts = dict(con.execute("SELECT rule, count(*) FROM tagged GROUP BY rule").fetchall())
        n_read = raw.num_rows
        row = con.execute(
            """
            SELECT
              count(*) FILTER (WHERE q_netted = quantity),
              count(*) FILTER (WHERE q_netted > 0 AND q_netted < quantity),
              coalesce(sum(q_netted), 0),
              count(*) FILTER (WHERE q_netted < quantity AND customer_id IS NULL),
              count(*) FILTER (WHERE q_netted < quantity AND no_title)
            FROM netted
            """
        ).fetchall()[0]
        n_full, n_partial, q_netted, n_anonymous, n_no_title = (int(v) for v in row)
        unmatched = con.execute(
            """
            SELECT coalesce(sum(r.q_returned - coalesce(b.q_bought, 0)), 0),
                   count(*) FILTER (WHERE r.q_returned > coalesce(b.q_bought, 0))
            FROM returned r LEFT JOIN (
                SELECT customer_id, item_id, sum(quantity) AS q_bought FROM netted GROUP BY ALL
            ) b USING (customer_id, item_id)
            WHERE r.q_returned > coalesce(b.q_bought, 0)
            """
        ).fetchall()[0]
        q_unmatched, n_unmatched_keys = int(unmatched[0]), int(unmatched[1])

        # Item titles: the most common real title of each item across all rows read (ties: the
        # smallest title, so that every engine picks the same one).
        titles = con.sql(
            """
            SELECT item_id, arg_min(title, (-n, title)) AS title, sum(n) AS n_lines FROM (
                SELECT item_id, title, count(*) AS n FROM raw
                WHERE title IS NOT NULL AND lower(title) NOT IN ('nan', 'none', 'null', '?')
                GROUP BY ALL)
            GROUP BY item_id ORDER BY item_id
            """
        ).to_arrow_table()
        clean = con.sql(
            """
            SELECT order_id, customer_id, CAST(ts AS TIMESTAMP) AS ts, item_id,
                   quantity - q_netted AS quantity, unit_price_minor, currency, country,
                   source_row
            FROM netted WHERE q_netted < quantity ORDER BY source_row
            """
        ).to_arrow_table()
    finally:
        con.close()

    report = cleaning_report(
        source,
        n_read,
        clean.num_rows,
        counts,
        n_full=n_full,
        n_partial=n_partial,
        q_netted=q_netted,
        q_unmatched=q_unmatched,
        n_unmatched_keys=n_unmatched_keys,
        n_anonymous=n_anonymous,
        n_no_title=n_no_title,
    )
    return CleanResult(order_lines=clean.cast(ORDER_LINES), titles=titles, report=report)


__all__ = [
    "CHANGED",
    "FLAGGED",
    "REMOVED",
    "CleanResult",
    "CleaningReport",
    "RuleCount",
    "cleaning_report",
]
