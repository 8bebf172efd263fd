"""The ready-made validation job, run as a trigger callable would run it."""

import mlflow
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import jobs


def test_jobs_public_api_is_pinned():
    assert jobs.__all__ == sorted(jobs.__all__)
    assert jobs.__all__ == [
        "JobRun",
        "ModelValidationError",
        "Trigger",
        "create_trigger",
        "delete_trigger",
        "drain",
        "errors",
        "list_runs",
        "list_triggers",
        "validate_model",
    ]


@pytest.fixture
def registry(tmp_path, monkeypatch):
    uri = f"lakehouse://{tmp_path}/lake"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def test_validate_model_loads_and_predicts_on_the_input_example(registry):
    x = np.arange(12, dtype=float).reshape(4, 3)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            LinearRegression().fit(x, x.sum(axis=1)), name="m", input_example=x[:2], registered_model_name="good"
        )
    assert jobs.validate_model({"name": "good", "version": "1"}) == {"model": "models:/good/1", "predictions": 2}


def test_validate_model_fails_without_an_input_example(registry):
    x = np.arange(12, dtype=float).reshape(4, 3)
    with mlflow.start_run():
        mlflow.sklearn.log_model(LinearRegression().fit(x, x.sum(axis=1)), name="m", registered_model_name="bare")
    with pytest.raises(jobs.ModelValidationError, match="no input example"):
        jobs.validate_model({"name": "bare", "version": "1"})
    with pytest.raises(jobs.ModelValidationError, match="names no model version"):
        jobs.validate_model({})
