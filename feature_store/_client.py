"""FeatureStoreClient: Databricks' feature-store API over `lakehouse` Delta tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import Lakehouse, to_utc
from lakehouse import errors as lh_errors

from . import errors
from ._entities import FeatureTable
from ._lookup import FeatureLookup, _names
from ._metadata import MetadataStore, TableRecord
from ._pit import TIME_TYPES, key_type, time_kinds_compatible
from ._training_set import ResolvedLookup, TrainingSet

_MODES = ("merge", "overwrite")
_EXAMPLES = 5
_NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


class FeatureStoreClient:
    """Feature tables on Delta with point-in-time training sets; the API of Databricks' FeatureStoreClient.

    `root` is the lakehouse root (default `$LAKEHOUSE_ROOT`); `spark` defaults to the local session;
    `lakehouse` passes an existing `Lakehouse` instead of both. Feature tables are lakehouse tables by name
    ("customer_features", "risk.customers"); keys, tags and saved training sets live under
    `<root>/_feature_store/`. Timestamps are UTC: naive datetimes and offset-less strings mean UTC.

    Example:
        >>> fs = FeatureStoreClient(root="/tmp/lake")
        >>> fs.create_table(name="customer_features", primary_keys=["customer_id"], timestamp_keys=["ts"],
        ...                 df=features_df, description="daily aggregates")
        >>> ts = fs.create_training_set(df=labels_df, label="churn", feature_lookups=[
        ...     FeatureLookup(table_name="customer_features", lookup_key="customer_id",
        ...                   timestamp_lookup_key="label_ts")])
        >>> ts.load_df().count()
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        spark: SparkSession | None = None,
        lakehouse: Lakehouse | None = None,
    ) -> None:
        if lakehouse is not None and (root is not None or spark is not None):
            raise ValueError("pass either lakehouse= or root=/spark=, not both")
        self._lake = lakehouse if lakehouse is not None else Lakehouse(root, spark=spark)
        self._meta = MetadataStore(self._lake)

    def __repr__(self) -> str:
        return f"FeatureStoreClient(root={self._lake.root!r})"

    @property
    def spark(self) -> SparkSession:
        return self._lake.spark

    @property
    def lakehouse(self) -> Lakehouse:
        return self._lake

    # -- tables ---------------------------------------------------------------------------------------------
    def create_table(
        self,
        name: str,
        primary_keys: str | Sequence[str],
        df: Any = None,
        *,
        timestamp_keys: str | Sequence[str] | None = None,
        schema: T.StructType | str | None = None,
        partition_columns: str | Sequence[str] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> FeatureTable:
        """Create a feature table from `df` (its rows are version 0) or an empty one from `schema`.

        `primary_keys` (+ the one optional `timestamp_keys` column, of type timestamp, timestamp_ntz or date)
        must be unique and non-null in `df`; every other column is a feature.

        Raises:
            FeatureTableAlreadyExistsError, DuplicateKeyError, NullKeyError (nothing is written),
            ColumnTypeError (timestamp key type), ValueError/TypeError for malformed arguments.
        """
        name = self._new_feature_table_name(name)
        pks = _names(primary_keys, "primary_keys", allow_empty=False)
        tks = _names(timestamp_keys, "timestamp_keys", allow_empty=True)
        parts = _names(partition_columns, "partition_columns", allow_empty=True)
        tags = _tags(tags)
        if (df is None) == (schema is None):
            raise ValueError("create_table needs exactly one of df= (a DataFrame) or schema= (StructType or DDL)")
        if df is not None:
            df = self._to_spark(df)
            struct = df.schema
        else:
            struct = T._parse_datatype_string(schema) if isinstance(schema, str) else schema
            if not isinstance(struct, T.StructType):
                raise TypeError(f"schema must be a StructType or a DDL string, got {type(schema).__name__}")
        self._check_key_columns(name, struct, pks, tks)
        unknown = [p for p in parts if p not in struct.names]
        if unknown:
            raise ValueError(f"partition_columns {unknown} are not columns of the input: {struct.names}")
        self._refuse_existing(name)
        if df is not None:
            _check_unique(name, df, pks + tks)
        self._lake.create_table(
            name, df, schema=None if df is not None else struct, partition_by=parts or None, description=description
        )
        with self._undo_on_error(name):
            self._meta.add_table(name, pks, tks)
            self._meta.set_tags(name, tags)
        return self.get_table(name)

    def register_table(
        self,
        *,
        delta_table: str,
        primary_keys: str | Sequence[str],
        timestamp_keys: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> FeatureTable:
        """Make an existing lakehouse Delta table a feature table (its keys are checked for uniqueness)."""
        name = self._new_feature_table_name(delta_table)
        pks = _names(primary_keys, "primary_keys", allow_empty=False)
        tks = _names(timestamp_keys, "timestamp_keys", allow_empty=True)
        tags = _tags(tags)
        if name in self._meta.tables():
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=True)
        df = self._lake.read(name)
        self._check_key_columns(name, df.schema, pks, tks)
        _check_unique(name, df, pks + tks)
        self._meta.add_table(name, pks, tks)
        self._meta.set_tags(name, tags)
        return self.get_table(name)

    def write_table(
        self,
        name: str,
        df: Any,
        mode: Literal["merge", "overwrite"] = "merge",
        *,
        schema_evolution: bool = False,
    ) -> int:
        """Write rows into a feature table in one commit; return the version committed.

        "merge" upserts by the table's keys: matched rows get the columns `df` carries (columns it lacks
        keep their values), new keys are inserted. "overwrite" replaces every row and needs every column.
        New columns need `schema_evolution=True`; missing keys, mistyped or (for overwrite) missing columns
        are refused. Keys in `df` must be unique and non-null.

        Raises:
            FeatureTableNotFoundError, SchemaMismatchError, DuplicateKeyError, NullKeyError (nothing is
            written), ValueError for an unknown mode.
        """
        if mode not in _MODES:
            raise ValueError(f"mode={mode!r} is not one of {', '.join(repr(m) for m in _MODES)}")
        rec = self._record(name)
        df = self._to_spark(df)
        keys = list(rec.primary_keys + rec.timestamp_keys)
        schema = self._lake.schema(rec.name)
        missing_keys = [k for k in keys if k not in df.columns]
        if missing_keys:
            raise errors.SchemaMismatchError(
                rec.name,
                _fields(schema),
                _fields(df.schema),
                [f"key column {k!r} is missing" for k in missing_keys],
                hint="include every primary key and timestamp key column",
            )
        try:
            if mode == "merge":
                try:
                    result = self._lake.merge(
                        rec.name, _refusing_null_keys(df, keys), on=keys, schema_evolution=schema_evolution
                    )
                except Exception as exc:
                    nulls = [k for k in keys if _null_key_marker(k) in str(exc)]
                    if nulls:
                        raise errors.NullKeyError(rec.name, nulls) from None
                    raise
                return result.version
            missing = [c for c in schema.names if c not in df.columns]
            if missing:
                raise errors.SchemaMismatchError(
                    rec.name,
                    _fields(schema),
                    _fields(df.schema),
                    [f"column {c!r} is missing" for c in missing],
                    hint="an overwrite replaces every row, so pass every column (use mode='merge' to update some)",
                )
            extra = [c for c in df.columns if c not in schema.names]
            if extra and not schema_evolution:
                raise errors.SchemaMismatchError(
                    rec.name,
                    _fields(schema),
                    _fields(df.schema),
                    [f"column {c!r} ({df.schema[c].dataType.simpleString()}) is not in the table" for c in extra],
                )
            _check_unique(rec.name, df, keys)
            if extra:
                mistyped = [c for c in schema.names if df.schema[c].dataType != schema[c].dataType]
                if mistyped:
                    raise errors.SchemaMismatchError(
                        rec.name,
                        _fields(schema),
                        _fields(df.schema),
                        [
                            f"column {c!r} is {df.schema[c].dataType.simpleString()} but the table has "
                            f"{schema[c].dataType.simpleString()}"
                            for c in mistyped
                        ],
                        hint="cast the DataFrame to the table's types",
                    )
                ordered = df.select(*[F.col(f"`{c}`") for c in schema.names + extra])
                return self._lake.overwrite(rec.name, ordered, overwrite_schema=True).version
            return self._lake.overwrite(rec.name, df).version
        except lh_errors.DuplicateKeyError as exc:
            raise errors.DuplicateKeyError(rec.name, exc.keys, exc.examples, exc.count) from None
        except errors.SchemaMismatchError:
            raise
        except lh_errors.SchemaMismatchError as exc:
            raise errors.SchemaMismatchError(rec.name, exc.expected, exc.received, exc.problems) from None

    def read_table(
        self,
        name: str,
        *,
        version: int | None = None,
        as_of_delta_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """The table's rows: latest, at `version`, or as of a UTC timestamp (naive = UTC), Delta's rules.

        Raises FeatureTableNotFoundError, and lakehouse's VersionNotFoundError / TimestampOutOfRangeError.
        """
        rec = self._record(name)
        return self._lake.read(rec.name, version=version, timestamp=as_of_delta_timestamp)

    def get_table(self, name: str) -> FeatureTable:
        """Keys, features and their types, description, tags, path, latest version, users of a table."""
        rec = self._record(name)
        return self._describe(rec, self._meta.tags(rec.name), self._meta.used_by(rec.name))

    def _describe(self, rec: TableRecord, tags: dict[str, str], used_by: tuple[str, ...]) -> FeatureTable:
        info = self._lake.describe(rec.name)
        keys = set(rec.primary_keys + rec.timestamp_keys)
        return FeatureTable(
            name=rec.name,
            path=info.path,
            primary_keys=rec.primary_keys,
            timestamp_keys=rec.timestamp_keys,
            features=tuple((n, t) for n, t in info.columns if n not in keys),
            description=info.description,
            tags=dict(tags),
            partition_columns=info.partition_columns,
            latest_version=info.version,
            created_at=rec.created_at,
            used_by=used_by,
        )

    def list_tables(self) -> list[FeatureTable]:
        """Every feature table, sorted by name."""
        return self.search_tables()

    def search_tables(
        self, text: str | None = None, *, tags: Mapping[str, str | None] | None = None
    ) -> list[FeatureTable]:
        """Feature tables whose name, description or a feature name contains `text` (case-insensitive) and
        that carry every tag in `tags` (a value of None matches any value), sorted by name."""
        if text is not None and not isinstance(text, str):
            raise TypeError(f"text must be a str or None, got {text!r}")
        wanted = dict(tags or {})
        all_tags = self._meta.all_tags()
        uses = self._meta.training_sets()
        out = []
        for name, rec in sorted(self._meta.tables().items()):
            if not self._lake.exists(name):
                continue  # dropped outside the feature store
            t = all_tags.get(name, {})
            if any(k not in t or (v is not None and t[k] != v) for k, v in wanted.items()):
                continue
            used = tuple(sorted(i for i, (_, tables, _) in uses.items() if name in tables))
            ft = self._describe(rec, t, used)
            if text:
                hay = " ".join([ft.name, ft.description or "", *ft.feature_names]).lower()
                if text.lower() not in hay:
                    continue
            out.append(ft)
        return out

    def drop_table(self, name: str) -> None:
        """Delete a feature table, its history and its tags. Saved training sets that read it can no longer
        be loaded (they raise the lakehouse's TableNotFoundError). Irreversible."""
        rec = self._record(name)
        self._meta.remove_table(rec.name)
        if self._lake.exists(rec.name):
            self._lake.drop_table(rec.name)

    def set_feature_table_tag(self, *, table_name: str, key: str, value: str) -> None:
        """Set (or replace) one tag on a feature table."""
        rec = self._record(table_name)
        self._meta.set_tags(rec.name, _tags({key: value}))

    def delete_feature_table_tag(self, *, table_name: str, key: str) -> None:
        """Remove a tag; removing a tag that is not set is a no-op."""
        rec = self._record(table_name)
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be a non-empty str, got {key!r}")
        if key in self._meta.tags(rec.name):
            self._meta.delete_tag(rec.name, key)

    # -- training sets --------------------------------------------------------------------------------------
    def create_training_set(
        self,
        df: Any,
        feature_lookups: Sequence[FeatureLookup],
        label: str | Sequence[str] | None,
        *,
        exclude_columns: str | Sequence[str] | None = None,
        as_of: datetime | str | None = None,
    ) -> TrainingSet:
        """Pin every lookup to a table version and return a TrainingSet; nothing is computed yet.

        Each lookup reads the table's latest version, or with `as_of` (UTC; naive = UTC) the version that
        was current then, so rows written or corrected later cannot reach a backtest. Then, per label row,
        the feature row with the greatest timestamp <= the label's `timestamp_lookup_key` (within the
        lookback) is joined; no match gives null, then the lookup's default value.

        Raises:
            FeatureTableNotFoundError, FeatureNotFoundError, LookupKeyError, ColumnTypeError,
            OutputNameConflictError, NotKnownAtError, ValueError/TypeError for malformed arguments.
        """
        labels = self._to_spark(df)
        if isinstance(feature_lookups, FeatureLookup) or not isinstance(feature_lookups, Sequence):
            raise TypeError("feature_lookups must be a list of FeatureLookup")
        if not feature_lookups or not all(isinstance(lk, FeatureLookup) for lk in feature_lookups):
            raise TypeError(f"feature_lookups must be a non-empty list of FeatureLookup, got {feature_lookups!r}")
        label_cols = tuple(_names(label, "label", allow_empty=True))
        excluded = tuple(_names(exclude_columns, "exclude_columns", allow_empty=True))
        missing = [c for c in label_cols if c not in labels.columns]
        if missing:
            raise ValueError(f"label column(s) {missing} are not in df; its columns: {labels.columns}")
        when = None
        if as_of is not None:
            when = to_utc(as_of, argument="as_of")
            if when > datetime.now(UTC):
                raise ValueError(f"as_of={when.isoformat()} is in the future; nothing is known yet at that time")
        records = self._meta.tables()
        resolved = [self._resolve(lk, labels.schema, records, when) for lk in feature_lookups]
        _check_outputs(labels.columns, resolved)
        outputs = set(labels.columns) | {o for r in resolved for o in r.outputs}
        unknown = [c for c in excluded if c not in outputs]
        if unknown:
            raise ValueError(f"exclude_columns {unknown} are not columns of the training set: {sorted(outputs)}")
        bad_label = [c for c in label_cols if c in excluded]
        if bad_label:
            raise ValueError(f"label column(s) {bad_label} are also in exclude_columns")
        return TrainingSet(
            self._lake,
            labels,
            resolved,
            training_set_id=uuid.uuid4().hex,
            label=label_cols,
            exclude_columns=excluded,
            as_of=when,
            created_at=datetime.now(UTC),
        )

    def save_training_set(self, training_set: TrainingSet) -> str:
        """Persist a training set (its labels as a Delta snapshot, and its spec) and return its id.

        `load_training_set(id).load_df()` then returns the same rows, whatever is written to the feature
        tables or to the labels' source afterwards. Saving twice is a no-op.
        """
        if not isinstance(training_set, TrainingSet):
            raise TypeError(f"training_set must be a TrainingSet, got {type(training_set).__name__}")
        if training_set.saved:
            return training_set.id
        labels_table = self._meta.new_labels_table()
        written = self._lake.create_table(
            labels_table, training_set._labels, description=f"labels of training set {training_set.id}"
        )
        spec = training_set.spec()
        spec["labels"] = {"table": labels_table, "version": written.version}
        try:
            self._meta.save_training_set(training_set.id, [lk.table_name for lk in training_set.lookups], spec)
        except BaseException:
            self._lake.drop_table(labels_table)
            raise
        training_set.saved = True
        return training_set.id

    def load_training_set(self, training_set_id: str) -> TrainingSet:
        """Re-create a saved training set by id: same labels, same lookups, same table versions."""
        saved = self._meta.training_sets()
        if training_set_id not in saved:
            raise errors.TrainingSetNotFoundError(training_set_id, sorted(saved))
        _, _, spec = saved[training_set_id]
        labels = self._lake.read(spec["labels"]["table"], version=spec["labels"]["version"])
        return TrainingSet(
            self._lake,
            labels,
            [ResolvedLookup.from_dict(d) for d in spec["lookups"]],
            training_set_id=training_set_id,
            label=tuple(spec["label"]),
            exclude_columns=tuple(spec["exclude_columns"]),
            as_of=datetime.fromisoformat(spec["as_of"]) if spec["as_of"] else None,
            created_at=datetime.fromisoformat(spec["created_at"]),
            saved=True,
        )

    def list_training_sets(self) -> list[str]:
        """Ids of saved training sets, oldest first."""
        saved = self._meta.training_sets()
        return sorted(saved, key=lambda i: (saved[i][0] or datetime.min.replace(tzinfo=UTC), i))

    # -- helpers --------------------------------------------------------------------------------------------
    def _resolve(
        self, lk: FeatureLookup, labels: T.StructType, records: dict[str, TableRecord], when: datetime | None
    ) -> ResolvedLookup:
        name = _table_name(lk.table_name)
        if name not in records or not self._lake.exists(name):
            raise errors.FeatureTableNotFoundError(name, sorted(records))
        rec = records[name]
        version = self._version(name, when)
        schema = self._lake.schema(name, version=version)
        keys = rec.primary_keys + rec.timestamp_keys
        non_keys = [c for c in schema.names if c not in keys]
        features = list(lk.feature_names) if lk.feature_names is not None else non_keys
        missing = [f for f in features if f not in schema.names]
        if missing:
            raise errors.FeatureNotFoundError(name, missing, schema.names)
        key_features = [f for f in features if f in keys]
        if key_features:
            raise errors.FeatureNotFoundError(name, key_features, non_keys, what="non-key feature")
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
                name,
                lk.lookup_key,
                rec.primary_keys,
                f"column(s) {absent} are not in the labels DataFrame {labels.names}",
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
        ts_key = rec.timestamp_keys[0] if rec.timestamp_keys else None
        if ts_key is None and lk.timestamp_lookup_key is not None:
            raise ValueError(
                f"FeatureLookup({name!r}): timestamp_lookup_key={lk.timestamp_lookup_key!r} but the table has "
                "no timestamp key, so it has one row per key (latest values); remove timestamp_lookup_key"
            )
        if ts_key is not None:
            if lk.timestamp_lookup_key is None:
                raise ValueError(
                    f"FeatureLookup({name!r}) needs timestamp_lookup_key: the table has timestamp key {ts_key!r}, "
                    "and a join without the label's time would leak future values"
                )
            if lk.timestamp_lookup_key not in labels.names:
                raise ValueError(
                    f"timestamp_lookup_key {lk.timestamp_lookup_key!r} is not a column of the labels "
                    f"DataFrame: {labels.names}"
                )
            lt, ft = labels[lk.timestamp_lookup_key].dataType, schema[ts_key].dataType
            if not isinstance(lt, TIME_TYPES):
                raise errors.ColumnTypeError(
                    lk.timestamp_lookup_key,
                    lt.simpleString(),
                    "timestamp, timestamp_ntz or date",
                    "Convert it, e.g. F.to_timestamp(col) (strings) or F.timestamp_seconds(col) (epoch seconds).",
                )
            if not time_kinds_compatible(lt, ft):
                raise errors.ColumnTypeError(
                    lk.timestamp_lookup_key,
                    lt.simpleString(),
                    f"{ft.simpleString()} (the type of {name}.{ts_key})",
                    "A zoned and a zoneless timestamp name different instants; convert the label column "
                    "explicitly, e.g. F.to_utc_timestamp(col, 'Europe/Paris') or col.cast('timestamp_ntz').",
                )
        unknown_defaults = [k for k in lk.default_values if k not in features]
        if unknown_defaults:
            raise ValueError(f"default_values for {unknown_defaults}, which this lookup does not bring: {features}")
        unknown_renames = [k for k in lk.rename_outputs if k not in features]
        if unknown_renames:
            raise ValueError(f"rename_outputs for {unknown_renames}, which this lookup does not bring: {features}")
        for f, v in lk.default_values.items():
            _check_default(name, f, schema[f].dataType, v)
        return ResolvedLookup(
            table_name=name,
            version=version,
            lookup_key=tuple(lk.lookup_key),
            primary_keys=rec.primary_keys,
            timestamp_lookup_key=lk.timestamp_lookup_key if ts_key else None,
            timestamp_key=ts_key,
            features=tuple(features),
            outputs=tuple(lk.output_name(f) for f in features),
            lookback_us=None if lk.lookback_window is None else _us(lk.lookback_window),
            default_values={lk.output_name(f): v for f, v in lk.default_values.items() if v is not None},
        )

    def _version(self, name: str, when: datetime | None) -> int:
        if when is None:
            return self._lake.latest_version(name)
        try:
            return self._lake.version_at(name, when)
        except lh_errors.TimestampOutOfRangeError as exc:
            if not exc.after:
                raise errors.NotKnownAtError(name, when, exc.earliest) from None
        # After the last commit: the latest version is what was known (Delta's rule for RESTORE). Re-check
        # in case a commit landed between the two calls.
        for entry in self._lake.history(name, limit=3):
            if entry.timestamp <= when:
                return entry.version
        return self._lake.version_at(name, when)

    def _record(self, name: str) -> TableRecord:
        name = _table_name(name)
        records = self._meta.tables()
        if name not in records or not self._lake.exists(name):
            raise errors.FeatureTableNotFoundError(name, sorted(n for n in records))
        return records[name]

    def _new_feature_table_name(self, name: Any) -> str:
        """`name` checked as a table to become a feature table: never one of the lake's own tables (the feature
        store's metadata, MLflow's tracking tables), whether named or given by path."""
        name = _table_name(name)
        path = os.path.normpath(self._lake.table_path(name))
        for namespace in RESERVED_NAMESPACES:
            folder = os.path.normpath(os.path.join(self._lake.root, namespace))
            if path == folder or path.startswith(folder + os.sep):
                raise ValueError(
                    f"{name!r} is {path}, inside {folder}, which holds the lake's own "
                    f"{namespace}.* tables: a feature table must live elsewhere in the lake"
                )
        return name

    def _refuse_existing(self, name: str) -> None:
        if name in self._meta.tables() and self._lake.exists(name):
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=True)
        if self._lake.exists(name):
            raise errors.FeatureTableAlreadyExistsError(name, self._lake.table_path(name), registered=False)

    @contextmanager
    def _undo_on_error(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._lake.drop_table(name)  # the table without its keys would be no feature table
            raise

    def _check_key_columns(self, name: str, struct: T.StructType, pks: list[str], tks: list[str]) -> None:
        absent = [c for c in pks + tks if c not in struct.names]
        if absent:
            raise errors.FeatureNotFoundError(name, absent, struct.names, what="key column")
        if set(pks) & set(tks):
            raise ValueError(
                f"a column cannot be both a primary key and a timestamp key: {sorted(set(pks) & set(tks))}"
            )
        if len(tks) > 1:
            raise ValueError(f"timestamp_keys takes at most one column, got {tks}")
        for t in tks:
            dt = struct[t].dataType
            if not isinstance(dt, TIME_TYPES):
                raise errors.ColumnTypeError(
                    t,
                    dt.simpleString(),
                    "timestamp, timestamp_ntz or date",
                    "Convert it first, e.g. F.to_timestamp(col).",
                )
        if not [f for f in struct.names if f not in pks + tks]:
            raise ValueError(f"feature table {name!r} would have no feature columns besides its keys {pks + tks}")

    def _to_spark(self, df: Any) -> DataFrame:
        if isinstance(df, DataFrame):
            return df
        try:
            import pandas as pd
            import pyarrow as pa
        except ImportError:  # pragma: no cover
            pd = pa = None  # type: ignore[assignment]
        if (pd is not None and isinstance(df, pd.DataFrame)) or (pa is not None and isinstance(df, pa.Table)):
            return self.spark.createDataFrame(df)
        raise TypeError(
            f"df must be a Spark DataFrame (or a pandas DataFrame / pyarrow Table), got {type(df).__name__}"
        )


RESERVED_NAMESPACES = ("_feature_store", "mlflow")
"""Namespaces of the lake's own tables, which never become feature tables."""


def _table_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"name must be a non-empty table name such as 'customer_features', got {name!r}")
    if name.startswith("_feature_store"):
        raise ValueError(f"{name!r} is reserved for the feature store's own metadata")
    return name


def _tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(tags or {})
    for k, v in out.items():
        if not isinstance(k, str) or not k or not isinstance(v, str):
            raise TypeError(f"tags must map non-empty str keys to str values, got {k!r}: {v!r}")
    return out


def _fields(schema: T.StructType) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def _us(delta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _check_unique(table: str, df: DataFrame, keys: list[str]) -> None:
    """Refuse null keys and repeated keys in one aggregation job."""
    cols = [F.col(f"`{k}`") for k in keys]
    any_null = None
    for c in cols:
        any_null = c.isNull() if any_null is None else (any_null | c.isNull())
    bad = df.groupBy(*cols).count().where((F.col("count") > 1) | any_null).limit(50).collect()
    nulls = sorted({k for r in bad for k in keys if r[k] is None})
    if nulls:
        raise errors.NullKeyError(table, nulls)
    if bad:
        examples = [tuple(r[k] for k in keys) for r in bad[:_EXAMPLES]]
        raise errors.DuplicateKeyError(table, keys, examples, len(bad) if len(bad) < 50 else None)


def _refusing_null_keys(df: DataFrame, keys: list[str]) -> DataFrame:
    """`df` whose key columns fail the job that reads them at the first null, with a message naming the column.

    The merge reads its source once anyway (the lakehouse collects it to Arrow); checking nulls in that same
    pass saves a separate Spark job over the source (~0.4 s per 1M rows on local[2]).
    """
    return df.withColumns(
        {
            k: F.when(F.col(f"`{k}`").isNull(), F.raise_error(F.lit(_null_key_marker(k)))).otherwise(F.col(f"`{k}`"))
            for k in keys
        }
    )


def _null_key_marker(key: str) -> str:
    return f"feature_store: null in key column <{key}>"


def _check_outputs(label_columns: Sequence[str], resolved: Sequence[ResolvedLookup]) -> None:
    seen: dict[str, str] = {c: "the labels DataFrame" for c in label_columns}
    for r in resolved:
        for f, o in zip(r.features, r.outputs, strict=False):
            source = f"{r.table_name}.{f}"
            if o in seen:
                raise errors.OutputNameConflictError(o, [seen[o], source])
            if o.startswith("__fs_"):
                raise ValueError(f"output column {o!r}: names starting with '__fs_' are reserved")
            seen[o] = source
    for c in label_columns:
        if c.startswith("__fs_"):
            raise ValueError(f"labels column {c!r}: names starting with '__fs_' are reserved")


def _check_default(table: str, feature: str, dtype: T.DataType, value: Any) -> None:
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


__all__ = ["FeatureStoreClient"]
