"""`LakehouseTrackingStore`: MLflow's tracking store contract on the Delta tables of a lake.

Rules (validation, error codes, latest-metric choice, search semantics) follow MLflow's SQL store,
`mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore`; the checks themselves are MLflow's own
(`mlflow.utils.validation`, `mlflow.utils.search_utils`). Every call first brings the in-memory snapshot
up to the tables' latest versions, so a write by another process is seen by the next call here.

The class holds the state (tables, lock, run cache) and declares every operation it implements by name; each
family of operations is a module of functions taking the store first: `_store_experiments`, `_store_runs`,
`_store_run_data`, `_store_logged_models`, `_store_search`, `_store_gc` (`mlflow gc`) (value helpers: `_store_values`). The operations it
does not implement are declared in `_unsupported`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from mlflow.entities import Run
from mlflow.store.tracking.abstract_store import AbstractStore
from mlflow.utils.uri import resolve_uri_if_local

from lakehouse import is_object_store

from . import _store_experiments as experiments
from . import _store_gc as gc
from . import _store_logged_models as logged_models
from . import _store_run_data as run_data
from . import _store_runs as runs
from . import _store_search as search
from ._index import forget_range
from ._store_traces import TraceMethods
from ._tables import TrackingTables
from ._unsupported import UnsupportedStoreMethods
from ._uri import lake_root_from_uri


class LakehouseTrackingStore(TraceMethods, UnsupportedStoreMethods, AbstractStore):
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
        default_artifacts = (
            f"{self.root}/_mlflow_artifacts"
            if is_object_store(self.root)
            else os.path.join(self.root, "_mlflow_artifacts")
        )
        self.artifact_root_uri = resolve_uri_if_local(artifact_uri or default_artifacts)
        self._lock = threading.RLock()
        self._run_cache: dict[str, Run] = {}
        self._t = TrackingTables(self.root, self._run_cache_drop, self._run_cache_drop_range)
        with self._lock:
            self._t.create_missing()
            experiments.create_default_experiment(self)

    def _run_cache_drop(self, run_id: str) -> None:
        self._run_cache.pop(run_id, None)

    def _run_cache_drop_range(self, lo: Any, hi: Any) -> None:
        """Forget the cached runs whose ids lie in [lo, hi] (all when either is None): a cold run table changed."""
        forget_range(self._run_cache, lo, hi)

    def _sync(self, names: list[str] | None = None) -> None:
        self._t.refresh(names)

    # The operations, by family. Each is a function whose first parameter is this store (it binds as `self`).

    create_experiment = experiments.create_experiment
    get_experiment = experiments.get_experiment
    get_experiment_by_name = experiments.get_experiment_by_name
    rename_experiment = experiments.rename_experiment
    delete_experiment = experiments.delete_experiment
    restore_experiment = experiments.restore_experiment
    set_experiment_tag = experiments.set_experiment_tag
    delete_experiment_tag = experiments.delete_experiment_tag

    create_run = runs.create_run
    get_run = runs.get_run
    update_run_info = runs.update_run_info
    delete_run = runs.delete_run
    restore_run = runs.restore_run

    log_batch = run_data.log_batch
    log_metric = run_data.log_metric
    log_param = run_data.log_param
    set_tag = run_data.set_tag
    delete_tag = run_data.delete_tag
    get_metric_history = run_data.get_metric_history
    log_inputs = run_data.log_inputs
    log_outputs = run_data.log_outputs
    record_logged_model = run_data.record_logged_model
    _search_datasets = run_data.search_datasets  # the UI's Datasets filter (the server calls it if present)
    search_datasets = run_data.search_evaluation_datasets  # GenAI evaluation datasets: none on a lake

    create_logged_model = logged_models.create_logged_model
    get_logged_model = logged_models.get_logged_model
    finalize_logged_model = logged_models.finalize_logged_model
    delete_logged_model = logged_models.delete_logged_model
    set_logged_model_tags = logged_models.set_logged_model_tags
    delete_logged_model_tag = logged_models.delete_logged_model_tag
    log_logged_model_params = logged_models.log_logged_model_params

    # `mlflow gc`: found by name (hasattr) on the store, as on MLflow's SQL store
    _get_deleted_runs = gc.get_deleted_runs
    _hard_delete_run = gc.hard_delete_run
    _get_deleted_logged_models = gc.get_deleted_logged_models
    _hard_delete_logged_model = gc.hard_delete_logged_model
    _hard_delete_experiment = gc.hard_delete_experiment

    search_experiments = search.search_experiments
    _search_runs = search.search_runs_page  # AbstractStore.search_runs pages through it
    search_logged_models = search.search_logged_models
