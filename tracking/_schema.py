"""The Delta tables of the tracking store: names under the lake root and their (stable) columns.

Every table holds current state, one row per key (no change log to de-duplicate), so a plain read of
any version is the store's state at that version. Times are int64 milliseconds since the epoch (UTC), as
MLflow's entities carry them. `metrics` is the full history; the latest value per key is derived.
"""

from __future__ import annotations

import pyarrow as pa

S, L, D, I = pa.string(), pa.int64(), pa.float64(), pa.int32()

TABLES: dict[str, tuple[pa.Schema, str]] = {
    "mlflow.experiments": (pa.schema([
        ("experiment_id", S), ("name", S), ("artifact_location", S), ("lifecycle_stage", S),
        ("creation_time", L), ("last_update_time", L),
    ]), "MLflow experiments, one row per experiment (deleted ones have lifecycle_stage='deleted')"),
    "mlflow.experiment_tags": (pa.schema([("experiment_id", S), ("key", S), ("value", S)]),
                               "MLflow experiment tags, one row per (experiment_id, key)"),
    "mlflow.runs": (pa.schema([
        ("run_id", S), ("experiment_id", S), ("name", S), ("user_id", S), ("status", S),
        ("start_time", L), ("end_time", L), ("deleted_time", L), ("lifecycle_stage", S), ("artifact_uri", S),
    ]), "MLflow runs, one row per run"),
    "mlflow.params": (pa.schema([("run_id", S), ("key", S), ("value", S)]),
                      "MLflow run parameters (immutable), one row per (run_id, key)"),
    "mlflow.tags": (pa.schema([("run_id", S), ("key", S), ("value", S)]),
                    "MLflow run tags, one row per (run_id, key)"),
    "mlflow.metrics": (pa.schema([
        ("run_id", S), ("key", S), ("value", D), ("timestamp", L), ("step", L),
        ("model_id", S), ("dataset_name", S), ("dataset_digest", S),
    ]), "MLflow metric history, one row per logged point; NaN kept, +-inf stored as +-1.797e308 (as MLflow's "
        "SQL store does)"),
    "mlflow.inputs": (pa.schema([
        ("run_id", S), ("kind", S), ("dataset_name", S), ("dataset_digest", S), ("dataset_source_type", S),
        ("dataset_source", S), ("dataset_schema", S), ("dataset_profile", S), ("input_tags", S),
        ("model_id", S), ("step", L),
    ]), "MLflow run inputs and outputs: kind is 'dataset' (input_tags is a JSON object), 'model_input' or "
        "'model_output'"),
    "mlflow.logged_models": (pa.schema([
        ("model_id", S), ("experiment_id", S), ("name", S), ("artifact_location", S),
        ("creation_timestamp", L), ("last_updated_timestamp", L), ("model_type", S), ("source_run_id", S),
        ("status", I), ("status_message", S), ("lifecycle_stage", S),
    ]), "MLflow 3 logged models, one row per model"),
    "mlflow.logged_model_tags": (pa.schema([("model_id", S), ("key", S), ("value", S)]),
                                 "MLflow logged model tags, one row per (model_id, key)"),
    "mlflow.logged_model_params": (pa.schema([("model_id", S), ("key", S), ("value", S)]),
                                   "MLflow logged model parameters, one row per (model_id, key)"),
}

# -- model registry (issue 4) -------------------------------------------------------------------------------
# Registry tables hold current state like the tracking tables; `registry_events` (the outbox) and
# `webhook_deliveries` / `job_runs` are append-only logs. Each registry change's events are also carried in
# the `commitInfo` of the commit that made the change (key `lakehouseEvents`), so the outbox can be
# rebuilt from the registry tables' logs after a crash.
TABLES.update({
    "mlflow.registered_models": (pa.schema([
        ("name", S), ("creation_time", L), ("last_updated_time", L), ("description", S),
    ]), "MLflow registered models, one row per model"),
    "mlflow.model_versions": (pa.schema([
        ("name", S), ("version", L), ("creation_time", L), ("last_updated_time", L), ("description", S),
        ("user_id", S), ("current_stage", S), ("source", S), ("storage_location", S), ("run_id", S),
        ("run_link", S), ("status", S), ("status_message", S),
    ]), "MLflow model versions, one row per (name, version); deleted ones have current_stage='Deleted_Internal'"),
    "mlflow.registered_model_tags": (pa.schema([("name", S), ("key", S), ("value", S)]),
                                     "MLflow registered model tags, one row per (name, key)"),
    "mlflow.model_version_tags": (pa.schema([("name", S), ("version", L), ("key", S), ("value", S)]),
                                  "MLflow model version tags, one row per (name, version, key)"),
    "mlflow.registered_model_aliases": (pa.schema([("name", S), ("alias", S), ("version", L)]),
                                        "MLflow registered model aliases, one row per (name, alias)"),
    "mlflow.webhooks": (pa.schema([
        ("webhook_id", S), ("name", S), ("description", S), ("url", S), ("events", S), ("status", S),
        ("secret", S), ("creation_timestamp", L), ("last_updated_timestamp", L), ("deleted_timestamp", L),
    ]), "MLflow webhooks, one row per webhook; events is a JSON list of 'entity.action'; secret is "
        "Fernet-encrypted ('fernet:' prefix) when MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is set"),
    "mlflow.registry_events": (pa.schema([
        ("event_id", S), ("event", S), ("name", S), ("version", S), ("payload", S), ("timestamp", L),
        ("source_table", S), ("source_version", L),
    ]), "Registry events (the outbox), one row per event; payload is the MLflow webhook payload as JSON"),
    "mlflow.webhook_deliveries": (pa.schema([
        ("event_id", S), ("subscriber", S), ("attempt", L), ("status", S), ("worker", S), ("delivery_id", S),
        ("timestamp", L), ("lease_until", L), ("next_attempt_at", L), ("response_status", L),
        ("duration_ms", L), ("error", S),
    ]), "Delivery log: one 'in_progress' row when an attempt is claimed and one outcome row "
        "('succeeded', 'failed' = retry scheduled, 'gave_up') per attempt and (event, subscriber)"),
    "mlflow.job_triggers": (pa.schema([
        ("trigger_id", S), ("name", S), ("model_name", S), ("stage", S), ("alias", S), ("callable", S),
        ("command", S), ("timeout_seconds", L), ("creation_timestamp", L), ("deleted_timestamp", L),
    ]), "Local job triggers: run a Python callable or a command (JSON argv) on a registry event"),
    "mlflow.job_runs": (pa.schema([
        ("run_id", S), ("trigger_id", S), ("event_id", S), ("model_name", S), ("version", S), ("stage", S),
        ("status", S), ("exit_code", L), ("start_time", L), ("end_time", L), ("output", S),
    ]), "Runs of triggered jobs, one row per run; output is the tail of stdout+stderr"),
})
