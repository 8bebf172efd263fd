"""Point-in-time join on Spark: labels and feature rows meet by a hash of the lookup key, and the vectorised
as-of kernel (`_asof`) runs once per bucket on the executors. Nothing is collected to the driver: the plan
has an Exchange, never a `toArrow`.

Neither a window over the union of labels and features nor a range join (the shapes Databricks and Feast
use) is needed: every label row goes to exactly one bucket, is matched there with one NumPy sort of that
bucket's feature rows, and leaves it exactly once.

Two shapes, chosen by what the caller can hand over:

- "files" (a `FeatureSource` of local or shared paths is given, and every key is integral, boolean, date or
  timestamp): each read task reads a share of the files with pyarrow and cuts its rows into
  per-bucket Arrow IPC blocks of ~256 KiB; the blocks (a few thousand binary rows) and the label rows cross
  one Exchange, the labels routed by Spark's xxhash64 of their key, the feature rows by the same hash in NumPy
  (`spark_xxhash64`). Spark never turns the feature rows into rows or back into Arrow, which is where the
  "cogroup" shape spends most of its time.
- "cogroup" (otherwise: deletion vectors, column mapping, string keys, an object store, whose endpoint and
  credentials executors need not share with the driver):
  `groupBy(bucket).cogroup(...).applyInArrow`, labels and feature rows shuffled as Spark rows.

Measured at 1M labels x 5M feature rows on local[2] (benchmarks/pit_join.py --repeats 3, medians, the
machine shared with other work): union shape 4.91 s, "cogroup" 4.17 s (1.18x faster), "files" 3.11 s
(1.58x) at load ~3; a run at load ~4-6 gave union 12.74 s (runs 12.74 12.97 7.14: load, not the shape),
"cogroup" 3.70 s, "files" 2.85 s. In process CPU (JVM + Python workers, same data) the union shape spends
8.2-9.6 s, "cogroup" about as much (its bucket sort spills), "files" 5.7-6.9 s: the Parquet read, bucketing
and IPC in Python ~1 s, the kernel ~0.6 s, Spark moving the blocks and the label rows ~3 s, and ~0.3 s per
Python task before any work (PySpark re-reads the zip directories on the workers' path), hence few, large
buckets: one per core, more only past 4M feature rows each. "files" is the faster shape wherever it
applies; "cogroup" stays for the inputs it cannot read.

Costs behind the design (JVM CPU for the 5M feature rows, same data): the Parquet scan ~0.5 s, a row
shuffle ~1.9 s, turning rows into Arrow for Python ~2.3 s; pyarrow reads the same files in ~0.3-0.7 s.
Bucket i is grouped or repartitioned by `route_values(n)[i]`, which Spark's hash partitioning sends to
partition i: without it two buckets could share a task while another task idles.

`load_df` hands over `_local.feature_source(...)` of the recorded version, so it takes "files" wherever that
applies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.errors import PySparkAttributeError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import prepare_python_workers

from ._asof import asof_match, take_or_null
from ._local import FeatureSource

_SIDE = "__fs_is_label"
_KEY = "__fs_k{}"
_FEAT = "__fs_f{}"
_FTS = "__fs_fts"
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
TIME_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType)


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
    source: FeatureSource | None = None,
    num_partitions: int | None = None,
) -> DataFrame:
    """`labels` with `spec.outputs` appended: for each label row the feature row with the same key and the
    greatest timestamp <= the label's (inclusive), within `lookback`; null where there is none.

    `source`, when given, is the same rows as `features` as Parquet files pyarrow can read exactly
    (`_local.feature_source`); the executors then read them directly ("files" shape, see the module doc),
    else Spark reads `features` ("cogroup"). `num_partitions` buckets (default `spark.sql.shuffle.partitions`).
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
    spark = labels.sparkSession
    prepare_python_workers(spark)
    n = num_partitions or _default_partitions(spark)
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
    keyed_fields = [T.StructField(k, t, True) for k, t in zip(key_names, ktypes, strict=True)]
    keyed_fields.append(T.StructField(_FTS, fschema[spec.feature_ts].dataType, True))
    keyed_fields += [
        T.StructField(fn, fschema[f].dataType, True) for f, fn in zip(spec.features, feat_names, strict=True)
    ]
    feature_arrow = _arrow_schema(T.StructType(keyed_fields))
    result_arrow = _arrow_schema(out_schema)
    label_ts = spec.label_ts
    with_ts = bool(spec.matched_ts_output)
    with_age = bool(spec.age_output)

    def match(left: pa.Table, right: pa.Table) -> pa.Table:
        """The output rows of one bucket: `left` (keyed labels) with the matched columns of `right`."""
        if left.num_rows == 0:
            return result_arrow.empty_table()
        idx, age = asof_match(
            [left.column(k) for k in key_names],
            left.column(label_ts),
            [right.column(k) for k in key_names],
            right.column(_FTS),
            lookback_us,
        )
        arrays = [left.column(c) for c in label_cols]
        for fn in feat_names:
            arrays.append(take_or_null(right.column(fn), idx, result_arrow.field(len(arrays)).type))
        if with_ts:
            arrays.append(take_or_null(right.column(_FTS), idx, result_arrow.field(len(arrays)).type))
        if with_age:
            arrays.append(pa.array(age, type=pa.int64(), mask=idx < 0))
        arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
        # Label columns come back as Spark sent them (timestamps in the session zone): same values, UTC type.
        arrays = [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, result_arrow, strict=True)]
        return pa.Table.from_arrays(arrays, schema=result_arrow)

    if source is not None and all(isinstance(t, _HASHABLE) for t in ktypes) and source.readable_on_executors():
        buckets = num_partitions or max(_cores(spark), -(-source.num_rows // _ROWS_PER_BUCKET))
        buckets = min(buckets, _MAX_BUCKETS)
        return _files_join(keyed_labels, source, spec, key_names, feat_names, feature_arrow, buckets, match, out_schema)
    keyed_features = features.select(
        *[F.col(f"`{fk}`").cast(t).alias(k) for fk, t, k in zip(spec.feature_keys, ktypes, key_names, strict=False)],
        F.col(f"`{spec.feature_ts}`").alias(_FTS),
        *[F.col(f"`{f}`").alias(fn) for f, fn in zip(spec.features, feat_names, strict=False)],
    )
    bucket = _route(key_names, n).alias(_ROUTE)
    lg = keyed_labels.groupBy(bucket)
    rg = keyed_features.groupBy(bucket)
    return lg.cogroup(rg).applyInArrow(match, out_schema)


_ROUTE = "__fs_route"
_BLOCK = "__fs_block"
_ROWS_PER_BUCKET = 4_000_000  # feature rows one join task holds at once (~50 B each in Arrow for 4 doubles)
_MAX_BUCKETS = 32_767  # buckets are sorted as int16
_BLOCK_BYTES = 256 << 10  # below half a G1 region of a small heap: no humongous allocations in the JVM
_BLOCKS_SCHEMA = T.StructType(
    [T.StructField(_ROUTE, T.IntegerType(), False), T.StructField(_BLOCK, T.BinaryType(), True)]
)
_BLOCKS_ARROW = pa.schema([pa.field(_ROUTE, pa.int32(), False), pa.field(_BLOCK, pa.binary(), True)])
# Key types whose Spark xxhash64 `spark_xxhash64` reproduces (as hashInt or hashLong of the value).
_HASHABLE = (T.BooleanType, T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.DateType, *TIME_TYPES)


def _files_join(
    keyed_labels: DataFrame,
    source: FeatureSource,
    spec: JoinSpec,
    key_names: list[str],
    feat_names: list[str],
    feature_arrow: pa.Schema,
    n: int,
    match: Callable[[pa.Table, pa.Table], pa.Table],
    out_schema: T.StructType,
) -> DataFrame:
    """The "files" shape: each read task reads a share of the files with pyarrow and ships its rows as
    per-bucket Arrow IPC blocks; label rows go through the same Exchange as Spark rows, routed by Spark's
    xxhash64 of the same key, which `spark_xxhash64` computes for the feature rows."""
    spark = keyed_labels.sparkSession
    routes = route_values(n)
    shares = source.shares(n)
    columns = tuple(dict.fromkeys((*spec.feature_keys, cast(str, spec.feature_ts), *spec.features)))
    renames = [*spec.feature_keys, cast(str, spec.feature_ts), *spec.features]
    label_names = [f.name for f in keyed_labels.schema.fields]

    def read_features(tasks: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        def batches() -> Iterator[pa.RecordBatch]:
            for task in tasks:
                for i in task.column(0).to_pylist():
                    table = source.read(columns, only=shares[i])
                    arrays = [table.column(c).cast(f.type) for c, f in zip(renames, feature_arrow, strict=True)]
                    yield from pa.Table.from_arrays(arrays, schema=feature_arrow).to_batches(max_chunksize=1 << 20)

        yield from _blocks(batches(), key_names=key_names, routes=routes)

    def join(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        lefts: list[pa.RecordBatch] = []
        rights: list[pa.Table] = []
        for batch in batches:
            blocks = batch.column(_BLOCK)
            if blocks.null_count == len(blocks):  # label rows only, the common case
                lefts.append(batch.select(label_names))
                continue
            is_block = blocks.is_valid()
            if blocks.null_count:
                lefts.append(batch.filter(pc.invert(is_block)).select(label_names))
            rights.extend(_unblock(blocks, np.flatnonzero(is_block.to_numpy(zero_copy_only=False))))
        left = pa.Table.from_batches(lefts) if lefts else None
        if left is None or left.num_rows == 0:
            return
        for k, field in zip(key_names, feature_arrow, strict=False):  # e.g. a timestamp key in the session zone
            if left.schema.field(k).type != field.type:
                left = left.set_column(left.schema.get_field_index(k), k, left.column(k).cast(field.type))
        right = pa.concat_tables(rights) if rights else feature_arrow.empty_table()
        yield from match(left, right).to_batches()

    lrows = keyed_labels.select("*", _route(key_names, n).alias(_ROUTE), F.lit(None).cast("binary").alias(_BLOCK))
    fblocks = spark.range(len(shares), numPartitions=len(shares)).mapInArrow(read_features, _BLOCKS_SCHEMA)
    frows = fblocks.select(
        *[F.lit(None).cast(f.dataType).alias(f.name) for f in keyed_labels.schema.fields], _ROUTE, _BLOCK
    )
    return lrows.unionByName(frows).repartition(n, _ROUTE).mapInArrow(join, out_schema)


def _route(key_names: list[str], n: int) -> Column:
    """The route of a row's bucket, pmod(xxhash64(keys), n) -> route_values(n)[bucket]: grouping or repartitioning
    by it gives bucket i to partition i, one bucket per task."""
    routes = F.array(*[F.lit(r) for r in route_values(n)])
    return F.element_at(routes, (F.pmod(F.xxhash64(*key_names), F.lit(n)) + 1).cast("int"))


def _blocks(batches: Iterable[pa.RecordBatch], *, key_names: list[str], routes: list[int]) -> Iterator[pa.RecordBatch]:
    """Rows of `batches` regrouped by bucket (Spark's pmod(xxhash64(keys), n), as for the labels) into Arrow
    IPC blocks of about `_BLOCK_BYTES`, one per output row: (route of the bucket, block)."""
    n = len(routes)
    pending: list[list[pa.RecordBatch]] = [[] for _ in range(n)]
    sizes = [0] * n
    schema = None

    def flush(p: int) -> pa.RecordBatch:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, cast(pa.Schema, schema)) as writer:
            for part in pending[p]:
                writer.write_batch(part)
        pending[p], sizes[p] = [], 0
        return pa.RecordBatch.from_arrays(
            [pa.array([routes[p]], pa.int32()), _one_binary(sink.getvalue())], schema=_BLOCKS_ARROW
        )

    for batch in batches:
        if batch.num_rows == 0:
            continue
        schema = batch.schema
        # int16 buckets: NumPy's stable sort of 16-bit integers is a radix sort
        buckets = np.mod(spark_xxhash64([batch.column(k) for k in key_names]), n).astype(np.int16)
        counts = np.bincount(buckets, minlength=n)
        ordered = batch.take(pa.array(np.argsort(buckets, kind="stable")))
        row_bytes = ordered.nbytes / ordered.num_rows
        start = 0
        for p in np.flatnonzero(counts).tolist():
            count = int(counts[p])
            pending[p].append(ordered.slice(start, count))
            sizes[p] += int(count * row_bytes)
            start += count
            if sizes[p] >= _BLOCK_BYTES:
                yield flush(p)
    for p in range(n):
        if pending[p]:
            yield flush(p)


def _unblock(blocks: pa.Array, where: np.ndarray) -> Iterator[pa.Table]:
    """The tables in blocks[where] (views of the blocks' memory, not copies)."""
    for i in where.tolist():
        yield pa.ipc.open_stream(blocks[i].as_buffer()).read_all()


def _one_binary(buf: pa.Buffer) -> pa.Array:
    """A one-element binary array over `buf`, without copying it into a Python bytes object."""
    offsets = pa.py_buffer(np.array([0, buf.size], dtype=np.int32))
    return pa.Array.from_buffers(pa.binary(), 1, [None, offsets, buf])


_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


def spark_xxhash64(columns: Sequence[pa.Array | pa.ChunkedArray], seed: int = 42) -> np.ndarray:
    """Spark's `xxhash64(columns...)` (seed 42; a null value leaves the hash as it is) as int64, for integral,
    boolean, date and timestamp columns: hashInt of 8-32-bit values, dates and booleans, hashLong of longs
    and timestamps (epoch microseconds, whatever the zone)."""

    def rotl(x: np.ndarray, r: int) -> np.ndarray:
        return (x << np.uint64(r)) | (x >> np.uint64(64 - r))

    def fmix(h: np.ndarray) -> np.ndarray:
        h = h ^ (h >> np.uint64(33))
        h = h * _P2
        h = h ^ (h >> np.uint64(29))
        h = h * _P3
        return h ^ (h >> np.uint64(32))

    h = np.full(len(columns[0]), seed, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            t = col.type
            valid = col.is_valid().to_numpy(zero_copy_only=False)
            if pa.types.is_int64(t) or pa.types.is_timestamp(t):
                v = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
                x = h + _P5 + np.uint64(8)
                x ^= rotl(v * _P2, 31) * _P1
                x = rotl(x, 27) * _P1 + _P4
            elif pa.types.is_integer(t) or pa.types.is_date32(t) or pa.types.is_boolean(t):
                v32 = col.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint32)
                x = h + _P5 + np.uint64(4)
                x ^= v32.astype(np.uint64) * _P1
                x = rotl(x, 23) * _P2 + _P3
            else:
                raise TypeError(f"spark_xxhash64 does not reproduce Spark's hash of {t}")
            h = np.where(valid, fmix(x), h)
    return h.view(np.int64)


def _murmur3_int(value: int, seed: int = 42) -> int:
    """Spark's `Murmur3_x86_32.hashInt`, the hash `repartition(n, int_column)` places a row with."""
    m = 0xFFFFFFFF
    k = (value * 0xCC9E2D51) & m
    k = ((k << 15) | (k >> 17)) & m
    k = (k * 0x1B873593) & m
    h = seed ^ k
    h = ((h << 13) | (h >> 19)) & m
    h = (h * 5 + 0xE6546B64) & m
    h ^= 4
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def route_values(n: int) -> list[int]:
    """For each partition i of n, the smallest int that Spark's hash partitioning (pmod(murmur3(v, 42), n))
    sends to partition i. Grouping or repartitioning by these values gives each bucket its own task; were
    Spark's hash ever to change, only the balance would suffer, never the result."""
    found: dict[int, int] = {}
    value = 0
    while len(found) < n:
        found.setdefault(_murmur3_int(value) % n, value)
        value += 1
    return [found[i] for i in range(n)]


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


def _cores(spark: SparkSession) -> int:
    """The cores tasks run on: k of a local[k] master, else Spark's default parallelism (total executor cores
    unless set; `local_spark` sets it to twice the cores, so the master is read first). A Spark Connect client
    has no SparkContext: it reads both from the session's configuration (shuffle partitions when unset)."""
    try:
        sc = spark.sparkContext
        master, parallelism = str(sc.master), int(sc.defaultParallelism)
    except PySparkAttributeError:
        master = str(spark.conf.get("spark.master", "") or "")
        parallelism = int(spark.conf.get("spark.default.parallelism", "0") or 0) or _default_partitions(spark)
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master)
    if m:
        return 1 if m.group(1) is None else (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))
    return max(1, parallelism)


def _default_partitions(spark: SparkSession) -> int:
    return int(spark.conf.get("spark.sql.shuffle.partitions", "200") or "200")
