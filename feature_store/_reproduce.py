"""Reproducing a model's training DataFrame: the content hash `log_model` records, and its check.

The hash is of the rows as a multiset, so it does not depend on row order (which differs between the driver and
the distributed join paths) and it is computed by Spark where the rows are: each row's xxhash64 over its null
mask and its values, summed as two 32-bit halves (no overflow for any row count Spark can hold), with the row
count and the column names and types beside it. Two DataFrames with the same hash hold the same rows with the
same types, up to a 64-bit hash collision.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ALGORITHM = "xxhash64-multiset-v1"


@dataclass(frozen=True)
class ContentHash:
    """The multiset hash of a DataFrame's rows (`value`), how many rows it has and the hash of its schema."""

    value: str
    num_rows: int
    schema: str
    algorithm: str = ALGORITHM

    def to_dict(self) -> dict[str, object]:
        return {"algorithm": self.algorithm, "value": self.value, "num_rows": self.num_rows, "schema": self.schema}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> ContentHash:
        return cls(str(d["value"]), int(d["num_rows"]), str(d["schema"]), str(d["algorithm"]))  # type: ignore[call-overload]

    def __str__(self) -> str:
        return f"{self.value} ({self.num_rows} rows, schema {self.schema[:12]})"

    def difference(self, other: ContentHash) -> str:
        """What differs between `self` (computed) and `other` (recorded), in words."""
        parts = []
        if self.schema != other.schema:
            parts.append("the columns or their types differ")
        if self.num_rows != other.num_rows:
            parts.append(f"{self.num_rows} rows where {other.num_rows} were trained on")
        return "; ".join(parts) or f"same {self.num_rows} rows and columns, different values"


def content_hash(df: DataFrame) -> ContentHash:
    """The content hash of `df` (one Spark aggregation; reads every row once)."""
    cols = [F.col(f"`{c}`") for c in df.columns]
    mask = F.concat_ws("", *[F.when(c.isNull(), F.lit("1")).otherwise(F.lit("0")) for c in cols])
    h = F.xxhash64(mask, *cols) if cols else F.xxhash64(mask)
    row = df.select(
        F.sum(F.shiftrightunsigned(h, 32)).alias("hi"),
        F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias("lo"),
        F.count(F.lit(1)).alias("n"),
    ).collect()[0]
    n = int(row["n"])
    hi, lo = int(row["hi"] or 0), int(row["lo"] or 0)
    schema = ";".join(f"{f.name}:{f.dataType.simpleString()}" for f in df.schema.fields)
    return ContentHash(
        value=f"{(hi * 2**32 + lo) % 2**128:032x}",
        num_rows=n,
        schema=hashlib.sha256(schema.encode()).hexdigest(),
    )
