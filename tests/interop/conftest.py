"""Fixtures for the interop tests: MLflow's global state reset per test, a delta-spark session that must have Delta.

The Spark session itself is the suite's (tests/conftest.py). The helpers shared by these modules live in
`interop_helpers.py` beside this file; this folder is put on sys.path here because pytest's importlib mode
does not (the project's `pythonpath` lists only the other test folders).
"""

from __future__ import annotations

import os
import sys

import pytest
from mlflow.tracking import _tracking_service, fluent

from lakehouse import delta_classes_loaded

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(autouse=True)
def reset_mlflow_state(monkeypatch, tmp_path):
    """No test sees another's tracking URI or active run, nor writes ./mlruns or ./spark-warehouse here."""
    monkeypatch.chdir(tmp_path)
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_RUN_ID",
        "LAKEHOUSE_ENGINE",
    ):
        monkeypatch.delenv(var, raising=False)
    yield
    _tracking_service.utils._tracking_uri = None
    fluent._active_experiment_id = None
    fluent._last_active_run_id.set(None)


@pytest.fixture
def delta_spark(spark):
    """The suite's session, failing (never skipping) when Delta's JARs are not on its classpath."""
    if not delta_classes_loaded(spark):
        pytest.fail("Delta Lake's JARs are not on the Spark classpath: run `.venv/bin/lakehouse-setup` first.")
    return spark
