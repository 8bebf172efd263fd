"""`LakehouseTrackingStore`: MLflow's tracking store contract on the Delta tables of a lake.

Rules (validation, error codes, latest-metric choice, search semantics) follow MLflow's SQL store,
`mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore`; the checks themselves are MLflow's own
(`mlflow.utils.validation`, `mlflow.utils.search_utils`). Every call first brings the in-memory snapshot
up to the tables' latest versions, so a write by another process is seen by the next call here.
"""

from __future__ import annotations

import json
import math
import os
import threading
import uuid
from typing import Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    ExperimentTag,
    InputTag,
    LifecycleStage,
    LoggedModel,
    LoggedModelInput,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME, _get_run_name_from_tags
from mlflow.utils.name_utils import _generate_random_name
from mlflow.utils.search_utils import SearchExperimentsUtils, SearchLoggedModelsUtils, SearchUtils
from mlflow.utils.time import get_current_time_millis
from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local
from mlflow.utils.validation import (
    _parse_experiment_id,
    _validate_batch_log_data,
    _validate_batch_log_limits,
    _validate_dataset_inputs,
    _validate_experiment_artifact_location_length,
    _validate_experiment_name,
    _validate_experiment_tag,
    _validate_logged_model_name,
    _validate_metric,
    _validate_param_keys_unique,
    _validate_run_id,
    _validate_tag,
    append_to_json_path,
    invalid_value,
)

from lakehouse import Change, Row

from ._tables import TrackingTables, metric_point
from ._unsupported import UnsupportedStoreMethods
from ._uri import lake_root_from_uri

DEFAULT_EXPERIMENT_ID = "0"
ARTIFACTS_FOLDER = "artifacts"
MODELS_FOLDER = "models"
_FLOAT_MAX = 1.7976931348623157e308

_EXPERIMENT_TABLES = ["mlflow.experiments", "mlflow.experiment_tags"]
_RUN_TABLES = ["mlflow.runs", "mlflow.params", "mlflow.tags", "mlflow.metrics", "mlflow.inputs"]


class LakehouseTrackingStore(UnsupportedStoreMethods, AbstractStore):
    """MLflow tracking store whose experiments, runs, params, tags and metrics are Delta tables.

    Built by MLflow from a `lakehouse:///<lake root>` URI (the `mlflow.tracking_store` entry point); tables
    live at `<root>/mlflow/<table>` (`Lakehouse(root).read("mlflow.runs")`). Artifacts default to
    `<root>/_mlflow_artifacts/<experiment id>/...`, or `artifact_uri` (`mlflow server
    --default-artifact-root`). Thread-safe (one lock) and safe for many processes on one lake.

    Example:
        >>> import mlflow
        >>> mlflow.set_tracking_uri("lakehouse:///tmp/lake")
        >>> with mlflow.start_run():
        ...     mlflow.log_metric("loss", 0.1)
    """

    def __init__(self, store_uri: str, artifact_uri: str | None = None) -> None:
        super().__init__()
        self.root = lake_root_from_uri(store_uri)
        self.artifact_root_uri = resolve_uri_if_local(artifact_uri or os.path.join(self.root, "_mlflow_artifacts"))
        self._lock = threading.RLock()
        self._run_cache: dict[str, Run] = {}
        self._t = TrackingTables(self.root, self._run_cache_drop)
        with self._lock:
            self._t.create_missing()
            self._t.write("mlflow.experiments", self._plan_default_experiment)

    def _run_cache_drop(self, run_id: str) -> None:
        self._run_cache.pop(run_id, None)

    def _sync(self, names: list[str] | None = None) -> None:
        self._t.refresh(names)

    # ======================================================================================== experiments
    def _plan_default_experiment(self):
        if self._t.experiment_by_id.get(DEFAULT_EXPERIMENT_ID, 0) is not None:
            return None
        now = get_current_time_millis()
        return Change(
            [
                [
                    {
                        "experiment_id": DEFAULT_EXPERIMENT_ID,
                        "name": Experiment.DEFAULT_EXPERIMENT_NAME,
                        "artifact_location": append_to_uri_path(self.artifact_root_uri, DEFAULT_EXPERIMENT_ID),
                        "lifecycle_stage": LifecycleStage.ACTIVE,
                        "creation_time": now,
                        "last_update_time": now,
                    }
                ]
            ]
        )

    def _experiment_row(self, experiment_id: Any, view_type: int = ViewType.ALL) -> Row:
        exp_id = str(_parse_experiment_id(experiment_id or DEFAULT_EXPERIMENT_ID))
        hit = self._t.experiment_by_id.get(exp_id, 0)
        if hit is None or hit[0]["lifecycle_stage"] not in LifecycleStage.view_type_to_stages(view_type):
            raise MlflowException(f"No Experiment with id={exp_id} exists", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def _to_experiment(self, row: Row) -> Experiment:
        tags = [ExperimentTag(r["key"], r["value"]) for r in self._t.experiment_tags.rows(row["experiment_id"])]
        return Experiment(
            experiment_id=row["experiment_id"],
            name=row["name"],
            artifact_location=row["artifact_location"],
            lifecycle_stage=row["lifecycle_stage"],
            tags=tags,
            creation_time=row["creation_time"],
            last_update_time=row["last_update_time"],
        )

    @staticmethod
    def _check_experiment_active(row: Row) -> None:
        if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"The experiment {row['experiment_id']} must be in the 'active' state. "
                f"Current state is {row['lifecycle_stage']}.",
                INVALID_PARAMETER_VALUE,
            )

    def create_experiment(self, name, artifact_location=None, tags=None):
        _validate_experiment_name(name)
        if artifact_location:
            artifact_location = resolve_uri_if_local(artifact_location)
            _validate_experiment_artifact_location_length(artifact_location)
        for tag in tags or []:
            _validate_experiment_tag(tag.key, tag.value)
        created: dict[str, str] = {}

        def plan():
            if self._t.experiment_by_name.groups.get(name):
                raise MlflowException(f"Experiment(name={name}) already exists.", RESOURCE_ALREADY_EXISTS)
            ids = [int(i) for i in self._t.experiment_by_id.groups]
            exp_id = str(max(ids, default=-1) + 1)
            created["id"] = exp_id
            now = get_current_time_millis()
            return Change(
                [
                    [
                        {
                            "experiment_id": exp_id,
                            "name": name,
                            "artifact_location": artifact_location
                            or append_to_uri_path(self.artifact_root_uri, exp_id),
                            "lifecycle_stage": LifecycleStage.ACTIVE,
                            "creation_time": now,
                            "last_update_time": now,
                        }
                    ]
                ]
            )

        with self._lock:
            self._t.write("mlflow.experiments", plan)
            if tags:
                self._write_experiment_tags(created["id"], {t.key: t.value for t in tags})
        return created["id"]

    def _write_experiment_tags(self, exp_id: str, tags: dict[str, str]) -> None:
        rows = [{"experiment_id": exp_id, "key": k, "value": v} for k, v in tags.items()]
        self._t.write(
            "mlflow.experiment_tags",
            lambda: self._t.replace(
                "mlflow.experiment_tags", self._t.experiment_tags, [(exp_id, k) for k in tags], rows
            ),
        )

    def get_experiment(self, experiment_id):
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            return self._to_experiment(self._experiment_row(experiment_id))

    def get_experiment_by_name(self, experiment_name):
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            ids = self._t.experiment_by_name.groups.get(experiment_name)
            if not ids:
                return None
            return self._to_experiment(self._experiment_row(next(iter(ids))))

    def search_experiments(
        self, view_type=ViewType.ACTIVE_ONLY, max_results=1000, filter_string=None, order_by=None, page_token=None
    ):
        _check_max_results(max_results)
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            stages = set(LifecycleStage.view_type_to_stages(view_type))
            experiments = [
                self._to_experiment(hit[0])
                for hits in self._t.experiment_by_id.groups.values()
                for hit in hits.values()
                if hit[0]["lifecycle_stage"] in stages
            ]
        filtered = SearchExperimentsUtils.filter(experiments, filter_string)
        ordered = SearchExperimentsUtils.sort(filtered, order_by or ["creation_time DESC", "experiment_id ASC"])
        page, token = SearchUtils.paginate(ordered, page_token, max_results)
        return PagedList(page, token)

    def _update_experiment(self, experiment_id, view_type: int, change) -> None:
        def plan():
            row = self._experiment_row(experiment_id, view_type)
            new = change(row)
            new["last_update_time"] = get_current_time_millis()
            return self._t.replace("mlflow.experiments", self._t.experiment_by_id, [(row["experiment_id"], 0)], [new])

        self._t.write("mlflow.experiments", plan)

    def delete_experiment(self, experiment_id):
        with self._lock:
            self._update_experiment(
                experiment_id, ViewType.ACTIVE_ONLY, lambda r: {**r, "lifecycle_stage": LifecycleStage.DELETED}
            )
            self._set_runs_lifecycle(str(_parse_experiment_id(experiment_id)), LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id):
        with self._lock:
            self._update_experiment(
                experiment_id, ViewType.DELETED_ONLY, lambda r: {**r, "lifecycle_stage": LifecycleStage.ACTIVE}
            )
            self._set_runs_lifecycle(str(_parse_experiment_id(experiment_id)), LifecycleStage.ACTIVE)

    def _set_runs_lifecycle(self, exp_id: str, stage: str) -> None:
        def plan():
            now = get_current_time_millis()
            rows = self._t.runs_by_experiment.rows(exp_id)
            if not rows:
                return None
            new = [
                {**r, "lifecycle_stage": stage, "deleted_time": now if stage == LifecycleStage.DELETED else None}
                for r in rows
            ]
            return self._t.replace("mlflow.runs", self._t.run_by_id, [(r["run_id"], 0) for r in rows], new)

        self._t.write("mlflow.runs", plan)

    def rename_experiment(self, experiment_id, new_name):
        _validate_experiment_name(new_name)

        def change(row):
            if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
                raise MlflowException("Cannot rename a non-active experiment.", INVALID_STATE)
            others = set(self._t.experiment_by_name.groups.get(new_name, {})) - {row["experiment_id"]}
            if others:  # the SQL store's unique-constraint violation surfaces as BAD_REQUEST
                raise MlflowException(f"Experiment(name={new_name}) already exists.", BAD_REQUEST)
            return {**row, "name": new_name}

        with self._lock:
            self._update_experiment(experiment_id, ViewType.ALL, change)

    def set_experiment_tag(self, experiment_id, tag):
        _validate_experiment_tag(tag.key, tag.value)
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            row = self._experiment_row(experiment_id)
            self._check_experiment_active(row)
            self._write_experiment_tags(row["experiment_id"], {tag.key: tag.value})

    def delete_experiment_tag(self, experiment_id, key):
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            row = self._experiment_row(experiment_id)
            self._check_experiment_active(row)
            exp_id = row["experiment_id"]

            def plan():
                if self._t.experiment_tags.get(exp_id, key) is None:
                    raise MlflowException(
                        f"No tag with name: {key} in experiment with id {experiment_id}", RESOURCE_DOES_NOT_EXIST
                    )
                return self._t.replace("mlflow.experiment_tags", self._t.experiment_tags, [(exp_id, key)], [])

            self._t.write("mlflow.experiment_tags", plan)

    # ========================================================================================== runs
    def _run_row(self, run_id: str) -> Row:
        hit = self._t.run_by_id.get(run_id, 0)
        if hit is None:
            raise MlflowException(f"Run with id={run_id} not found", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def _active_run_row(self, run_id: str) -> Row:
        row = self._run_row(run_id)
        if row["lifecycle_stage"] != LifecycleStage.ACTIVE:
            raise MlflowException(
                f"The run {run_id} must be in the 'active' state. Current state is {row['lifecycle_stage']}.",
                INVALID_PARAMETER_VALUE,
            )
        return row

    def _to_run(self, run_id: str) -> Run:
        cached = self._run_cache.get(run_id)
        if cached is not None:
            return cached
        row = self._run_row(run_id)
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
        latest: dict[str, tuple] = {}
        for m in self._t.metrics.rows(run_id):
            v = m["value"]
            nan = v is None or math.isnan(v)
            order = (m["step"], m["timestamp"], 0.0 if nan else v)
            cur = latest.get(m["key"])
            if cur is None or order > cur[0]:
                latest[m["key"]] = (order, m)
        metrics = [_metric(m) for _, m in latest.values()]
        params = [Param(r["key"], r["value"]) for r in self._t.params.rows(run_id)]
        tags = [RunTag(r["key"], r["value"]) for r in self._t.tags.rows(run_id)]
        datasets, model_inputs, model_outputs = [], [], []
        for r in self._t.inputs.rows(run_id):
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
        run = Run(
            info,
            RunData(metrics=metrics, params=params, tags=tags),
            RunInputs(dataset_inputs=datasets, model_inputs=model_inputs),
            RunOutputs(model_outputs),
        )
        self._run_cache[run_id] = run
        return run

    def create_run(self, experiment_id, user_id, start_time, tags, run_name):
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
        tags = [_validate_tag(t.key, t.value) for t in tags]
        start_time = _epoch_millis(start_time, "start_time")  # before any write: nothing half-created
        run_id = uuid.uuid4().hex
        with self._lock:
            self._sync(_EXPERIMENT_TABLES)
            exp = self._experiment_row(experiment_id)
            self._check_experiment_active(exp)
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
            # Tags first: a run row is only visible with its tags already there (no half-created run).
            tag_rows = {t.key: {"run_id": run_id, "key": t.key, "value": t.value} for t in tags}
            if tag_rows:
                self._t.write("mlflow.tags", lambda: Change([list(tag_rows.values())]))
            self._t.write("mlflow.runs", lambda: Change([[row]]))
            return self._to_run(run_id)

    def get_run(self, run_id):
        _validate_run_id(run_id)
        with self._lock:
            self._sync(_RUN_TABLES)
            return self._to_run(run_id)

    def update_run_info(self, run_id, run_status, end_time, run_name):
        with self._lock:
            self._sync(_RUN_TABLES)

            def plan():
                row = self._active_run_row(run_id)
                new = dict(row)
                if run_status is not None:
                    new["status"] = RunStatus.to_string(run_status)
                if end_time is not None:
                    new["end_time"] = end_time
                if run_name:
                    new["name"] = run_name
                return self._t.replace("mlflow.runs", self._t.run_by_id, [(run_id, 0)], [new])

            self._t.write("mlflow.runs", plan)
            if run_name:
                self._write_tags(run_id, {MLFLOW_RUN_NAME: run_name})
            return self._to_run(run_id).info

    def _set_run_lifecycle(self, run_id: str, stage: str) -> None:
        def plan():
            row = self._run_row(run_id)
            new = {
                **row,
                "lifecycle_stage": stage,
                "deleted_time": get_current_time_millis() if stage == LifecycleStage.DELETED else None,
            }
            return self._t.replace("mlflow.runs", self._t.run_by_id, [(run_id, 0)], [new])

        with self._lock:
            self._t.write("mlflow.runs", plan)

    def delete_run(self, run_id):
        self._set_run_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id):
        self._set_run_lifecycle(run_id, LifecycleStage.ACTIVE)

    # ------------------------------------------------------------------------------------- logging
    def _write_tags(self, run_id: str, tags: dict[str, str]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()]

        def plan():
            unchanged = all(
                (h := self._t.tags.get(run_id, k)) is not None and h[0]["value"] == v for k, v in tags.items()
            )
            if unchanged:
                return None
            existing = [(run_id, k) for k in tags if self._t.tags.get(run_id, k) is not None]
            if not existing:
                return Change([rows])
            return self._t.replace("mlflow.tags", self._t.tags, existing, rows)

        self._t.write("mlflow.tags", plan)

    def log_metric(self, run_id, metric):
        self.log_batch(run_id, [metric], [], [])

    def log_param(self, run_id, param):
        self.log_batch(run_id, [], [param], [])

    def set_tag(self, run_id, tag):
        _validate_run_id(run_id)
        tag = _validate_tag(tag.key, tag.value)
        self.log_batch(run_id, [], [], [tag])

    def log_batch(self, run_id, metrics, params, tags):
        _validate_run_id(run_id)
        metrics, params, tags = _validate_batch_log_data(metrics, params, tags)
        _validate_batch_log_limits(metrics, params, tags)
        _validate_param_keys_unique(params)
        single = len(metrics) == 1
        for i, m in enumerate(metrics):
            path = "" if single else f"metrics[{i}]"
            _validate_metric(m.key, m.value, m.timestamp, m.step, path=path)
            whole = f"metric '{m.key}': it must be a whole number that fits in a long (64-bit integer)"
            _long(m.timestamp, append_to_json_path(path, "timestamp"), whole)
            _long(m.step or 0, append_to_json_path(path, "step"), whole)
        with self._lock:
            self._sync(_RUN_TABLES)
            run = self._active_run_row(run_id)
            if params:
                self._write_params(run_id, params)
            if metrics:
                self._write_metrics(run_id, metrics)
            if tags:
                tag_values = {t.key: t.value for t in tags}
                name = tag_values.get(MLFLOW_RUN_NAME)
                if name is not None:
                    self.update_run_info(run_id, RunStatus.from_string(run["status"]), run["end_time"], name)
                    tag_values.pop(MLFLOW_RUN_NAME)
                if tag_values:
                    self._write_tags(run_id, tag_values)

    def _write_params(self, run_id: str, params: list[Param]) -> None:
        def plan():
            self._active_run_row(run_id)
            new, mismatched = [], []
            for p in params:
                hit = self._t.params.get(run_id, p.key)
                if hit is None:
                    new.append({"run_id": run_id, "key": p.key, "value": p.value})
                elif hit[0]["value"] != p.value:
                    mismatched.append({"key": p.key, "old_value": hit[0]["value"], "new_value": p.value})
            if mismatched:
                raise MlflowException(
                    f"Changing param values is not allowed. Params were already logged='{mismatched}' "
                    f"for run ID='{run_id}'.",
                    INVALID_PARAMETER_VALUE,
                )
            return Change([new]) if new else None

        self._t.write("mlflow.params", plan, also_refresh=["mlflow.runs"])

    def _write_metrics(self, run_id: str, metrics: list[Metric]) -> None:
        rows, seen = [], set()
        for m in metrics:
            value = float(m.value)
            if math.isinf(value):
                value = _FLOAT_MAX if value > 0 else -_FLOAT_MAX
            row = {
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
            new = [row for point, row in rows if self._t.metrics.get(run_id, point) is None]
            return Change([new]) if new else None

        self._t.write("mlflow.metrics", plan)

    def delete_tag(self, run_id, key):
        with self._lock:
            self._sync(_RUN_TABLES)
            self._active_run_row(run_id)

            def plan():
                if self._t.tags.get(run_id, key) is None:
                    raise MlflowException(f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST)
                return self._t.replace("mlflow.tags", self._t.tags, [(run_id, key)], [])

            self._t.write("mlflow.tags", plan)

    def get_metric_history(self, run_id, metric_key, max_results=None, page_token=None):
        with self._lock:
            self._sync(["mlflow.runs", "mlflow.metrics"])  # an unknown run has no history (as in the SQL store)
            rows = [r for r in self._t.metrics.rows(run_id) if r["key"] == metric_key]
        rows.sort(key=lambda r: (r["timestamp"], r["step"], _nan_last(r["value"])))
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        end = len(rows) if max_results is None else offset + max_results
        token = SearchUtils.create_page_token(end) if end < len(rows) else None
        return PagedList([_metric(r) for r in rows[offset:end]], token)

    def log_inputs(self, run_id, datasets=None, models=None):
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
        self._write_inputs(run_id, rows)

    def log_outputs(self, run_id, models):
        rows = [
            {**_EMPTY_INPUT, "run_id": run_id, "kind": "model_output", "model_id": m.model_id, "step": m.step}
            for m in models
        ]
        self._write_inputs(run_id, rows)

    def _write_inputs(self, run_id: str, rows: list[Row]) -> None:
        with self._lock:
            self._sync(_RUN_TABLES)
            self._active_run_row(run_id)

            def plan():
                new, seen = [], set()
                for r in rows:
                    key = self._t.inputs.key(r)
                    if key not in seen and self._t.inputs.get(run_id, key) is None:
                        seen.add(key)
                        new.append(r)
                return Change([new]) if new else None

            self._t.write("mlflow.inputs", plan)

    # --------------------------------------------------------------------------------------- search
    def _search_runs(self, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token):
        if max_results is not None and (max_results < 1 or max_results > SEARCH_MAX_RESULTS_THRESHOLD):
            _check_max_results(max_results)
        stages = set(LifecycleStage.view_type_to_stages(run_view_type))
        with self._lock:
            self._sync()
            exp_ids = [str(_parse_experiment_id(e)) for e in experiment_ids]
            runs = [
                self._to_run(rid)
                for e in exp_ids
                for rid, (row, _) in self._t.runs_by_experiment.groups.get(e, {}).items()
                if row["lifecycle_stage"] in stages
            ]
        filtered = SearchUtils.filter(runs, filter_string)
        ordered = SearchUtils.sort(filtered, order_by)
        return SearchUtils.paginate(ordered, page_token, max_results)

    # ================================================================================= logged models
    def _model_row(self, model_id: str, allow_deleted: bool = True) -> Row:
        hit = self._t.model_by_id.get(model_id, 0)
        if hit is None or (not allow_deleted and hit[0]["lifecycle_stage"] == LifecycleStage.DELETED):
            raise MlflowException(f"Logged model with ID '{model_id}' not found.", RESOURCE_DOES_NOT_EXIST)
        return hit[0]

    def _to_model(self, row: Row) -> LoggedModel:
        model_id = row["model_id"]
        metrics = [_metric(m, model=True) for m in self._t.model_metrics.rows(model_id)]
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
            tags={r["key"]: r["value"] for r in self._t.model_tags.rows(model_id)},
            params={r["key"]: r["value"] for r in self._t.model_params.rows(model_id)},
            metrics=metrics,
        )

    def _sync_models(self) -> None:
        self._sync(
            [
                "mlflow.experiments",
                "mlflow.logged_models",
                "mlflow.logged_model_tags",
                "mlflow.logged_model_params",
                "mlflow.metrics",
            ]
        )

    def create_logged_model(
        self, experiment_id, name=None, source_run_id=None, tags=None, params=None, model_type=None
    ):
        _validate_logged_model_name(name)
        with self._lock:
            self._sync_models()
            exp = self._experiment_row(experiment_id)
            self._check_experiment_active(exp)
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
                self._t.write("mlflow.logged_model_params", lambda: Change([prow]))
            if tags:
                trow = list({t.key: {"model_id": model_id, "key": t.key, "value": t.value} for t in tags}.values())
                self._t.write("mlflow.logged_model_tags", lambda: Change([trow]))
            self._t.write("mlflow.logged_models", lambda: Change([[row]]))
            return self._to_model(row)

    def get_logged_model(self, model_id, allow_deleted=False):
        with self._lock:
            self._sync_models()
            return self._to_model(self._model_row(model_id, allow_deleted))

    def _update_model(self, model_id: str, change) -> Row:
        out: dict[str, Row] = {}

        def plan():
            row = self._model_row(model_id)
            new = {**change(row), "last_updated_timestamp": get_current_time_millis()}
            out["row"] = new
            return self._t.replace("mlflow.logged_models", self._t.model_by_id, [(model_id, 0)], [new])

        self._t.write("mlflow.logged_models", plan)
        return out["row"]

    def finalize_logged_model(self, model_id, status):
        with self._lock:
            self._sync_models()
            row = self._update_model(model_id, lambda r: {**r, "status": status.to_int()})
            return self._to_model(row)

    def delete_logged_model(self, model_id):
        with self._lock:
            self._sync_models()
            self._update_model(model_id, lambda r: {**r, "lifecycle_stage": LifecycleStage.DELETED})

    def set_logged_model_tags(self, model_id, tags):
        with self._lock:
            self._sync_models()
            self._model_row(model_id)
            values = {t.key: t.value for t in tags}
            rows = [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]
            self._t.write(
                "mlflow.logged_model_tags",
                lambda: self._t.replace(
                    "mlflow.logged_model_tags", self._t.model_tags, [(model_id, k) for k in values], rows
                ),
            )

    def delete_logged_model_tag(self, model_id, key):
        with self._lock:
            self._sync_models()
            self._model_row(model_id)

            def plan():
                if self._t.model_tags.get(model_id, key) is None:
                    raise MlflowException(
                        f"No tag with key {key!r} found for model with ID {model_id!r}.", RESOURCE_DOES_NOT_EXIST
                    )
                return self._t.replace("mlflow.logged_model_tags", self._t.model_tags, [(model_id, key)], [])

            self._t.write("mlflow.logged_model_tags", plan)

    def search_logged_models(
        self, experiment_ids, filter_string=None, datasets=None, max_results=None, order_by=None, page_token=None
    ):
        if datasets and not all(d.get("dataset_name") for d in datasets):
            raise MlflowException("`dataset_name` in the `datasets` clause must be specified.", INVALID_PARAMETER_VALUE)
        max_results = max_results or SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
        with self._lock:
            self._sync_models()
            models = [
                self._to_model(row)
                for e in experiment_ids
                for row, _ in self._t.models_by_experiment.groups.get(str(e), {}).values()
                if row["lifecycle_stage"] != LifecycleStage.DELETED
            ]
        filtered = SearchLoggedModelsUtils.filter_logged_models(models, filter_string, datasets)
        ordered = SearchLoggedModelsUtils.sort(filtered, order_by)
        page, token = SearchLoggedModelsUtils.paginate(ordered, page_token, max_results)
        return PagedList(page, token)


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


def _long(value: Any, path: str, detail: str) -> int:
    """`value` as a 64-bit integer (a float with no fractional part is taken), never silently truncated.

    Raises MlflowException(INVALID_PARAMETER_VALUE) in MLflow's "Invalid value ... supplied" wording."""
    whole = int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(whole, int) or not -(2**63) <= whole < 2**63:
        raise MlflowException(invalid_value(path, value, detail), INVALID_PARAMETER_VALUE)
    return whole


def _epoch_millis(value: Any, argument: str) -> int | None:
    """`value` (None, or int64 milliseconds since the epoch; not a bool) or INVALID_PARAMETER_VALUE."""
    if value is None:
        return None
    detail = "it must be an integer number of milliseconds since the epoch that fits in 64 bits"
    if isinstance(value, bool):
        raise MlflowException(invalid_value(argument, value, detail), INVALID_PARAMETER_VALUE)
    return _long(value, argument, detail)


def _metric(row: Row, *, model: bool = False) -> Metric:
    """A run's metric carries key/value/timestamp/step only; a logged model's also its run and dataset."""
    if not model:
        return Metric(key=row["key"], value=row["value"], timestamp=row["timestamp"], step=row["step"])
    return Metric(
        key=row["key"],
        value=row["value"],
        timestamp=row["timestamp"],
        step=row["step"],
        run_id=row["run_id"],
        model_id=row["model_id"],
        dataset_name=row["dataset_name"],
        dataset_digest=row["dataset_digest"],
    )


def _nan_last(v: float | None) -> float:
    return 0.0 if v is None or math.isnan(v) else v


def _check_max_results(max_results: Any) -> None:
    if not isinstance(max_results, int) or max_results < 1:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer",
            INVALID_PARAMETER_VALUE,
        )
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most "
            f"{SEARCH_MAX_RESULTS_THRESHOLD}",
            INVALID_PARAMETER_VALUE,
        )
