"""Erasure for `mlflow gc`: the deleted runs, logged models and experiments, found and removed for good.

`mlflow gc --backend-store-uri lakehouse:///<lake>` finds what was soft-deleted (`_get_deleted_runs`,
`_get_deleted_logged_models`, deleted experiments through `search_experiments`), deletes the artifacts itself,
then calls `_hard_delete_*` here, as with MLflow's SQL store. A hard delete rewrites the data files holding
the object's rows without them, one table at a time, children first and the object's own row last, so a
crash part way leaves it still listed as deleted and the next `mlflow gc` finishes the job.

Delta keeps the files of earlier versions: until VACUUM removes them (past the tables' retention,
`delta.deletedFileRetentionDuration`, 7 days by default), time travel to a version before the erasure still
reads the rows. After that VACUUM they are gone from every version, and a reproduction that needs them (a
training set of the feature store that read a run's table version, a `versionAsOf` query) fails instead.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from mlflow.entities import LifecycleStage, ViewType
from mlflow.utils.time import get_current_time_millis

from lakehouse import Change

from ._store_experiments import EXPERIMENT_TABLES, experiment_row
from ._store_logged_models import MODEL_TABLES, model_row
from ._store_runs import RUN_TABLES, run_row
from ._trace_writes import delete_traces_now

if TYPE_CHECKING:
    from ._store_state import StoreState

RUN_CHILD_TABLES = ["mlflow.params", "mlflow.tags", "mlflow.metrics", "mlflow.latest_metrics", "mlflow.inputs"]
"""The tables holding a run's data by `run_id`, erased before the run's own row."""
MODEL_CHILD_TABLES = ["mlflow.logged_model_tags", "mlflow.logged_model_params"]


def _erase(store: StoreState, name: str, column: str, values: set[Hashable]) -> None:
    """Commit table `name` without its rows whose `column` is in `values` (the files holding one rewritten)."""

    def plan() -> Change | None:
        table = store._t.tables[name]
        files = sorted({rel for v in values for _, rel in table.hits_where(column, v)})
        if not files:
            return None
        kept = [r for rel in files for r in table.file_rows(rel) if r[column] not in values]
        return Change([kept] if kept else [], files, {"operation": "MLFLOW GC", "erased": len(values)})

    store._t.write(name, plan)


def _erase_owned(store: StoreState, owner: str, children: list[str], column: str, ids: set[Hashable]) -> None:
    """Erase the rows of `ids` (values of `column`) from the `children` tables, then from the `owner` table."""
    if ids:
        for name in [*children, owner]:
            _erase(store, name, column, ids)


def _erase_runs(store: StoreState, run_ids: set[Hashable]) -> None:
    _erase_owned(store, "mlflow.runs", RUN_CHILD_TABLES, "run_id", run_ids)
    for run_id in run_ids:
        store._run_cache.pop(str(run_id), None)


def get_deleted_runs(store: StoreState, older_than=0):
    """The ids of the deleted runs deleted at least `older_than` milliseconds ago."""
    cutoff = get_current_time_millis() - older_than
    with store._lock:
        store._sync(RUN_TABLES)
        rows = store._t.tables["mlflow.runs"].rows_where("lifecycle_stage", LifecycleStage.DELETED)
        return [r["run_id"] for r in rows if r["deleted_time"] is not None and r["deleted_time"] <= cutoff]


def hard_delete_run(store: StoreState, run_id):
    """Erase the run and its params, tags, metric history, latest metrics and inputs (not its artifacts: `mlflow
    gc` deletes those). Any run, as MLflow's SQL store does; `mlflow gc` checks it is deleted first."""
    with store._lock:
        store._sync(RUN_TABLES)
        run_row(store, run_id)
        _erase_runs(store, {run_id})


def get_deleted_logged_models(store: StoreState, older_than=0):
    """The ids of the deleted logged models last updated at least `older_than` milliseconds ago."""
    cutoff = get_current_time_millis() - older_than
    with store._lock:
        store._sync(MODEL_TABLES)
        rows = store._t.tables["mlflow.logged_models"].rows_where("lifecycle_stage", LifecycleStage.DELETED)
        return [r["model_id"] for r in rows if r["last_updated_timestamp"] <= cutoff]


def hard_delete_logged_model(store: StoreState, model_id):
    """Erase the logged model with its tags and params (the metrics logged against it stay in its run's
    history, as the SQL store keeps them in the run's `metrics`)."""
    with store._lock:
        store._sync(MODEL_TABLES)
        model_row(store, model_id)
        _erase_owned(store, "mlflow.logged_models", MODEL_CHILD_TABLES, "model_id", {model_id})


def hard_delete_experiment(store: StoreState, experiment_id):
    """Erase a deleted experiment: its traces, runs (with their data), logged models, tags and the experiment itself;
    its name can then be used again. RESOURCE_DOES_NOT_EXIST unless it exists and is deleted."""
    with store._lock:
        store._sync([*EXPERIMENT_TABLES, *RUN_TABLES, *MODEL_TABLES])
        row = experiment_row(store, experiment_id, ViewType.DELETED_ONLY)
        exp_id = row["experiment_id"]
        delete_traces_now(store, exp_id)  # its traces, with their spans, tags, metadata, assessments, run links
        _erase_runs(store, {r["run_id"] for r in store._t.runs_by_experiment.rows(exp_id)})
        models = {r["model_id"] for r in store._t.models_by_experiment.rows(exp_id)}
        _erase_owned(store, "mlflow.logged_models", MODEL_CHILD_TABLES, "model_id", models)
        _erase(store, "mlflow.experiment_tags", "experiment_id", {exp_id})
        _erase(store, "mlflow.experiments", "experiment_id", {exp_id})
