"""FeatureEngineeringClient: the names and signatures of Databricks' current client (databricks-feature-engineering).

Databricks replaced `FeatureStoreClient` with `FeatureEngineeringClient`: the same operations, keyword-only, a table
named `name=` everywhere (not `table_name=`), the timestamp key given as `timeseries_columns=` and listed among the
primary keys, and `write_table` taking only mode "merge". This class keeps those signatures over the same
`FeatureStoreClient`, so code written for either client runs here with only its import changed; both see the same
tables, training sets and models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from mlflow.models.model import ModelInfo
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from lakehouse import Lakehouse

from . import errors
from ._client import FeatureStoreClient
from ._consistency import ConsistencyReport
from ._entities import FeatureTable
from ._lookup import FeatureLookup
from ._online import OnlineStoreSpec, PublishResult
from ._training_set import TrainingSet

MERGE = "merge"


class FeatureEngineeringClient:
    """Feature tables on Delta with point-in-time training sets; the API of Databricks' FeatureEngineeringClient.

    Takes the same `root` / `spark` / `lakehouse` arguments as `FeatureStoreClient` (Databricks' client finds
    its workspace itself; here the lakehouse root is `$LAKEHOUSE_ROOT` unless given). `fs_client` is the
    `FeatureStoreClient` underneath, for the calls only it has (`save_training_set`, `search_tables`, ...).

    Example:
        >>> fe = FeatureEngineeringClient(root="/tmp/lake")
        >>> fe.create_table(name="ml.recsys.user_features", primary_keys=["user_id", "ts"],
        ...                 timeseries_columns="ts", df=features_df)
        >>> fe.write_table(name="ml.recsys.user_features", df=updates_df)  # merge
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        spark: Any = None,
        lakehouse: Lakehouse | None = None,
        model_registry_uri: str | None = None,
    ) -> None:
        if model_registry_uri is not None:
            raise errors.InvalidArgumentError(
                "model_registry_uri",
                model_registry_uri,
                "models are logged and read through MLflow's active registry: call "
                "mlflow.set_registry_uri(...) (e.g. 'lakehouse:///path') instead",
            )
        self.fs_client = FeatureStoreClient(root, spark=spark, lakehouse=lakehouse)

    def __repr__(self) -> str:
        return f"FeatureEngineeringClient(root={self.fs_client.lakehouse.root!r})"

    # -- tables ------------------------------------------------------------------------------------------------
    def create_table(
        self,
        *,
        name: str,
        primary_keys: str | Sequence[str],
        df: Any = None,
        timeseries_columns: str | Sequence[str] | None = None,
        partition_columns: str | Sequence[str] | None = None,
        schema: T.StructType | str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> FeatureTable:
        """Create a feature table; a `timeseries_columns` column must also be one of `primary_keys` (Databricks'
        rule; `timestamp_keys=` is accepted for it, as Databricks' client does).

        Raises what `FeatureStoreClient.create_table` raises, and InvalidArgumentError for a timeseries column
        missing from `primary_keys` or an unknown keyword."""
        if timeseries_columns is None and "timestamp_keys" in kwargs:
            timeseries_columns = kwargs.pop("timestamp_keys")
        if kwargs:
            raise errors.InvalidArgumentError(
                sorted(kwargs)[0], kwargs[sorted(kwargs)[0]], "not an argument of FeatureEngineeringClient.create_table"
            )
        series = [timeseries_columns] if isinstance(timeseries_columns, str) else list(timeseries_columns or [])
        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        for column in series:
            if column not in keys:
                raise errors.InvalidArgumentError(
                    "timeseries_columns",
                    timeseries_columns,
                    f"timeseries column {column!r} is not in primary_keys {keys}: timeseries columns must be "
                    "primary keys",
                )
        return self.fs_client.create_table(
            name,
            primary_keys,
            df,
            timestamp_keys=timeseries_columns,
            schema=schema,
            partition_columns=partition_columns,
            description=description,
            tags=tags,
        )

    def write_table(self, *, name: str, df: Any, mode: str = MERGE) -> int:
        """Upsert `df` into the table by its keys, in one commit; return the version committed. Only "merge":
        to overwrite, drop and re-create the table (as Databricks' client says), or use
        `fs_client.write_table(..., mode="overwrite")`."""
        if mode != MERGE:
            raise errors.InvalidArgumentError(
                "mode",
                mode,
                "FeatureEngineeringClient.write_table supports only 'merge'; to overwrite, drop and re-create the "
                "table or call fs_client.write_table(name, df, mode='overwrite')",
            )
        return self.fs_client.write_table(name, df, "merge")

    def read_table(self, *, name: str, **kwargs: Any) -> DataFrame:
        """The table's rows (latest; `version=` or `as_of_delta_timestamp=` for time travel)."""
        return self.fs_client.read_table(name, **kwargs)

    def get_table(self, *, name: str) -> FeatureTable:
        """Keys, features and their types, description, tags, path, latest version, users of a table."""
        return self.fs_client.get_table(name)

    def drop_table(self, *, name: str, force: bool = False) -> None:
        """Delete a feature table, its history and its tags; refused while registered model versions read it,
        unless `force=True`."""
        self.fs_client.drop_table(name, force=force)

    def set_feature_table_tag(self, *, name: str, key: str, value: str) -> None:
        """Set (or replace) one tag on a feature table."""
        self.fs_client.set_feature_table_tag(table_name=name, key=key, value=value)

    def delete_feature_table_tag(self, *, name: str, key: str) -> None:
        """Remove a tag; removing a tag that is not set is a no-op."""
        self.fs_client.delete_feature_table_tag(table_name=name, key=key)

    # -- training sets ---------------------------------------------------------------------------------------
    def create_training_set(
        self,
        *,
        df: Any,
        feature_lookups: Sequence[FeatureLookup],
        label: str | Sequence[str] | None,
        exclude_columns: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> TrainingSet:
        """Pin every lookup to a table version and return a TrainingSet (`as_of=` as in FeatureStoreClient)."""
        return self.fs_client.create_training_set(df, feature_lookups, label, exclude_columns=exclude_columns, **kwargs)

    # -- models ------------------------------------------------------------------------------------------------
    def log_model(
        self,
        *,
        model: Any,
        artifact_path: str,
        flavor: ModuleType,
        training_set: TrainingSet | None = None,
        registered_model_name: str | None = None,
        **kwargs: Any,
    ) -> ModelInfo:
        """Log `model` with its training set's feature spec (`FeatureStoreClient.log_model`). A model logged
        without a training set has no features to look up: use `flavor.log_model` for it."""
        if training_set is None:
            raise errors.InvalidArgumentError(
                "training_set",
                training_set,
                "log_model packages a model with the features of its training set: pass training_set= (the "
                "TrainingSet whose load_df() trained it), or log a model without features with flavor.log_model",
            )
        kwargs.pop("await_registration_for", None)  # registration here is synchronous
        return self.fs_client.log_model(
            model,
            artifact_path,
            flavor=flavor,
            training_set=training_set,
            registered_model_name=registered_model_name,
            **kwargs,
        )

    def score_batch(self, *, model_uri: str, df: Any, result_type: str | T.DataType = "double") -> DataFrame:
        """`df` with the model's features looked up and its `prediction` (`FeatureStoreClient.score_batch`)."""
        return self.fs_client.score_batch(model_uri, df, result_type)

    # -- online store ----------------------------------------------------------------------------------------
    def publish_table(
        self,
        *,
        name: str,
        online_store: OnlineStoreSpec | None = None,
        filter_condition: str | None = None,
        mode: str = MERGE,
        streaming: bool = False,
        checkpoint_location: str | None = None,
        trigger: Mapping[str, Any] | None = None,
        features: str | Sequence[str] | None = None,
    ) -> PublishResult:
        """Publish the table's latest value per key to `online_store` (`FeatureStoreClient.publish_table`; mode
        "merge" only, as in Databricks)."""
        if mode != MERGE:
            raise errors.InvalidArgumentError(
                "mode", mode, "FeatureEngineeringClient.publish_table supports only 'merge' (Databricks' rule)"
            )
        if checkpoint_location is not None or trigger is not None:
            raise errors.InvalidArgumentError(
                "checkpoint_location" if checkpoint_location is not None else "trigger",
                checkpoint_location if checkpoint_location is not None else trigger,
                "streaming publishes are not supported (so neither checkpoint_location= nor trigger=): publish "
                "after each write instead",
            )
        return self.fs_client.publish_table(
            name, online_store, filter_condition=filter_condition, streaming=streaming, features=features
        )

    def get_online_features(
        self, *, feature_lookups: str | Sequence[FeatureLookup], keys: Any, online_store: OnlineStoreSpec | None = None
    ) -> Any:
        """Feature vectors for `keys` from the online store (`FeatureStoreClient.get_online_features`)."""
        return self.fs_client.get_online_features(feature_lookups, keys, online_store=online_store)

    def create_feature_function(
        self,
        *,
        name: str,
        function: Callable[..., Any],
        return_type: str,
        description: str | None = None,
        replace: bool = False,
    ) -> None:
        """Register a Python function for `FeatureFunction(udf_name=name, ...)`
        (`FeatureStoreClient.create_feature_function`; Databricks registers it with SQL CREATE FUNCTION)."""
        self.fs_client.create_feature_function(
            name=name, function=function, return_type=return_type, description=description, replace=replace
        )

    def check_consistency(
        self, *, model_uri: str, sample: int = 1000, online_store: OnlineStoreSpec | None = None, seed: int = 0
    ) -> ConsistencyReport:
        """Online rows against offline ones for a sample of keys (`FeatureStoreClient.check_consistency`)."""
        return self.fs_client.check_consistency(model_uri, sample, online_store=online_store, seed=seed)


__all__ = ["FeatureEngineeringClient"]
