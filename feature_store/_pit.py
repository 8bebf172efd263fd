"""Point-in-time join on Spark: co-partition labels and feature rows by a hash of the lookup key, then run
the vectorised as-of kernel (`_asof`) once per partition.

Neither a window over the union of labels and features nor a range join (the shapes Databricks and Feast
use) is needed: rows are shuffled once by key and each bucket is matched with one NumPy sort. Every label
row goes to exactly one bucket and leaves it exactly once.

Two partitionings: "cogroup" (the default: `groupBy(bucket).cogroup(...).applyInArrow`, labels and
features travel separately) and "shuffle" (one hash repartition of a null-padded union, then
`mapInArrow`, which avoids Spark's sort but ships wider rows). At 1M labels x 5M feature rows on
local[2], cogroup measured 4.6 s and shuffle 7.8 s (benchmarks/pit_join.py), hence the default.

This is the path for inputs too large for the driver; smaller ones take the local path (`_local`), which
runs the same kernel once in the driver and skips the shuffle and the Python-worker round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, cast

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import prepare_python_workers

from ._asof import asof_match, take_or_null

_SIDE = "__fs_is_label"
_KEY = "__fs_k{}"
_FEAT = "__fs_f{}"
_FTS = "__fs_fts"
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
TIME_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType)

Strategy = Literal["shuffle", "cogroup"]


@dataclass(frozen=True)
class JoinSpec:
    """One lookup join: label columns -> feature table columns, and what to bring back."""

    label_keys: tuple[str, ...]
    feature_keys: tuple[str, ...]
    label_ts: str | None
    feature_ts: str | None
    features: tuple[str, ...]  # columns of the feature table
    outputs: tuple[str, ...]  # their names in the result, same order
    lookback: timedelta | None
    matched_ts_output: str | None = None  # also return the matched feature timestamp under this name
    age_output: str | None = None  # and label ts - matched feature ts in microseconds (long), for audits


def key_type(label: T.DataType, feature: T.DataType) -> T.DataType | None:
    """The type both sides of a key are compared in: equal types, or long for two integral types."""
    if label == feature:
        return feature
    if isinstance(label, _INTEGRAL) and isinstance(feature, _INTEGRAL):
        return T.LongType()
    return None


def time_kinds_compatible(label: T.DataType, feature: T.DataType) -> bool:
    """A zoned timestamp is never compared with a zoneless one (which instant would 12:00 be?); dates
    compare with either as 00:00 of that day (UTC, or the zoneless wall clock)."""
    pair = {type(label), type(feature)}
    return pair != {T.TimestampType, T.TimestampNTZType}


def point_in_time_join(
    labels: DataFrame,
    features: DataFrame,
    spec: JoinSpec,
    *,
    num_partitions: int | None = None,
    strategy: Strategy = "cogroup",
) -> DataFrame:
    """`labels` with `spec.outputs` appended: for each label row the feature row with the same key and the
    greatest timestamp <= the label's (inclusive), within `lookback`; null where there is none.

    Label rows with a null key or a null timestamp match nothing. The caller has validated names and types.
    """
    fschema = features.schema
    lschema = labels.schema
    # The caller (`_resolve`) refused key pairs without a common type, so every pair has one here.
    ktypes = [
        cast(T.DataType, key_type(lschema[lk].dataType, fschema[fk].dataType))
        for lk, fk in zip(spec.label_keys, spec.feature_keys, strict=False)
    ]
    if spec.feature_ts is None:
        return _latest_join(labels, features, spec, ktypes)
    prepare_python_workers(labels.sparkSession)
    n = num_partitions or _default_partitions(labels.sparkSession)
    label_cols = list(lschema.names)
    lookback_us = None if spec.lookback is None else micros(spec.lookback)
    out_fields = list(lschema.fields) + [
        T.StructField(o, fschema[f].dataType, True) for f, o in zip(spec.features, spec.outputs, strict=False)
    ]
    if spec.matched_ts_output:
        out_fields.append(T.StructField(spec.matched_ts_output, fschema[spec.feature_ts].dataType, True))
    if spec.age_output:
        out_fields.append(T.StructField(spec.age_output, T.LongType(), True))
    out_schema = T.StructType(out_fields)
    nkeys = len(spec.label_keys)
    key_names = [_KEY.format(i) for i in range(nkeys)]
    feat_names = [_FEAT.format(i) for i in range(len(spec.features))]
    keyed_labels = labels.select(
        *[F.col(f"`{c}`") for c in label_cols],
        *[F.col(f"`{lk}`").cast(t).alias(k) for lk, t, k in zip(spec.label_keys, ktypes, key_names, strict=False)],
    )
    keyed_features = features.select(
        *[F.col(f"`{fk}`").cast(t).alias(k) for fk, t, k in zip(spec.feature_keys, ktypes, key_names, strict=False)],
        F.col(f"`{spec.feature_ts}`").alias(_FTS),
        *[F.col(f"`{f}`").alias(fn) for f, fn in zip(spec.features, feat_names, strict=False)],
    )
    label_ts = spec.label_ts
    with_ts = bool(spec.matched_ts_output)
    with_age = bool(spec.age_output)

    def match(left: pa.Table, right: pa.Table) -> pa.Table:
        schema = _arrow_schema(out_schema)
        if left.num_rows == 0:
            return schema.empty_table()
        idx, age = asof_match(
            [left.column(k) for k in key_names],
            left.column(label_ts),
            [right.column(k) for k in key_names],
            right.column(_FTS),
            lookback_us,
        )
        arrays = [left.column(c) for c in label_cols]
        for fn in feat_names:
            arrays.append(take_or_null(right.column(fn), idx, schema.field(len(arrays)).type))
        if with_ts:
            arrays.append(take_or_null(right.column(_FTS), idx, schema.field(len(arrays)).type))
        if with_age:
            arrays.append(pa.array(age, type=pa.int64(), mask=idx < 0))
        return pa.Table.from_arrays(
            [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays], schema=schema
        )

    bucket = F.pmod(F.xxhash64(*key_names), F.lit(n))
    if strategy == "cogroup":
        lg = keyed_labels.groupBy(bucket.alias("__fs_b"))
        rg = keyed_features.groupBy(bucket.alias("__fs_b"))
        return lg.cogroup(rg).applyInArrow(match, out_schema)
    # "shuffle": one hash repartition of the union (no sort), then the kernel over each whole partition.
    lside = keyed_labels.select(
        "*",
        F.lit(None).cast(fschema[spec.feature_ts].dataType).alias(_FTS),
        *[F.lit(None).cast(fschema[f].dataType).alias(fn) for f, fn in zip(spec.features, feat_names, strict=False)],
        F.lit(True).alias(_SIDE),
    )
    fside = keyed_features.select(
        *[F.lit(None).cast(f.dataType).alias(f.name) for f in lschema.fields],
        *key_names,
        _FTS,
        *feat_names,
        F.lit(False).alias(_SIDE),
    )
    union = lside.unionByName(fside).repartition(n, *key_names)

    def per_partition(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        collected = list(batches)
        if not collected:
            return
        tbl = pa.Table.from_batches(collected)
        is_label = tbl.column(_SIDE).fill_null(False)
        left = tbl.filter(is_label)
        if left.num_rows == 0:
            return
        right = tbl.filter(pa.compute.invert(is_label))
        yield from match(left, right).to_batches()

    return union.mapInArrow(per_partition, out_schema)


def _arrow_schema(schema: T.StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema, timestamp_utc=True, prefers_large_types=False)


def _latest_join(labels: DataFrame, features: DataFrame, spec: JoinSpec, ktypes: list[T.DataType]) -> DataFrame:
    """A table without a timestamp key: each key has one row, so a left join adds its current values."""
    key_names = [_KEY.format(i) for i in range(len(spec.label_keys))]
    right = features.select(
        *[F.col(f"`{fk}`").cast(t).alias(k) for fk, t, k in zip(spec.feature_keys, ktypes, key_names, strict=False)],
        *[F.col(f"`{f}`").alias(o) for f, o in zip(spec.features, spec.outputs, strict=False)],
    )
    cond = [labels[f"`{lk}`"].cast(t) == right[k] for lk, t, k in zip(spec.label_keys, ktypes, key_names, strict=False)]
    joined = labels.join(right, on=cond, how="left")
    return joined.select(*[labels[f"`{c}`"] for c in labels.columns], *[right[f"`{o}`"] for o in spec.outputs])


def micros(delta: timedelta) -> int:
    """`delta` in whole microseconds, exactly (no float on the way: timestamps are compared in microseconds)."""
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _default_partitions(spark: SparkSession) -> int:
    return int(spark.conf.get("spark.sql.shuffle.partitions", "200") or "200")
