"""The tracking store's runs: create, get, update (status, end time, name), delete and restore a run, the write of
its tags, and a run's rows (info, latest metrics, params, tags, inputs, outputs) assembled as an MLflow `Run`, which
the store caches until one of the run's rows changes. Logging data to a run is in `_store_run_data`.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LifecycleStage,
    LoggedModelInput,
    LoggedModelOutput,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, _get_run_name_from_tags
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import _validate_tag

from lakehouse import Change, Row

from ._journal import run_row_entry, run_update_entry, tag_row
from ._store_experiments import ARTIFACTS_FOLDER, EXPERIMENT_TABLES, check_experiment_active, experiment_row
from ._store_values import check_string, check_unique_keys, epoch_millis, metric_entity

if TYPE_CHECKING:
    from ._store_state import StoreState

RUN_CACHE_SIZE = 5000
"""At most this many `Run` objects are kept per store, least recently used first out."""
RUN_TABLES = ["mlflow.runs", "mlflow.params", "mlflow.tags", "mlflow.metrics", "mlflow.latest_metrics", "mlflow.inputs"]


def run_row(store: StoreState, run_id: str) -> Row:
    hit = store._t.run_by_id.get(run_id, 0)
    if hit is None:
        raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
    return hit.row


def active_run_row(store: StoreState, run_id: str) -> Row:
    row = run_row(store, run_id)
    if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
        raise MlflowException(
            f"The run {run_id} must be in the 'active' state. Current state is {row['lifecycle_stage']}.",
            INVALID_PARAMETER_VALUE,
        )
    return row


def to_run(store: StoreState, run_id: str) -> Run:
    """The run as MLflow's `Run`, from the cache unless a row of the run changed since it was built."""
    cached = store._run_cache.pop(run_id, None)
    if cached is not None:
        store._run_cache[run_id] = cached  # most recently used last
        return cached
    t = store._t
    run = build_run(
        run_row(store, run_id),
        t.latest_metrics.rows(run_id),
        t.params.rows(run_id),
        t.tags.rows(run_id),
        t.inputs.rows(run_id),
    )
    store._run_cache[run_id] = run
    if len(store._run_cache) > RUN_CACHE_SIZE:  # a long-lived server's memory stays bounded
        del store._run_cache[next(iter(store._run_cache))]
    return run


def runs_in_bulk(store: StoreState, run_ids: list[str]) -> list[Run]:
    """The `Run`s of `run_ids` (all existing), read table by table in Arrow (one scan of the row groups their id
    range covers per table) instead of run by run: what a search over many runs builds, chunk by chunk. Not cached."""
    t = store._t
    grouped: dict[str, dict[str, list[Row]]] = {}
    for name in ("mlflow.runs", "mlflow.latest_metrics", "mlflow.params", "mlflow.tags", "mlflow.inputs"):
        table = t.tables[name]
        rows = table.arrow_where("run_id", run_ids, table.schema.names, cache=False).to_pylist()
        by_run: dict[str, list[Row]] = {}
        for r in rows:
            by_run.setdefault(r["run_id"], []).append(r)
        grouped[name] = by_run
    none: list[Row] = []
    return [
        build_run(
            grouped["mlflow.runs"][run_id][0],
            t.latest_metrics.merged(run_id, grouped["mlflow.latest_metrics"].get(run_id, none)),
            grouped["mlflow.params"].get(run_id, none),
            grouped["mlflow.tags"].get(run_id, none),
            grouped["mlflow.inputs"].get(run_id, none),
        )
        for run_id in run_ids
    ]


def build_run(row: Row, latest: list[Row], params: list[Row], tags: list[Row], inputs: list[Row]) -> Run:
    """MLflow's `Run` of a run's row and its latest metric, param, tag and input rows."""
    info = RunInfo(
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        user_id=row["user_id"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        lifecycle_stage=row["lifecycle_stage"],
        artifact_uri=row["artifact_uri"],
        run_name=row["name"],
    )
    metrics = [metric_entity(m) for m in latest]
    datasets, model_inputs, model_outputs = [], [], []
    for r in inputs:
        if r["kind"] == "dataset":
            ds = Dataset(
                name=r["dataset_name"],
                digest=r["dataset_digest"],
                source_type=r["dataset_source_type"],
                source=r["dataset_source"],
                schema=r["dataset_schema"],
                profile=r["dataset_profile"],
            )
            tags_ = [InputTag(k, v) for k, v in json.loads(r["input_tags"] or "{}").items()]
            datasets.append(DatasetInput(dataset=ds, tags=tags_))
        elif r["kind"] == "model_input":
            model_inputs.append(LoggedModelInput(model_id=r["model_id"]))
        elif r["kind"] == "model_output":
            model_outputs.append(LoggedModelOutput(model_id=r["model_id"], step=r["step"]))
    return Run(
        info,
        RunData(
            metrics=metrics,
            params=[Param(r["key"], r["value"]) for r in params],
            tags=[RunTag(r["key"], r["value"]) for r in tags],
        ),
        RunInputs(dataset_inputs=datasets, model_inputs=model_inputs),
        RunOutputs(model_outputs),
    )


def create_run(store: StoreState, experiment_id, user_id, start_time, tags, run_name):
    tags = list(tags or [])
    run_name_tag = _get_run_name_from_tags(tags)
    if run_name and run_name_tag and run_name != run_name_tag:
        raise MlflowException(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{run_name}', mlflow.runName='{run_name_tag}').",
            INVALID_PARAMETER_VALUE,
        )
    run_name = run_name or run_name_tag or _generate_random_name()
    if not run_name_tag:
        tags.append(RunTag(key=MLFLOW_RUN_NAME, value=run_name))
    check_string(run_name, "run_name", optional=True)
    tags = [_validate_tag(t.key, t.value) for t in tags]
    for t in tags:
        check_string(t.value, "value")
    check_unique_keys(tags, "create_run")
    start_time = epoch_millis(start_time, "start_time")  # before any write: nothing half-created
    if user_id is None:  # MLflow's RunInfo refuses it; the SQL store answers with this code and message
        raise MlflowException("user_id cannot be None", INTERNAL_ERROR)
    run_id = uuid.uuid4().hex
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        exp = experiment_row(store, experiment_id)
        check_experiment_active(exp)
        row = {
            "run_id": run_id,
            "experiment_id": exp["experiment_id"],
            "name": run_name,
            "user_id": user_id,
            "status": RunStatus.to_string(RunStatus.RUNNING),
            "start_time": start_time,
            "end_time": None,
            "deleted_time": None,
            "lifecycle_stage": LifecycleStage.ACTIVE,
            "artifact_uri": append_to_uri_path(exp["artifact_location"], run_id, ARTIFACTS_FOLDER),
        }
        # The run and its tags: one journal commit (`_journal`), so the run exists whole or not at all.
        tag_rows = {t.key: tag_row(run_id, t.key, t.value) for t in tags}
        store._t.journal.record(lambda: [run_row_entry(row), *tag_rows.values()])
        # Built from what was committed, not read back: once the journal commit is made the run exists, even when
        # its applies lost their races and are left to the next refresh (a 503 would make a client create it twice).
        run = build_run(row, [], [], list(tag_rows.values()), [])
        return Run(run.info, run.data, run.inputs)  # no outputs, as the SQL store's create_run answers


def get_run(store: StoreState, run_id):
    # no id syntax check: the SQL store answers any id it does not hold with RESOURCE_DOES_NOT_EXIST
    with store._lock:
        store._sync(RUN_TABLES)
        return to_run(store, run_id)


def _status_string(run_status: Any) -> str:
    """RunStatus's name of `run_status`; the SQL store's MlflowException(INTERNAL_ERROR) for anything else."""
    try:
        return RunStatus.to_string(run_status)
    except Exception as exc:  # noqa: BLE001 - MLflow raises a bare Exception for an unknown status
        raise MlflowException(str(exc), INTERNAL_ERROR) from None


def update_run_info(store: StoreState, run_id, run_status, end_time, run_name):
    status = _status_string(run_status) if run_status is not None else None  # checked before any write
    end_time = epoch_millis(end_time, "end_time")
    check_string(run_name, "run_name", optional=True)
    with store._lock:
        store._sync(RUN_TABLES)

        def plan():
            row = active_run_row(store, run_id)
            new = dict(row)
            if status is not None:
                new["status"] = status
            if end_time is not None:
                new["end_time"] = end_time
            if run_name:
                new["name"] = run_name
            return store._t.replace("mlflow.runs", store._t.run_by_id, [(run_id, 0)], [new])

        if not run_name:
            store._t.write("mlflow.runs", plan)
            return to_run(store, run_id).info

        def journal_plan():  # the row and the name's tag: two tables, so one journal commit
            active_run_row(store, run_id)
            fields: dict[str, object] = {"name": run_name}
            if status is not None:
                fields["status"] = status
            if end_time is not None:
                fields["end_time"] = end_time
            return [run_update_entry(run_id, **fields), tag_row(run_id, MLFLOW_RUN_NAME, run_name)]

        store._t.journal.record(journal_plan)
        return to_run(store, run_id).info


def _set_run_lifecycle(store: StoreState, run_id: str, stage: str) -> None:
    def plan():
        row = run_row(store, run_id)
        new = {
            **row,
            "lifecycle_stage": stage,
            "deleted_time": get_current_time_millis() if stage == LifecycleStage.DELETED else None,
        }
        return store._t.replace("mlflow.runs", store._t.run_by_id, [(run_id, 0)], [new])

    with store._lock:
        store._t.write("mlflow.runs", plan)


def delete_run(store: StoreState, run_id):
    _set_run_lifecycle(store, run_id, LifecycleStage.DELETED)


def restore_run(store: StoreState, run_id):
    _set_run_lifecycle(store, run_id, LifecycleStage.ACTIVE)


def write_tags(store: StoreState, run_id: str, tags: dict[str, str]) -> None:
    """Set the run's tags `tags` (key -> value), replacing the rows of keys already set; no commit if unchanged."""
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]

    def plan():
        unchanged = all(
            (hit := store._t.tags.get(run_id, k)) is not None and hit.row["value"] == v for k, v in tags.items()
        )
        if unchanged:
            return None
        existing = [(run_id, k) for k in tags if store._t.tags.get(run_id, k) is not None]
        if not existing:
            return Change([rows])
        return store._t.replace("mlflow.tags", store._t.tags, existing, rows)

    store._t.write("mlflow.tags", plan)
