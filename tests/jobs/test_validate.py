"""The validation jobs: `validate_model` (a trigger's smoke test) and `validate` (holdout score against the
Production version, the verdict as tags, the registry's promotion gate), with scores checked by scikit-learn."""

from __future__ import annotations

import json
import shutil
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_squared_error

import jobs
from jobs._validate import validate
from jobs.errors import InvalidJobArgumentError, JobsError
from lakehouse import Lakehouse

pytestmark = pytest.mark.filterwarnings("ignore")


def test_jobs_public_api_is_sorted_and_keeps_its_names():
    # The exact pin belongs to whoever edits jobs/__init__.py; here: nothing of the validation API is lost.
    assert jobs.__all__ == sorted(jobs.__all__)
    assert {"JobRun", "ModelValidationError", "create_trigger", "list_runs", "validate_model"} <= set(jobs.__all__)


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


# -- validate ----------------------------------------------------------------------------------------------
COLUMNS = ["f0", "f1", "f2", "f3"]


def _classification() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    x, y = make_classification(n_samples=240, n_features=4, n_informative=3, n_redundant=0, random_state=7)
    train = pd.DataFrame(x[:160], columns=COLUMNS)
    holdout = pd.DataFrame(x[160:], columns=COLUMNS).assign(label=y[160:].astype("int64"))
    return train, pd.Series(y[:160]), holdout


def _register(name: str, model, train: pd.DataFrame) -> str:
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train.head(2),
            registered_model_name=name,
            pip_requirements=["scikit-learn"],  # no requirement inference (a subprocess per model)
        )
    return str(info.registered_model_version)


def _tags(name: str, version: str) -> dict[str, str]:
    return mlflow.MlflowClient().get_model_version(name, version).tags


@pytest.fixture(scope="module")
def churn_template(tmp_path_factory, spark):
    """Built once per module (logging models is the slow part): registered model `churn`, v1 a majority-class
    dummy in Production, v2 a logistic regression, and the holdout table. Tests work on copies of its lake."""
    root = tmp_path_factory.mktemp("churn") / "lake"
    uri = f"lakehouse://{root}"
    mlflow.set_tracking_uri(uri)
    try:
        train, y, holdout = _classification()
        models = {"1": DummyClassifier(strategy="most_frequent").fit(train, y), "2": LogisticRegression().fit(train, y)}
        for version, model in models.items():
            assert _register("churn", model, train) == version
        mlflow.MlflowClient().transition_model_version_stage("churn", 1, "Production")
        Lakehouse(root, spark=spark).create_table("features.churn_holdout", spark.createDataFrame(holdout))
    finally:
        mlflow.set_tracking_uri(None)
    return {"lake": root, "models": models, "holdout": holdout}


@pytest.fixture
def churn(churn_template, tmp_path, monkeypatch):
    """A private copy of the template lake (its model artifacts stay in the template's folder, read only)."""
    lake = tmp_path / "lake"
    shutil.copytree(churn_template["lake"], lake)
    uri = f"lakehouse://{lake}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return {**churn_template, "lake": str(lake)}


def test_a_better_candidate_passes_with_both_scores_checked_by_sklearn(churn, spark):
    out = validate(
        churn["lake"], model_name="churn", version=2, holdout_table="features.churn_holdout", label_column="label",
        spark=spark,
    )  # fmt: skip
    x, y = churn["holdout"][COLUMNS], churn["holdout"]["label"]
    expected = {v: accuracy_score(y, m.predict(x)) for v, m in churn["models"].items()}
    assert expected["2"] > expected["1"] + 0.2  # the scenario is what it claims: v2 is much better
    assert out["status"] == "passed" and out["metric"] == "accuracy"
    assert out["candidate"] == pytest.approx(expected["2"]) and out["production"] == pytest.approx(expected["1"])
    assert (out["production_version"], out["rows"], out["holdout_version"]) == (1, 80, 0)
    tags = _tags("churn", "2")
    assert tags["validation.status"] == "passed"
    recorded = json.loads(tags["validation.metrics"])
    assert (
        recorded["candidate"] == pytest.approx(expected["2"]) and recorded["holdout_table"] == "features.churn_holdout"
    )
    json.dumps(out)  # the job's figures are JSON


def test_a_worse_candidate_fails_unless_within_tolerance(churn, spark):
    # Production is now the good model; the dummy (v1) is validated against it.
    client = mlflow.MlflowClient()
    client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    x, y = churn["holdout"][COLUMNS], churn["holdout"]["label"]
    gap = accuracy_score(y, churn["models"]["2"].predict(x)) - accuracy_score(y, churn["models"]["1"].predict(x))
    args = {"model_name": "churn", "version": "1", "holdout_table": "features.churn_holdout", "label_column": "label"}
    failed = validate(churn["lake"], **args, tolerance=gap - 0.01, spark=spark)
    assert failed["status"] == "failed" and failed["production_version"] == 2
    assert _tags("churn", "1")["validation.status"] == "failed"
    passed = validate(churn["lake"], **args, tolerance=gap + 0.01, spark=spark)
    assert passed["status"] == "passed" and _tags("churn", "1")["validation.status"] == "passed"


def test_regression_defaults_to_rmse_and_no_production_version_passes(registry, tmp_path, spark):
    x, y = make_regression(n_samples=120, n_features=4, noise=5.0, random_state=3)
    train = pd.DataFrame(x[:80], columns=COLUMNS)
    model = LinearRegression().fit(train, y[:80])
    _register("price", model, train)
    holdout = pd.DataFrame(x[80:], columns=COLUMNS).assign(target=y[80:])
    Lakehouse(tmp_path / "lake", spark=spark).create_table("features.price_holdout", spark.createDataFrame(holdout))
    out = validate(
        f"lakehouse://{tmp_path}/lake", model_name="price", version=1, holdout_table="features.price_holdout",
        label_column="target", spark=spark,
    )  # fmt: skip
    rmse = float(np.sqrt(mean_squared_error(y[80:], model.predict(pd.DataFrame(x[80:], columns=COLUMNS)))))
    assert out["metric"] == "rmse" and out["candidate"] == pytest.approx(rmse)
    assert (out["status"], out["production_version"], out["production"]) == ("passed", None, None)


BAD = [
    ({"model_name": ""}, "model_name"),
    ({"version": 0}, "version"),
    ({"version": "v2"}, "version"),
    ({"version": True}, "version"),
    ({"version": 9}, "version"),  # no such version
    ({"holdout_table": "features.nope"}, "holdout_table"),
    ({"label_column": "churned"}, "label_column"),
    ({"metric": "auc"}, "metric"),
    ({"tolerance": -0.1}, "tolerance"),
    ({"tolerance": float("nan")}, "tolerance"),
]


def test_bad_arguments_are_named_and_nothing_is_tagged(churn, spark):
    # One registry for every case (each refusal comes before any write, so the cases cannot disturb each other).
    args = {"model_name": "churn", "version": 2, "holdout_table": "features.churn_holdout", "label_column": "label"}
    for change, argument in BAD:
        with pytest.raises(InvalidJobArgumentError) as info:
            validate(churn["lake"], **{**args, **change}, spark=spark)
        assert (info.value.argument, info.value.job) == (argument, "validate"), change
        assert isinstance(info.value, JobsError) and argument in str(info.value)
        if argument == "label_column":
            assert "'f0'" in str(info.value) and "'label'" in str(info.value)  # the columns that exist
        if argument == "holdout_table":
            assert "features.churn_holdout" in str(info.value)  # the tables that exist
    assert not any(k.startswith("validation.") for k in _tags("churn", "2"))


def test_the_gate_lets_only_a_validated_version_into_production(churn, spark):
    client = mlflow.MlflowClient()
    client.set_registered_model_tag("churn", "validation.required", "true")
    with pytest.raises(MlflowException, match="never validated"):
        client.transition_model_version_stage("churn", 2, "Production")
    args = {"model_name": "churn", "holdout_table": "features.churn_holdout", "label_column": "label"}
    assert validate(churn["lake"], **args, version=2, spark=spark)["status"] == "passed"
    client.transition_model_version_stage("churn", 2, "Production", archive_existing_versions=True)
    assert client.get_model_version("churn", 2).current_stage == "Production"
    # v1 (the dummy) against v2 now in Production: fails, and the gate keeps it out.
    assert validate(churn["lake"], **args, version=1, spark=spark)["status"] == "failed"
    with pytest.raises(MlflowException, match="status='failed'"):
        client.transition_model_version_stage("churn", 1, "Production")


def test_a_staging_trigger_runs_validate_in_its_own_process_and_the_gate_follows(churn, tmp_path, monkeypatch):
    """The issue's flow: the model opts in; moving a version to Staging runs validate as a job (exit 0)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "local[1]")
    (tmp_path / "validate_on_staging.py").write_text(
        "import os\n"
        "from jobs._validate import validate\n"
        "def run(event):\n"
        "    return validate(os.environ['MLFLOW_TRACKING_URI'], model_name=event['name'], version=event['version'],\n"
        "                    holdout_table='features.churn_holdout', label_column='label')['status']\n"
    )
    client = mlflow.MlflowClient()
    client.set_registered_model_tag("churn", "validation.required", "true")
    trigger = jobs.create_trigger(
        churn["lake"], name="validate", model_name="churn", stage="Staging", callable="validate_on_staging:run"
    )
    client.transition_model_version_stage("churn", 2, "Staging")
    deadline = time.time() + 180
    while not jobs.list_runs(churn["lake"], trigger.trigger_id):
        assert time.time() < deadline, "the validate job did not run in 180 s"
        time.sleep(0.2)
    (run,) = jobs.list_runs(churn["lake"], trigger.trigger_id)
    assert (run.status, run.exit_code, run.version) == ("succeeded", 0, "2"), run.output
    assert run.output.strip().endswith("passed")
    assert _tags("churn", "2")["validation.status"] == "passed"
    client.transition_model_version_stage("churn", 2, "Production")
    assert client.get_model_version("churn", 2).current_stage == "Production"
