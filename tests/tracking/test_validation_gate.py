"""The promotion gate: an opted-in registered model's versions reach Production only with validation.status=passed.

Without the opt-in tag the registry behaves as MLflow's (here checked against MLflow's own SQL store on the same
calls); with it, a refused transition writes nothing and names the version's status and how to validate it.
"""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException

import tracking
from jobs import _validate

pytestmark = pytest.mark.filterwarnings("ignore:.*transition_model_version_stage:FutureWarning")


def _model(client: mlflow.MlflowClient, name: str, versions: int = 2, *, required: str | None = "true") -> None:
    client.create_registered_model(name, tags=None if required is None else {"validation.required": required})
    for i in range(versions):
        client.create_model_version(name, f"s3://bucket/{name}/{i + 1}")


def _stages(client: mlflow.MlflowClient, name: str) -> dict[str, str]:
    return {str(v.version): v.current_stage for v in client.search_model_versions(f"name='{name}'")}


def test_the_tag_keys_are_the_ones_the_validate_job_writes():
    # One definition (tracking's), which the validate job imports: the keys users set by hand are these.
    assert tracking.VALIDATION_REQUIRED_TAG == "validation.required"
    assert _validate.VALIDATION_STATUS_TAG is tracking.VALIDATION_STATUS_TAG == "validation.status"
    assert _validate.PASSED is tracking.VALIDATION_PASSED == "passed"


@pytest.mark.parametrize("status", [None, "failed", "PASSED", "pending"])
def test_a_version_without_a_passed_verdict_is_refused_and_nothing_changes(lake_uri, status):
    client = mlflow.MlflowClient(lake_uri)
    _model(client, "churn")
    client.set_model_version_tag("churn", 1, "validation.status", "passed")
    client.transition_model_version_stage("churn", 1, "Production")
    if status is not None:
        client.set_model_version_tag("churn", 2, "validation.status", status)
    before = client.get_model_version("churn", 2)
    with pytest.raises(MlflowException) as info:
        client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    err = info.value
    assert err.error_code == "INVALID_PARAMETER_VALUE" and err.get_http_status_code() == 400
    assert "'churn' version 2 cannot move to Production" in err.message
    assert ("never validated" if status is None else f"status='{status}'") in err.message
    assert "lakehouse-jobs validate <lake> --model churn --version 2 --holdout-table" in err.message
    after = client.get_model_version("churn", 2)
    assert (after.current_stage, after.last_updated_timestamp) == ("None", before.last_updated_timestamp)
    assert client.get_model_version("churn", 1).current_stage == "Production"  # nothing archived either


def test_first_refusal_then_passed_verdict_promotes(lake_uri):
    client = mlflow.MlflowClient(lake_uri)
    _model(client, "churn")
    with pytest.raises(MlflowException, match="never validated"):
        client.transition_model_version_stage("churn", 1, "Production")
    assert _stages(client, "churn") == {"1": "None", "2": "None"}
    client.transition_model_version_stage("churn", 1, "Staging")  # only Production is gated
    client.set_model_version_tag("churn", 1, "validation.status", "passed")
    client.transition_model_version_stage("churn", 1, "Production")
    client.set_model_version_tag("churn", 2, "validation.status", "passed")
    client.transition_model_version_stage("churn", 2, "production", archive_existing_versions=True)
    assert _stages(client, "churn") == {"1": "Archived", "2": "Production"}
    # A passed verdict withdrawn (re-validated and failed) closes the gate again.
    client.set_model_version_tag("churn", 1, "validation.status", "failed")
    with pytest.raises(MlflowException, match="status='failed'"):
        client.transition_model_version_stage("churn", 1, "Production")


@pytest.mark.parametrize(("required", "gated"), [("TRUE", True), (" true ", True), ("false", False), ("yes", False)])
def test_only_a_true_opt_in_tag_gates(lake_uri, required, gated):
    client = mlflow.MlflowClient(lake_uri)
    _model(client, "m", versions=1, required=required)
    if gated:
        with pytest.raises(MlflowException, match="requires validation"):
            client.transition_model_version_stage("m", 1, "Production")
    else:
        assert client.transition_model_version_stage("m", 1, "Production").current_stage == "Production"


def test_the_opt_in_can_be_set_and_removed_later(lake_uri):
    client = mlflow.MlflowClient(lake_uri)
    _model(client, "m", required=None)
    client.set_registered_model_tag("m", "validation.required", "true")
    with pytest.raises(MlflowException, match="requires validation"):
        client.transition_model_version_stage("m", 1, "Production")
    client.delete_registered_model_tag("m", "validation.required")
    assert client.transition_model_version_stage("m", 1, "Production").current_stage == "Production"


def test_without_the_opt_in_the_registry_answers_as_mlflows_sql_store(backends):
    seen = {}
    for backend, uri in backends.items():
        client = mlflow.MlflowClient(uri)
        _model(client, "plain", versions=3, required=None)
        client.set_model_version_tag("plain", 1, "validation.status", "failed")  # a verdict alone gates nothing
        client.transition_model_version_stage("plain", 1, "Production")
        client.transition_model_version_stage("plain", 2, "Production", archive_existing_versions=True)
        client.transition_model_version_stage("plain", 3, "Staging")
        seen[backend] = _stages(client, "plain")
    assert seen["lakehouse"] == seen["sqlite"] == {"1": "Archived", "2": "Production", "3": "Staging"}
