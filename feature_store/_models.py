"""Feature-aware models: `log_model` packages a model with the feature spec of its training set, `score_batch`
joins the same features onto a DataFrame of keys and predicts on the executors (Databricks' pair of calls).

The logged model is an MLflow pyfunc (`FeatureStoreModel`) holding two artifacts: the user's model saved with
its own flavor (`artifacts/raw_model`, loaded back with `mlflow.pyfunc.load_model`) and `artifacts/
feature_spec.json` (`_feature_spec.FeatureSpec`). Called directly (`mlflow.pyfunc.load_model(uri).predict`,
`mlflow models serve`) it takes the features it is given as columns and reads the others from the online store;
`score_batch` looks them up offline first. It is logged through whichever tracking URI is active
(`lakehouse:///<root>` or any other).

The code travels with the model: its class lives in this distribution, which is not on PyPI, so the packages
`feature_store` and `lakehouse` are copied into the model (MLflow `code_paths`) and its requirements are the
flavor's plus this distribution's own dependencies pinned to the versions installed when it was logged, all
installable from PyPI. `mlflow models serve --env-manager virtualenv|uv` can therefore build its environment;
`--env-manager local` (the common case, in an environment with lakehouse-ml installed) skips that.

`score_batch` reuses the training set's join: the spec's lookups become `FeatureLookup`s planned against the
tables' latest versions (`_resolve.plan_training_set`), so scoring is point-in-time correct exactly as training
was, and every check of `create_training_set` (tables, features, key types) applies to the scoring input.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import tempfile
import uuid
from datetime import UTC, datetime
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

from . import _saved_training_sets as saved
from . import _validation as check
from . import errors
from ._feature_spec import SPEC_FILE, FeatureSpec, as_lookup, lookups_to_run
from ._lookup import FeatureLookup
from ._metadata import MetadataStore, ModelUse
from ._reproduce import content_hash
from ._resolve import plan_training_set
from ._serving import OnlineFeatures
from ._training_set import TrainingSet

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

    Input is a pandas DataFrame. Features it holds as columns are used as given; the ones it lacks are read from
    the online store by the lookup keys it holds (`_serving`: a request to `mlflow models serve` carries keys
    only). Other columns are ignored. The output is the wrapped model's. Loading needs the flavor's packages
    and this distribution.
    """

    def load_context(self, context: Any) -> None:
        spec_path = context.artifacts[_SPEC]
        with open(spec_path, encoding="utf-8") as f:
            self._spec = FeatureSpec.from_json(f.read(), spec_path)
        self._model = mlflow.pyfunc.load_model(context.artifacts[_RAW])
        self._online = OnlineFeatures(self._spec, f"training set {self._spec.training_set_id}")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        inputs = list(self._spec.input_columns)
        if any(c not in model_input.columns for c in inputs):
            model_input = self._online.complete(model_input)
        return self._model.predict(model_input[inputs], params=params)


def log_model(
    lake: Lakehouse,
    meta: MetadataStore,
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
    pip requirements are the flavor's plus this distribution's dependencies, pinned; its code travels in the model.

    For reproduction (`load_training_set(model_uri)`), the training set is saved (`save_training_set`: its labels
    kept as a Delta snapshot) and the content hash of its DataFrame, re-created from that snapshot, is recorded
    in the spec: one more join of the training set. Each feature table it read records the model (lineage:
    `get_table(name)` lists it, and registered versions of it keep the table from being dropped).

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
    saved.save(lake, meta, training_set)
    recorded = content_hash(saved.load(lake, meta, training_set.id).load_df())
    spec = FeatureSpec.of(training_set, lake.root, recorded)
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
            info = mlflow.pyfunc.log_model(
                name=artifact_path.strip("/"),
                python_model=FeatureStoreModel(),
                artifacts={_RAW: raw, _SPEC: spec_path},
                pip_requirements=_requirements(raw),
                code_paths=_code_paths(),
                registered_model_name=registered_model_name,
                metadata={"feature_store": {"spec": SPEC_PATH, "training_set_id": training_set.id}},
            )
    meta.record_model_uses(_uses(spec, info.run_id, f"runs:/{info.run_id}/{artifact_path.strip('/')}"))
    return info


def _uses(spec: FeatureSpec, run_id: str, model_uri: str) -> list[ModelUse]:
    """One lineage record per feature table the model reads: the features it takes from it."""
    inputs = set(spec.input_columns)
    by_table: dict[str, list[str]] = {}
    for lk in spec.lookups:
        taken = by_table.setdefault(lk.table_name, [])
        taken += [o for o in lk.outputs if o in inputs and o not in taken]
    now = datetime.now(UTC)
    return [
        ModelUse(
            id=uuid.uuid4().hex,
            table_name=table,
            features=tuple(features),
            training_set_id=spec.training_set_id,
            run_id=run_id,
            model_uri=model_uri,
            logged_at=now,
        )
        for table, features in by_table.items()
    ]


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


def load_training_set(lake: Lakehouse, meta: MetadataStore, model_uri: str) -> TrainingSet:
    """The training set the model at `model_uri` was trained on (saved by `log_model`), its DataFrame re-created
    once here and checked against the content hash recorded at training time.

    Raises:
        ModelNotFoundError, NotAFeatureStoreModelError, InvalidFeatureSpecError: the model cannot be used.
        TrainingSetNotFoundError: its training set is not in this lake (logged against another root).
        lakehouse.errors.DataFilesMissingError / VersionNotFoundError: VACUUM removed (or re-creating the table
            lost) a table version it read; the error names the table and version.
        TrainingSetMismatchError: the re-created rows differ from the recorded hash.
    """
    spec = load_feature_spec(model_uri)
    training_set = saved.load(lake, meta, spec.training_set_id)
    if spec.content_hash is not None:
        computed = content_hash(training_set.load_df())
        if computed != spec.content_hash:
            raise errors.TrainingSetMismatchError(
                model_uri, str(spec.content_hash), str(computed), computed.difference(spec.content_hash)
            )
    return training_set


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
    """The flavor's pip requirements (its requirements.txt, less -r/-c lines, whose files stay behind) plus this
    distribution's runtime dependencies pinned to the installed versions (its own code travels in code_paths)."""
    path = os.path.join(raw_model_dir, "requirements.txt")
    lines: list[str] = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines = [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith(("#", "-"))]
    lines = [ln for ln in lines if _project(ln) != DISTRIBUTION]
    have = {_project(ln) for ln in lines}
    for dep in _runtime_dependencies():
        if dep not in have:
            try:
                lines.append(f"{dep}=={importlib.metadata.version(dep)}")
            except importlib.metadata.PackageNotFoundError:
                continue  # declared but not installed here: the flavor's environment decides
            have.add(dep)
    return lines


def _project(requirement: str) -> str:
    """The normalised project name of a requirement line ('scikit-learn==1.8' -> 'scikit-learn')."""
    name = re.split(r"[\s<>=!~;\[@]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_dependencies() -> list[str]:
    """This distribution's declared dependencies (no extras), by project name; pyproject's when not installed."""
    try:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    return [_project(r) for r in declared if "extra ==" not in r]


def _code_paths() -> list[str]:
    """The packages a served model imports: this one and the lakehouse core it stands on."""
    import lakehouse

    return [os.path.dirname(os.path.abspath(lakehouse.__file__)), os.path.dirname(os.path.abspath(__file__))]


def _with_features(
    lake: Lakehouse, records: dict[str, TableRecord], spec: FeatureSpec, labels: DataFrame, uri: str
) -> tuple[DataFrame, list[str]]:
    """`labels` with the features the model takes and `labels` lacks, joined as `create_training_set` would at
    the tables' latest versions; and the names of the columns added."""
    lookups, brought, functions = lookups_to_run(spec, labels.columns, uri, "df", online=False)
    joined = labels
    if lookups:
        joined = plan_training_set(lake, records, labels, lookups, None, None, None).load_df()
    for fn in functions:
        joined = joined.withColumn(fn.output_name, fn.spark_column())
    return joined, [*brought, *(fn.output_name for fn in functions)]


def feature_lookups(spec: FeatureSpec) -> list[FeatureLookup]:
    """The model's lookups as `FeatureLookup`s (every feature, with its renames, defaults and lookback): what an
    online lookup for the model reads."""
    return [as_lookup(lk, list(zip(lk.features, lk.outputs, strict=True))) for lk in spec.lookups]
