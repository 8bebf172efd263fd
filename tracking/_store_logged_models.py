"""The tracking store's logged models (MLflow 3's `LoggedModel`): create, get, finalize and delete a model, its tags,
and a model's rows (with its params, tags and the metrics logged against it) as a `LoggedModel`. Searching logged
models is in `_store_search`.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from mlflow.entities import LifecycleStage, LoggedModel, LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import _validate_logged_model_name

from lakehouse import Change, Row

from ._latest import HISTORY
from ._store_experiments import ARTIFACTS_FOLDER, MODELS_FOLDER, check_experiment_active, experiment_row
from ._store_values import check_string, metric_entity

if TYPE_CHECKING:
    from ._store_state import StoreState

MODEL_TABLES = [
    "mlflow.experiments",
    "mlflow.logged_models",
    "mlflow.logged_model_tags",
    "mlflow.logged_model_params",
    "mlflow.metrics",
]
"""What a logged-model call refreshes: a model's experiment, its rows, and the metrics logged against it."""


def model_row(store: StoreState, model_id: str, allow_deleted: bool = True) -> Row:
    hit = store._t.model_by_id.get(model_id, 0)
    if hit is None or (not allow_deleted and hit.row["lifecycle_stage"] == LifecycleStage.DELETED):
        raise MlflowException(f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST)
    return hit.row


def to_model(store: StoreState, row: Row, none_without_metrics: bool = True) -> LoggedModel:
    model_id = row["model_id"]
    metrics = [metric_entity(m, model=True) for m in store._t.tables[HISTORY].rows_where("model_id", model_id)]
    return LoggedModel(
        experiment_id=row["experiment_id"],
        model_id=model_id,
        name=row["name"],
        artifact_location=row["artifact_location"],
        creation_timestamp=row["creation_timestamp"],
        last_updated_timestamp=row["last_updated_timestamp"],
        model_type=row["model_type"],
        source_run_id=row["source_run_id"],
        status=LoggedModelStatus.from_int(row["status"]),
        status_message=row["status_message"],
        tags={r["key"]: r["value"] for r in store._t.model_tags.rows(model_id)},
        params={r["key"]: r["value"] for r in store._t.model_params.rows(model_id)},
        metrics=metrics or (None if none_without_metrics else []),  # None: as the SQL store answers
    )


def check_pairs(items: Any, part: str) -> None:
    """Refuse a tag or param whose key or value is not a string (None included): MLflow's SQL store passes them
    to its database, which refuses None and stores a number; the lake would fail in Arrow."""
    for i, item in enumerate(items or []):
        check_string(item.key, f"{part}[{i}].key")
        check_string(item.value, f"{part}[{i}].value")


def create_logged_model(
    store: StoreState, experiment_id, name=None, source_run_id=None, tags=None, params=None, model_type=None
):
    _validate_logged_model_name(name)
    check_pairs(tags, "tags")
    check_pairs(params, "params")
    with store._lock:
        store._sync(MODEL_TABLES)
        exp = experiment_row(store, experiment_id)
        check_experiment_active(exp)
        model_id = f"m-{uuid.uuid4().hex}"
        now = get_current_time_millis()
        row = {
            "model_id": model_id,
            "experiment_id": exp["experiment_id"],
            "name": name or _generate_random_name(),
            "artifact_location": append_to_uri_path(
                exp["artifact_location"], MODELS_FOLDER, model_id, ARTIFACTS_FOLDER
            ),
            "creation_timestamp": now,
            "last_updated_timestamp": now,
            "model_type": model_type,
            "source_run_id": source_run_id,
            "status": LoggedModelStatus.PENDING.to_int(),
            "status_message": None,
            "lifecycle_stage": LifecycleStage.ACTIVE,
        }
        if params:
            prow = [{"model_id": model_id, "key": p.key, "value": p.value} for p in params]
            store._t.write("mlflow.logged_model_params", lambda: Change([prow]))
        if tags:
            trow = list({t.key: {"model_id": model_id, "key": t.key, "value": t.value} for t in tags}.values())
            store._t.write("mlflow.logged_model_tags", lambda: Change([trow]))
        store._t.write("mlflow.logged_models", lambda: Change([[row]]))
        return to_model(store, row)


def get_logged_model(store: StoreState, model_id, allow_deleted=False):
    with store._lock:
        store._sync(MODEL_TABLES)
        return to_model(store, model_row(store, model_id, allow_deleted))


def _update_model(store: StoreState, model_id: str, change) -> None:
    def plan():
        row = model_row(store, model_id)
        new = {**change(row), "last_updated_timestamp": get_current_time_millis()}
        return store._t.replace("mlflow.logged_models", store._t.model_by_id, [(model_id, 0)], [new])

    store._t.write("mlflow.logged_models", plan)


def finalize_logged_model(store: StoreState, model_id, status):
    if not isinstance(status, LoggedModelStatus):
        raise MlflowException(
            f"Invalid value {status!r} for parameter 'status' supplied: it must be a LoggedModelStatus, one of "
            f"{[s.name for s in LoggedModelStatus]}.",
            INVALID_PARAMETER_VALUE,
        )
    with store._lock:
        store._sync(MODEL_TABLES)
        _update_model(store, model_id, lambda r: {**r, "status": status.to_int()})
        return to_model(store, model_row(store, model_id))  # the commit is applied to our snapshot: the new row


def delete_logged_model(store: StoreState, model_id):
    with store._lock:
        store._sync(MODEL_TABLES)
        _update_model(store, model_id, lambda r: {**r, "lifecycle_stage": LifecycleStage.DELETED})


def set_logged_model_tags(store: StoreState, model_id, tags):
    check_pairs(tags, "tags")
    with store._lock:
        store._sync(MODEL_TABLES)
        model_row(store, model_id)
        values = {t.key: t.value for t in tags}
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]
        store._t.write(
            "mlflow.logged_model_tags",
            lambda: store._t.replace(
                "mlflow.logged_model_tags", store._t.model_tags, [(model_id, k) for k in values], rows
            ),
        )


def log_logged_model_params(store: StoreState, model_id, params):
    """Add params to a logged model. As MLflow's SQL store: no validation of keys or values, a deleted model
    takes them, and a key the model already has (or one given twice) is refused (BAD_REQUEST), nothing written;
    a key or value that is not a string is refused (INVALID_PARAMETER_VALUE), where the SQL store stores a number."""
    check_pairs(params, "params")
    with store._lock:
        store._sync(MODEL_TABLES)

        def plan():
            model_row(store, model_id)
            keys = [p.key for p in params]
            held = [k for k in keys if store._t.model_params.get(model_id, k) is not None]
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if held or twice:
                raise MlflowException(
                    f"Logged model {model_id!r} params are immutable: "
                    + (f"it already has {sorted(set(held))}" if held else f"the call gives {twice} twice")
                    + ". Log each param key once per model.",
                    BAD_REQUEST,
                )
            rows = [{"model_id": model_id, "key": p.key, "value": p.value} for p in params]
            return Change([rows]) if rows else None

        store._t.write("mlflow.logged_model_params", plan)


def delete_logged_model_tag(store: StoreState, model_id, key):
    with store._lock:
        store._sync(MODEL_TABLES)
        model_row(store, model_id)

        missing = MlflowException(
            f"No tag with key {key!r} found for model with ID {model_id!r}.", RESOURCE_DOES_NOT_EXIST
        )
        store._t.delete("mlflow.logged_model_tags", store._t.model_tags, model_id, key, missing)
