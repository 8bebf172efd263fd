"""The Delta tables of the tracking store: names under the lake root and their (stable) columns.

Every table holds current state, one row per key (no change log to de-duplicate), so a plain read of
any version is the store's state at that version. Times are int64 milliseconds since the epoch (UTC), as
MLflow's entities carry them. `metrics` is the full history, a cold table (never held in memory, clustered by
`run_id`, read by statistics), and so are the other run-keyed tables (`COLD_TABLES`); `latest_metrics` holds the latest value per (run, key) as MLflow's SQL store's
table of that name does, derived from `metrics` up to the version its `txn` watermark names (`_latest`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

STRING, LONG, DOUBLE, INT = pa.string(), pa.int64(), pa.float64(), pa.int32()

TABLES: dict[str, tuple[pa.Schema, str]] = {
    "mlflow.experiments": (
        pa.schema(
            [
                ("experiment_id", STRING),
                ("name", STRING),
                ("artifact_location", STRING),
                ("lifecycle_stage", STRING),
                ("creation_time", LONG),
                ("last_update_time", LONG),
            ]
        ),
        "MLflow experiments, one row per experiment (deleted ones have lifecycle_stage='deleted')",
    ),
    "mlflow.experiment_tags": (
        pa.schema([("experiment_id", STRING), ("key", STRING), ("value", STRING)]),
        "MLflow experiment tags, one row per (experiment_id, key)",
    ),
    "mlflow.runs": (
        pa.schema(
            [
                ("run_id", STRING),
                ("experiment_id", STRING),
                ("name", STRING),
                ("user_id", STRING),
                ("status", STRING),
                ("start_time", LONG),
                ("end_time", LONG),
                ("deleted_time", LONG),
                ("lifecycle_stage", STRING),
                ("artifact_uri", STRING),
            ]
        ),
        "MLflow runs, one row per run",
    ),
    "mlflow.params": (
        pa.schema([("run_id", STRING), ("key", STRING), ("value", STRING)]),
        "MLflow run parameters (immutable), one row per (run_id, key)",
    ),
    "mlflow.tags": (
        pa.schema([("run_id", STRING), ("key", STRING), ("value", STRING)]),
        "MLflow run tags, one row per (run_id, key)",
    ),
    "mlflow.metrics": (
        pa.schema(
            [
                ("run_id", STRING),
                ("key", STRING),
                ("value", DOUBLE),
                ("timestamp", LONG),
                ("step", LONG),
                ("model_id", STRING),
                ("dataset_name", STRING),
                ("dataset_digest", STRING),
            ]
        ),
        "MLflow metric history, one row per logged point; NaN kept, +-inf stored as +-1.797e308 (as MLflow's "
        "SQL store does)",
    ),
    "mlflow.latest_metrics": (
        pa.schema([("run_id", STRING), ("key", STRING), ("value", DOUBLE), ("timestamp", LONG), ("step", LONG)]),
        "MLflow latest metric values, one row per (run_id, key): the greatest (step, timestamp, value), as MLflow's "
        "SQL store keeps them; derived from mlflow.metrics up to the version in its txn action",
    ),
    "mlflow.inputs": (
        pa.schema(
            [
                ("run_id", STRING),
                ("kind", STRING),
                ("dataset_name", STRING),
                ("dataset_digest", STRING),
                ("dataset_source_type", STRING),
                ("dataset_source", STRING),
                ("dataset_schema", STRING),
                ("dataset_profile", STRING),
                ("input_tags", STRING),
                ("model_id", STRING),
                ("step", LONG),
            ]
        ),
        "MLflow run inputs and outputs: kind is 'dataset' (input_tags is a JSON object), 'model_input' or "
        "'model_output'",
    ),
    "mlflow.logged_models": (
        pa.schema(
            [
                ("model_id", STRING),
                ("experiment_id", STRING),
                ("name", STRING),
                ("artifact_location", STRING),
                ("creation_timestamp", LONG),
                ("last_updated_timestamp", LONG),
                ("model_type", STRING),
                ("source_run_id", STRING),
                ("status", INT),
                ("status_message", STRING),
                ("lifecycle_stage", STRING),
            ]
        ),
        "MLflow 3 logged models, one row per model",
    ),
    "mlflow.logged_model_tags": (
        pa.schema([("model_id", STRING), ("key", STRING), ("value", STRING)]),
        "MLflow logged model tags, one row per (model_id, key)",
    ),
    "mlflow.logged_model_params": (
        pa.schema([("model_id", STRING), ("key", STRING), ("value", STRING)]),
        "MLflow logged model parameters, one row per (model_id, key)",
    ),
}

TABLES["mlflow.journal"] = (
    pa.schema(
        [
            ("version", LONG),
            ("run_id", STRING),
            ("kind", STRING),
            ("key", STRING),
            ("value", STRING),
            ("metric_value", DOUBLE),
            ("timestamp", LONG),
            ("step", LONG),
            ("model_id", STRING),
            ("dataset_name", STRING),
            ("dataset_digest", STRING),
        ]
    ),
    "The rows of the last tracking calls that write several run tables (a log_batch, a create_run with its tags), "
    "each call one commit; applied to runs, params, tags and metrics (their txn watermark), then removed",
)

TABLE_CONFIGURATION: dict[str, dict[str, str]] = {
    "mlflow.journal": {
        "delta.deletedFileRetentionDuration": "interval 1 hours",
        "delta.logRetentionDuration": "interval 1 days",
    },
}
"""Table properties set at creation. The journal is transient (its rows live until applied), and nobody time
travels it: its removed files and old commits need not be kept for a week and a month."""

UPDATED_MERGE_ROWS = 65_536
"""The largest compacted file of a cold table whose rows are updated (runs, tags, latest values): an update of an
old run rewrites the file holding it, here at most about 10 MB of Arrow (tens of milliseconds)."""

COLD_TABLES: dict[str, dict[str, Any]] = {
    "mlflow.metrics": {"keep_rows": False, "cluster_by": "run_id", "stats_columns": ("run_id", "model_id")},
    "mlflow.runs": {
        "keep_rows": False,
        "cluster_by": "run_id",
        "stats_columns": ("run_id", "experiment_id"),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.params": {"keep_rows": False, "cluster_by": "run_id", "stats_columns": ("run_id",)},
    "mlflow.inputs": {"keep_rows": False, "cluster_by": "run_id", "stats_columns": ("run_id",)},
    "mlflow.tags": {
        "keep_rows": False,
        "cluster_by": "run_id",
        "stats_columns": ("run_id",),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.latest_metrics": {
        "keep_rows": False,
        "cluster_by": "run_id",
        "stats_columns": ("run_id",),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
}
"""`LeanTable` options of the tables a process never holds whole: every run-keyed table, clustered by run id
and read by run on demand (see `lakehouse._log_cold`), so a process's memory follows the runs it reads, never
the history."""

# -- model registry (issue 4) -------------------------------------------------------------------------------
# Registry tables hold current state like the tracking tables; `registry_events` (the outbox) and
# `webhook_deliveries` / `job_runs` are append-only logs. Each registry change's events are also carried in
# the `commitInfo` of the commit that made the change (key `lakehouseEvents`), so the outbox can be
# rebuilt from the registry tables' logs after a crash.
TABLES.update(
    {
        "mlflow.registered_models": (
            pa.schema(
                [
                    ("name", STRING),
                    ("creation_time", LONG),
                    ("last_updated_time", LONG),
                    ("description", STRING),
                ]
            ),
            "MLflow registered models, one row per model",
        ),
        "mlflow.model_versions": (
            pa.schema(
                [
                    ("name", STRING),
                    ("version", LONG),
                    ("creation_time", LONG),
                    ("last_updated_time", LONG),
                    ("description", STRING),
                    ("user_id", STRING),
                    ("current_stage", STRING),
                    ("source", STRING),
                    ("storage_location", STRING),
                    ("run_id", STRING),
                    ("run_link", STRING),
                    ("status", STRING),
                    ("status_message", STRING),
                ]
            ),
            "MLflow model versions, one row per (name, version); deleted ones have current_stage='Deleted_Internal'",
        ),
        "mlflow.registered_model_tags": (
            pa.schema([("name", STRING), ("key", STRING), ("value", STRING)]),
            "MLflow registered model tags, one row per (name, key)",
        ),
        "mlflow.model_version_tags": (
            pa.schema([("name", STRING), ("version", LONG), ("key", STRING), ("value", STRING)]),
            "MLflow model version tags, one row per (name, version, key)",
        ),
        "mlflow.registered_model_aliases": (
            pa.schema([("name", STRING), ("alias", STRING), ("version", LONG)]),
            "MLflow registered model aliases, one row per (name, alias)",
        ),
        "mlflow.webhooks": (
            pa.schema(
                [
                    ("webhook_id", STRING),
                    ("name", STRING),
                    ("description", STRING),
                    ("url", STRING),
                    ("events", STRING),
                    ("status", STRING),
                    ("secret", STRING),
                    ("creation_timestamp", LONG),
                    ("last_updated_timestamp", LONG),
                    ("deleted_timestamp", LONG),
                ]
            ),
            "MLflow webhooks, one row per webhook; events is a JSON list of 'entity.action'; secret is "
            "Fernet-encrypted ('fernet:' prefix) when MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is set",
        ),
        "mlflow.registry_events": (
            pa.schema(
                [
                    ("event_id", STRING),
                    ("event", STRING),
                    ("name", STRING),
                    ("version", STRING),
                    ("payload", STRING),
                    ("timestamp", LONG),
                    ("source_table", STRING),
                    ("source_version", LONG),
                ]
            ),
            "Registry events (the outbox), one row per event; payload is the MLflow webhook payload as JSON",
        ),
        "mlflow.webhook_deliveries": (
            pa.schema(
                [
                    ("event_id", STRING),
                    ("subscriber", STRING),
                    ("attempt", LONG),
                    ("status", STRING),
                    ("worker", STRING),
                    ("delivery_id", STRING),
                    ("timestamp", LONG),
                    ("lease_until", LONG),
                    ("next_attempt_at", LONG),
                    ("response_status", LONG),
                    ("duration_ms", LONG),
                    ("error", STRING),
                ]
            ),
            "Delivery log: one 'in_progress' row when an attempt is claimed and one outcome row "
            "('succeeded', 'failed' = retry scheduled, 'gave_up') per attempt and (event, subscriber)",
        ),
        "mlflow.job_triggers": (
            pa.schema(
                [
                    ("trigger_id", STRING),
                    ("name", STRING),
                    ("model_name", STRING),
                    ("stage", STRING),
                    ("alias", STRING),
                    ("callable", STRING),
                    ("command", STRING),
                    ("timeout_seconds", LONG),
                    ("creation_timestamp", LONG),
                    ("deleted_timestamp", LONG),
                ]
            ),
            "Local job triggers: run a Python callable or a command (JSON argv) on a registry event",
        ),
        "mlflow.job_runs": (
            pa.schema(
                [
                    ("run_id", STRING),
                    ("trigger_id", STRING),
                    ("event_id", STRING),
                    ("model_name", STRING),
                    ("version", STRING),
                    ("stage", STRING),
                    ("status", STRING),
                    ("exit_code", LONG),
                    ("start_time", LONG),
                    ("end_time", LONG),
                    ("output", STRING),
                ]
            ),
            "Runs of triggered jobs, one row per run; output is the tail of stdout+stderr",
        ),
    }
)
