"""Feature-aware models: `log_model` packages a model with the feature spec of its training set, `score_batch`
joins the same features onto a DataFrame of keys and predicts on the executors (Databricks' pair of calls).

The logged model is an MLflow pyfunc (`FeatureStoreModel`) holding two artifacts: the user's model saved with
its own flavor (`artifacts/raw_model`, loaded back with `mlflow.pyfunc.load_model`) and `artifacts/
feature_spec.json` (`_feature_spec.FeatureSpec`). Called directly (`mlflow.pyfunc.load_model(uri).predict`,
`mlflow models serve`) it takes the features as columns; `score_batch` looks them up first. It is logged through
whichever tracking URI is active (`lakehouse:///<root>` or any other), and requires this distribution
(`lakehouse-ml==<version>`) besides the flavor's own requirements, since its class lives here.

`score_batch` reuses the training set's join: the spec's lookups become `FeatureLookup`s planned against the
tables' latest versions (`_resolve.plan_training_set`), so scoring is point-in-time correct exactly as training
was, and every check of `create_training_set` (tables, features, key types) applies to the scoring input.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel
from pyspark.errors import ParseException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import Lakehouse
from lakehouse import __version__ as lakehouse_version

from . import _validation as check
from . import errors
from ._feature_spec import SPEC_FILE, FeatureSpec
from ._lookup import FeatureLookup
from ._resolve import plan_training_set
from ._training_set import ResolvedLookup, TrainingSet

if TYPE_CHECKING:
    from ._metadata import TableRecord

PREDICTION = "prediction"
DISTRIBUTION = "lakehouse-ml"
_RAW = "raw_model"
_SPEC = "feature_spec"
SPEC_PATH = f"artifacts/{SPEC_FILE}"
"""Where the spec is inside a model logged with `log_model` (pyfunc copies its artifacts under artifacts/)."""


class FeatureStoreModel(PythonModel):
    """The pyfunc `log_model` logs: the user's model, called with the feature spec's input columns in order.

    Input is a pandas DataFrame holding at least those columns (others are ignored); the output is the
    wrapped model's. Loading needs the flavor's packages and this distribution.
    """

    def load_context(self, context: Any) -> None:
        spec_path = context.artifacts[_SPEC]
        with open(spec_path, encoding="utf-8") as f:
            self._spec = FeatureSpec.from_json(f.read(), spec_path)
        self._model = mlflow.pyfunc.load_model(context.artifacts[_RAW])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        inputs = list(self._spec.input_columns)
        missing = [c for c in inputs if c not in model_input.columns]
        if missing:
            raise errors.MissingScoringColumnsError(
                f"training set {self._spec.training_set_id}",
                missing,
                [str(c) for c in model_input.columns],
                "as inputs (the training set's columns less the label, in order); to look the features up from "
                "the feature tables instead, score with FeatureStoreClient.score_batch",
            )
        return self._model.predict(model_input[inputs], params=params)


def log_model(
    lake: Lakehouse,
    model: Any,
    artifact_path: str,
    *,
    flavor: ModuleType,
    training_set: TrainingSet,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log `model` as a pyfunc that carries the feature spec of `training_set`, in the active MLflow run (one is
    started and ended here if none is active); `registered_model_name` also registers it as a new version.

    `model` is saved with `flavor.save_model(model, path=..., **kwargs)` (any MLflow flavor with a pyfunc:
    mlflow.sklearn, mlflow.xgboost, ...; `kwargs` such as `signature` or `pip_requirements` go to it). The model's
    pip requirements are the flavor's plus `lakehouse-ml==<this version>`. Reads no feature rows.

    Returns MLflow's ModelInfo (`model_uri`, `run_id`, `registered_model_version`, ...).

    Raises:
        ArgumentTypeError / InvalidArgumentError: a malformed argument, or a flavor whose saved model has no pyfunc.

    Example:
        >>> info = fs.log_model(model, "model", flavor=mlflow.sklearn, training_set=ts,
        ...                     registered_model_name="churn")
        >>> fs.score_batch("models:/churn/1", keys_df)
    """
    if not isinstance(lake, Lakehouse):
        raise errors.ArgumentTypeError("lake", lake, "a lakehouse.Lakehouse")
    if not isinstance(artifact_path, str) or not artifact_path.strip("/"):
        raise errors.ArgumentTypeError("artifact_path", artifact_path, "a non-empty str such as 'model'")
    if not isinstance(flavor, ModuleType) or not callable(getattr(flavor, "save_model", None)):
        raise errors.ArgumentTypeError("flavor", flavor, "an MLflow flavor module with save_model, e.g. mlflow.sklearn")
    if not isinstance(training_set, TrainingSet):
        raise errors.ArgumentTypeError("training_set", training_set, "a TrainingSet from create_training_set")
    registered_model_name = check.optional_str(registered_model_name, "registered_model_name")
    spec = FeatureSpec.of(training_set, lake.root)
    with tempfile.TemporaryDirectory(prefix="fs-log-model-") as tmp:
        raw = os.path.join(tmp, _RAW)
        flavor.save_model(model, path=raw, **kwargs)
        if "python_function" not in Model.load(raw).flavors:
            raise errors.InvalidArgumentError(
                "flavor",
                flavor.__name__,
                f"{flavor.__name__} saved a model without a python_function (pyfunc) flavor, which score_batch "
                "needs to call it; use a flavor that has one (mlflow.sklearn, mlflow.xgboost, mlflow.pytorch, ...)",
            )
        spec_path = os.path.join(tmp, SPEC_FILE)
        with open(spec_path, "w", encoding="utf-8") as f:
            f.write(spec.to_json())
        run = mlflow.start_run() if mlflow.active_run() is None else contextlib.nullcontext()
        with run:
            return mlflow.pyfunc.log_model(
                name=artifact_path.strip("/"),
                python_model=FeatureStoreModel(),
                artifacts={_RAW: raw, _SPEC: spec_path},
                pip_requirements=_requirements(raw),
                registered_model_name=registered_model_name,
                metadata={"feature_store": {"spec": SPEC_PATH, "training_set_id": training_set.id}},
            )


def score_batch(
    lake: Lakehouse,
    records: dict[str, TableRecord],
    model_uri: str,
    df: Any,
    result_type: str | T.DataType = "double",
) -> DataFrame:
    """`df` with the model's features looked up from the feature tables' latest versions and its prediction.

    `df` holds the lookup keys (and, for tables with a timestamp key, the `timestamp_lookup_key` columns: each row
    gets the latest feature row at or before that time, as in training) plus any other columns. A feature `df`
    already has as a column (by its output name) is used as given and not looked up. Tables are found by name in
    `lake` (the spec's `lakehouse_root` records where the model was trained). The join is the training set's
    (`TrainingSet.load_df`: in the driver when `df` and the feature rows are small, else distributed); the
    prediction runs on the executors (`mlflow.pyfunc.spark_udf`), never collected to the driver. The result:
    `df`'s columns, then the features looked up, then `prediction` of `result_type` (a Spark type or its DDL name).

    Args:
        lake, records: the client's lakehouse and its feature tables' records (`MetadataStore.tables()`).
        model_uri: 'runs:/<run id>/<path>', 'models:/<name>/<version or stage>', 'models:/<name>@<alias>', or any
            other MLflow model URI, read once (a stage or alias moved later does not change this result).

    Raises:
        ModelNotFoundError, NotAFeatureStoreModelError, InvalidFeatureSpecError: the model cannot be used.
        MissingScoringColumnsError: `df` lacks a lookup key, a timestamp lookup key or another input column.
        ColumnTypeError: a key column whose type cannot be compared with the table's key.
        FeatureTableNotFoundError / FeatureNotFoundError: a table or feature the model needs is gone.
        ArgumentTypeError / InvalidArgumentError: a malformed argument, or `df` already has a `prediction`.
    """
    uri = _model_uri(model_uri)
    result_type = _result_type(result_type)
    labels = check.to_spark(lake, df)
    if PREDICTION in labels.columns:
        raise errors.InvalidArgumentError(
            "df",
            labels.columns,
            f"df already has a column {PREDICTION!r}, where the prediction goes; rename or drop it",
        )
    with tempfile.TemporaryDirectory(prefix="fs-score-") as tmp:
        local = _download(uri, "", tmp)
        spec = _read_spec(uri, local)
        joined, brought = _with_features(lake, records, spec, labels, uri)
        # spark_udf copies the model into a directory of its own (local mode) or ships it to the executors.
        try:
            predict = mlflow.pyfunc.spark_udf(lake.spark, local, result_type=result_type, env_manager="local")
        except MlflowException as exc:
            raise errors.InvalidArgumentError("result_type", result_type, f"spark_udf refused it: {exc}") from None
    inputs = F.struct(*[F.col(f"`{c}`").alias(c) for c in spec.input_columns])
    keep = [F.col(f"`{c}`") for c in [*labels.columns, *brought]]
    return joined.select(*keep, predict(inputs).alias(PREDICTION))


def _result_type(value: Any) -> T.DataType:
    if isinstance(value, T.DataType):
        return value
    if not isinstance(value, str):
        raise errors.ArgumentTypeError("result_type", value, "a Spark DataType or its name, e.g. 'double'")
    try:
        return T._parse_datatype_string(value)
    except ParseException:
        raise errors.InvalidArgumentError(
            "result_type", value, f"result_type={value!r} is not a Spark type; pass e.g. 'double', 'long', 'string'"
        ) from None


def load_feature_spec(model_uri: str) -> FeatureSpec:
    """The feature spec of a model logged with `log_model` (downloads only `feature_spec.json`).

    Raises ModelNotFoundError, NotAFeatureStoreModelError (a model not logged with `log_model`),
    InvalidFeatureSpecError, ArgumentTypeError for a non-str URI.
    """
    uri = _model_uri(model_uri)
    with tempfile.TemporaryDirectory(prefix="fs-spec-") as tmp:
        try:
            path = _download(uri, SPEC_PATH, tmp)
        except errors.ModelNotFoundError:
            # No such file, or a URI MLflow resolves only as a whole (a logged model's 'models:/<model id>'):
            # fetch the model itself, which also tells a missing model from one without a spec.
            return _read_spec(uri, _download(uri, "", tmp))
        with open(path, encoding="utf-8") as f:
            return FeatureSpec.from_json(f.read(), uri)


def _model_uri(model_uri: Any) -> str:
    if not isinstance(model_uri, str) or not model_uri.strip():
        raise errors.ArgumentTypeError(
            "model_uri", model_uri, "a model URI such as 'models:/<name>/<version>' or 'runs:/<run id>/<path>'"
        )
    return model_uri.rstrip("/")


def _download(uri: str, path: str, dst: str) -> str:
    """Download `path` of the model at `uri` ("" = all of it) into `dst`; the local path."""
    artifact_uri = f"{uri}/{path}" if path else uri
    try:
        return mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=dst)
    except (MlflowException, OSError) as exc:
        reason = exc.message if isinstance(exc, MlflowException) else str(exc)
        raise errors.ModelNotFoundError(uri, reason.strip() or type(exc).__name__, mlflow.get_tracking_uri()) from None


def _read_spec(uri: str, model_dir: str) -> FeatureSpec:
    """The spec of the model downloaded to `model_dir`."""
    path = os.path.join(model_dir, SPEC_PATH)
    if not os.path.isfile(path):
        _refuse(uri, sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else [os.path.basename(model_dir)])
    with open(path, encoding="utf-8") as f:
        return FeatureSpec.from_json(f.read(), uri)


def _refuse(uri: str, files: list[str]) -> NoReturn:
    """The error for a model without a feature spec: not a model at all, or one not logged with `log_model`."""
    if "MLmodel" not in files:
        what = "nothing is there" if not files else f"it holds no MLmodel file (its files: {', '.join(files)})"
        raise errors.ModelNotFoundError(uri, what, mlflow.get_tracking_uri())
    raise errors.NotAFeatureStoreModelError(uri, files)


def _requirements(raw_model_dir: str) -> list[str]:
    """The flavor's pip requirements (its requirements.txt, less -r/-c lines, whose files stay behind) plus
    this distribution, whose class the pyfunc is."""
    path = os.path.join(raw_model_dir, "requirements.txt")
    lines: list[str] = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith(("#", "-"))]
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = lakehouse_version
    return [ln for ln in lines if not ln.startswith(DISTRIBUTION)] + [f"{DISTRIBUTION}=={version}"]


def _with_features(
    lake: Lakehouse, records: dict[str, TableRecord], spec: FeatureSpec, labels: DataFrame, uri: str
) -> tuple[DataFrame, list[str]]:
    """`labels` with the features the model takes and `labels` lacks, joined as `create_training_set` would at
    the tables' latest versions; and the names of the columns added."""
    provided = set(labels.columns)
    wanted = set(spec.input_columns)
    lookups: list[FeatureLookup] = []
    brought: list[str] = []
    for lk in spec.lookups:
        pairs = [(f, o) for f, o in zip(lk.features, lk.outputs, strict=True) if o in wanted and o not in provided]
        if not pairs:
            continue  # every feature given in df (or none used by the model): no lookup, no keys needed
        keys = [*lk.lookup_key, *([lk.timestamp_lookup_key] if lk.timestamp_lookup_key else [])]
        missing = [c for c in keys if c not in provided]
        if missing:
            raise errors.MissingScoringColumnsError(uri, missing, labels.columns, _lookup_need(lk, pairs))
        lookups.append(_as_lookup(lk, pairs))
        brought += [o for _, o in pairs]
    looked_up = {o for lk in spec.lookups for o in lk.outputs}
    from_df = [c for c in spec.input_columns if c not in looked_up and c not in provided]
    if from_df:
        raise errors.MissingScoringColumnsError(
            uri,
            from_df,
            labels.columns,
            "as inputs: the model was trained on them as columns of the training set's labels DataFrame (no feature "
            "table holds them); add them to df, or train without them (create_training_set(exclude_columns=...))",
        )
    if not lookups:
        return labels, []
    plan = plan_training_set(lake, records, labels, lookups, None, None, None)
    return plan.load_df(), brought


def feature_lookups(spec: FeatureSpec) -> list[FeatureLookup]:
    """The model's lookups as `FeatureLookup`s (every feature, with its renames, defaults and lookback): what an
    online lookup for the model reads."""
    return [_as_lookup(lk, list(zip(lk.features, lk.outputs, strict=True))) for lk in spec.lookups]


def _as_lookup(lk: ResolvedLookup, pairs: Sequence[tuple[str, str]]) -> FeatureLookup:
    return FeatureLookup(
        table_name=lk.table_name,
        lookup_key=list(lk.lookup_key),
        feature_names=[f for f, _ in pairs],
        timestamp_lookup_key=lk.timestamp_lookup_key,
        lookback_window=None if lk.lookback_us is None else timedelta(microseconds=lk.lookback_us),
        rename_outputs={f: o for f, o in pairs if f != o},
        default_values={f: lk.default_values[o] for f, o in pairs if o in lk.default_values},
    )


def _lookup_need(lk: ResolvedLookup, pairs: Sequence[tuple[str, str]]) -> str:
    ts = f", timestamp_lookup_key {lk.timestamp_lookup_key!r}" if lk.timestamp_lookup_key else ""
    return (
        f"to look up {[o for _, o in pairs]} in feature table {lk.table_name!r} (lookup_key {list(lk.lookup_key)}"
        f"{ts}); add them to df, or give each of those features as a column of df (then it is not looked up)"
    )
