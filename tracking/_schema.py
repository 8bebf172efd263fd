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

TABLES["mlflow.registry_journal"] = (
    pa.schema([("version", LONG), ("table", STRING), ("op", STRING), ("row", STRING)]),
    "The rows of the last model registry calls that write several registry tables (a rename, a delete, a new "
    "version with its tags), each call one commit: op 'put' or 'delete' of a whole row (JSON) of the named table; "
    "applied to the registry tables (their txn watermark), then removed",
)

_TRANSIENT = {
    "delta.deletedFileRetentionDuration": "interval 1 hours",
    "delta.logRetentionDuration": "interval 1 days",
}
TABLE_CONFIGURATION: dict[str, dict[str, str]] = {"mlflow.journal": _TRANSIENT, "mlflow.registry_journal": _TRANSIENT}
"""Table properties set at creation. The journals are transient (their rows live until applied), and nobody
time travels them: their removed files and old commits need not be kept for a week and a month."""

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
            "Fernet-encrypted ('fernet:' prefix) with the lake's key unless LAKEHOUSE_WEBHOOK_SECRETS=clear",
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
        "mlflow.job_trigger_tags": (
            pa.schema([("trigger_id", STRING), ("tag_key", STRING), ("tag_value", STRING)]),
            "The condition of a job trigger on a model-version tag: its key, and its value (null: any value)",
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
        "mlflow.job_history": (
            pa.schema(
                [
                    ("run_id", STRING),
                    ("job", STRING),
                    ("arguments", STRING),
                    ("status", STRING),
                    ("exit_code", LONG),
                    ("start_time", LONG),
                    ("end_time", LONG),
                    ("figures", STRING),
                    ("error", STRING),
                    ("host", STRING),
                    ("pid", LONG),
                ]
            ),
            "Runs of lakehouse-jobs jobs (maintain, features, monitor, score, validate), one row per run: "
            "arguments and figures as JSON; status succeeded, failed, alert or timed_out",
        ),
    }
)

# -- traces (issue 14) --------------------------------------------------------------------------------------
# MLflow 3 tracing, laid out as MLflow's SQL store lays it out (trace_info, trace_tags, trace_request_metadata,
# spans, assessments, entity_associations), every table keyed and clustered by trace id. The trace name, session
# id, token usage and cost are columns of `traces` (the SQL store "promotes" them out of tags and metadata), so
# a search filters and orders on them without a join. Spans are plain columns plus their attributes and events as
# JSON strings (attribute values decoded once, so `get_json_object(attributes, '$.key')` reads the value);
# `content` is the span as MLflow stores it (what `get_trace` rebuilds the span from).
TRACE_TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_input_tokens_above_1hr",
)
TRACE_COST_COLUMNS = ("input_cost", "output_cost", "total_cost")

TABLES.update(
    {
        "mlflow.traces": (
            pa.schema(
                [
                    ("trace_id", STRING),
                    ("experiment_id", STRING),
                    ("timestamp_ms", LONG),
                    ("execution_time_ms", LONG),
                    ("status", STRING),
                    ("client_request_id", STRING),
                    ("request_preview", STRING),
                    ("response_preview", STRING),
                    ("trace_name", STRING),
                    ("session_id", STRING),
                    *((c, LONG) for c in TRACE_TOKEN_COLUMNS),
                    *((c, DOUBLE) for c in TRACE_COST_COLUMNS),
                ]
            ),
            "MLflow traces (TraceInfo), one row per trace; status is the TraceState name; the trace name, session id, "
            "token usage and cost are columns, not tags or metadata (as in MLflow's SQL store)",
        ),
        "mlflow.trace_tags": (
            pa.schema([("trace_id", STRING), ("key", STRING), ("value", STRING)]),
            "MLflow trace tags, one row per (trace_id, key); the trace name is mlflow.traces.trace_name",
        ),
        "mlflow.trace_request_metadata": (
            pa.schema([("trace_id", STRING), ("key", STRING), ("value", STRING)]),
            "MLflow trace request metadata, one row per (trace_id, key); session, token usage and cost are columns "
            "of mlflow.traces",
        ),
        "mlflow.spans": (
            pa.schema(
                [
                    ("trace_id", STRING),
                    ("experiment_id", STRING),
                    ("span_id", STRING),
                    ("parent_span_id", STRING),
                    ("name", STRING),
                    ("span_type", STRING),
                    ("status", STRING),
                    ("status_message", STRING),
                    ("start_time_unix_nano", LONG),
                    ("end_time_unix_nano", LONG),
                    ("attributes", STRING),
                    ("events", STRING),
                    ("content", STRING),
                ]
            ),
            "MLflow trace spans, one row per (trace_id, span_id); attributes is a JSON object of decoded values, "
            "events a JSON list, content the span as MLflow stores it",
        ),
        "mlflow.assessments": (
            pa.schema(
                [
                    ("assessment_id", STRING),
                    ("trace_id", STRING),
                    ("name", STRING),
                    ("assessment_type", STRING),
                    ("value", STRING),
                    ("error", STRING),
                    ("created_timestamp", LONG),
                    ("last_updated_timestamp", LONG),
                    ("source_type", STRING),
                    ("source_id", STRING),
                    ("run_id", STRING),
                    ("span_id", STRING),
                    ("rationale", STRING),
                    ("overrides", STRING),
                    ("valid", pa.bool_()),
                    ("assessment_metadata", STRING),
                ]
            ),
            "MLflow trace assessments, one row per assessment; assessment_type is 'feedback', 'expectation' or "
            "'issue'; value, error and assessment_metadata are JSON (the columns of MLflow's SQL store's table)",
        ),
        "mlflow.trace_run_links": (
            pa.schema([("trace_id", STRING), ("run_id", STRING)]),
            "Traces linked to runs (MLflow's link_traces_to_run), one row per (trace_id, run_id)",
        ),
    }
)

TRACE_COLD_TABLES: dict[str, dict[str, Any]] = {
    "mlflow.traces": {
        "keep_rows": False,
        "keep_covering": True,
        "covering_sorted_by": "timestamp_ms",  # the newest traces first: a slice of the rows, not a sort
        "cluster_by": "trace_id",
        "stats_columns": ("trace_id", "experiment_id", "timestamp_ms"),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.trace_tags": {
        "keep_rows": False,
        "keep_covering": True,
        "covering_orders": (("key", "value"),),  # `tags.k = 'v'`: the traces holding it, by binary search
        "cluster_by": "trace_id",
        "stats_columns": ("trace_id",),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.trace_request_metadata": {
        "keep_rows": False,
        "keep_covering": True,
        "covering_orders": (("key", "value"),),  # `request_metadata.k = 'v'`, likewise
        "cluster_by": "trace_id",
        "stats_columns": ("trace_id",),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.spans": {"keep_rows": False, "cluster_by": "trace_id", "stats_columns": ("trace_id", "experiment_id")},
    "mlflow.assessments": {
        "keep_rows": False,
        "keep_covering": True,
        "cluster_by": "trace_id",
        "stats_columns": ("trace_id",),
        "max_merge_rows": UPDATED_MERGE_ROWS,
    },
    "mlflow.trace_run_links": {
        "keep_rows": False,
        "keep_covering": True,
        "cluster_by": "trace_id",
        "stats_columns": ("trace_id", "run_id"),
    },
}
"""The trace tables are cold like the run tables, read by trace on demand; searches read their covering indexes
(every row in mapped Arrow files beside the table, kept by the writers: `lakehouse._log_covering`), never the
spans' (a span's `content` is the whole span)."""
COLD_TABLES.update(TRACE_COLD_TABLES)
