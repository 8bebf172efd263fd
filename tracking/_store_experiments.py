"""The tracking store's experiments: the default experiment, create/get/rename/delete/restore, experiment tags, and
an experiment row as an MLflow `Experiment`; also the artifact layout under an experiment's artifact location, which
runs and logged models extend. Searching experiments is in `_store_search`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlflow.entities import Experiment, ExperimentTag, LifecycleStage, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local
from mlflow.utils.validation import (
    _parse_experiment_id,
    _validate_experiment_artifact_location_length,
    _validate_experiment_name,
    _validate_experiment_tag,
)

from lakehouse import Change, Row

from ._store_values import check_string, check_unique_keys

if TYPE_CHECKING:
    from ._store_state import StoreState

DEFAULT_EXPERIMENT_ID = "0"
ARTIFACTS_FOLDER = "artifacts"
"""A run's artifacts are at `<experiment location>/<run id>/artifacts` (MLflow's SQL store layout)."""
MODELS_FOLDER = "models"
"""A logged model's artifacts are at `<experiment location>/models/<model id>/artifacts`."""

EXPERIMENT_TABLES = ["mlflow.experiments", "mlflow.experiment_tags"]


def create_default_experiment(store: StoreState) -> None:
    """Create experiment "0" ("Default") unless it exists (MLflow's `start_run()` needs it)."""

    def plan():
        if store._t.experiment_by_id.get(DEFAULT_EXPERIMENT_ID, 0) is not None:
            return None
        now = get_current_time_millis()
        return Change(
            [
                [
                    {
                        "experiment_id": DEFAULT_EXPERIMENT_ID,
                        "name": Experiment.DEFAULT_EXPERIMENT_NAME,
                        "artifact_location": append_to_uri_path(store.artifact_root_uri, DEFAULT_EXPERIMENT_ID),
                        "lifecycle_stage": LifecycleStage.ACTIVE,
                        "creation_time": now,
                        "last_update_time": now,
                    }
                ]
            ]
        )

    store._t.write("mlflow.experiments", plan)


def experiment_row(store: StoreState, experiment_id: Any, view_type: int = ViewType.ALL) -> Row:
    """The row of `experiment_id` (None: the default experiment) if its stage is in `view_type`, or
    MlflowException(RESOURCE_DOES_NOT_EXIST)."""
    exp_id = str(_parse_experiment_id(experiment_id or DEFAULT_EXPERIMENT_ID))
    hit = store._t.experiment_by_id.get(exp_id, 0)
    if hit is None or hit.row["lifecycle_stage"] not in LifecycleStage.view_type_to_stages(view_type):
        raise MlflowException(f"No Experiment with id={exp_id} exists", RESOURCE_DOES_NOT_EXIST)
    return hit.row


def to_experiment(store: StoreState, row: Row) -> Experiment:
    tags = [ExperimentTag(r["key"], r["value"]) for r in store._t.experiment_tags.rows(row["experiment_id"])]
    return Experiment(
        experiment_id=row["experiment_id"],
        name=row["name"],
        artifact_location=row["artifact_location"],
        lifecycle_stage=row["lifecycle_stage"],
        tags=tags,
        creation_time=row["creation_time"],
        last_update_time=row["last_update_time"],
    )


def check_experiment_active(row: Row) -> None:
    if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
        raise MlflowException(
            f"The experiment {row['experiment_id']} must be in the 'active' state. "
            f"Current state is {row['lifecycle_stage']}.",
            INVALID_PARAMETER_VALUE,
        )


def create_experiment(store: StoreState, name, artifact_location=None, tags=None):
    _validate_experiment_name(name)
    check_string(artifact_location, "artifact_location", optional=True)
    if artifact_location:
        artifact_location = resolve_uri_if_local(artifact_location)
        _validate_experiment_artifact_location_length(artifact_location)
    for tag in tags or []:
        _validate_experiment_tag(tag.key, tag.value)
        check_string(tag.value, "value")
    check_unique_keys(tags, "create_experiment")

    def plan():
        if store._t.experiment_by_name.groups.get(name):
            raise MlflowException(f"Experiment(name={name}) already exists.", RESOURCE_ALREADY_EXISTS)
        ids = [int(str(i)) for i in store._t.experiment_by_id.groups]
        exp_id = str(max(ids, default=-1) + 1)  # the next free id: decided by the snapshot the commit lands on
        now = get_current_time_millis()
        return Change(
            [
                [
                    {
                        "experiment_id": exp_id,
                        "name": name,
                        "artifact_location": artifact_location or append_to_uri_path(store.artifact_root_uri, exp_id),
                        "lifecycle_stage": LifecycleStage.ACTIVE,
                        "creation_time": now,
                        "last_update_time": now,
                    }
                ]
            ]
        )

    with store._lock:
        store._t.write("mlflow.experiments", plan)
        # The commit is applied to our snapshot, and the plan refused a taken name: the name's one id is ours.
        (exp_id,) = store._t.experiment_by_name.groups[name]
        if tags:
            _write_experiment_tags(store, str(exp_id), {t.key: t.value for t in tags})
    return str(exp_id)


def _write_experiment_tags(store: StoreState, exp_id: str, tags: dict[str, str]) -> None:
    rows = [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()]
    store._t.write(
        "mlflow.experiment_tags",
        lambda: store._t.replace("mlflow.experiment_tags", store._t.experiment_tags, [(exp_id, k) for k in tags], rows),
    )


def get_experiment(store: StoreState, experiment_id):
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        return to_experiment(store, experiment_row(store, experiment_id))


def get_experiment_by_name(store: StoreState, experiment_name):
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        ids = store._t.experiment_by_name.groups.get(experiment_name)
        if not ids:
            return None
        return to_experiment(store, experiment_row(store, next(iter(ids))))


def _update_experiment(store: StoreState, experiment_id, view_type: int, change) -> None:
    def plan():
        row = experiment_row(store, experiment_id, view_type)
        new = change(row)
        new["last_update_time"] = get_current_time_millis()
        return store._t.replace("mlflow.experiments", store._t.experiment_by_id, [(row["experiment_id"], 0)], [new])

    store._t.write("mlflow.experiments", plan)


def delete_experiment(store: StoreState, experiment_id):
    with store._lock:
        _update_experiment(
            store, experiment_id, ViewType.ACTIVE_ONLY, lambda r: {**r, "lifecycle_stage": LifecycleStage.DELETED}
        )
        _set_runs_lifecycle(store, str(_parse_experiment_id(experiment_id)), LifecycleStage.DELETED)


def restore_experiment(store: StoreState, experiment_id):
    with store._lock:
        _update_experiment(
            store, experiment_id, ViewType.DELETED_ONLY, lambda r: {**r, "lifecycle_stage": LifecycleStage.ACTIVE}
        )
        _set_runs_lifecycle(store, str(_parse_experiment_id(experiment_id)), LifecycleStage.ACTIVE)


def _set_runs_lifecycle(store: StoreState, exp_id: str, stage: str) -> None:
    """Move every run of the experiment to `stage` (its runs follow a deleted or restored experiment)."""

    def plan():
        now = get_current_time_millis()
        rows = store._t.runs_by_experiment.rows(exp_id)
        if not rows:
            return None
        new = [
            {**r, "lifecycle_stage": stage, "deleted_time": now if stage == LifecycleStage.DELETED else None}
            for r in rows
        ]
        return store._t.replace("mlflow.runs", store._t.run_by_id, [(r["run_id"], 0) for r in rows], new)

    store._t.write("mlflow.runs", plan)


def rename_experiment(store: StoreState, experiment_id, new_name):
    _validate_experiment_name(new_name)

    def change(row):
        if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
            raise MlflowException("Cannot rename a non-active experiment.", INVALID_STATE)
        others = set(store._t.experiment_by_name.groups.get(new_name, {})) - {row["experiment_id"]}
        if others:  # the SQL store's unique-constraint violation surfaces as BAD_REQUEST
            raise MlflowException(f"Experiment(name={new_name}) already exists.", BAD_REQUEST)
        return {**row, "name": new_name}

    with store._lock:
        _update_experiment(store, experiment_id, ViewType.ALL, change)


def set_experiment_tag(store: StoreState, experiment_id, tag):
    _validate_experiment_tag(tag.key, tag.value)
    check_string(tag.value, "value")
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        row = experiment_row(store, experiment_id)
        check_experiment_active(row)
        _write_experiment_tags(store, row["experiment_id"], {tag.key: tag.value})


def delete_experiment_tag(store: StoreState, experiment_id, key):
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        row = experiment_row(store, experiment_id)
        check_experiment_active(row)
        missing = MlflowException(
            f"No tag with name: {key} in experiment with id {experiment_id}", RESOURCE_DOES_NOT_EXIST
        )
        store._t.delete("mlflow.experiment_tags", store._t.experiment_tags, row["experiment_id"], key, missing)
