"""The `monitor` job (issue 15): how a registered model does on labelled data, window by window.

For every window (a calendar month by default) of a labelled Delta table, the rows are scored with the model
version at a stage or alias, the task's metrics are computed with scikit-learn, every input feature's drift is
profiled against a reference, and one MLflow run is logged in a monitoring experiment. Each window is compared
with a baseline; a metric or a drift score past its threshold is an alert: the figures list it (the CLI then
exits with the alert code) and the monitored version gets the tag `monitoring.alert`, which the registry delivers
as a `model_version_tag.set` event to the lake's webhooks. A PNG chart and a self-contained HTML report of the
windows, with the thresholds drawn, are written last.

Rules (what the figures, the runs and the report mean):

- **Windows** are `[start, end)` in UTC. `"month"`, `"week"` (Monday), `"quarter"` and any anchored pandas
  frequency (`"MS"`, `"W-SUN"`, ...) are calendar windows labelled by their first day; a fixed length (`"day"`,
  an int of days, `"7D"`, `"12h"`) counts from `start`, or from midnight of the first row's day. `start`/`end`
  (naive = UTC) clip the rows. Windows without rows are skipped; rows without a label or a time are dropped.
- **Metrics.** Classification: accuracy, precision, recall, F1 (binary: the positive class is the second of
  the sorted classes, sklearn's `classes_[1]`; more classes: macro averages; `zero_division=0`), ROC AUC
  from `predict_proba` of the underlying model when it has one (pyfunc's `predict` gives labels only), else
  skipped with a note. Regression: RMSE, MAE, R2. A metric undefined on a window (ROC AUC with one class) is
  left out of that window.
- **Baseline and thresholds.** The baseline is the training run's metrics (`accuracy`, `training_accuracy_score`,
  `accuracy_score`, ...: `TRAINING_METRIC_NAMES`) or one window's. Higher-is-better metrics alert below
  `baseline - tolerance` (absolute); RMSE and MAE alert above `baseline * (1 + tolerance)` (relative).
- **Drift** of each feature against the reference (`reference_table`, else the baseline window, else the
  first window): PSI (default) or the two-sample KS statistic. PSI bins a numeric feature at the reference's
  deciles (`np.quantile` at 0.1 ... 0.9, duplicates dropped; bin i holds `edges[i-1] <= x < edges[i]`) and a
  categorical one by the reference's values plus one bin for values the reference lacks; missing values are a
  bin of their own; PSI = sum((cur - ref) * ln(cur / ref)) over the bins' shares, each share at least
  `PSI_EPSILON`. KS compares the non-missing values of numeric features; categorical features always get PSI.
  Drift is logged as `drift.<method>.<feature>` and alerts above its threshold (PSI 0.2, KS 0.1 by default).
- **Runs.** One per (model, version, table, window frequency, window) in the experiment, tagged with those keys,
  so a re-run of a window logs into the same run: its metrics get a new point (the latest is the one shown).
  Each metric's step is the window start in days since 1970-01-01 (minutes for windows shorter than a day),
  so the MLflow UI's charts over steps put the windows in order.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow import MlflowClient, pyfunc
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from lakehouse import Lakehouse, is_object_store, to_utc
from lakehouse.errors import LakehouseError, TableNotFoundError, UnsupportedTableFeatureError
from tracking import lake_uri

from ._monitor_report import Threshold, WindowRow, write_report
from ._monitor_stats import Model, Profile, Task, classes_of, infer_task, score_window
from ._progress import track
from ._runner import lake_root
from .errors import InvalidJobArgumentError

__all__ = ["ALERT_TAG", "monitor"]

_log = logging.getLogger(__name__)

JOB = "monitor"
ALERT_TAG = "monitoring.alert"
"""The model-version tag set when a window alerts (JSON: window, metric, value, threshold, ...)."""
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
DEFAULT_TOLERANCES = {
    **{m: 0.05 for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")},
    **{m: 0.10 for m in ("rmse", "mae")},
}
"""Absolute drop allowed below the baseline; for RMSE and MAE, the relative rise allowed above it."""
DEFAULT_DRIFT_THRESHOLDS = {"psi": 0.2, "ks": 0.1}
TRAINING_METRIC_NAMES = {
    "accuracy": ("accuracy", "training_accuracy_score", "accuracy_score"),
    "precision": ("precision", "training_precision_score", "precision_score"),
    "recall": ("recall", "training_recall_score", "recall_score"),
    "f1": ("f1", "training_f1_score", "f1_score"),
    "roc_auc": ("roc_auc", "training_roc_auc", "roc_auc_score"),
    "rmse": ("rmse", "training_root_mean_squared_error", "root_mean_squared_error"),
    "mae": ("mae", "training_mean_absolute_error", "mean_absolute_error"),
    "r2": ("r2", "training_r2_score", "r2_score"),
}
"""Names a training run may have logged each metric under (ours, MLflow autolog's, mlflow.evaluate's): first wins."""
WINDOW_FREQUENCIES = {"month": "MS", "week": "W-MON", "quarter": "QS", "day": "D"}
MAX_WINDOWS = 1000


# -- entities ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """`[start, end)` in UTC; `label` is the calendar start (ISO date, or timestamp for windows under a day)."""

    label: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Limit:
    """Alert when a metric is `below` (higher is better) or `above` (lower is better) `threshold`."""

    metric: str
    threshold: float
    direction: Literal["below", "above"]
    baseline: float | None = None

    def crossed(self, value: float) -> bool:
        return value < self.threshold if self.direction == "below" else value > self.threshold


@dataclass(frozen=True)
class Alert:
    window: str
    metric: str
    value: float
    threshold: float
    direction: str
    baseline: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "direction": self.direction,
            "baseline": self.baseline,
        }


@dataclass
class WindowResult:
    window: Window
    rows: int
    metrics: dict[str, float]
    drift: dict[str, float]
    alerts: list[Alert] = field(default_factory=list)
    run_id: str | None = None


# -- the job ---------------------------------------------------------------------------------------------------
def monitor(
    lake: str,
    *,
    model_name: str,
    table: str,
    label_column: str,
    timestamp_column: str,
    stage: str | None = None,
    alias: str | None = None,
    window: str | int = "month",
    start: str | datetime | date | None = None,
    end: str | datetime | date | None = None,
    task: Task | None = None,
    features: Sequence[str] | None = None,
    baseline: str | None = None,
    tolerances: Mapping[str, float] | str | None = None,
    reference_table: str | None = None,
    drift_method: Literal["psi", "ks"] = "psi",
    drift_threshold: float | None = None,
    experiment: str | None = None,
    output_dir: str | None = None,
) -> dict[str, Any]:
    """Score `table` window by window with `model_name` at `stage` or `alias`, log a run per window, alert.

    Every argument is checked, the rows read and every window scored before anything is written: a refused
    argument (`InvalidJobArgumentError`, naming what exists) or a model that cannot predict leaves no run, tag
    or file. The module docstring states the rules (windows, metrics, baseline, drift, runs).

    Args:
        lake: lake root or `lakehouse:///` URI; the model registry and the experiment are the lake's.
        model_name, stage, alias: the registered model and exactly one of a stage or an alias.
        table: the labelled Delta table (a name under the lake, or a path); read with pyarrow, not Spark.
        label_column, timestamp_column: the label and the event time (timestamp or date; naive = UTC).
        window: "month" (default), "week", "quarter", "day", a pandas frequency, or a number of days.
        start, end: clip the rows to `[start, end)` (naive = UTC); default: all rows.
        task: "classification" or "regression"; default from the model (sklearn's `is_classifier`), else the
            labels (booleans, strings, or integers with at most 20 values are classes).
        features: the model's input columns; default the model signature's, else every column but the label
            and the time.
        baseline: "training" (the training run's metrics), "window:<date>" (the window holding that date, or
            "window:first"); default "training" when that run logged any monitored metric, else "window:first".
        tolerances: per metric, overriding `DEFAULT_TOLERANCES` (`float("inf")` turns a metric's alert off); or
            the command line's text "accuracy=0.03,rmse=0.2".
        reference_table: the training set for drift (same feature columns); default the baseline window, or
            the first window when the baseline is the training run.
        drift_method: "psi" or "ks"; drift_threshold: default 0.2 for PSI, 0.1 for KS.
        experiment: default "/monitoring/<model_name>".
        output_dir: where the chart and report go; default `<lake>/monitoring/<model_name>` (required for a lake
            on an object store).

    Returns:
        model, version, selector, task, table, features, baseline (source and metrics), limits, drift
        (method, threshold, reference), experiment_id, windows (label, start, end, rows, run_id, metrics,
        drift, alerts), alerts (every alert: window, metric, value, threshold, direction, baseline),
        alert_tag (the tag value set, or None), chart, report (paths), rows, notes.

    Example:
        >>> monitor("/data/lake", model_name="churn", alias="champion", table="labels.churn",
        ...         label_column="churned", timestamp_column="ts", window="month")["alerts"]
        []
    """
    root = lake_root(lake, JOB)
    notes: list[str] = []
    _check_plain_arguments(model_name, stage, alias, table, label_column, timestamp_column, drift_method)
    freq = _frequency(window)
    start_ts = _utc_arg("start", start)
    end_ts = _utc_arg("end", end)
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise InvalidJobArgumentError(JOB, "end", end, f"a time after start={start!r}")
    threshold = _drift_threshold(drift_method, drift_threshold)
    _tolerances(tolerances, [*CLASSIFICATION_METRICS, *REGRESSION_METRICS])  # the task's own check comes later
    if task is not None and task not in ("classification", "regression"):
        raise InvalidJobArgumentError(JOB, "task", task, "'classification', 'regression' or None (inferred)")
    if baseline is not None and baseline != "training" and not baseline.startswith("window:"):
        raise InvalidJobArgumentError(JOB, "baseline", baseline, "'training', 'window:first' or 'window:<date>'")
    if output_dir is None and is_object_store(root):
        raise InvalidJobArgumentError(JOB, "output_dir", None, "a local folder: the lake is on an object store")

    uri = lake_uri(root)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # The Spark session a Lakehouse needs starts a JVM (10-30 s on a busy machine): start it while the model loads.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-lake") as pool:
        opening = pool.submit(Lakehouse, root, engine="deltalake")
        model = _load_model(client, model_name, stage, alias)
        lh = opening.result()
    columns = _table_columns(lh, table, "table")
    for argument, column in (("label_column", label_column), ("timestamp_column", timestamp_column)):
        if column not in columns:
            raise InvalidJobArgumentError(JOB, argument, column, f"a column of {table!r}: {sorted(columns)}")
    if columns[timestamp_column] not in ("timestamp", "timestamp_ntz", "date"):
        raise InvalidJobArgumentError(
            JOB, "timestamp_column", timestamp_column, f"a timestamp or date column (it is {columns[timestamp_column]})"
        )
    chosen = _features(model, features, columns, label_column, timestamp_column)
    reference_frame = None
    if reference_table is not None:
        ref_columns = _table_columns(lh, reference_table, "reference_table")
        missing = [f for f in chosen if f not in ref_columns]
        if missing:
            raise InvalidJobArgumentError(
                JOB,
                "reference_table",
                reference_table,
                f"a table with the features {missing}: it has {sorted(ref_columns)}",
            )
        reference_frame = _read(lh, reference_table, chosen)

    data = _read(lh, table, [*dict.fromkeys([*chosen, label_column, timestamp_column])])
    data, times = _clean(data, label_column, timestamp_column, start_ts, end_ts, notes)
    if data.empty:
        raise InvalidJobArgumentError(JOB, "table", table, "a table with labelled rows in [start, end)")
    windows, slices = _split(data, times, freq, start_ts, end_ts)
    task = task or infer_task(model, data[label_column], notes)
    metric_names = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    tolerance = _tolerances(tolerances, metric_names)
    base_window = _baseline_window(baseline, windows)

    classes = classes_of(model, data[label_column], task)
    results = []
    for w, part in track(zip(windows, slices, strict=True), total=len(windows), description=f"score {model_name}"):
        frame = data.iloc[part]
        metrics = score_window(model, frame, chosen, label_column, task, classes, notes)
        results.append(WindowResult(w, len(frame), metrics, {}))
        _log.info("window %s: %d rows, %s", w.label, len(frame), _fmt(metrics))

    baseline_source, baseline_metrics = _baseline(client, model, baseline, base_window, results, metric_names, notes)
    limits = _limits(baseline_metrics, tolerance)
    if reference_frame is None:
        ref_window = base_window if base_window is not None else windows[0]
        reference_frame = data.iloc[slices[windows.index(ref_window)]][chosen]
        reference = f"window:{ref_window.label}"
    else:
        reference = reference_table or ""
    profiles = [Profile.of(f, reference_frame[f], drift_method) for f in chosen]
    # a categorical feature under KS falls back to PSI, with PSI's threshold
    drift_limits = {p.key: threshold if p.method == drift_method else DEFAULT_DRIFT_THRESHOLDS["psi"] for p in profiles}
    for r, part in zip(results, slices, strict=True):
        frame = data.iloc[part]
        r.drift = {p.key: p.score(frame[p.feature]) for p in profiles}
        r.alerts = _alerts(r, limits, drift_limits)

    # -- every check passed and every window is scored: now write ---------------------------------------------
    exp_name = experiment or f"/monitoring/{model_name}"
    experiment_id = _experiment(client, exp_name)
    keys = {"model": model.name, "version": model.version, "table": table, "freq": freq}
    existing = _existing_runs(client, experiment_id, keys)
    for r in track(results, total=len(results), description=f"log {model_name}"):
        r.run_id = _log_window(client, experiment_id, existing, keys, model, r, task, baseline_source, freq)
    alerts = [a for r in results for a in r.alerts]
    tag_value = _tag_alert(client, model, results, experiment_id, table) if alerts else None

    out = output_dir or os.path.join(root, "monitoring", _safe(model_name))
    chart, report = write_report(
        out,
        title=f"{model.name} v{model.version} ({model.selector}) on {table}",
        windows=[
            WindowRow(r.window.label, r.rows, r.metrics, r.drift, frozenset(a.metric for a in r.alerts))
            for r in results
        ],
        limits={m: Threshold(lim.threshold, lim.baseline, lim.direction) for m, lim in limits.items()},
        drift_thresholds=drift_limits,
        drift_method=drift_method,
        reference=reference,
        alerts=[a.as_dict() for a in alerts],
    )
    _log.info(
        "monitor %s v%s: %d windows, %d alerts; report %s", model.name, model.version, len(results), len(alerts), report
    )
    return {
        "model": model.name,
        "version": model.version,
        "selector": model.selector,
        "task": task,
        "table": table,
        "features": list(chosen),
        "rows": int(sum(r.rows for r in results)),
        "baseline": {"source": baseline_source, "metrics": baseline_metrics},
        "limits": {m: {"threshold": x.threshold, "direction": x.direction} for m, x in limits.items()},
        "drift": {"method": drift_method, "threshold": threshold, "reference": reference},
        "experiment": exp_name,
        "experiment_id": experiment_id,
        "windows": [
            {
                "window": r.window.label,
                "start": r.window.start.isoformat(),
                "end": r.window.end.isoformat(),
                "rows": r.rows,
                "run_id": r.run_id,
                "metrics": r.metrics,
                "drift": r.drift,
                "alerts": [a.metric for a in r.alerts],
            }
            for r in results
        ],
        "alerts": [a.as_dict() for a in alerts],
        "alert_tag": tag_value,
        "chart": chart,
        "report": report,
        "notes": list(dict.fromkeys(notes)),
    }


# -- arguments -------------------------------------------------------------------------------------------------
def _check_plain_arguments(
    model_name: Any, stage: Any, alias: Any, table: Any, label: Any, timestamp: Any, method: Any
) -> None:
    for argument, value in (
        ("model_name", model_name),
        ("table", table),
        ("label_column", label),
        ("timestamp_column", timestamp),
    ):
        if not isinstance(value, str) or not value.strip():
            raise InvalidJobArgumentError(JOB, argument, value, "a non-empty string")
    if (stage is None) == (alias is None):
        raise InvalidJobArgumentError(
            JOB, "stage/alias", {"stage": stage, "alias": alias}, "exactly one of stage= or alias="
        )
    for argument, value in (("stage", stage), ("alias", alias)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidJobArgumentError(JOB, argument, value, "a non-empty string")
    if label == timestamp:
        raise InvalidJobArgumentError(JOB, "label_column", label, "a column other than timestamp_column")
    if method not in DEFAULT_DRIFT_THRESHOLDS:
        raise InvalidJobArgumentError(JOB, "drift_method", method, f"one of {sorted(DEFAULT_DRIFT_THRESHOLDS)}")


def _frequency(window: str | int) -> str:
    """The pandas frequency of `window` (checked)."""
    if isinstance(window, bool) or (isinstance(window, int) and window <= 0):
        raise InvalidJobArgumentError(JOB, "window", window, "a positive number of days or a frequency")
    if isinstance(window, int) or (isinstance(window, str) and window.strip().isdigit()):
        days = int(window)
        if days <= 0:
            raise InvalidJobArgumentError(JOB, "window", window, "a positive number of days")
        return f"{days}D"
    if not isinstance(window, str):
        raise InvalidJobArgumentError(JOB, "window", window, "'month', 'week', 'quarter', 'day', a frequency or days")
    freq = WINDOW_FREQUENCIES.get(window.strip().lower(), window.strip())
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        offset = None
    length = _fixed_length(offset) if offset is not None else None
    if offset is None or (length is not None and length < pd.Timedelta(minutes=1)):
        raise InvalidJobArgumentError(
            JOB,
            "window",
            window,
            f"one of {sorted(WINDOW_FREQUENCIES)}, a pandas frequency of a minute or more "
            "('MS', 'W-SUN', '7D', '12h') or a number of days",
        )
    return freq


def _fixed_length(offset: pd.DateOffset) -> pd.Timedelta | None:
    """The length of a fixed-length frequency (hours, minutes, days: pandas 3's `Day` is no `Tick`), else None."""
    if isinstance(offset, pd.offsets.Tick):
        return pd.Timedelta(offset)
    if isinstance(offset, pd.offsets.Day):
        return pd.Timedelta(days=offset.n)
    return None


def _utc_arg(argument: str, value: str | datetime | date | None) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return pd.Timestamp(to_utc(value, argument=argument))
    except LakehouseError as e:
        raise InvalidJobArgumentError(JOB, argument, value, str(e)) from None


def _drift_threshold(method: str, value: float | None) -> float:
    if value is None:
        return DEFAULT_DRIFT_THRESHOLDS[method]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidJobArgumentError(
            JOB, "drift_threshold", value, f"a positive number (default {method} {DEFAULT_DRIFT_THRESHOLDS[method]})"
        )
    return float(value)


def _tolerances(given: Mapping[str, float] | str | None, metrics: Sequence[str]) -> dict[str, float]:
    if isinstance(given, str):  # the command line's "accuracy=0.03,rmse=0.2"
        parsed: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in given.split(","))):
            name, _, number = part.partition("=")
            try:
                parsed[name.strip()] = float(number)
            except ValueError:
                expected = "'metric=number,...', e.g. 'accuracy=0.03,rmse=0.2'"
                raise InvalidJobArgumentError(JOB, "tolerances", given, expected) from None
        given = parsed
    out = {m: DEFAULT_TOLERANCES[m] for m in metrics}
    for key, value in (given or {}).items():
        if key not in out:
            raise InvalidJobArgumentError(
                JOB, "tolerances", dict(given or {}), f"keys among this task's metrics {list(metrics)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0:
            raise InvalidJobArgumentError(JOB, "tolerances", dict(given or {}), f"a number >= 0 for {key!r}")
        out[key] = float(value)
    return out


def _load_model(client: MlflowClient, name: str, stage: str | None, alias: str | None) -> Model:
    try:
        registered = client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        names = sorted(m.name for m in client.search_registered_models(max_results=100))
        raise InvalidJobArgumentError(JOB, "model_name", name, f"a registered model of the lake: {names}") from None
    if alias is not None:
        if alias not in registered.aliases:
            raise InvalidJobArgumentError(
                JOB, "alias", alias, f"an alias of {name!r}: {dict(sorted(registered.aliases.items()))}"
            )
        version = str(registered.aliases[alias])
        selector = f"alias:{alias}"
    else:
        wanted = (stage or "").strip().capitalize()
        if wanted not in ("None", "Staging", "Production", "Archived"):
            raise InvalidJobArgumentError(JOB, "stage", stage, "one of 'Staging', 'Production', 'Archived', 'None'")
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
        at = [v for v in versions if v.current_stage == wanted]
        if not at:
            stages = {v.version: v.current_stage for v in sorted(versions, key=lambda v: int(v.version))}
            raise InvalidJobArgumentError(JOB, "stage", stage, f"a stage holding a version of {name!r}: {stages}")
        version = str(max(int(v.version) for v in at))
        selector = f"stage:{wanted}"
    mv = client.get_model_version(name, version)
    loaded = pyfunc.load_model(client.get_model_version_download_uri(name, version))
    try:
        raw = loaded.get_raw_model()
    except Exception:  # noqa: BLE001 - flavors without a raw model raise various errors
        raw = None
    return Model(name, version, selector, mv.run_id, loaded, raw)


def _table_columns(lh: Lakehouse, table: str, argument: str) -> dict[str, str]:
    try:
        info = lh.describe(table)
    except TableNotFoundError as e:
        raise InvalidJobArgumentError(JOB, argument, table, f"a Delta table of the lake: {e.available}") from None
    except LakehouseError as e:
        raise InvalidJobArgumentError(JOB, argument, table, str(e)) from None
    return dict(info.columns)


def _features(
    model: Model, given: Sequence[str] | None, columns: Mapping[str, str], label: str, timestamp: str
) -> list[str]:
    if given is not None:
        chosen = [given] if isinstance(given, str) else list(given)
        argument, source = "features", "the features asked for"
    else:
        schema = model.pyfunc.metadata.get_input_schema()
        names = schema.input_names() if schema is not None and schema.has_input_names() else None
        if names:
            chosen, argument, source = list(names), "table", f"the inputs of {model.name} v{model.version}'s signature"
        else:
            chosen = [c for c in columns if c not in (label, timestamp)]
            argument, source = "features", "every column but the label and the time"
    if not chosen or not all(isinstance(c, str) for c in chosen):
        raise InvalidJobArgumentError(JOB, "features", given, "a non-empty list of column names")
    missing = [c for c in chosen if c not in columns]
    if missing:
        raise InvalidJobArgumentError(
            JOB,
            argument,
            given if argument == "features" else None,
            f"a table holding {source}; missing {missing}, the table has {sorted(columns)}",
        )
    if label in chosen or timestamp in chosen:
        raise InvalidJobArgumentError(JOB, "features", chosen, "features other than the label and time columns")
    return chosen


# -- reading ---------------------------------------------------------------------------------------------------
def _read(lh: Lakehouse, table: str, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` of `table`'s latest version: its Parquet files read with pyarrow (no Spark job), or through
    Spark when the files alone are not the rows (deletion vectors, column mapping) or sit on an object store."""
    try:
        files = lh.data_files(table)
    except UnsupportedTableFeatureError:
        files = None
    if files is None or any(is_object_store(f) for f in files.files[:1]):
        frame = lh.read(table).select(*[f"`{c}`" for c in columns])
        return frame.toArrow().to_pandas()
    parts: list[pa.Table] = []
    for path, values in zip(files.files, files.partition_values, strict=True):
        pf = pq.ParquetFile(path.removeprefix("file://"))
        present = [c for c in columns if c in pf.schema_arrow.names]
        t = pf.read(columns=present)
        for c in columns:
            if c not in present:  # a partition column, or one that schema evolution added after this file
                t = t.append_column(c, pa.array([values.get(c)] * t.num_rows))
        parts.append(t.select(list(columns)))
    if not parts:
        return pd.DataFrame({c: [] for c in columns})
    return pa.concat_tables(parts, promote_options="permissive").to_pandas()


def _clean(
    data: pd.DataFrame,
    label: str,
    timestamp: str,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    notes: list[str],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows with a label and a time in [start, end), sorted by time, and their times (UTC, `datetime64[ns]`).

    Times stay a numpy array: a tz-aware pandas column turns into Python objects at `to_numpy`, and sorting or
    searching 1M of those takes tens of seconds.
    """
    times = pd.to_datetime(data[timestamp])
    if times.dt.tz is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = times.to_numpy(dtype="datetime64[ns]")
    keep = ~np.isnat(ns) & data[label].notna().to_numpy()
    if not keep.all():
        notes.append(f"{int((~keep).sum())} rows without a label or a time were left out")
    if start is not None:
        keep &= ns >= _naive(start)
    if end is not None:
        keep &= ns < _naive(end)
    kept = ns[keep]
    order = np.argsort(kept, kind="stable")
    return data[keep].iloc[order].reset_index(drop=True), kept[order]


def _naive(ts: pd.Timestamp) -> np.datetime64:
    """A UTC timestamp as numpy's naive `datetime64[ns]`."""
    return ts.tz_convert("UTC").tz_localize(None).to_datetime64().astype("datetime64[ns]")


def _split(
    data: pd.DataFrame, times: np.ndarray, freq: str, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> tuple[list[Window], list[slice]]:
    """The windows holding rows, and each one's rows (a slice of the time-sorted `data`)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    first_time, last_time = pd.Timestamp(times[0], tz="UTC"), pd.Timestamp(times[-1], tz="UTC")
    length = _fixed_length(offset)
    if length is not None:
        first = start if start is not None else first_time.normalize()
    else:
        first = offset.rollback((start if start is not None else first_time).normalize())
    stop = end if end is not None else last_time
    bounds = pd.date_range(first, stop, freq=offset, inclusive="both")
    if len(bounds) == 0 or bounds[0] != first:
        bounds = pd.DatetimeIndex([first]).append(bounds)
    bounds = bounds.append(pd.DatetimeIndex([bounds[-1] + offset]))
    if len(bounds) - 1 > MAX_WINDOWS:
        raise InvalidJobArgumentError(
            JOB,
            "window",
            freq,
            f"at most {MAX_WINDOWS} windows (this makes {len(bounds) - 1}): a longer window or start/end",
        )
    edges = np.searchsorted(times, bounds.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]"))
    windows, slices = [], []
    sub_day = length is not None and length < pd.Timedelta(days=1)
    for i in range(len(bounds) - 1):
        if edges[i + 1] > edges[i]:
            lo, hi = bounds[i], bounds[i + 1]
            label = lo.isoformat() if sub_day or lo != lo.normalize() else lo.date().isoformat()
            windows.append(
                Window(label, max(lo, start) if start is not None else lo, min(hi, end) if end is not None else hi)
            )
            slices.append(slice(int(edges[i]), int(edges[i + 1])))
    return windows, slices


# -- baseline and alerts ---------------------------------------------------------------------------------------
def _baseline_window(baseline: str | None, windows: list[Window]) -> Window | None:
    if baseline is None or not baseline.startswith("window:"):
        return None
    what = baseline.removeprefix("window:").strip()
    labels = [w.label for w in windows]
    if what == "first":
        return windows[0]
    try:
        when = pd.Timestamp(to_utc(what, argument="baseline"))
    except LakehouseError:
        when = None
    for w in windows:
        if (when is not None and w.start <= when < w.end) or what == w.label:
            return w
    raise InvalidJobArgumentError(JOB, "baseline", baseline, f"'window:first' or a window with rows: {labels}")


def _baseline(
    client: MlflowClient,
    model: Model,
    baseline: str | None,
    window: Window | None,
    results: list[WindowResult],
    names: Sequence[str],
    notes: list[str],
) -> tuple[str, dict[str, float]]:
    if window is not None:
        r = next(r for r in results if r.window == window)
        return f"window:{window.label}", dict(r.metrics)
    training: dict[str, float] = {}
    if model.run_id:
        try:
            logged = client.get_run(model.run_id).data.metrics
        except MlflowException:
            logged = {}
        for m in names:
            found = next((logged[n] for n in TRAINING_METRIC_NAMES[m] if n in logged), None)
            if found is not None and math.isfinite(found):
                training[m] = float(found)
    if training:
        skipped = [m for m in names if m not in training]
        if skipped:
            notes.append(f"no training value for {skipped}: those metrics are charted, not alerted on")
        return "training", training
    if baseline == "training":
        raise InvalidJobArgumentError(
            JOB,
            "baseline",
            baseline,
            f"a model whose training run ({model.run_id}) logged one of {[TRAINING_METRIC_NAMES[m] for m in names]}; "
            "or pass baseline='window:first'",
        )
    notes.append("the training run logged no monitored metric: the baseline is the first window")
    return f"window:{results[0].window.label}", dict(results[0].metrics)


def _limits(baseline: Mapping[str, float], tolerance: Mapping[str, float]) -> dict[str, Limit]:
    out = {}
    for m, b in baseline.items():
        t = tolerance.get(m, math.inf)
        if math.isinf(t):
            continue
        if m in LOWER_IS_BETTER:
            out[m] = Limit(m, b * (1 + t), "above", b)
        else:
            out[m] = Limit(m, b - t, "below", b)
    return out


def _alerts(r: WindowResult, limits: Mapping[str, Limit], drift_limits: Mapping[str, float]) -> list[Alert]:
    out = []
    for m, v in r.metrics.items():
        lim = limits.get(m)
        if lim is not None and lim.crossed(v):
            out.append(Alert(r.window.label, m, v, lim.threshold, lim.direction, lim.baseline))
    for key, v in r.drift.items():
        if not math.isnan(v) and v > drift_limits[key]:
            out.append(Alert(r.window.label, key, v, drift_limits[key], "above", None))
    return out


# -- writing ---------------------------------------------------------------------------------------------------
def _experiment(client: MlflowClient, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage == "active":
        return str(found.experiment_id)
    if found is not None:
        client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def _existing_runs(client: MlflowClient, experiment_id: str, keys: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """(frequency, window) -> run id of this model version's runs on this table in the experiment."""
    flt = " and ".join(f"tags.`monitoring.{k}` = '{_quote(v)}'" for k, v in keys.items() if k != "freq")
    found: dict[tuple[str, str], str] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], flt, max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            found.setdefault((tags.get("monitoring.freq", ""), tags.get("monitoring.window", "")), run.info.run_id)
        token = page.token
        if not token:
            return found


def _log_window(
    client: MlflowClient,
    experiment_id: str,
    existing: Mapping[tuple[str, str], str],
    keys: Mapping[str, str],
    model: Model,
    r: WindowResult,
    task: str,
    baseline: str,
    freq: str,
) -> str:
    w = r.window
    tags = {f"monitoring.{k}": v for k, v in keys.items()}
    tags |= {
        "monitoring.window": w.label,
        "monitoring.selector": model.selector,
        "monitoring.task": task,
        "monitoring.baseline": baseline,
        "monitoring.window_start": w.start.isoformat(),
        "monitoring.window_end": w.end.isoformat(),
        "monitoring.alerts": json.dumps([a.as_dict() for a in r.alerts])[:8000],
    }
    run_id = existing.get((freq, w.label))
    params: list[Param] = []
    if run_id is None:
        run = client.create_run(experiment_id, run_name=f"{model.name} v{model.version} {w.label}", tags=tags)
        run_id = run.info.run_id
        params = [
            Param("model_name", model.name),
            Param("model_version", model.version),
            Param("window", w.label),
            Param("window_frequency", freq),
            Param("table", keys["table"]),
        ]
    now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
    day = 86_400 * 10**9
    span = w.end.value - w.start.value
    step = w.start.value // day if span >= day else w.start.value // (60 * 10**9)
    values = {**r.metrics, **r.drift, "rows": float(r.rows)}
    metrics = [Metric(k, v, now, int(step)) for k, v in values.items() if not math.isnan(v)]
    for i in range(0, max(len(metrics), 1), 1000):
        client.log_batch(
            run_id,
            metrics=metrics[i : i + 1000],
            params=params if i == 0 else [],
            tags=[RunTag(k, v) for k, v in tags.items()] if i == 0 else [],
        )
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _tag_alert(client: MlflowClient, model: Model, results: list[WindowResult], experiment_id: str, table: str) -> str:
    """Set `ALERT_TAG` on the version: the latest alerting window's first alert (JSON), and how many there are."""
    last = [r for r in results if r.alerts][-1]
    a = last.alerts[0]
    value = json.dumps(
        {
            **a.as_dict(),
            "alerts": sum(len(r.alerts) for r in results),
            "run_id": last.run_id,
            "experiment_id": experiment_id,
            "table": table,
        },
        sort_keys=True,
    )
    client.set_model_version_tag(model.name, model.version, ALERT_TAG, value)
    return value


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def _fmt(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in values.items())
