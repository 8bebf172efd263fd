"""What is logged to a run: metrics, params and tags (`log_batch` and its one-item forms), tag deletion, a metric's
history, and the run's inputs and outputs (datasets and logged models). The run itself (create, update, delete,
its tag rows) is in `_store_runs`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.utils.search_utils import SearchUtils
from mlflow.utils.validation import (
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_dataset_inputs,
    _validate_metric,
    _validate_param_keys_unique,
    _validate_run_id,
    _validate_tag,
    append_to_json_path,
)

from lakehouse import Change, Row

from ._latest import FOLD_EVERY, HISTORY, order
from ._store_runs import RUN_TABLES, active_run_row, update_run_info, write_tags
from ._store_values import metric_entity, metric_sort_value, whole_long
from ._tables import metric_point

if TYPE_CHECKING:
    from ._store_state import StoreState

_FLOAT_MAX = 1.7976931348623157e308

_EMPTY_INPUT: Row = {
    "dataset_name": None,
    "dataset_digest": None,
    "dataset_source_type": None,
    "dataset_source": None,
    "dataset_schema": None,
    "dataset_profile": None,
    "input_tags": None,
    "model_id": None,
    "step": None,
}


def log_metric(store: StoreState, run_id, metric):
    log_batch(store, run_id, [metric], [], [])


def log_param(store: StoreState, run_id, param):
    log_batch(store, run_id, [], [param], [])


def set_tag(store: StoreState, run_id, tag):
    _validate_run_id(run_id)
    tag = _validate_tag(tag.key, tag.value)
    log_batch(store, run_id, [], [], [tag])


def log_batch(store: StoreState, run_id, metrics, params, tags):
    _validate_run_id(run_id)
    metrics, params, tags = _validate_batch_log_data(metrics, params, tags)
    _validate_batch_log_limits(metrics, params, tags)
    _validate_param_keys_unique(params)
    single = len(metrics) == 1
    for i, m in enumerate(metrics):
        path = "" if single else f"metrics[{i}]"
        _validate_metric(m.key, m.value, m.timestamp, m.step, path=path)
        whole = f"metric '{m.key}': it must be a whole number that fits in a long (64-bit integer)"
        whole_long(m.timestamp, append_to_json_path(path, "timestamp"), whole)
        whole_long(m.step or 0, append_to_json_path(path, "step"), whole)
    with store._lock:
        store._sync(RUN_TABLES)
        run = active_run_row(store, run_id)
        if params:
            _write_params(store, run_id, params)
        if metrics:
            _write_metrics(store, run_id, metrics)
        if tags:
            tag_values = {t.key: t.value for t in tags}
            name = tag_values.get(MLFLOW_RUN_NAME)
            if name is not None:
                update_run_info(store, run_id, RunStatus.from_string(run["status"]), run["end_time"], name)
                tag_values.pop(MLFLOW_RUN_NAME)
            if tag_values:
                write_tags(store, run_id, tag_values)


def _write_params(store: StoreState, run_id: str, params: list[Param]) -> None:
    def plan():
        active_run_row(store, run_id)
        new, mismatched = [], []
        for p in params:
            hit = store._t.params.get(run_id, p.key)
            if hit is None:
                new.append({"run_id": run_id, "key": p.key, "value": p.value})
            elif hit.row["value"] != p.value:
                mismatched.append({"key": p.key, "old_value": hit.row["value"], "new_value": p.value})
        if mismatched:
            raise MlflowException(
                f"Changing param values is not allowed. Params were already logged='{mismatched}' "
                f"for run ID='{run_id}'.",
                INVALID_PARAMETER_VALUE,
            )
        return Change([new]) if new else None

    store._t.write("mlflow.params", plan, also_refresh=["mlflow.runs"])


def _write_metrics(store: StoreState, run_id: str, metrics: list[Metric]) -> None:
    rows, seen = [], set()
    for m in metrics:
        value = float(m.value)
        if math.isinf(value):
            value = _FLOAT_MAX if value > 0 else -_FLOAT_MAX
        row: Row = {
            "run_id": run_id,
            "key": m.key,
            "value": value,
            "timestamp": int(m.timestamp),
            "step": int(m.step or 0),
            "model_id": m.model_id,
            "dataset_name": m.dataset_name,
            "dataset_digest": m.dataset_digest,
        }
        point = metric_point(row)
        if point not in seen:
            seen.add(point)
            rows.append((point, row))

    def plan():
        # A point above the key's latest (step, timestamp, value) cannot repeat one logged before: only points at
        # or below it (re-logged or out of order) need the run's history, read once per plan.
        history: set | None = None
        new = []
        for point, row in rows:
            latest = store._t.latest_metrics.get(run_id, row["key"])
            if latest is not None and order(row) <= order(latest):
                if history is None:
                    history = {metric_point(r) for r in store._t.tables[HISTORY].rows_where("run_id", run_id)}
                if point in history:
                    continue
            new.append(row)
        return Change([new]) if new else None

    if store._t.write(HISTORY, plan) and store._t.latest_metrics.lag() >= FOLD_EVERY:
        store._t.latest_metrics.fold_in()


def delete_tag(store: StoreState, run_id, key):
    with store._lock:
        store._sync(RUN_TABLES)
        active_run_row(store, run_id)

        missing = MlflowException(f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST)
        store._t.delete("mlflow.tags", store._t.tags, run_id, key, missing)


def get_metric_history(store: StoreState, run_id, metric_key, max_results=None, page_token=None):
    with store._lock:
        store._sync(["mlflow.runs", HISTORY])  # an unknown run has no history (as in the SQL store)
        rows = [r for r in store._t.tables[HISTORY].rows_where("run_id", run_id) if r["key"] == metric_key]
    rows.sort(key=lambda r: (r["timestamp"], r["step"], metric_sort_value(r["value"])))
    offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    end = len(rows) if max_results is None else offset + max_results
    token = SearchUtils.create_page_token(end) if end < len(rows) else None
    return PagedList([metric_entity(r) for r in rows[offset:end]], token)


def log_inputs(store: StoreState, run_id, datasets=None, models=None):
    _validate_run_id(run_id)
    if datasets is not None:
        if not isinstance(datasets, list):
            raise TypeError(f"Argument 'datasets' should be a list, got '{type(datasets)}'")
        _validate_dataset_inputs(datasets)
    rows: list[Row] = []
    for d in datasets or []:
        ds = d.dataset
        rows.append(
            {
                "run_id": run_id,
                "kind": "dataset",
                "dataset_name": ds.name,
                "dataset_digest": ds.digest,
                "dataset_source_type": ds.source_type,
                "dataset_source": ds.source,
                "dataset_schema": ds.schema,
                "dataset_profile": ds.profile,
                "input_tags": json.dumps({t.key: t.value for t in d.tags or []}),
                "model_id": None,
                "step": None,
            }
        )
    for m in models or []:
        rows.append({**_EMPTY_INPUT, "run_id": run_id, "kind": "model_input", "model_id": m.model_id})
    _write_inputs(store, run_id, rows)


def log_outputs(store: StoreState, run_id, models):
    rows = [
        {**_EMPTY_INPUT, "run_id": run_id, "kind": "model_output", "model_id": m.model_id, "step": m.step}
        for m in models
    ]
    _write_inputs(store, run_id, rows)


def _write_inputs(store: StoreState, run_id: str, rows: list[Row]) -> None:
    with store._lock:
        store._sync(RUN_TABLES)
        active_run_row(store, run_id)

        def plan():
            new, seen = [], set()
            for r in rows:
                key = store._t.inputs.key(r)
                if key not in seen and store._t.inputs.get(run_id, key) is None:
                    seen.add(key)
                    new.append(r)
            return Change([new]) if new else None

        store._t.write("mlflow.inputs", plan)
