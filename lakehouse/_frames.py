"""DataFrame coercion, once for every package: what a `df=` argument may be and how it becomes Spark's."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession

from .errors import ArgumentTypeError, InvalidArgumentError


def to_spark_dataframe(spark: SparkSession, df: Any, argument: str = "df") -> DataFrame:
    """A Spark DataFrame as it is; a pandas DataFrame or pyarrow Table converted in `spark`.

    Raises:
        ArgumentTypeError: `df` is none of these (the error names `argument` and the type received).
    """
    if isinstance(df, DataFrame):
        return df
    import pandas as pd  # declared dependencies; imported here to keep `import lakehouse` light
    import pyarrow as pa

    if isinstance(df, pd.DataFrame):
        _check_one_kind_of_time(df, argument)
    if isinstance(df, (pd.DataFrame, pa.Table)):
        return spark.createDataFrame(df)
    raise ArgumentTypeError(
        argument,
        f"{argument} must be a Spark DataFrame (or pandas DataFrame / pyarrow Table), got {type(df).__name__}",
    )


def _check_one_kind_of_time(df: Any, argument: str) -> None:
    """Refuse a pandas column mixing naive and aware datetimes: Spark would read the naive ones in the session
    time zone and the aware ones by their offset, one column holding two meanings of time."""
    import datetime as dt

    for column in df.columns:
        if df[column].dtype != object:
            continue
        kinds = {v.tzinfo is not None for v in df[column] if isinstance(v, dt.datetime)}
        if len(kinds) > 1:
            raise InvalidArgumentError(
                argument,
                f"{argument} column {column!r} mixes naive and timezone-aware datetimes; make them all aware "
                "(e.g. tz_localize / astimezone to UTC) or all naive",
            )
