"""Building a training set: each FeatureLookup checked against its table and the labels, and pinned to the table
version it reads, the latest one or the one current at `as_of` (Delta's `versionAsOf` for a time).

Everything here reads table metadata only (schemas, commit times); no feature rows are read until
`TrainingSet.load_df()`. A lookup that cannot be joined is refused here, naming the column and what to change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse import Lakehouse
from lakehouse import errors as lh_errors

from . import _validation as check
from . import errors
from ._functions import FeatureFunction, ResolvedFunction
from ._functions import resolve as resolve_function
from ._lookup import FeatureLookup
from ._metadata import FunctionRecord, TableRecord
from ._pit import TIME_TYPES, key_type, micros, time_kinds_compatible
from ._training_set import ResolvedLookup, TrainingSet


def plan_training_set(
    lake: Lakehouse,
    records: dict[str, TableRecord],
    labels: DataFrame,
    feature_lookups: Any,
    label: Any,
    exclude_columns: Any,
    as_of: Any,
    functions_of: Callable[[], Mapping[str, FunctionRecord]] = dict,
) -> TrainingSet:
    """A TrainingSet whose lookups are checked and pinned to versions, and whose feature functions are checked
    against the functions `functions_of()` registers (read only when there are some); nothing is computed yet."""
    if isinstance(feature_lookups, (FeatureLookup, FeatureFunction)) or not isinstance(feature_lookups, Sequence):
        raise errors.ArgumentTypeError("feature_lookups", feature_lookups, "a list of FeatureLookup / FeatureFunction")
    if not feature_lookups or not all(isinstance(lk, (FeatureLookup, FeatureFunction)) for lk in feature_lookups):
        raise errors.ArgumentTypeError(
            "feature_lookups", feature_lookups, "a non-empty list of FeatureLookup (and FeatureFunction)"
        )
    feature_functions = [f for f in feature_lookups if isinstance(f, FeatureFunction)]
    feature_lookups = [lk for lk in feature_lookups if isinstance(lk, FeatureLookup)]
    label_cols = tuple(check.names(label, "label", allow_empty=True))
    excluded = tuple(check.names(exclude_columns, "exclude_columns", allow_empty=True))
    missing = [c for c in label_cols if c not in labels.columns]
    if missing:
        raise errors.ColumnNotFoundError("label", missing, labels.columns, "df")
    when = None
    if as_of is not None:
        when = check.utc_instant(as_of, "as_of")
        if when > datetime.now(UTC):
            raise errors.InvalidArgumentError(
                "as_of", as_of, f"as_of={when.isoformat()} is in the future; nothing is known yet at that time"
            )
    resolved = [resolve_lookup(lake, lk, labels.schema, records, when) for lk in feature_lookups]
    check.check_outputs(labels.columns, resolved)
    outputs = set(labels.columns) | {o for r in resolved for o in r.outputs}
    functions: list[ResolvedFunction] = []
    if feature_functions:
        registered = functions_of()
        for ff in feature_functions:
            rf = resolve_function(registered, ff, sorted(outputs))
            if rf.output_name in outputs:
                raise errors.OutputNameConflictError(rf.output_name, ["an earlier column", f"function {rf.name}"])
            functions.append(rf)
            outputs.add(rf.output_name)
    unknown = [c for c in excluded if c not in outputs]
    if unknown:
        raise errors.ColumnNotFoundError("exclude_columns", unknown, sorted(outputs), "the training set")
    bad_label = [c for c in label_cols if c in excluded]
    if bad_label:
        raise errors.InvalidArgumentError(
            "exclude_columns", exclude_columns, f"label column(s) {bad_label} are also in exclude_columns"
        )
    return TrainingSet(
        lake,
        labels,
        resolved,
        training_set_id=uuid.uuid4().hex,
        label=label_cols,
        exclude_columns=excluded,
        as_of=when,
        created_at=datetime.now(UTC),
        functions=functions,
    )


def resolve_lookup(
    lake: Lakehouse, lk: FeatureLookup, labels: T.StructType, records: dict[str, TableRecord], when: datetime | None
) -> ResolvedLookup:
    """`lk` checked against its table's schema at the pinned version and against the labels' columns."""
    name = check.table_name(lk.table_name, "table_name")
    if name not in records or not lake.exists(name):
        raise errors.FeatureTableNotFoundError(name, sorted(records))
    rec = records[name]
    version = version_as_of(lake, name, when)
    schema = lake.schema(name, version=version)
    keys = rec.primary_keys + rec.timestamp_keys
    non_keys = [c for c in schema.names if c not in keys]
    features = list(lk.feature_names) if lk.feature_names is not None else non_keys
    missing = [f for f in features if f not in schema.names]
    if missing:
        raise errors.FeatureNotFoundError(name, missing, schema.names)
    key_features = [f for f in features if f in keys]
    if key_features:
        raise errors.FeatureNotFoundError(name, key_features, non_keys, what="non-key feature")
    _check_lookup_keys(name, lk, rec, labels, schema)
    ts_key = rec.timestamp_keys[0] if rec.timestamp_keys else None
    _check_timestamp_lookup(name, lk, ts_key, labels, schema)
    unknown_defaults = [k for k in lk.default_values if k not in features]
    if unknown_defaults:
        raise errors.InvalidArgumentError(
            "default_values",
            lk.default_values,
            f"default_values for {unknown_defaults}, which this lookup does not bring: {features}",
        )
    unknown_renames = [k for k in lk.rename_outputs if k not in features]
    if unknown_renames:
        raise errors.InvalidArgumentError(
            "rename_outputs",
            lk.rename_outputs,
            f"rename_outputs for {unknown_renames}, which this lookup does not bring: {features}",
        )
    for f, v in lk.default_values.items():
        check.check_default(name, f, schema[f].dataType, v)
    return ResolvedLookup(
        table_name=name,
        version=version,
        lookup_key=tuple(lk.lookup_key),
        primary_keys=rec.primary_keys,
        timestamp_lookup_key=lk.timestamp_lookup_key if ts_key else None,
        timestamp_key=ts_key,
        features=tuple(features),
        outputs=tuple(lk.output_name(f) for f in features),
        lookback_us=None if lk.lookback_window is None else micros(lk.lookback_window),
        default_values={lk.output_name(f): v for f, v in lk.default_values.items() if v is not None},
    )


def version_as_of(lake: Lakehouse, name: str, when: datetime | None) -> int:
    """The version of `name` that was current at `when` (UTC); the latest for None.

    Before the first commit: NotKnownAtError. After the last: the latest version (what was known then).
    """
    if when is None:
        return lake.latest_version(name)
    try:
        return lake.version_at(name, when)
    except lh_errors.TimestampOutOfRangeError as exc:
        if not exc.after:
            raise errors.NotKnownAtError(name, when, exc.earliest) from None
    # After the last commit: the latest version is what was known (Delta's rule for RESTORE). Re-check
    # in case a commit landed between the two calls.
    for entry in lake.history(name, limit=3):
        if entry.timestamp <= when:
            return entry.version
    return lake.version_at(name, when)


def _check_lookup_keys(
    name: str, lk: FeatureLookup, rec: TableRecord, labels: T.StructType, schema: T.StructType
) -> None:
    if len(lk.lookup_key) != len(rec.primary_keys):
        raise errors.LookupKeyError(
            name,
            lk.lookup_key,
            rec.primary_keys,
            f"{len(lk.lookup_key)} lookup column(s) for {len(rec.primary_keys)} primary key(s)",
        )
    absent = [c for c in lk.lookup_key if c not in labels.names]
    if absent:
        raise errors.LookupKeyError(
            name, lk.lookup_key, rec.primary_keys, f"column(s) {absent} are not in the labels DataFrame {labels.names}"
        )
    for lcol, pk in zip(lk.lookup_key, rec.primary_keys, strict=False):
        lt, ft = labels[lcol].dataType, schema[pk].dataType
        if key_type(lt, ft) is None:
            raise errors.ColumnTypeError(
                lcol,
                lt.simpleString(),
                f"{ft.simpleString()} (the type of {name}.{pk})",
                f"Cast the label column to {ft.simpleString()}.",
            )


def _check_timestamp_lookup(
    name: str, lk: FeatureLookup, ts_key: str | None, labels: T.StructType, schema: T.StructType
) -> None:
    tlk = lk.timestamp_lookup_key
    if ts_key is None:
        if tlk is not None:
            raise errors.InvalidArgumentError(
                "timestamp_lookup_key",
                tlk,
                f"FeatureLookup({name!r}): timestamp_lookup_key={tlk!r} but the table has no timestamp key, so it "
                "has one row per key (latest values); remove timestamp_lookup_key",
            )
        return
    if tlk is None:
        raise errors.InvalidArgumentError(
            "timestamp_lookup_key",
            tlk,
            f"FeatureLookup({name!r}) needs timestamp_lookup_key: the table has timestamp key {ts_key!r}, "
            "and a join without the label's time would leak future values",
        )
    if tlk not in labels.names:
        raise errors.ColumnNotFoundError("timestamp_lookup_key", [tlk], labels.names, "the labels DataFrame")
    lt, ft = labels[tlk].dataType, schema[ts_key].dataType
    if not isinstance(lt, TIME_TYPES):
        raise errors.ColumnTypeError(
            tlk,
            lt.simpleString(),
            "timestamp, timestamp_ntz or date",
            "Convert it, e.g. F.to_timestamp(col) (strings) or F.timestamp_seconds(col) (epoch seconds).",
        )
    if not time_kinds_compatible(lt, ft):
        raise errors.ColumnTypeError(
            tlk,
            lt.simpleString(),
            f"{ft.simpleString()} (the type of {name}.{ts_key})",
            "A zoned and a zoneless timestamp name different instants; convert the label column "
            "explicitly, e.g. F.to_utc_timestamp(col, 'Europe/Paris') or col.cast('timestamp_ntz').",
        )
