"""The local point-in-time join: when the labels and the feature rows a training set needs fit comfortably in
the driver, read them there and run the as-of kernel once, instead of shuffling both through Spark.

Spark decides a broadcast join the same way: from size estimates, before running anything, against a
threshold (`spark.sql.autoBroadcastJoinThreshold`). Here the estimate is Spark's own plan statistics for the
labels and the Delta log's per-file row counts for each feature table version (no data is scanned), and the
threshold is the Spark conf `spark.lakehouse.featureStore.localJoinThreshold` (bytes, or "512m"/"1g";
default 512 MiB; -1 turns the local path off). The feature rows are read from the recorded version's Parquet
files with pyarrow (never deltalake's own readers, which can abort the process at exit); tables whose files
alone are not the data (deletion vectors, column mapping) always take the Spark path. Both paths call the
same kernel (`_asof.asof_match`), and the tests compare them row for row.

At 1M labels x 5M feature rows on local[2] (a shared, loaded 2-core machine) the local path spends its time
reading the feature Parquet (0.3-0.7 s) while Spark collects the labels with toArrow (0.35-0.8 s), in the
kernel (0.4-1.2 s) and in the JVM turning the returned Arrow batches into rows (0.3-0.8 s): ~2.4 s in all,
against ~4.5-6 s for the distributed path on the same data, whose two shuffles alone take ~2.3 s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.pandas.types import to_arrow_schema

from lakehouse import Lakehouse, is_object_store
from lakehouse.errors import DataFilesMissingError, LakehouseError

from ._asof import asof_match, take_or_null
from .errors import InvalidArgumentError

THRESHOLD_CONF = "spark.lakehouse.featureStore.localJoinThreshold"
DEFAULT_THRESHOLD = 512 * 1024 * 1024
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
}
# In-memory bytes per value, as Spark's defaultSize estimates them (strings and binaries: 20), plus validity.
_FIXED_WIDTH: dict[type[T.DataType], int] = {
    T.BooleanType: 1,
    T.ByteType: 1,
    T.ShortType: 2,
    T.IntegerType: 4,
    T.DateType: 4,
    T.FloatType: 4,
    T.LongType: 8,
    T.DoubleType: 8,
    T.TimestampType: 8,
    T.TimestampNTZType: 8,
    T.DecimalType: 16,
}


def local_join_threshold(spark: SparkSession) -> int:
    """The threshold in bytes from `spark.lakehouse.featureStore.localJoinThreshold`; -1 (or any negative) = off.

    Raises InvalidArgumentError (a ValueError) naming the setting when its value is not a size.
    """
    raw = spark.conf.get(THRESHOLD_CONF, None)
    if raw is None:
        return DEFAULT_THRESHOLD
    m = re.fullmatch(r"\s*(-?\d+)\s*([a-zA-Z]*)\s*", str(raw))
    if not m or m.group(2).lower() not in _UNITS:
        raise InvalidArgumentError(
            THRESHOLD_CONF,
            raw,
            f"{THRESHOLD_CONF}={raw!r} is not a size: use bytes (536870912), a unit (512m, 1g), or -1 to turn "
            "the local point-in-time join off",
        )
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def row_width(fields: Sequence[T.StructField]) -> int:
    """Estimated in-memory bytes of one row of these fields (fixed widths; 20 for strings, 64 for nested)."""
    return sum(
        _FIXED_WIDTH.get(type(f.dataType), 20 if isinstance(f.dataType, (T.StringType, T.BinaryType)) else 64) + 1
        for f in fields
    )


def labels_size(labels: DataFrame) -> int | None:
    """Spark's plan-statistics size of `labels` in bytes (what it compares with the broadcast threshold),
    None where it cannot be had (Spark Connect) or is unknown (Spark's default for unknown is huge anyway)."""
    try:
        size = int(str(labels._jdf.queryExecution().optimizedPlan().stats().sizeInBytes()))
    except Exception:  # noqa: BLE001 - no JVM handle (Spark Connect) or a plan without statistics
        return None
    return size if size >= 0 else None


@dataclass(frozen=True)
class FeatureSource:
    """The Parquet files of one feature table version, with what is needed to read them in the driver."""

    table: str
    version: int
    schema: T.StructType  # the table's schema at `version`
    partition_columns: tuple[str, ...]
    files: tuple[str, ...]
    partition_values: tuple[dict, ...]  # per file: {partition column: typed value or None}
    num_rows: int
    retention: str

    def estimated_bytes(self, columns: Sequence[str]) -> int:
        return self.num_rows * row_width([self.schema[c] for c in columns])

    def shares(self, parts: int) -> list[tuple[int, ...]]:
        """The files (their indices) dealt into at most `parts` shares, at least one (maybe empty), for `read`."""
        k = max(1, min(parts, len(self.files)))
        return [tuple(range(i, len(self.files), k)) for i in range(k)]

    def readable_on_executors(self) -> bool:
        """Whether tasks can read these files themselves with pyarrow: local (or shared) paths only. An object
        store's endpoint, region and credentials are what the driver's environment says, which executors need not
        share (their Python workers may even predate it), so object stores are read by Spark through its own
        configured connector instead."""
        if not self.files:
            return True
        if any(is_object_store(f) for f in self.files[:1]):
            return False
        try:
            _filesystem(self.files[:1])
        except (pa.ArrowInvalid, ValueError, OSError):
            return False
        return True

    def read(self, columns: Sequence[str], *, only: Sequence[int] | None = None) -> pa.Table:
        """These columns of every row (of the files at indices `only`, when given), typed as Spark hands them
        to Python (UTC timestamps, etc.).

        Columns that older files lack (added by schema evolution) are null, as Delta reads them.

        Raises DataFilesMissingError when a file of the version is gone (VACUUM).
        """
        wanted = T.StructType([self.schema[c] for c in columns])
        target = to_arrow_schema(wanted, timestamp_utc=True, prefers_large_types=False)
        files = self.files if only is None else tuple(self.files[i] for i in only)
        values_per_file = self.partition_values if only is None else tuple(self.partition_values[i] for i in only)
        if not files:
            return target.empty_table()
        parts = [p for p in self.partition_columns if p in columns]
        partitions = None
        if parts:
            partitions = []
            for values in values_per_file:
                expr = pc.scalar(True)
                for p in parts:
                    v = values[p]
                    field = pc.field(p)
                    expr = expr & (field.is_null() if v is None else field == pa.scalar(v, target.field(p).type))
                partitions.append(expr)
        filesystem, paths = _filesystem(files)
        try:
            dataset = ds.FileSystemDataset.from_paths(
                paths, schema=target, format=ds.ParquetFileFormat(), filesystem=filesystem, partitions=partitions
            )
            return dataset.to_table(columns=list(columns), use_threads=True)
        except FileNotFoundError as exc:
            missing = next((f for f, p in zip(files, paths, strict=False) if not _exists(filesystem, p)), str(exc))
            raise DataFilesMissingError(self.table, self.version, self.retention, missing) from None


def feature_source(lake: Lakehouse, table: str, version: int) -> FeatureSource | None:
    """The files and row count of `table` at `version` from the Delta log, or None when the local path cannot
    read it exactly (deletion vectors, column mapping, files without row counts, a log it cannot open)."""
    try:
        files = lake.data_files(table, version)
        schema = lake.schema(table, version=version)
    except LakehouseError:  # the Spark path reads it, and raises the lakehouse's error if it must
        return None
    if files.num_rows is None:
        return None  # no row counts in the log: the size is unknown, so do not guess
    return FeatureSource(
        table,
        version,
        schema,
        files.partition_columns,
        files.files,
        files.partition_values,
        files.num_rows,
        files.retention,
    )


@dataclass(frozen=True)
class LocalLookup:
    """One join of the local plan: which columns of which source, matched on which label columns."""

    source: FeatureSource
    label_keys: tuple[str, ...]
    feature_keys: tuple[str, ...]
    label_ts: str | None
    feature_ts: str | None
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    lookback_us: int | None
    matched_ts_output: str | None
    age_output: str | None

    @property
    def columns(self) -> tuple[str, ...]:
        ts = (self.feature_ts,) if self.feature_ts else ()
        return tuple(dict.fromkeys((*self.feature_keys, *ts, *self.features)))


def run_local(spark: SparkSession, labels: DataFrame, lookups: Sequence[LocalLookup]) -> DataFrame:
    """`labels` with every lookup's outputs appended (their order), computed in the driver.

    The feature files are read on a thread pool while Spark collects the labels, so the two overlap.
    """
    with ThreadPoolExecutor(max_workers=max(1, len(lookups))) as pool:
        pending = [pool.submit(lk.source.read, lk.columns) for lk in lookups]
        left = labels.toArrow()
        tables = [p.result() for p in pending]
    fields = list(labels.schema.fields)
    arrays = [left.column(i) for i in range(left.num_columns)]
    for lk, right in zip(lookups, tables, strict=False):
        label_keys = [
            _as_key(left.column(lc), right.schema.field(fk).type)
            for lc, fk in zip(lk.label_keys, lk.feature_keys, strict=False)
        ]
        idx, age = asof_match(
            label_keys,
            left.column(lk.label_ts) if lk.label_ts else None,
            [right.column(fk) for fk in lk.feature_keys],
            right.column(lk.feature_ts) if lk.feature_ts else None,
            lk.lookback_us,
        )
        for f, o in zip(lk.features, lk.outputs, strict=False):
            fields.append(T.StructField(o, lk.source.schema[f].dataType, True))
            arrays.append(take_or_null(right.column(f), idx))
        if lk.matched_ts_output:
            feature_ts = cast(str, lk.feature_ts)  # a matched timestamp is only asked of a timestamped table
            fields.append(T.StructField(lk.matched_ts_output, lk.source.schema[feature_ts].dataType, True))
            arrays.append(take_or_null(right.column(lk.feature_ts), idx))
        if lk.age_output:
            fields.append(T.StructField(lk.age_output, T.LongType(), True))
            arrays.append(pa.array(age, type=pa.int64(), mask=idx < 0))
    schema = T.StructType(fields)
    table = pa.Table.from_arrays(arrays, names=schema.names)
    return spark.createDataFrame(table, schema=schema)


def _as_key(column: pa.ChunkedArray, feature_type: pa.DataType) -> pa.ChunkedArray:
    """A label key column in the type the feature key has (integral keys are compared as int64 anyway)."""
    if column.type == feature_type or (pa.types.is_integer(column.type) and pa.types.is_integer(feature_type)):
        return column
    return column.cast(feature_type)


def _filesystem(files: Sequence[str]) -> tuple[pafs.FileSystem, list[str]]:
    if "://" not in files[0]:
        return pafs.LocalFileSystem(), list(files)
    filesystem, _ = pafs.FileSystem.from_uri(files[0])
    return filesystem, [pafs.FileSystem.from_uri(f)[1] for f in files]


def _exists(filesystem: pafs.FileSystem, path: str) -> bool:
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound
