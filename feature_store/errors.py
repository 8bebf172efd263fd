"""Typed errors raised by the feature store. Each keeps the facts it names as attributes::

    FeatureStoreError
    ├── ArgumentTypeError             (also TypeError)   an argument of the wrong type (or an empty name or list)
    ├── InvalidArgumentError          (also ValueError)  an argument or setting with a value the call cannot use
    ├── InvalidTableNameError         (also lakehouse's InvalidTableNameError, a ValueError)  a name that cannot
    │                                                    be a feature table (the lake's own tables, bad paths)
    ├── ColumnNotFoundError           (also ValueError)  a column an argument names that the DataFrame lacks
    ├── DeltaTableNotFoundError       (also lakehouse's TableNotFoundError, a KeyError)  register_table on a
    │                                                    name with no Delta table
    ├── FeatureTableNotFoundError     (also KeyError)    no feature table by that name
    ├── FeatureTableAlreadyExistsError                   create_table on an existing name
    ├── FeatureNotFoundError          (also ValueError)  a feature or key column the table does not have
    ├── LookupKeyError                (also ValueError)  lookup keys that do not line up with the table's keys
    ├── ColumnTypeError               (also TypeError)   a key or timestamp column of a type that cannot be joined
    ├── OutputNameConflictError       (also ValueError)  two training-set columns with one name
    ├── DuplicateKeyError                                input with the same primary key (+ timestamp) twice
    ├── NullKeyError                                     input with nulls in key columns
    ├── SchemaMismatchError           (also lakehouse's)  a write whose columns differ from the table's
    ├── NotKnownAtError                                  as_of before a table's first commit
    ├── TrainingSetNotFoundError      (also KeyError)    no saved training set with that id
    ├── ModelNotFoundError            (also KeyError)    a model URI MLflow cannot resolve
    ├── NotAFeatureStoreModelError    (also ValueError)  a model without a feature spec (not logged with log_model)
    ├── InvalidFeatureSpecError       (also ValueError)  a feature spec this version cannot read
    ├── MissingScoringColumnsError    (also ValueError)  score_batch input lacking columns the model needs
    ├── OnlineTableNotPublishedError  (also KeyError)    an online lookup of a table never published to that store
    ├── FeatureNotPublishedError      (also ValueError)  an online lookup of features the store does not hold
    ├── OnlineStoreUnavailableError   retryable          the online store cannot be reached (or refuses the login)
    ├── OnlinePublishConflictError    retryable          another publish changed the table's online rows meanwhile
    ├── FeatureTableInUseError                           drop_table of a table registered model versions read
    ├── TrainingSetMismatchError                         a re-created training set whose content hash differs
    ├── FeatureFunctionNotFoundError  (also KeyError)    a FeatureFunction naming no registered function
    └── InvalidFeatureFunctionError   (also ValueError)  a function that cannot be a feature function

The builtin base of each type is the one the same mistake raised before these types existed, so
`except ValueError` / `except TypeError` / `except KeyError` around a call keeps working.

Errors from `lakehouse` that carry their own facts (VersionNotFoundError, DataFilesMissingError,
TimestampOutOfRangeError, ConcurrentModificationError) are raised unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from lakehouse import errors as lh_errors

__all__ = [
    "ArgumentTypeError",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "DeltaTableNotFoundError",
    "DuplicateKeyError",
    "FeatureFunctionNotFoundError",
    "FeatureNotFoundError",
    "FeatureNotPublishedError",
    "FeatureStoreError",
    "FeatureTableAlreadyExistsError",
    "FeatureTableInUseError",
    "FeatureTableNotFoundError",
    "InvalidArgumentError",
    "InvalidFeatureFunctionError",
    "InvalidFeatureSpecError",
    "InvalidTableNameError",
    "LookupKeyError",
    "MissingScoringColumnsError",
    "ModelNotFoundError",
    "NotAFeatureStoreModelError",
    "NotKnownAtError",
    "NullKeyError",
    "OnlinePublishConflictError",
    "OnlineStoreUnavailableError",
    "OnlineTableNotPublishedError",
    "OutputNameConflictError",
    "SchemaMismatchError",
    "TrainingSetMismatchError",
    "TrainingSetNotFoundError",
]


def _list(items: Sequence[Any], limit: int = 20) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit]) or "none"
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


class FeatureStoreError(Exception):
    """Base class of every error raised by `feature_store`."""

    retryable: bool = False


class _KeyErrorText:
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])  # type: ignore[attr-defined]


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ArgumentTypeError(FeatureStoreError, TypeError):
    """An argument of a type the call does not take; `expected` says what it takes."""

    def __init__(self, argument: str, value: Any, expected: str) -> None:
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"{argument} must be {expected}, got {type(value).__name__} {_show(value)}")


class InvalidArgumentError(FeatureStoreError, ValueError):
    """An argument (or a Spark setting, named as `argument`) whose value the call cannot use.

    `problem` is the whole message: what is wrong with the value and what to pass instead.
    """

    def __init__(self, argument: str, value: Any, problem: str) -> None:
        self.argument = argument
        self.value = value
        self.problem = problem
        super().__init__(problem)


class InvalidTableNameError(FeatureStoreError, lh_errors.InvalidTableNameError):
    """A name that cannot be a feature table: not a valid lakehouse name, one of the lake's own tables, or a
    folder outside the lake root (an absolute path or URI elsewhere, or a symbolic link leading out)."""

    def __init__(self, name: object, reason: str, *, fix: str | None = None) -> None:
        self.name = name
        self.reason = reason
        fix = fix or (
            "Use dot-separated identifiers such as 'features.customers' (letters, digits, underscores), or an "
            "absolute path / URI inside the lake."
        )
        Exception.__init__(self, f"invalid feature table name {name!r}: {reason}. {fix}")


class ColumnNotFoundError(FeatureStoreError, ValueError):
    """Columns that an argument names and the DataFrame it refers to (`where`) does not have."""

    def __init__(self, argument: str, missing: Sequence[str], available: Sequence[str], where: str) -> None:
        self.argument = argument
        self.missing = list(missing)
        self.available = list(available)
        self.where = where
        super().__init__(
            f"{argument} column(s) {self.missing} are not in {where}; its columns: {_list(self.available, 50)}."
        )


class DeltaTableNotFoundError(FeatureStoreError, lh_errors.TableNotFoundError):
    """register_table on a name where no Delta table exists (also lakehouse's TableNotFoundError)."""

    def __init__(self, table: str, path: str, available: Sequence[str] = ()) -> None:
        self.table = table
        self.path = path
        self.available = list(available)
        Exception.__init__(
            self,
            f"no Delta table {table!r} to register: nothing at {path}. Tables under the root: "
            f"{_list(self.available)}. Create a feature table from a DataFrame with create_table() instead.",
        )


class FeatureTableNotFoundError(_KeyErrorText, FeatureStoreError, KeyError):
    def __init__(self, name: str, available: Sequence[str] = ()) -> None:
        self.name = name
        self.available = list(available)
        super().__init__(
            f"feature table {name!r} not found. Feature tables: {_list(self.available)}. "
            "Create it with FeatureStoreClient.create_table(), or register an existing Delta table with "
            "register_table()."
        )


class FeatureTableAlreadyExistsError(FeatureStoreError):
    def __init__(self, name: str, path: str, *, registered: bool) -> None:
        self.name = name
        self.path = path
        self.registered = registered
        what = "a feature table" if registered else "a Delta table that is not a feature table"
        fix = (
            "write to it with write_table(), or drop_table() it first"
            if registered
            else "register it with register_table(), or choose another name"
        )
        super().__init__(f"{name!r} already exists at {path} as {what}: {fix}.")


class FeatureNotFoundError(FeatureStoreError, ValueError):
    def __init__(self, table: str, missing: Sequence[str], available: Sequence[str], *, what: str = "feature") -> None:
        self.table = table
        self.missing = list(missing)
        self.available = list(available)
        super().__init__(
            f"{what}(s) {_list(self.missing)} not in feature table {table!r}; its columns: {_list(self.available, 50)}."
        )


class LookupKeyError(FeatureStoreError, ValueError):
    def __init__(self, table: str, lookup_key: Sequence[str], primary_keys: Sequence[str], reason: str) -> None:
        self.table = table
        self.lookup_key = list(lookup_key)
        self.primary_keys = list(primary_keys)
        self.reason = reason
        super().__init__(
            f"lookup_key {self.lookup_key} for feature table {table!r} (primary keys {self.primary_keys}): {reason}. "
            "Pass one label column per primary key, in the primary keys' order."
        )


class ColumnTypeError(FeatureStoreError, TypeError):
    def __init__(self, column: str, received: str, expected: str, fix: str) -> None:
        self.column = column
        self.received = received
        self.expected = expected
        super().__init__(f"column {column!r} is {received}, expected {expected}. {fix}")


class OutputNameConflictError(FeatureStoreError, ValueError):
    def __init__(self, name: str, sources: Sequence[str]) -> None:
        self.name = name
        self.sources = list(sources)
        super().__init__(
            f"training-set column {name!r} would come from {' and '.join(self.sources)}. "
            "Rename one with FeatureLookup(rename_outputs={...}) or drop it from the labels."
        )


class DuplicateKeyError(FeatureStoreError):
    def __init__(self, table: str, keys: Sequence[str], examples: Sequence[tuple[Any, ...]], count: int | None) -> None:
        self.table = table
        self.keys = list(keys)
        self.examples = list(examples)
        self.count = count
        shown = "; ".join(
            "(" + ", ".join(f"{k}={v!r}" for k, v in zip(self.keys, ex, strict=False)) + ")" for ex in self.examples
        )
        n = f"{count} key value(s)" if count is not None else "key values"
        super().__init__(
            f"the input for feature table {table!r} has {n} on ({', '.join(self.keys)}) that occur more than "
            f"once, e.g. {shown}. A feature table holds one row per key; nothing was written. Deduplicate the "
            "input first (e.g. keep the latest row per key)."
        )


class NullKeyError(FeatureStoreError):
    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = list(columns)
        super().__init__(
            f"the input for feature table {table!r} has nulls in key column(s) {', '.join(self.columns)}; keys "
            "must be non-null. Nothing was written. Filter or fill those rows first."
        )


class SchemaMismatchError(FeatureStoreError, lh_errors.SchemaMismatchError):
    """A write whose columns or types differ from the feature table (also a lakehouse SchemaMismatchError)."""

    def __init__(
        self,
        table: str,
        expected: Sequence[tuple[str, str]],
        received: Sequence[tuple[str, str]],
        problems: Sequence[str],
        *,
        hint: str = "pass schema_evolution=True to add new columns, or cast the DataFrame to the table's types",
    ) -> None:
        lh_errors.SchemaMismatchError.__init__(
            self, table, expected, received, problems, hint=hint, subject="feature table"
        )


class NotKnownAtError(FeatureStoreError):
    def __init__(self, table: str, as_of: datetime, first_commit: datetime) -> None:
        self.table = table
        self.as_of = as_of
        self.first_commit = first_commit
        super().__init__(
            f"feature table {table!r} did not exist at as_of={as_of.isoformat()}: its first commit is "
            f"{first_commit.isoformat()}. Use an as_of at or after it, or leave this table out of the lookups."
        )


class TrainingSetNotFoundError(_KeyErrorText, FeatureStoreError, KeyError):
    def __init__(self, training_set_id: str, available: Sequence[str] = ()) -> None:
        self.training_set_id = training_set_id
        self.available = list(available)
        super().__init__(
            f"no saved training set with id {training_set_id!r}. Saved training sets: {_list(self.available)}. "
            "Save one with FeatureStoreClient.save_training_set()."
        )


# -- feature-aware models: log_model, score_batch ---------------------------------------------------------------


class ModelNotFoundError(_KeyErrorText, FeatureStoreError, KeyError):
    """A model URI MLflow cannot resolve: no such run, path, registered model, version, stage or alias."""

    def __init__(self, model_uri: str, reason: str, tracking_uri: str) -> None:
        self.model_uri = model_uri
        self.reason = reason
        self.tracking_uri = tracking_uri
        super().__init__(
            f"model {model_uri!r} not found through MLflow's tracking URI {tracking_uri!r}: {reason}. Pass the URI of "
            "a model logged with FeatureStoreClient.log_model ('runs:/<run id>/<artifact path>', "
            "'models:/<name>/<version or stage>' or 'models:/<name>@<alias>'), with the tracking and registry URIs "
            "it was logged to set (mlflow.set_tracking_uri('lakehouse:///<root>'))."
        )


class NotAFeatureStoreModelError(FeatureStoreError, ValueError):
    """A model without `feature_spec.json`: it was not logged with `FeatureStoreClient.log_model`."""

    def __init__(self, model_uri: str, files: Sequence[str]) -> None:
        self.model_uri = model_uri
        self.files = list(files)
        super().__init__(
            f"model {model_uri!r} has no feature_spec.json (its files: {_list(self.files)}): it was not logged with "
            "FeatureStoreClient.log_model, so the features it takes are unknown. Log it with "
            "fs.log_model(model, artifact_path, flavor=mlflow.<flavor>, training_set=...), or score it without "
            "the feature store through mlflow.pyfunc.spark_udf."
        )


class InvalidFeatureSpecError(FeatureStoreError, ValueError):
    """A `feature_spec.json` this version of the feature store cannot read (malformed, or a newer format)."""

    def __init__(self, model_uri: str, reason: str) -> None:
        self.model_uri = model_uri
        self.reason = reason
        super().__init__(
            f"the feature spec of model {model_uri!r} cannot be read: {reason}. Score it with the lakehouse-ml "
            "version that logged it, or log the model again with FeatureStoreClient.log_model."
        )


class MissingScoringColumnsError(FeatureStoreError, ValueError):
    """Input to a feature-store model (score_batch's `df`, or the pyfunc's input) lacking columns it needs."""

    def __init__(self, model_uri: str, missing: Sequence[str], available: Sequence[str], needed_for: str) -> None:
        self.model_uri = model_uri
        self.missing = list(missing)
        self.available = list(available)
        self.needed_for = needed_for
        super().__init__(
            f"the input lacks column(s) {self.missing} that model {model_uri!r} needs {needed_for}. "
            f"Its columns: {_list(self.available, 50)}."
        )


class OnlineTableNotPublishedError(_KeyErrorText, FeatureStoreError, KeyError):
    """An online lookup of a feature table that was never published to the store asked (`store`)."""

    def __init__(self, table: str, store: str) -> None:
        self.table = table
        self.store = store
        super().__init__(
            f"feature table {table!r} has not been published to the online store {store}. Publish it first: "
            f"FeatureStoreClient.publish_table(name={table!r}, online_store=...) with this store."
        )


class FeatureNotPublishedError(FeatureStoreError, ValueError):
    """An online lookup of features that the store does not hold for the table (published with `features=`)."""

    def __init__(self, table: str, store: str, missing: Sequence[str], published: Sequence[str]) -> None:
        self.table = table
        self.store = store
        self.missing = list(missing)
        self.published = list(published)
        super().__init__(
            f"feature(s) {_list(self.missing)} of {table!r} are not in the online store {store}, which holds "
            f"{_list(self.published, 50)}. Publish them (publish_table(..., features=None) publishes every "
            "feature), or leave them out of the lookup's feature_names."
        )


class OnlineStoreUnavailableError(FeatureStoreError):
    """The online store (`store`) could not be reached or refused the connection; retrying may succeed."""

    retryable = True

    def __init__(self, store: str, reason: str, fix: str) -> None:
        self.store = store
        self.reason = reason
        super().__init__(f"online store {store} is unavailable: {reason.rstrip('. ')}. Nothing was written; {fix}.")


class OnlinePublishConflictError(FeatureStoreError):
    """Another publish changed `table`'s rows in `store` while this one was computed; nothing was written."""

    retryable = True

    def __init__(self, table: str, store: str) -> None:
        self.table = table
        self.store = store
        super().__init__(
            f"another publish of {table!r} to the online store {store} committed while this one was being "
            "computed; nothing was written. Call publish_table again: it starts from what that publish left."
        )


# -- lineage, reproduction, feature functions ---------------------------------------------------------------------


class FeatureTableInUseError(FeatureStoreError):
    """drop_table of a table that registered model versions read; `models` names them ('name/version')."""

    def __init__(self, table: str, models: Sequence[str]) -> None:
        self.table = table
        self.models = list(models)
        super().__init__(
            f"feature table {table!r} is used by registered model version(s) {_list(self.models)}; dropping it would "
            "leave them unable to score or to be reproduced. Delete or archive those versions first, or pass "
            "drop_table(..., force=True) to drop it anyway."
        )


class TrainingSetMismatchError(FeatureStoreError):
    """load_training_set(model_uri) re-created a DataFrame whose content hash differs from the recorded one."""

    def __init__(self, model_uri: str, recorded: str, computed: str, detail: str) -> None:
        self.model_uri = model_uri
        self.recorded = recorded
        self.computed = computed
        super().__init__(
            f"the training set re-created for model {model_uri!r} is not the one it was trained on: content hash "
            f"{computed} != {recorded} recorded at log_model ({detail}). A table version it read was rewritten in "
            "place (RESTORE does not do this; re-creating a table under the same name does)."
        )


class FeatureFunctionNotFoundError(_KeyErrorText, FeatureStoreError, KeyError):
    """A FeatureFunction naming a function that is not registered."""

    def __init__(self, name: str, available: Sequence[str] = ()) -> None:
        self.name = name
        self.available = list(available)
        super().__init__(
            f"no feature function {name!r}. Registered functions: {_list(self.available)}. Register it with "
            "FeatureStoreClient.create_feature_function(name=..., function=..., return_type=...)."
        )


class InvalidFeatureFunctionError(FeatureStoreError, ValueError):
    """A function that cannot be registered (or run) as a feature function; `reason` says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"feature function {name!r}: {reason}")
