"""FeatureStoreClient: Databricks' feature-store API over `lakehouse` Delta tables.

The one public face of the feature store's operations. Each method documents the call and delegates: tables
to `_tables`, writes to `_writes`, training sets to `_resolve` (building) and `_saved_training_sets`
(persistence); the argument checks they share live in `_validation`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, Literal

from mlflow.models.model import ModelInfo
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from lakehouse import Lakehouse, settings

from . import _consistency, _functions, _models, _online, _writes, errors
from . import _saved_training_sets as saved
from . import _validation as check
from ._consistency import ConsistencyReport
from ._entities import FeatureTable
from ._lookup import FeatureLookup
from ._metadata import MetadataStore
from ._online import OnlineStoreSpec, PublishResult, SqliteOnlineStore
from ._resolve import plan_training_set
from ._tables import FeatureTables
from ._training_set import TrainingSet


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
        if lakehouse is not None:
            if root is not None or spark is not None:
                raise errors.InvalidArgumentError(
                    "lakehouse", lakehouse, "pass either lakehouse= or root=/spark=, not both"
                )
            if not isinstance(lakehouse, Lakehouse):
                raise errors.ArgumentTypeError("lakehouse", lakehouse, "a lakehouse.Lakehouse or None")
            self._lake = lakehouse
        else:
            if root is not None and not isinstance(root, (str, os.PathLike)):
                raise errors.ArgumentTypeError("root", root, "a path (str or os.PathLike) or None")
            if spark is not None and not _is_spark_session(spark):
                raise errors.ArgumentTypeError("spark", spark, "a SparkSession or None")
            if root is not None:
                _check_root(root)
            if root is None and settings().root is None:
                raise errors.InvalidArgumentError(
                    "root", root, "no lakehouse root: pass FeatureStoreClient(root=...) or set $LAKEHOUSE_ROOT"
                )
            self._lake = Lakehouse(root, spark=spark)
        self._meta = MetadataStore(self._lake)
        self._tables = FeatureTables(self._lake, self._meta)

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
        must be unique and non-null in `df`; every other column is a feature. The timestamp key may also be
        listed in `primary_keys`, as Databricks' Unity Catalog tables have it: the same table.

        Raises:
            FeatureTableAlreadyExistsError, DuplicateKeyError, NullKeyError (nothing is written),
            FeatureNotFoundError (a key column missing), ColumnTypeError (timestamp key type),
            InvalidTableNameError, ArgumentTypeError / InvalidArgumentError / ColumnNotFoundError for
            malformed arguments.
        """
        return self._tables.create(
            name,
            primary_keys,
            df,
            timestamp_keys=timestamp_keys,
            schema=schema,
            partition_columns=partition_columns,
            description=description,
            tags=tags,
        )

    def register_table(
        self,
        *,
        delta_table: str,
        primary_keys: str | Sequence[str],
        timestamp_keys: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> FeatureTable:
        """Make an existing lakehouse Delta table a feature table (its keys are checked for uniqueness).

        Raises:
            DeltaTableNotFoundError, FeatureTableAlreadyExistsError, DuplicateKeyError, NullKeyError,
            FeatureNotFoundError, ColumnTypeError, InvalidTableNameError, ArgumentTypeError / InvalidArgumentError.
        """
        return self._tables.register(delta_table, primary_keys, timestamp_keys, tags)

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
            written), InvalidArgumentError for an unknown mode, ArgumentTypeError for a `df` or flag of
            the wrong type.
        """
        return _writes.write(self._lake, self._tables.record(name), df, mode, schema_evolution)

    def read_table(
        self,
        name: str,
        *,
        version: int | None = None,
        as_of_delta_timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """The table's rows: latest, at `version`, or as of a UTC timestamp (naive = UTC), Delta's rules.

        Raises FeatureTableNotFoundError, ArgumentTypeError / InvalidArgumentError for a malformed or
        doubly given version or timestamp, and lakehouse's VersionNotFoundError / TimestampOutOfRangeError.
        """
        rec = self._tables.record(name)
        version = check.version(version)
        when = (
            None if as_of_delta_timestamp is None else check.utc_instant(as_of_delta_timestamp, "as_of_delta_timestamp")
        )
        if version is not None and when is not None:
            raise errors.InvalidArgumentError(
                "version", version, "pass either version= or as_of_delta_timestamp=, not both"
            )
        return self._lake.read(rec.name, version=version, timestamp=when)

    def get_table(self, name: str) -> FeatureTable:
        """Keys, features and their types, description, tags, path, latest version, users of a table."""
        return self._tables.describe(name)

    def list_tables(self) -> list[FeatureTable]:
        """Every feature table, sorted by name."""
        return self._tables.search(None, None)

    def search_tables(
        self, text: str | None = None, *, tags: Mapping[str, str | None] | None = None
    ) -> list[FeatureTable]:
        """Feature tables whose name, description or a feature name contains `text` (case-insensitive) and
        that carry every tag in `tags` (a value of None matches any value), sorted by name."""
        return self._tables.search(text, tags)

    def drop_table(self, name: str, *, force: bool = False) -> None:
        """Delete a feature table, its history and its tags. Saved training sets that read it can no longer
        be loaded (they raise the lakehouse's TableNotFoundError). Irreversible.

        Refused (FeatureTableInUseError, naming them) while registered model versions read the table, unless
        `force=True`."""
        self._tables.drop(name, force=force)

    def set_feature_table_tag(self, *, table_name: str, key: str, value: str) -> None:
        """Set (or replace) one tag on a feature table."""
        self._tables.set_tag(table_name, key, value)

    def delete_feature_table_tag(self, *, table_name: str, key: str) -> None:
        """Remove a tag; removing a tag that is not set is a no-op."""
        self._tables.delete_tag(table_name, key)

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
            OutputNameConflictError, NotKnownAtError, ColumnNotFoundError, ArgumentTypeError /
            InvalidArgumentError for malformed arguments.
        """
        labels = check.to_spark(self._lake, df)
        repeated = sorted({c for c in labels.columns if labels.columns.count(c) > 1})
        if repeated:
            raise errors.InvalidArgumentError(
                "df", repeated, f"the labels have column(s) {repeated} more than once; rename or drop the copies"
            )
        return plan_training_set(
            self._lake,
            self._meta.tables(),
            labels,
            feature_lookups,
            label,
            exclude_columns,
            as_of,
            self._meta.functions,
        )

    # -- feature functions ----------------------------------------------------------------------------------
    def create_feature_function(
        self,
        *,
        name: str,
        function: Callable[..., Any],
        return_type: str,
        description: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register `function` as the feature function `name`, for `FeatureFunction(udf_name=name, ...)` in
        `create_training_set` (Databricks' `CREATE FUNCTION ... LANGUAGE PYTHON`).

        Its source is recorded (here and in every model trained with it), so it must stand alone: builtins and
        modules imported inside its body only, no closure, no decorator. It is called once per row with Python
        values by keyword, offline on the executors and online on the request; `return_type` is one of double,
        float, bigint/long, int, string, boolean.

        Raises ArgumentTypeError, InvalidFeatureFunctionError (a function whose source does not stand alone),
        InvalidArgumentError (an unknown return type; the name taken, without `replace=True`).
        """
        _functions.register(self._meta, name, function, return_type, description, replace)

    def list_feature_functions(self) -> list[str]:
        """Names of the registered feature functions, sorted."""
        return sorted(self._meta.functions())

    def delete_feature_function(self, name: str) -> None:
        """Unregister a feature function. Models trained with it keep its source and still score."""
        if name not in self._meta.functions():
            raise errors.FeatureFunctionNotFoundError(name, self.list_feature_functions())
        self._meta.delete_function(name)

    def save_training_set(self, training_set: TrainingSet) -> str:
        """Persist a training set (its labels as a Delta snapshot, and its spec) and return its id.

        `load_training_set(id).load_df()` then returns the same rows, whatever is written to the feature
        tables or to the labels' source afterwards. Saving twice is a no-op.
        """
        return saved.save(self._lake, self._meta, training_set)

    def load_training_set(self, training_set_id: str) -> TrainingSet:
        """Re-create a saved training set by id, or the one a model was trained on by its URI (`runs:/...`,
        `models:/...`): same labels, same lookups, same table versions.

        For a model logged with `log_model`, its DataFrame is re-created once here and checked against the
        content hash recorded at training time, so `load_df()` then returns the rows the model was trained on.

        Raises:
            TrainingSetNotFoundError (naming the saved ids), ArgumentTypeError for a non-str argument;
            for a model URI also ModelNotFoundError, NotAFeatureStoreModelError, TrainingSetMismatchError, and
            the lakehouse's DataFilesMissingError naming the table and version VACUUM removed.
        """
        if isinstance(training_set_id, str) and ":/" in training_set_id:
            return _models.load_training_set(self._lake, self._meta, training_set_id)
        return saved.load(self._lake, self._meta, training_set_id)

    def list_training_sets(self) -> list[str]:
        """Ids of saved training sets, oldest first."""
        return saved.ids(self._meta)

    # -- models ---------------------------------------------------------------------------------------------
    def log_model(
        self,
        model: Any,
        artifact_path: str,
        *,
        flavor: ModuleType,
        training_set: TrainingSet,
        registered_model_name: str | None = None,
        **kwargs: Any,
    ) -> ModelInfo:
        """Log `model` (saved with `flavor`, any MLflow flavor with a pyfunc) as an MLflow model that carries its
        training set's feature spec (lookups, renames, defaults, input columns, the Delta versions read), through
        the active MLflow tracking URI (`lakehouse:///...` or any other), in the active run or a new one;
        `registered_model_name` also registers a version. `kwargs` go to `flavor.save_model`.

        Raises ArgumentTypeError / InvalidArgumentError for a flavor without a pyfunc or malformed arguments.
        """
        return _models.log_model(
            self._lake,
            self._meta,
            model,
            artifact_path,
            flavor=flavor,
            training_set=training_set,
            registered_model_name=registered_model_name,
            **kwargs,
        )

    def score_batch(self, model_uri: str, df: Any, result_type: str | T.DataType = "double") -> DataFrame:
        """`df` (the lookup keys, and timestamps for point-in-time lookups) with the features the model was
        trained with joined from the feature tables' latest versions, point-in-time correct, then `prediction`,
        computed on the executors. A feature `df` already has (by its output name) is used instead of the
        lookup. `model_uri`: `models:/name/<version or stage>`, `models:/name@alias`, `runs:/<id>/<path>`.

        Raises ModelNotFoundError, NotAFeatureStoreModelError, MissingScoringColumnsError, ColumnTypeError,
        FeatureTableNotFoundError, ArgumentTypeError / InvalidArgumentError.
        """
        return _models.score_batch(self._lake, self._meta.tables(), model_uri, df, result_type)

    # -- online store ---------------------------------------------------------------------------------------
    def publish_table(
        self,
        name: str,
        online_store: OnlineStoreSpec | None = None,
        *,
        mode: Literal["merge", "overwrite"] = "merge",
        features: str | Sequence[str] | None = None,
        filter_condition: str | None = None,
        streaming: bool = False,
    ) -> PublishResult:
        """Copy the latest row per primary key (for a time-series table, the row with the latest timestamp) of
        the table's latest version to `online_store` (default: `SqliteOnlineStore()`, a file in the lake).

        "merge" writes only the keys changed since the version published last to that store (the first time,
        every key) and deletes online the keys gone from the table; "overwrite" copies every key and replaces
        what the store held. Each publish is recorded (`_feature_store.online_publishes`). `features` (default
        every feature) are the columns published. `filter_condition` and `streaming` are Databricks' arguments
        this store does not take: passing them is refused, naming them.

        Raises:
            FeatureTableNotFoundError, FeatureNotFoundError, OnlineStoreUnavailableError (retryable),
            OnlinePublishConflictError (a concurrent publish; retryable), InvalidArgumentError /
            ArgumentTypeError for malformed arguments. Nothing is written when one is raised.
        """
        if filter_condition is not None:
            raise errors.InvalidArgumentError(
                "filter_condition",
                filter_condition,
                "filter_condition= (publishing a filtered subset) is not supported: the online store holds every "
                "key of the table (write the subset to its own feature table and publish that)",
            )
        if streaming is not False:
            raise errors.InvalidArgumentError(
                "streaming", streaming, "streaming=True is not supported: publish after each write instead"
            )
        store = SqliteOnlineStore() if online_store is None else online_store
        return _online.publish_table(self._lake, self._meta, name, store, mode=mode, features=features)

    def get_online_features(
        self,
        feature_lookups: str | Sequence[FeatureLookup],
        keys: Any,
        *,
        online_store: OnlineStoreSpec | None = None,
    ) -> Any:
        """A pandas DataFrame: the rows of `keys` (a pandas DataFrame or a list of dicts holding every lookup's
        `lookup_key` columns) with each lookup's features from `online_store` (default `SqliteOnlineStore()`),
        renamed and defaulted as a training set does; a key the store lacks gives null, then the default. One
        batched read per lookup, whatever the number of keys. `feature_lookups` may be a model URI instead: the
        lookups of a model logged with `log_model`.

        Raises:
            OnlineTableNotPublishedError, FeatureNotPublishedError, LookupKeyError, ColumnTypeError,
            OnlineStoreUnavailableError (retryable), ArgumentTypeError / InvalidArgumentError.
        """
        store = SqliteOnlineStore() if online_store is None else online_store
        if not isinstance(feature_lookups, str):
            return _online.get_online_features(self._lake, self._meta, store, feature_lookups, keys)
        spec = _models.load_feature_spec(feature_lookups)
        found = _online.get_online_features(self._lake, self._meta, store, _models.feature_lookups(spec), keys)
        # the model's feature functions whose inputs are at hand (the keys may carry the request columns)
        return _functions.compute_pandas(
            [f for f in spec.functions if all(c in found.columns for c in f.inputs)], found
        )

    def check_consistency(
        self, model_uri: str, sample: int = 1000, *, online_store: OnlineStoreSpec | None = None, seed: int = 0
    ) -> ConsistencyReport:
        """Training/serving skew, checked: for up to `sample` random keys of each feature table the model reads,
        the online row against the offline latest row at the version the store holds (read with Spark), every
        feature the model takes compared value by value. `online_store` None: each table's last-published store.

        Returns a ConsistencyReport (`ok`, `mismatches`, per table the version held and whether it is stale).

        Raises ModelNotFoundError, NotAFeatureStoreModelError, FeatureTableNotFoundError,
        OnlineTableNotPublishedError, FeatureNotPublishedError, OnlineStoreUnavailableError, ArgumentTypeError.
        """
        spec = _models.load_feature_spec(model_uri)
        return _consistency.check_consistency(self._lake, self._meta, spec, model_uri, sample, online_store, seed)


__all__ = ["FeatureStoreClient"]


def _check_root(root: str | os.PathLike[str]) -> None:
    """Refuse a root that can name no lake folder: empty, a NUL byte, or an existing file (not a folder)."""
    text = os.fspath(root)
    if not str(text).strip():
        raise errors.InvalidArgumentError("root", root, "root is empty: pass the lake's folder or URI")
    if "\x00" in str(text):
        raise errors.InvalidArgumentError("root", root, "root holds a NUL character: pass the lake's folder or URI")
    if "://" not in str(text) and os.path.exists(text) and not os.path.isdir(text):
        raise errors.InvalidArgumentError(
            "root", root, f"root {text} is a file, not a folder: pass the lake's folder (it is created if missing)"
        )


def _is_spark_session(obj: object) -> bool:
    """A classic SparkSession or a Spark Connect one (a separate class, importable only with grpc installed)."""
    if isinstance(obj, SparkSession):
        return True
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:
        return False
    return isinstance(obj, ConnectSession)
