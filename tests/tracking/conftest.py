"""Fixtures for the tracking store: a sqlite and a lakehouse tracking URI per test, and MLflow's global state reset."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow.tracking import _tracking_service, fluent


@pytest.fixture(autouse=True)
def reset_mlflow_state(monkeypatch, tmp_path):
    """No test sees another's tracking URI, active experiment or active run (nor writes ./mlruns here)."""
    monkeypatch.chdir(tmp_path)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    _tracking_service.utils._tracking_uri = None
    fluent._active_experiment_id = None
    fluent._last_active_run_id.set(None)


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def lake_uri(tmp_path) -> str:
    return f"lakehouse://{tmp_path}/lake"


@pytest.fixture
def backends(sqlite_uri, lake_uri, tmp_path) -> dict[str, str]:
    """The two tracking URIs a differential test drives with the same scenario (reference first)."""
    os.makedirs(tmp_path / "sqlite-artifacts", exist_ok=True)
    return {"sqlite": sqlite_uri, "lakehouse": lake_uri}
