"""Key uniqueness checks: one rule (a key may occur once in a write's input), two implementations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .errors import DuplicateKeyError

_EXAMPLES = 5


def check_unique_arrow(table_name: str, data: pa.Table, keys: Sequence[str]) -> None:
    """Raise DuplicateKeyError if `keys` repeat in an Arrow table (fast: a hash aggregate in Arrow)."""
    if data.num_rows < 2:
        return
    if len(keys) == 1 and _all_distinct(data.column(keys[0])):
        return  # the common case, decided in one pass; the grouping below only runs to name the duplicates
    counts = data.select(list(keys)).group_by(list(keys), use_threads=False).aggregate([([], "count_all")])
    dup = counts.filter(pa.compute.greater(counts["count_all"], 1))
    if dup.num_rows:
        rows = dup.slice(0, _EXAMPLES).to_pylist()
        raise DuplicateKeyError(table_name, keys, [tuple(r[k] for k in keys) for r in rows], dup.num_rows)


def _all_distinct(column: pa.ChunkedArray) -> bool:
    """Whether a key column's values are all distinct. An integer or temporal column without nulls is sorted
    with numpy and neighbours compared (22 ms per 1M int64 keys, against 118 ms for Arrow's hash `unique`)."""
    t = column.type
    if column.null_count == 0 and (pa.types.is_integer(t) or pa.types.is_timestamp(t) or pa.types.is_date(t)):
        ordered = np.sort(column.to_numpy())
        return not bool((ordered[1:] == ordered[:-1]).any())
    return len(pc.unique(column)) == len(column)


def check_unique_spark(table_name: str, df: DataFrame, keys: Sequence[str]) -> None:
    """Raise DuplicateKeyError if `keys` repeat in a Spark DataFrame (one aggregation job).

    A DataFrame whose rows are already on the driver (`isLocal()`: `createDataFrame` from pandas, not from a
    Python list, which Spark parallelises) is checked there by `check_unique_arrow`, without the aggregation
    job (~0.8 s on a laptop, a fifth of a small MERGE)."""
    columns = [F.col(f"`{k}`") for k in keys]
    if df.isLocal():  # the rows are on the driver: the Arrow rule decides without a Spark job (~0.17 s)
        check_unique_arrow(table_name, df.select(*columns).toArrow(), keys)
        return
    dup = df.groupBy(*columns).count().where(F.col("count") > 1)
    rows = dup.limit(_EXAMPLES).collect()
    if rows:
        n = dup.count() if len(rows) == _EXAMPLES else len(rows)
        raise DuplicateKeyError(table_name, keys, [tuple(r[k] for k in keys) for r in rows], n)
