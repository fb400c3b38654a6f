"""Pair statistics over orders, set-based in DuckDB (no Python loop over baskets).

For items :math:`a, b` over :math:`N` orders with :math:`n_a, n_b` orders containing each and
:math:`n_{ab}` containing both:

.. math::

    \\mathrm{support} = n_{ab}/N, \\quad
    \\mathrm{conf}(a \\to b) = n_{ab}/n_a, \\quad
    \\mathrm{lift} = \\frac{n_{ab} N}{n_a n_b}, \\quad
    \\mathrm{NPMI} = \\frac{\\log(\\mathrm{lift})}{-\\log(n_{ab}/N)}

Shrinkage toward independence: with :math:`E = n_a n_b / N` the count expected under
independence, :math:`n_{ab} \\sim \\mathrm{Poisson}(\\lambda E)` and the prior
:math:`\\lambda \\sim \\mathrm{Gamma}(\\alpha, \\alpha)` (mean 1, i.e. independence), the posterior
mean of the lift is

.. math::

    \\widehat{\\mathrm{lift}} = \\frac{n_{ab} + \\alpha}{E + \\alpha},

which pulls pairs seen in few orders toward 1 and leaves well-supported pairs alone.

References
----------
Agrawal, Imielinski & Swami (1993), "Mining association rules between sets of items".
Bouma (2009), "Normalized (pointwise) mutual information in collocation extraction".
DuMouchel (1999), "Bayesian data mining in large frequency tables" (gamma-Poisson shrinkage).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from bundlewise.config import MiningConfig
from bundlewise.data import _sql
from bundlewise.exceptions import NotFittedError

PAIR_COLUMNS: tuple[str, ...] = (
    "item_a",
    "item_b",
    "n_ab",
    "n_a",
    "n_b",
    "support",
    "confidence_ab",
    "confidence_ba",
    "lift",
    "lift_shrunk",
    "npmi",
)


class PairMiner:
    """Co-purchase pair statistics and per-item "bought together" lists.

    Parameters
    ----------
    min_count
        Pairs bought together in fewer orders are not kept.
    prior_strength
        :math:`\\alpha`, pseudo-orders of the shrinkage prior (0 disables shrinkage).
    max_basket_items
        Orders with more distinct items are left out of the counts (reported as
        ``n_orders_skipped_``).
    n_partners
        Length of each item's bought-together list.

    Attributes
    ----------
    pairs_
        Arrow table, one row per unordered pair ``item_a < item_b``, columns
        :data:`PAIR_COLUMNS`.
    partners_
        Arrow table ``item_id, partner_id, rank, n_ab, lift_shrunk, confidence, npmi``: each
        item's partners with shrunk lift above 1, best first.
    n_orders_
        Orders counted.
    n_orders_skipped_
        Orders left out for having more than ``max_basket_items`` items.

    Examples
    --------
    >>> import pyarrow as pa
    >>> lines = pa.table({"order_id": ["1", "1", "2", "2", "3"],
    ...                   "item_id": ["A", "B", "A", "B", "C"]})
    >>> miner = PairMiner(min_count=1, prior_strength=0.0).fit(lines)
    >>> row = miner.pairs_.to_pylist()[0]
    >>> (row["item_a"], row["item_b"], row["n_ab"], round(row["lift"], 3))
    ('A', 'B', 2, 1.5)
    """

    def __init__(
        self,
        min_count: int = 5,
        prior_strength: float = 5.0,
        max_basket_items: int = 150,
        n_partners: int = 20,
    ) -> None:
        self.min_count = min_count
        self.prior_strength = prior_strength
        self.max_basket_items = max_basket_items
        self.n_partners = n_partners

    @classmethod
    def from_config(cls, config: MiningConfig) -> PairMiner:
        """Build from a validated :class:`~bundlewise.config.MiningConfig`."""
        return cls(
            min_count=config.min_count,
            prior_strength=config.prior_strength,
            max_basket_items=config.max_basket_items,
            n_partners=config.n_partners,
        )

    def _validate_params(self) -> None:
        # Same checks as the config; a directly-built miner gets them at fit time.
        MiningConfig(
            min_count=self.min_count,
            prior_strength=self.prior_strength,
            max_basket_items=self.max_basket_items,
            n_partners=self.n_partners,
        )

    def fit(self, order_lines: pa.Table) -> PairMiner:
        """Count pairs over the orders of ``order_lines``.

        Parameters
        ----------
        order_lines
            Arrow table with at least ``order_id`` and ``item_id``; repeated lines of one item
            in one order count once.

        Returns
        -------
        PairMiner
            ``self``, fitted.

        Raises
        ------
        ConfigError
            If a hyperparameter is invalid.
        KeyError
            If ``order_id`` or ``item_id`` is missing.
        """
        self._validate_params()
        for column in ("order_id", "item_id"):
            if column not in order_lines.column_names:
                raise KeyError(f"order_lines has no column {column!r}")
        con = _sql.connect()
        try:
            con.register("lines", order_lines.select(["order_id", "item_id"]))
            params = {"max_items": self.max_basket_items}
            con.execute(
                """
                CREATE TEMP TABLE item_idx AS
                SELECT item_id, CAST(row_number() OVER (ORDER BY item_id) AS INTEGER) AS idx
                FROM (SELECT DISTINCT item_id FROM lines);
                CREATE TEMP TABLE baskets AS
                SELECT DISTINCT l.order_id, i.idx FROM lines l JOIN item_idx i USING (item_id);
                CREATE TEMP TABLE sizes AS
                SELECT order_id, count(*) AS n_items FROM baskets GROUP BY order_id;
                """
            )
            con.execute(
                """
                CREATE TEMP TABLE kept AS
                SELECT b.order_id, b.idx FROM baskets b JOIN sizes s USING (order_id)
                WHERE s.n_items <= $max_items;
                """,
                params,
            )
            n_orders, n_skipped = con.execute(
                "SELECT count(*) FILTER (WHERE n_items <= $max_items), "
                "count(*) FILTER (WHERE n_items > $max_items) FROM sizes",
                params,
            ).fetchall()[0]
            self.n_orders_ = int(n_orders)
            self.n_orders_skipped_ = int(n_skipped)
            self.pairs_ = con.sql(
                """
                WITH counts AS (SELECT idx, count(*) AS n FROM kept GROUP BY idx),
                pair_counts AS (
                    SELECT a.idx AS ia, b.idx AS ib, count(*) AS n_ab
                    FROM kept a JOIN kept b ON a.order_id = b.order_id AND a.idx < b.idx
                    GROUP BY ALL HAVING count(*) >= $min_count
                ), stats AS (
                    SELECT p.ia, p.ib, p.n_ab, ca.n AS n_a, cb.n AS n_b,
                           CAST(ca.n AS DOUBLE) * cb.n / $n_orders AS expected
                    FROM pair_counts p JOIN counts ca ON ca.idx = p.ia
                    JOIN counts cb ON cb.idx = p.ib
                )
                SELECT ia_.item_id AS item_a, ib_.item_id AS item_b, n_ab, n_a, n_b,
                       n_ab / $n_orders AS support,
                       n_ab / n_a AS confidence_ab,
                       n_ab / n_b AS confidence_ba,
                       n_ab / expected AS lift,
                       (n_ab + $alpha) / (expected + $alpha) AS lift_shrunk,
                       CASE WHEN n_ab = $n_orders THEN 1.0
                            ELSE ln(n_ab / expected) / -ln(n_ab / $n_orders) END AS npmi
                FROM stats JOIN item_idx ia_ ON ia_.idx = stats.ia
                JOIN item_idx ib_ ON ib_.idx = stats.ib
                ORDER BY item_a, item_b
                """,
                params={
                    "min_count": self.min_count,
                    "n_orders": float(max(self.n_orders_, 1)),
                    "alpha": float(self.prior_strength),
                },
            ).to_arrow_table()
            con.register("pairs", self.pairs_)
            self.partners_ = con.sql(
                """
                WITH both_ways AS (
                    SELECT item_a AS item_id, item_b AS partner_id, n_ab, lift_shrunk,
                           confidence_ab AS confidence, npmi FROM pairs
                    UNION ALL
                    SELECT item_b, item_a, n_ab, lift_shrunk, confidence_ba, npmi FROM pairs
                )
                SELECT item_id, partner_id,
                       CAST(row_number() OVER (PARTITION BY item_id
                            ORDER BY lift_shrunk DESC, n_ab DESC, partner_id) AS INTEGER) AS rank,
                       n_ab, lift_shrunk, confidence, npmi
                FROM both_ways WHERE lift_shrunk > 1
                QUALIFY rank <= $n_partners
                ORDER BY item_id, rank
                """,
                params={"n_partners": self.n_partners},
            ).to_arrow_table()
        finally:
            con.close()
        return self

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "pairs_"):
            raise NotFittedError("This PairMiner is not fitted yet; call fit(order_lines) first.")

    def partners(self, item_id: str, n: int = 10) -> list[dict[str, object]]:
        """The best ``n`` bought-together partners of ``item_id`` (empty if it has none).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        """
        self._check_is_fitted()
        mask = pc.equal(self.partners_.column("item_id"), item_id)
        rows: list[dict[str, object]] = self.partners_.filter(mask).slice(0, n).to_pylist()
        return rows


__all__ = ["PAIR_COLUMNS", "PairMiner"]
