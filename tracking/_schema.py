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
