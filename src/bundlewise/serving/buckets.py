"""The bucket of a customer in the partitioned served-offers snapshot, and bucket ranges.

A customer's bucket is the first 8 hex digits of the MD5 of its id (UTF-8), read as an unsigned
32-bit integer, modulo the number of buckets. The same value comes from Python
(:func:`bucket_of`), DuckDB (:func:`duckdb_bucket_sql`) and Spark SQL
(:func:`spark_bucket_sql`), so whichever engine writes the snapshot, a server (or a router in
front of a fleet of servers) finds a customer's offers in the same bucket.

This module imports only the standard library: the Spark engine and routers may import it alone.

Examples
--------
>>> bucket_of("C123", 8)
7
>>> BucketRange.parse("0-3/8").contains(2), str(BucketRange.parse("5/8"))
(True, '5/8')
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

#: Buckets the store step writes (the reader takes the number from the manifest).
DEFAULT_BUCKETS = 16
#: The most buckets a snapshot may have.
MAX_BUCKETS = 4096
#: How the manifest names the function.
BUCKET_FUNCTION = "int(md5(utf8(customer_id)).hexdigest()[:8], 16) % n_buckets"


def bucket_of(customer_id: str, n_buckets: int) -> int:
    """The bucket (``0 .. n_buckets - 1``) of ``customer_id``."""
    digest = hashlib.md5(customer_id.encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % n_buckets


def _check(n_buckets: int) -> int:
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int):
        raise TypeError(f"n_buckets must be an int, not {type(n_buckets).__name__}")
    if not 1 <= n_buckets <= MAX_BUCKETS:
        raise ValueError(f"n_buckets must be between 1 and {MAX_BUCKETS}, not {n_buckets}")
    return n_buckets


def duckdb_bucket_sql(column: str, n_buckets: int) -> str:
    """A DuckDB expression of the bucket of the VARCHAR ``column`` (an SQL expression)."""
    return f"(CAST(('0x' || substr(md5({column}), 1, 8)) AS UBIGINT) % {_check(n_buckets)})"


def spark_bucket_sql(column: str, n_buckets: int) -> str:
    """The same bucket as a Spark SQL expression (``F.expr(spark_bucket_sql(...))``)."""
    return f"pmod(CAST(conv(substr(md5({column}), 1, 8), 16, 10) AS BIGINT), {_check(n_buckets)})"


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?/\s*(\d+)\s*$")


@dataclass(frozen=True)
class BucketRange:
    """Buckets ``first .. last`` (inclusive) of ``n_buckets``: what one server of a fleet serves."""

    first: int
    last: int
    n_buckets: int

    @classmethod
    def parse(cls, text: str) -> BucketRange:
        """``"K/N"`` (bucket K of N) or ``"I-J/N"`` (buckets I to J of N, inclusive).

        Raises
        ------
        ValueError
            With one line naming the value and the expected form.
        """
        match = _RANGE.match(text)
        if match is None:
            raise ValueError(
                f"buckets {text!r}: expected K/N or I-J/N (e.g. 0-3/16: buckets 0 to 3 of 16)"
            )
        first, last, n = int(match[1]), int(match[2] or match[1]), int(match[3])
        if not 1 <= n <= MAX_BUCKETS:
            raise ValueError(f"buckets {text!r}: N must be between 1 and {MAX_BUCKETS}")
        if not first <= last < n:
            raise ValueError(f"buckets {text!r}: need 0 <= I <= J < N")
        return cls(first, last, n)

    def contains(self, bucket: int) -> bool:
        return self.first <= bucket <= self.last

    def serves(self, customer_id: str) -> bool:
        """Whether the customer's bucket is in this range."""
        return self.contains(bucket_of(customer_id, self.n_buckets))

    def __str__(self) -> str:
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{span}/{self.n_buckets}"


__all__ = [
    "BUCKET_FUNCTION",
    "DEFAULT_BUCKETS",
    "MAX_BUCKETS",
    "BucketRange",
    "bucket_of",
    "duckdb_bucket_sql",
    "spark_bucket_sql",
]
