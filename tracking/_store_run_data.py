"""What is logged to a run: metrics, params and tags (`log_batch` and its one-item forms), tag deletion, a metric's
history, and the run's inputs and outputs (datasets and logged models). The run itself (create, update, delete,
its tag rows) is in `_store_runs`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from mlflow.entities import Metric, Param, RunTag, _DatasetSummary
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.entities.paged_list import PagedList
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_LOGGED_MODELS, MLFLOW_RUN_NAME
from mlflow.utils.search_utils import SearchUtils
from mlflow.utils.validation import (
    _parse_experiment_id,
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_dataset_inputs,
    _validate_metric,
    _validate_param,
    _validate_param_keys_unique,
    _validate_run_id,
    _validate_tag,
    append_to_json_path,
)

from lakehouse import Change, Row

from ._journal import metric_entry, param_row, run_update_entry, tag_row
from ._latest import FOLD_EVERY, HISTORY
from ._store_runs import RUN_TABLES, active_run_row, write_tags
from ._store_search import check_max_results
from ._store_values import check_string, metric_entity, metric_sort_value, whole_long

if TYPE_CHECKING:
    from ._store_state import StoreState

_FLOAT_MAX = 1.7976931348623157e308
MAX_DATASET_SUMMARIES = 1000
"""At most this many dataset summaries per `_search_datasets` call (the SQL store's limit)."""

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
    # the SQL store checks a single metric with its own paths ('value', not 'metrics[0].value')
    _validate_metric(metric.key, metric.value, metric.timestamp, metric.step, path="")
    log_batch(store, run_id, [metric], [], [])


def log_param(store: StoreState, run_id, param):
    # the SQL store checks a single param with its own paths and words a changed value for one param
    check_string(param.key, "key")
    if param.value is not None and not hasattr(param.value, "__len__"):
        # a number: MLflow's own bare TypeError, as the SQL store's (test_store_contract pins it, issue 16 report)
        _validate_param(param.key, param.value)
    _check_types([], [param], [], single=True)
    param = _validate_param(param.key, param.value)
    _log_batch(store, run_id, [], [param], [], one_param=True)


def set_tag(store: StoreState, run_id, tag):
    _validate_run_id(run_id)
    _check_types([], [], [tag], single=True)
    tag = _validate_tag(tag.key, tag.value)
    log_batch(store, run_id, [], [], [tag])


def log_batch(store: StoreState, run_id, metrics, params, tags):
    _log_batch(store, run_id, metrics, params, tags)


def _check_types(metrics: Any, params: Any, tags: Any, *, single: bool = False) -> None:
    """Refuse what MLflow's checks would let through to the tables or fail on deep inside: a batch part that is a
    string or a mapping instead of a list, a key that is not a string, a param or tag value that is not a string
    (None included; MLflow's clients send str(value)). MlflowException(INVALID_PARAMETER_VALUE).

    A part that is None and an item of the wrong entity type are left to MLflow's own (bare) errors, which the
    store contract test pins as the SQL store's answer."""
    for part, items, kind in (("metrics", metrics, Metric), ("params", params, Param), ("tags", tags, RunTag)):
        if items is None:
            continue
        if not isinstance(items, (list, tuple)):
            raise MlflowException(
                f"Invalid value for parameter '{part}' supplied: it must be a list of mlflow.entities."
                f"{kind.__name__}, got {type(items).__name__}.",
                INVALID_PARAMETER_VALUE,
            )
        for i, item in enumerate(items):
            if not isinstance(item, kind):
                continue
            path = "" if single else f"{part}[{i}]"
            check_string(item.key, append_to_json_path(path, "key"))
            if kind is not Metric:
                check_string(item.value, append_to_json_path(path, "value"))


def _log_batch(store: StoreState, run_id, metrics, params, tags, one_param: bool = False) -> None:
    _validate_run_id(run_id)
    _check_types(metrics, params, tags)
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
    metric_rows = [_metric_row(run_id, m) for m in metrics]
    tag_values = {t.key: t.value for t in tags}
    name = tag_values.pop(MLFLOW_RUN_NAME, None)
    with store._lock:
        store._sync(RUN_TABLES)
        active_run_row(store, run_id)
        # A call that writes one table is one commit to it; one that writes several is one journal commit.
        if bool(params) + bool(metric_rows) + bool(tag_values or name is not None) + (name is not None) < 2:
            if params:
                _write_params(store, run_id, params, one_param)
            if metric_rows:
                _write_metrics(store, run_id, metric_rows)
            if tag_values:
                write_tags(store, run_id, tag_values)
            return

        def plan():
            active_run_row(store, run_id)
            rows = [param_row(run_id, p.key, p.value) for p in _new_params(store, run_id, params, one_param)]
            rows.extend(metric_entry(r) for r in metric_rows)
            rows.extend(tag_row(run_id, k, v) for k, v in tag_values.items())
            if name is not None:
                rows.append(run_update_entry(run_id, name=name))
                rows.append(tag_row(run_id, MLFLOW_RUN_NAME, name))
            return rows

        store._t.journal.record(plan)


def _new_params(store: StoreState, run_id: str, params: list[Param], one_param: bool = False) -> list[Param]:
    """The params of `params` the run does not have yet; MlflowException if one would change a logged value
    (worded as the SQL store's `log_param` when `one_param`, else as its `log_batch`)."""
    new, mismatched = [], []
    for p in params:
        hit = store._t.params.get(run_id, p.key)
        if hit is None:
            new.append(p)
        elif hit.row["value"] != p.value:
            mismatched.append({"key": p.key, "old_value": hit.row["value"], "new_value": p.value})
    if mismatched and one_param:
        m = mismatched[0]
        raise MlflowException(
            f"Changing param values is not allowed. Param with key='{m['key']}' was already logged with "
            f"value='{m['old_value']}' for run ID='{run_id}'. Attempted logging new value '{m['new_value']}'.",
            INVALID_PARAMETER_VALUE,
        )
    if mismatched:
        raise MlflowException(
            f"Changing param values is not allowed. Params were already logged='{mismatched}' for run ID='{run_id}'.",
            INVALID_PARAMETER_VALUE,
        )
    return new


def _write_params(store: StoreState, run_id: str, params: list[Param], one_param: bool = False) -> None:
    def plan():
        active_run_row(store, run_id)
        new = [
            {"run_id": run_id, "key": p.key, "value": p.value} for p in _new_params(store, run_id, params, one_param)
        ]
        return Change([new]) if new else None

    store._t.write("mlflow.params", plan, also_refresh=["mlflow.runs"])


def _metric_row(run_id: str, m: Metric) -> Row:
    value = float(m.value)
    if math.isinf(value):
        value = _FLOAT_MAX if value > 0 else -_FLOAT_MAX
    return {
        "run_id": run_id,
        "key": m.key,
        "value": value,
        "timestamp": int(m.timestamp),
        "step": int(m.step or 0),
        "model_id": m.model_id,
        "dataset_name": m.dataset_name,
        "dataset_digest": m.dataset_digest,
    }


def _write_metrics(store: StoreState, run_id: str, rows: list[Row]) -> None:
    def plan():
        new = store._t.journal.new_points(run_id, rows)
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
        for i, d in enumerate(datasets):  # MLflow checks lengths only: a dict source would fail in Arrow
            for field in ("name", "digest", "source_type", "source", "schema", "profile"):
                value = getattr(d.dataset, field)
                check_string(value, f"datasets[{i}].dataset.{field}", optional=field in ("schema", "profile"))
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


def record_logged_model(store: StoreState, run_id, mlflow_model):
    """Append the model's description to the run's `mlflow.log-model.history` tag (MLflow's legacy record of
    the models a run logged), as the SQL store does."""
    from mlflow.models import Model

    if not isinstance(mlflow_model, Model):
        raise TypeError(f"Argument 'mlflow_model' should be mlflow.models.Model, got '{type(mlflow_model)}'")
    model_dict = mlflow_model.get_tags_dict()
    with store._lock:
        store._sync(RUN_TABLES)

        def plan():
            active_run_row(store, run_id)
            hit = store._t.tags.get(run_id, MLFLOW_LOGGED_MODELS)
            value = json.dumps((json.loads(hit.row["value"]) if hit is not None else []) + [model_dict])
            _validate_tag(MLFLOW_LOGGED_MODELS, value)
            row = {"run_id": run_id, "key": MLFLOW_LOGGED_MODELS, "value": value}
            if hit is None:
                return Change([[row]])
            return store._t.replace("mlflow.tags", store._t.tags, [(run_id, MLFLOW_LOGGED_MODELS)], [row])

        store._t.write("mlflow.tags", plan, also_refresh=["mlflow.runs"])


def search_datasets(store: StoreState, experiment_ids):
    """The distinct (experiment, dataset name, digest, context) of the dataset inputs of the experiments' runs,
    at most 1,000, as MLflow's SQL store's `_search_datasets` (what the UI's Datasets filter calls)."""
    wanted = {str(_parse_experiment_id(e)) for e in experiment_ids}
    with store._lock:
        store._sync(RUN_TABLES)
        experiment_of = {r["run_id"]: e for e in wanted for r in store._t.runs_by_experiment.rows(e)}
        summaries = {
            (
                experiment_of[r["run_id"]],
                r["dataset_name"],
                r["dataset_digest"],
                json.loads(r["input_tags"] or "{}").get(MLFLOW_DATASET_CONTEXT),
            )
            for r in store._t.tables["mlflow.inputs"].rows_where("kind", "dataset")
            if r["run_id"] in experiment_of
        }
    ordered = sorted(summaries, key=lambda s: tuple("" if v is None else v for v in s))[:MAX_DATASET_SUMMARIES]
    return [_DatasetSummary(experiment_id=e, name=n, digest=d, context=c) for e, n, d, c in ordered]


def log_outputs(store: StoreState, run_id, models):
    rows = [
        {**_EMPTY_INPUT, "run_id": run_id, "kind": "model_output", "model_id": m.model_id, "step": m.step}
        for m in models
    ]
    _write_inputs(store, run_id, rows)


def _check_one_output_per_model(store: StoreState, run_id: str, rows: list[Row]) -> None:
    """A run has at most one output row per logged model (the SQL store's key of its inputs table): a second
    one, at any step, is BAD_REQUEST and the call writes nothing."""
    outputs = [r["model_id"] for r in rows if r["kind"] == "model_output"]
    if not outputs:
        return
    held = {r["model_id"] for r in store._t.inputs.rows(run_id) if r["kind"] == "model_output"}
    twice = sorted({m for m in outputs if m in held or outputs.count(m) > 1})
    if twice:
        raise MlflowException(
            f"Run {run_id!r} already has logged model(s) {twice} as an output (a run outputs a model once, at one "
            "step); log each model output once.",
            BAD_REQUEST,
        )


def _write_inputs(store: StoreState, run_id: str, rows: list[Row]) -> None:
    with store._lock:
        store._sync(RUN_TABLES)
        active_run_row(store, run_id)

        def plan():
            _check_one_output_per_model(store, run_id, rows)
            new, seen = [], set()
            for r in rows:
                key = store._t.inputs.key(r)
                if key not in seen and store._t.inputs.get(run_id, key) is None:
                    seen.add(key)
                    new.append(r)
            return Change([new]) if new else None

        store._t.write("mlflow.inputs", plan)


def search_evaluation_datasets(
    store: StoreState,
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    max_results: int = 1000,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> PagedList[Any]:
    """`AbstractStore.search_datasets` (MLflow's GenAI evaluation datasets, which the UI's Traces tab lists): a
    lake stores none (`create_dataset` and the rest of that family are refused as not supported), so every search
    is an empty page, after the SQL store's argument checks."""
    check_max_results(max_results)
    SearchUtils.parse_start_offset_from_page_token(page_token)
    return PagedList([], None)
