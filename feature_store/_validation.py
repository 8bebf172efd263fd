"""Argument checks at the feature store's public boundary: table names, column-name lists, tags, key columns,
default values, output names, and the conversions of DataFrames, schemas and times the public calls accept.

Every check raises a type of `feature_store.errors` naming the argument and the value received; none touches
a table's data. The checks that need the lake (where a name resolves to) take the `Lakehouse` as an argument.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.errors import ParseException
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse import Lakehouse, to_spark_dataframe, to_utc
from lakehouse import errors as lh_errors

from . import errors
from ._pit import TIME_TYPES

if TYPE_CHECKING:
    from ._training_set import ResolvedLookup

RESERVED_NAMESPACES = ("_feature_store", "mlflow")
"""Namespaces of the lake's own tables, which never become feature tables."""
RESERVED_PREFIX = "__fs_"
"""Training-set column names the point-in-time join uses for its own columns."""
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_NAMES = "a column name or a list of column names"


def names(value: str | Sequence[str] | None, argument: str, *, allow_empty: bool) -> list[str]:
    """A column name or names as a list; None is no columns. Refuses empties and repeats."""
    if value is None:
        value = []
    out = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if out is None or not all(isinstance(v, str) and v for v in out):
        raise errors.ArgumentTypeError(argument, value, _NAMES)
    if not out and not allow_empty:
        raise errors.InvalidArgumentError(argument, value, f"{argument} must name at least one column")
    if len(set(out)) != len(out):
        raise errors.InvalidArgumentError(argument, value, f"{argument} names a column twice: {out}")
    return out


def str_map(value: Mapping[str, str] | None, argument: str) -> dict[str, str]:
    """A {feature name: new column name} mapping, both non-empty str."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise errors.ArgumentTypeError(argument, value, "a mapping of feature names to new column names (str -> str)")
    return dict(value)


def mapping(value: Any, argument: str) -> dict[Any, Any]:
    """`value` as a new dict: a Mapping or pairs, as `dict()` takes them; None is empty; a str is refused."""
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        raise errors.ArgumentTypeError(argument, value, "a mapping (dict) or None")
    try:
        return dict(value)
    except (TypeError, ValueError):
        raise errors.ArgumentTypeError(argument, value, "a mapping (dict) or None") from None


def table_name(name: Any, argument: str = "name") -> str:
    """`name` checked as the name of a feature table: a non-empty str outside the feature store's metadata.

    Whether the lake can resolve it is checked where a table is created or registered; a name looked up is
    simply not found unless it was registered."""
    if not isinstance(name, str) or not name.strip():
        raise errors.ArgumentTypeError(argument, name, "a non-empty table name such as 'customer_features'")
    if name.startswith("_feature_store"):
        raise errors.InvalidTableNameError(
            name, "it is reserved for the feature store's own metadata", fix="Choose a name outside _feature_store."
        )
    return name


def new_feature_table_name(lake: Lakehouse, name: Any, argument: str = "name") -> str:
    """`name` checked as a table to become a feature table: a name the lake resolves, and never one of the
    lake's own tables (the feature store's metadata, MLflow's tracking tables), whether named or by path."""
    name = table_name(name, argument)
    try:
        path = os.path.normpath(lake.table_path(name))
    except lh_errors.InvalidTableNameError as exc:
        raise errors.InvalidTableNameError(name, exc.reason) from None
    _inside_lake(lake.root, name, lake.table_path(name))
    for namespace in RESERVED_NAMESPACES:
        folder = os.path.normpath(os.path.join(lake.root, namespace))
        if path == folder or path.startswith(folder + os.sep):
            raise errors.InvalidTableNameError(
                name,
                f"it is {path}, inside {folder}, which holds the lake's own {namespace}.* tables",
                fix="A feature table must live elsewhere in the lake.",
            )
    return name


def _inside_lake(root: str, name: str, path: str) -> None:
    """Refuse a table whose folder is not inside the lake root: an absolute path or URI elsewhere, or a folder of
    the lake that is a symbolic link leading out of it (the feature store's catalog covers its own lake only)."""
    fix = "Name the table inside the lake (e.g. 'features.customers'), or open a client on the lake that holds it."
    if "://" in root or "://" in path:
        if not path.startswith(root.rstrip("/") + "/"):
            raise errors.InvalidTableNameError(name, f"it is {path}, outside the lake root {root}", fix=fix)
        return
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and real.startswith(real_root + os.sep):
        return
    linked = os.path.normpath(path).startswith(os.path.normpath(root) + os.sep)
    reason = (
        f"its folder {path} resolves to {real} through a symbolic link, outside the lake root {root}"
        if linked
        else f"it is {path}, outside the lake root {root}"
    )
    raise errors.InvalidTableNameError(name, reason, fix=fix)


def tags(value: Mapping[str, str] | None, argument: str = "tags") -> dict[str, str]:
    out = mapping(value, argument)
    for k, v in out.items():
        if not isinstance(k, str) or not k or not isinstance(v, str):
            raise errors.ArgumentTypeError(
                argument, value, f"a mapping of non-empty str keys to str values ({k!r}: {v!r})"
            )
    return out


def non_empty_str(value: Any, argument: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.ArgumentTypeError(argument, value, "a non-empty str")
    return value


def optional_str(value: Any, argument: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise errors.ArgumentTypeError(argument, value, "a str or None")
    return value


def flag(value: Any, argument: str) -> bool:
    if not isinstance(value, bool):
        raise errors.ArgumentTypeError(argument, value, "True or False")
    return value


def version(value: Any, argument: str = "version") -> int | None:
    """A table version: None or an int (whether the table has it, negative or not, is the lakehouse's check:
    VersionNotFoundError with the available range)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise errors.ArgumentTypeError(argument, value, "an int (a table version) or None")
    return value


def utc_instant(value: Any, argument: str) -> datetime:
    """`value` (datetime, date or ISO 8601 string; naive = UTC) as an aware UTC datetime."""
    try:
        return to_utc(value, argument=argument)
    except TypeError as exc:
        raise errors.ArgumentTypeError(argument, value, "a datetime, date or ISO 8601 string") from exc
    except ValueError as exc:
        raise errors.InvalidArgumentError(argument, value, str(exc)) from None
    except OverflowError:
        raise errors.InvalidArgumentError(
            argument, value, f"{argument}={value!r} is out of range in UTC (years 1 to 9999); pass an earlier time"
        ) from None


def to_spark(lake: Lakehouse, df: Any, argument: str = "df") -> DataFrame:
    """A Spark DataFrame as it is; a pandas DataFrame or pyarrow Table converted in the lake's session.

    A pandas frame without columns, or with a column mixing naive and aware datetimes (naive means UTC here,
    so such a column has two readings of one kind of value), is refused before Spark sees it."""
    _check_pandas(df, argument)
    try:
        return to_spark_dataframe(lake.spark, df, argument)
    except lh_errors.ArgumentTypeError:
        raise errors.ArgumentTypeError(
            argument, df, "a Spark DataFrame (or a pandas DataFrame / pyarrow Table)"
        ) from None


def _check_pandas(df: Any, argument: str) -> None:
    columns = getattr(df, "columns", None)
    if columns is None or not hasattr(df, "dtypes") or not hasattr(df, "iloc"):
        return  # not pandas: Spark DataFrames and Arrow tables carry one type per column
    if len(columns) == 0:
        raise errors.InvalidArgumentError(argument, df, f"{argument} has no columns: pass the rows with their columns")
    if len(set(columns)) != len(columns):
        repeated = sorted({str(c) for c in columns if list(columns).count(c) > 1})
        raise errors.InvalidArgumentError(argument, repeated, f"{argument} has column(s) {repeated} more than once")
    for col in columns:
        if str(df[col].dtype) != "object":
            continue
        zones = {v.tzinfo is None for v in df[col] if isinstance(v, datetime)}
        if len(zones) == 2:
            raise errors.InvalidArgumentError(
                argument,
                col,
                f"column {col!r} of {argument} mixes naive and time-zone-aware datetimes; make them all aware "
                "(e.g. pd.to_datetime(col, utc=True)) or all naive UTC",
            )


def struct(schema: Any) -> T.StructType:
    """A `schema=` argument (StructType or DDL string such as "id long, f1 double") as a StructType."""
    if isinstance(schema, T.StructType):
        return schema
    if not isinstance(schema, str):
        raise errors.ArgumentTypeError("schema", schema, "a StructType or a DDL string")
    try:
        parsed = T._parse_datatype_string(schema)
    except ParseException as exc:
        raise errors.InvalidArgumentError(
            "schema", schema, f"schema={schema!r} is not a DDL string such as 'id long, f1 double': {exc}"
        ) from None
    if not isinstance(parsed, T.StructType) or not parsed.fields:
        raise errors.InvalidArgumentError("schema", schema, f"schema={schema!r} names no columns")
    return parsed


def fields(schema: T.StructType) -> list[tuple[str, str]]:
    """(name, Spark type) of every column, as the errors show them."""
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def entity_keys(pks: list[str], tks: list[str]) -> list[str]:
    """The primary keys less the timestamp key: Databricks' clients take the timestamp key inside
    `primary_keys` (`FeatureEngineeringClient` requires it there) or beside it; both mean the same table."""
    entity = [k for k in pks if k not in tks]
    if not entity:
        raise errors.InvalidArgumentError(
            "primary_keys", pks, f"needs at least one column besides the timestamp key {tks}"
        )
    return entity


def check_key_columns(name: str, schema: T.StructType, pks: list[str], tks: list[str]) -> None:
    """The keys of a new feature table (`pks` without the timestamp key): present, at most one timestamp key of a
    time type, and at least one feature column besides them."""
    absent = [c for c in pks + tks if c not in schema.names]
    if absent:
        raise errors.FeatureNotFoundError(name, absent, schema.names, what="key column")
    if len(tks) > 1:
        raise errors.InvalidArgumentError("timestamp_keys", tks, f"timestamp_keys takes at most one column, got {tks}")
    for k in pks:
        dt = schema[k].dataType
        if isinstance(dt, (T.MapType, T.ArrayType, T.StructType, T.BinaryType)):
            raise errors.ColumnTypeError(
                k,
                dt.simpleString(),
                "a scalar type (integer, string, date, ...)",
                "Key columns are compared in merges and joins; derive a scalar key (e.g. a hash or id) first.",
            )
    for t in tks:
        dt = schema[t].dataType
        if not isinstance(dt, TIME_TYPES):
            raise errors.ColumnTypeError(
                t, dt.simpleString(), "timestamp, timestamp_ntz or date", "Convert it first, e.g. F.to_timestamp(col)."
            )
    if not [f for f in schema.names if f not in pks + tks]:
        raise errors.InvalidArgumentError(
            "primary_keys", pks, f"feature table {name!r} would have no feature columns besides its keys {pks + tks}"
        )


def finite(value: Any, argument: str) -> None:
    """Refuse NaN and infinities: a saved training set's JSON cannot hold them, and no feature defaults to them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise errors.InvalidArgumentError(
            argument, value, f"{argument} is {value!r}; pass a finite number (or None to leave nulls as they are)"
        )


def check_default(table: str, feature: str, dtype: T.DataType, value: Any) -> None:
    """A lookup's default value is of its feature's type (no silent casts when it fills a null)."""
    if value is None:
        return
    ok = (
        (isinstance(dtype, _INTEGRAL) and isinstance(value, int) and not isinstance(value, bool))
        or (
            isinstance(dtype, _NUMERIC)
            and not isinstance(dtype, _INTEGRAL)
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
        )
        or (isinstance(dtype, T.StringType) and isinstance(value, str))
        or (isinstance(dtype, T.BooleanType) and isinstance(value, bool))
    )
    if not ok:
        raise errors.ColumnTypeError(
            f"{table}.{feature}",
            f"given a default of {type(value).__name__} {value!r}",
            f"a default of the feature's type {dtype.simpleString()}",
            "Pass a default_values entry of the feature's type (an int for integral features, a number for "
            "floating point, a str for strings, a bool for booleans).",
        )


def check_outputs(label_columns: Sequence[str], resolved: Sequence[ResolvedLookup]) -> None:
    """Every training-set column has one source and none takes a name the join reserves."""
    seen: dict[str, str] = {c: "the labels DataFrame" for c in label_columns}
    for r in resolved:
        for f, o in zip(r.features, r.outputs, strict=False):
            source = f"{r.table_name}.{f}"
            if o in seen:
                raise errors.OutputNameConflictError(o, [seen[o], source])
            if o.startswith(RESERVED_PREFIX):
                raise errors.InvalidArgumentError(
                    "rename_outputs", o, f"output column {o!r}: names starting with {RESERVED_PREFIX!r} are reserved"
                )
            seen[o] = source
    for c in label_columns:
        if c.startswith(RESERVED_PREFIX):
            raise errors.InvalidArgumentError(
                "df", c, f"labels column {c!r}: names starting with {RESERVED_PREFIX!r} are reserved"
            )
