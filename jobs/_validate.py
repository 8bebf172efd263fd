"""Validation jobs for registry triggers: smoke-test a version (`validate_model`), or score it on a holdout
table against the current Production version and record the verdict (`validate`).

`validate` writes two model-version tags: `validation.metrics` (JSON: the metric, both scores, the holdout
table and the Delta version read) and then `validation.status` ("passed" / "failed"). A registered model
tagged `validation.required` = "true" lets a version reach Production only with `validation.status` =
"passed" (the registry store's gate, `tracking/_registry_versions.py`); without that tag the verdict is
information only.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from lakehouse import Lakehouse
from tracking import (
    VALIDATION_PASSED,
    VALIDATION_STATUS_TAG,
    lake_uri,
)

from ._progress import track
from ._runner import lake_root
from .errors import InvalidJobArgumentError, ModelValidationError

_log = logging.getLogger(__name__)

VALIDATION_METRICS_TAG = "validation.metrics"
"""Model-version tag holding the figures behind the verdict, as JSON."""
PASSED, FAILED = VALIDATION_PASSED, "failed"
"""The verdicts in the version's VALIDATION_STATUS_TAG (the registry's gate lets only PASSED through)."""


@dataclass(frozen=True)
class Metric:
    """A holdout metric: how to compute it from (labels, predictions) and which way is better."""

    name: str
    higher_is_better: bool
    compute: Callable[[np.ndarray, np.ndarray], float]


def _rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y.astype(float) - p.astype(float)) ** 2)))


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    y, p = y.astype(float), p.astype(float)
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - p) ** 2)) / total if total else float("nan")


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", True, lambda y, p: float(np.mean(y == p))),
        Metric("rmse", False, _rmse),
        Metric("mae", False, lambda y, p: float(np.mean(np.abs(y.astype(float) - p.astype(float))))),
        Metric("r2", True, _r2),
    )
}
"""The metrics `validate` knows; the default is accuracy for a non-float label and rmse for a float one."""


def _check_arguments(
    model_name: Any, version: Any, holdout_table: Any, label_column: Any, metric: Any, tolerance: Any
) -> int:
    """Refuse bad arguments (InvalidJobArgumentError naming the argument); return the version as an int."""
    for argument, value in (
        ("model_name", model_name),
        ("holdout_table", holdout_table),
        ("label_column", label_column),
    ):
        if not isinstance(value, str) or not value.strip():
            raise InvalidJobArgumentError("validate", argument, value, "a non-empty string")
    if isinstance(version, bool) or not (
        (isinstance(version, int) and version >= 1) or (isinstance(version, str) and version.strip().isdigit())
    ):
        raise InvalidJobArgumentError("validate", "version", version, "a model version number such as 3 or '3'")
    if int(version) < 1:
        raise InvalidJobArgumentError("validate", "version", version, "a model version number such as 3 or '3'")
    if metric is not None and metric not in METRICS:
        raise InvalidJobArgumentError(
            "validate", "metric", metric, f"None (chosen from the label) or one of {list(METRICS)}"
        )
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise InvalidJobArgumentError(
            "validate",
            "tolerance",
            tolerance,
            "a finite number >= 0 (how much worse than Production, in the metric's units)",
        )
    return int(version)


def _predict(client: mlflow.MlflowClient, name: str, version: int, features: pd.DataFrame) -> np.ndarray:
    uri = client.get_model_version_download_uri(name, str(version))
    try:
        model = mlflow.pyfunc.load_model(uri)
        out = model.predict(features)
    except Exception as e:
        raise ModelValidationError(f"models:/{name}/{version} could not score the holdout ({uri}): {e}") from e
    if isinstance(out, pd.DataFrame):
        if out.shape[1] != 1:
            raise ModelValidationError(
                f"models:/{name}/{version} predicted {out.shape[1]} columns {list(out.columns)}; validate compares "
                "one prediction per row with the label"
            )
        out = out.iloc[:, 0]
    predictions = np.asarray(out).reshape(len(features), -1) if len(features) else np.asarray(out)
    if predictions.ndim != 2 or predictions.shape[1] != 1:
        raise ModelValidationError(
            f"models:/{name}/{version} predicted shape {np.shape(out)} for {len(features)} rows; expected one value "
            "per row"
        )
    return predictions[:, 0]


def validate(
    lake: str | os.PathLike,
    *,
    model_name: str,
    version: int | str,
    holdout_table: str,
    label_column: str,
    metric: str | None = None,
    tolerance: float = 0.0,
    spark: Any = None,
) -> dict[str, Any]:
    """Score a model version on a holdout Delta table, compare it with the Production version, tag the verdict.

    The version passes when its metric is finite and, if another version is in Production, no worse than
    that version's on the same rows by more than `tolerance` (absolute, in the metric's units: 0.01 of
    accuracy, or of RMSE). Both versions score the same Delta version of the table (recorded). The verdict
    goes to the version's tags `validation.metrics` (JSON) then `validation.status` ("passed"/"failed");
    a failed verdict is a result, not an error. Idempotent: validating again rewrites both tags.

    Args:
        lake: the lake root or its `lakehouse:///` URI (the registry and the holdout table live there).
        model_name, version: the registered model version to validate.
        holdout_table: a Delta table of the lake by name (e.g. "features.churn_holdout"): the label column
            and the model's input columns (every other column is passed to the model).
        label_column: the true value of each row.
        metric: "accuracy", "rmse", "mae" or "r2"; None picks rmse for a float label, accuracy otherwise.
        tolerance: how much worse than Production the version may score and still pass (>= 0).
        spark: a SparkSession to read the table with (default: the process's local session).

    Returns:
        status, metric, candidate (score), production_version / production (None without a Production
        version other than this one), tolerance, holdout_table, holdout_version, rows, tags written.

    Raises:
        InvalidJobArgumentError: a bad argument, an unknown version, a missing table or label column
            (nothing written). ModelValidationError: a version could not load or predict (nothing written).

    Example:
        >>> validate("/data/lake", model_name="churn", version=4, holdout_table="features.churn_holdout",
        ...          label_column="churned", tolerance=0.01)["status"]
        'passed'
    """
    v = _check_arguments(model_name, version, holdout_table, label_column, metric, tolerance)
    root = lake_root(lake, "validate")
    uri = lake_uri(root)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        client.get_model_version(model_name, str(v))
    except MlflowException as e:
        raise InvalidJobArgumentError(
            "validate", "version", version, f"a version of registered model {model_name!r} in {uri} ({e.message})"
        ) from None
    lh = Lakehouse(root, spark=spark)
    if not lh.exists(holdout_table):
        raise InvalidJobArgumentError(
            "validate",
            "holdout_table",
            holdout_table,
            f"a Delta table of the lake at {root}; its tables: {[t.name for t in lh.list_tables()]}",
        )
    table_version = lh.latest_version(holdout_table)
    frame: pd.DataFrame = lh.read(holdout_table, version=table_version).toPandas()
    if label_column not in frame.columns:
        raise InvalidJobArgumentError(
            "validate", "label_column", label_column, f"a column of {holdout_table}: {list(frame.columns)}"
        )
    if frame.empty:
        raise InvalidJobArgumentError(
            "validate", "holdout_table", holdout_table, f"a table with rows (version {table_version} has none)"
        )
    labels = frame[label_column].to_numpy()
    features = frame.drop(columns=[label_column])
    chosen = METRICS[metric or ("rmse" if pd.api.types.is_float_dtype(frame[label_column]) else "accuracy")]

    production = sorted(
        (
            int(mv.version)
            for mv in client.search_model_versions(f"name='{model_name}'")
            if mv.current_stage == "Production"
        ),
    )
    production_version = production[-1] if production and production[-1] != v else None
    scores: dict[int, float] = {}
    to_score = [v] if production_version is None else [v, production_version]
    for each in track(to_score, total=len(to_score), description=f"validate {model_name} v{v}"):
        scores[each] = chosen.compute(labels, _predict(client, model_name, each, features))
        _log.info(
            "%s v%s: %s = %s on %s rows of %s@v%s",
            model_name,
            each,
            chosen.name,
            scores[each],
            len(frame),
            holdout_table,
            table_version,
        )

    candidate = scores[v]
    baseline = None if production_version is None else scores[production_version]
    passed = math.isfinite(candidate) and (
        baseline is None
        or not math.isfinite(baseline)
        or (candidate >= baseline - tolerance if chosen.higher_is_better else candidate <= baseline + tolerance)
    )
    status = PASSED if passed else FAILED
    figures = {
        "metric": chosen.name,
        "higher_is_better": chosen.higher_is_better,
        "candidate": candidate,
        "production_version": production_version,
        "production": baseline,
        "tolerance": float(tolerance),
        "holdout_table": holdout_table,
        "holdout_version": table_version,
        "rows": len(frame),
    }
    # Metrics first, the verdict last: whoever sees the status finds the figures it was decided on.
    client.set_model_version_tag(model_name, str(v), VALIDATION_METRICS_TAG, json.dumps(figures, allow_nan=True))
    client.set_model_version_tag(model_name, str(v), VALIDATION_STATUS_TAG, status)
    _log.info("%s v%s validation %s (%s)", model_name, v, status, figures)
    return {
        "model_name": model_name,
        "version": v,
        "status": status,
        **figures,
        "tags": [VALIDATION_METRICS_TAG, VALIDATION_STATUS_TAG],
    }


def validate_model(event: dict[str, Any]) -> dict[str, Any]:
    """Load the event's model version with pyfunc and predict on the input example logged with it.

    Use it as a trigger callable: `create_trigger(lake, ..., stage="Staging", callable="jobs:validate_model")`.
    The job fails (non-zero exit, recorded in `mlflow.job_runs`) when the model does not load, has no
    input example, or predicts nothing.
    """
    name = event.get("name") or os.environ.get("MODEL_NAME")
    version = event.get("version") or os.environ.get("MODEL_VERSION")
    if not name or not version:
        raise ModelValidationError(f"the event names no model version (name={name!r}, version={version!r})")
    uri = f"models:/{name}/{version}"
    model = mlflow.pyfunc.load_model(uri)
    example = model.input_example
    if example is None:
        raise ModelValidationError(f"{uri} has no input example to validate with; log the model with input_example=...")
    predictions = model.predict(example)
    n = len(predictions)
    if n == 0:
        raise ModelValidationError(f"{uri} returned no predictions for its {len(example)}-row input example")
    _log.info("validated %s: %s predictions on its input example", uri, n)
    return {"model": uri, "predictions": n}
