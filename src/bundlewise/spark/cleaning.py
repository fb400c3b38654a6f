"""The cleaning rules of :mod:`bundlewise.data.cleaning` as Spark SQL: same rules, same order,
same counts and the same :class:`~bundlewise.data.cleaning.CleaningReport`.

Two details keep the engines equal: the non-product patterns are matched with Java regular
expressions set up to behave as DuckDB's RE2 full match does (``(?iu)`` Unicode
case-insensitive, ``\\z`` for the end), and Spark's ``least``/``greatest`` skip NULLs like
DuckDB's, so the netting CASE is the same expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bundlewise.config import CleaningConfig
from bundlewise.data.cleaning import CleaningReport, cleaning_report
from bundlewise.spark.mining import temp_views

if TYPE_CHECKING:  # pragma: no cover - typing only
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SparkCleanResult:
    """Clean order lines (a Spark DataFrame with the columns of
    :data:`~bundlewise.data.schemas.ORDER_LINES`), each item's title (``item_id``, ``title``,
    ``n_lines``) and the report."""

    order_lines: DataFrame
    titles: DataFrame
    report: CleaningReport
    tagged: DataFrame

    def unpersist(self) -> None:
        """Release the cached rule-tagged rows the clean lines are computed from."""
        self.tagged.unpersist()


def java_pattern(patterns: tuple[str, ...]) -> str:
    """The non-product patterns as one Java regular expression matching like DuckDB's
    ``regexp_matches(item_id, '^(...)$', 'i')``.

    Examples
    --------
    >>> java_pattern(("POST", "TEST\\\\d*"))
    '(?iu)^((?:POST)|(?:TEST\\\\d*))\\\\z'
    >>> java_pattern(())
    '(?!)'
    """
    if not patterns:
        return "(?!)"  # matches nothing
    return "(?iu)^(" + "|".join(f"(?:{p})" for p in patterns) + ")\\z"


def clean_order_lines(
    spark: SparkSession,
    raw: DataFrame,
    config: CleaningConfig | None = None,
    source: str = "<table>",
    dialect: str = "online_retail",
) -> SparkCleanResult:
    """Apply the cleaning rules to validated raw order lines on Spark.

    Parameters and result as :func:`bundlewise.data.cleaning.clean_order_lines`, with Spark
    DataFrames: ``raw`` has the columns of :data:`~bundlewise.data.schemas.RAW_ORDER_LINES`
    (:func:`bundlewise.spark.io.read_orders` gives them; persist it, as it is read several
    times). The clean lines are a plan over the rule-tagged rows, which stay cached: call
    :meth:`SparkCleanResult.unpersist` when done with them.
    """
    config = (config or CleaningConfig()).for_dialect(dialect)
    pattern = java_pattern(tuple(config.non_product_patterns or ()))
    params = {
        "pattern": pattern,
        "max_quantity": config.max_quantity,
        "prefix": config.cancellation_prefix or "",
    }
    is_return = "((length(:prefix) > 0 AND startswith(order_id, :prefix)) OR quantity < 0)"
    with temp_views(spark) as v:
        raw.createOrReplaceTempView(v["raw"])
        tagged = spark.sql(
            f"""
            SELECT *,
              CASE
                WHEN row_number() OVER (
                    PARTITION BY order_id, item_id, title, quantity, ts, unit_price_minor,
                                 customer_id, country, unit_cost_minor
                    ORDER BY source_row) > 1 THEN 'exact_duplicate'
                WHEN item_id RLIKE :pattern THEN 'non_product'
                WHEN quantity = 0 THEN 'zero_quantity'
                WHEN abs(quantity) > :max_quantity THEN 'absurd_quantity'
                WHEN unit_price_minor <= 0 THEN 'non_positive_price'
                WHEN {is_return} AND customer_id IS NULL THEN 'return_without_customer'
                WHEN {is_return} THEN 'return_netted'
                ELSE NULL
              END AS rule
            FROM {v["raw"]}
            """,
            args=params,
        ).persist()
        tagged.createOrReplaceTempView(v["tagged"])
        spark.sql(
            f"""
            SELECT customer_id, item_id, sum(abs(quantity)) AS q_returned, count(*) AS n_lines
            FROM {v["tagged"]} WHERE rule = 'return_netted' GROUP BY customer_id, item_id
            """
        ).createOrReplaceTempView(v["returned"])
        # Netting: each (customer, item)'s returned quantity is taken from its purchases, latest
        # first. The window sum is the quantity bought after this line.
        netted = spark.sql(
            f"""
            SELECT p.*,
              CASE WHEN r.q_returned IS NULL THEN 0
                   ELSE greatest(0, least(p.quantity, r.q_returned - coalesce(sum(p.quantity) OVER (
                       PARTITION BY p.customer_id, p.item_id ORDER BY p.ts DESC, p.source_row DESC
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))
              END AS q_netted
            FROM (SELECT * FROM {v["tagged"]} WHERE rule IS NULL) p
            LEFT JOIN {v["returned"]} r
              ON p.customer_id = r.customer_id AND p.item_id = r.item_id
            """
        )
        netted.createOrReplaceTempView(v["netted"])
        counts: dict[str | None, int] = {
            r[0]: int(r[1])
            for r in spark.sql(f"SELECT rule, count(*) FROM {v['tagged']} GROUP BY rule").collect()
        }
        # The netting figures and the unmatched returns in one job.
        row = spark.sql(
            f"""
            SELECT * FROM (
              SELECT
                count_if(q_netted = quantity) AS n_full,
                count_if(q_netted > 0 AND q_netted < quantity) AS n_partial,
                coalesce(sum(q_netted), 0) AS q_netted,
                count_if(q_netted < quantity AND customer_id IS NULL) AS n_anonymous,
                count_if(q_netted < quantity AND
                    (title IS NULL OR lower(title) IN ('nan', 'none', 'null', '?'))) AS n_no_title
              FROM {v["netted"]}
            ) CROSS JOIN (
              SELECT coalesce(sum(r.q_returned - coalesce(b.q_bought, 0)), 0) AS q_unmatched,
                     count_if(r.q_returned > coalesce(b.q_bought, 0)) AS n_unmatched_keys
              FROM {v["returned"]} r LEFT JOIN (
                  SELECT customer_id, item_id, sum(quantity) AS q_bought FROM {v["netted"]}
                  GROUP BY customer_id, item_id
              ) b ON r.customer_id = b.customer_id AND r.item_id = b.item_id
              WHERE r.q_returned > coalesce(b.q_bought, 0)
            )
            """
        ).collect()[0]
        n_full, n_partial, q_netted, n_anonymous, n_no_title = (
            int(row[k]) for k in ("n_full", "n_partial", "q_netted", "n_anonymous", "n_no_title")
        )
        q_unmatched, n_unmatched_keys = int(row["q_unmatched"]), int(row["n_unmatched_keys"])
        n_read = sum(counts.values())  # every raw row has one rule or none
        n_kept = counts.get(None, 0) - n_full  # unremoved purchases not wholly returned
        # Item titles: the most common real title of each item across all rows read (ties: the
        # smallest title, so the choice does not depend on the partitioning).
        titles = spark.sql(
            f"""
            SELECT item_id, min_by(title, named_struct('n', -n, 'title', title)) AS title,
                   sum(n) AS n_lines FROM (
                SELECT item_id, title, count(*) AS n FROM {v["raw"]}
                WHERE title IS NOT NULL AND lower(title) NOT IN ('nan', 'none', 'null', '?')
                GROUP BY item_id, title)
            GROUP BY item_id
            """
        )
        clean = spark.sql(
            f"""
            SELECT order_id, customer_id, CAST(ts AS TIMESTAMP_NTZ) AS ts, item_id,
                   quantity - q_netted AS quantity, unit_price_minor, currency, country,
                   source_row
            FROM {v["netted"]} WHERE q_netted < quantity
            """
        )
    report = cleaning_report(
        source,
        n_read,
        n_kept,
        counts,
        n_full=n_full,
        n_partial=n_partial,
        q_netted=q_netted,
        q_unmatched=q_unmatched,
        n_unmatched_keys=n_unmatched_keys,
        n_anonymous=n_anonymous,
        n_no_title=n_no_title,
    )
    return SparkCleanResult(order_lines=clean, titles=titles, report=report, tagged=tagged)


__all__ = ["SparkCleanResult", "clean_order_lines", "java_pattern"]
