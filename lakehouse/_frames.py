"""DataFrame coercion, once for every package: what a `df=` argument may be and how it becomes Spark's."""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession

from .errors import ArgumentTypeError


def to_spark_dataframe(spark: SparkSession, df: Any, argument: str = "df") -> DataFrame:
    """A Spark DataFrame as it is; a pandas DataFrame or pyarrow Table converted in `spark`.

    Raises:
        ArgumentTypeError: `df` is none of these (the error names `argument` and the type received).
    """
    if isinstance(df, DataFrame):
        return df
    import pandas as pd  # declared dependencies; imported here to keep `import lakehouse` light
    import pyarrow as pa

    if isinstance(df, (pd.DataFrame, pa.Table)):
        return spark.createDataFrame(df)
    raise ArgumentTypeError(
        argument,
        f"{argument} must be a Spark DataFrame (or pandas DataFrame / pyarrow Table), got {type(df).__name__}",
    )
