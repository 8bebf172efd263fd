"""The Spark analysis API: runs and metric history as DataFrames, now and as of an earlier point.

MLflow's own `mlflow.search_runs` (pandas) is the oracle for what the latest state shows."""

import math
import time
from datetime import UTC, datetime

import mlflow
import pytest

from lakehouse.errors import VersionNotFoundError
from tracking import metric_history, runs


@pytest.fixture
def logged(lake_uri, spark):
    mlflow.set_tracking_uri(lake_uri)
    mlflow.set_experiment("churn")
    for i in range(3):
        with mlflow.start_run(run_name=f"r{i}"):
            mlflow.log_params({"alpha": i / 10, "depth": i})
            mlflow.log_metric("rmse", 1.0 - i / 10, step=0)
            mlflow.log_metric("rmse", 0.5 - i / 10, step=1)
            mlflow.log_metric("auc", float("nan") if i == 2 else 0.7)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    with mlflow.start_run(run_name="late"):
        mlflow.log_param("alpha", 9)
        mlflow.log_metric("rmse", 0.01)
    mlflow.set_experiment("other")
    with mlflow.start_run(run_name="elsewhere"):
        mlflow.log_metric("rmse", 3.0)
    return between


def test_runs_match_mlflow_search_runs(lake_uri, logged):
    expected = mlflow.search_runs(experiment_names=["churn"])
    got = {r["run_id"]: r for r in (x.asDict() for x in runs(lake_uri, experiment_names=["churn"]).collect())}
    assert set(got) == set(expected["run_id"])
    for _, row in expected.iterrows():
        mine = got[row["run_id"]]
        assert mine["run_name"] == row["tags.mlflow.runName"]
        assert mine["params.alpha"] == row["params.alpha"]
        for metric in ("metrics.rmse", "metrics.auc"):
            want, have = row.get(metric), mine.get(metric)
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert have is None or math.isnan(have)
            else:
                assert have == pytest.approx(want)
        assert mine["status"] == row["status"]


def test_runs_as_of_a_timestamp_and_a_version(lake_uri, logged):
    before = runs(lake_uri, experiment_names=["churn"], timestamp=logged)
    assert sorted(r.run_name for r in before.collect()) == ["r0", "r1", "r2"]
    assert "params.depth" in before.columns
    first = runs(lake_uri, version=1).collect()  # the first commit to mlflow.runs: run r0, still running
    assert [(r.run_name, r.status) for r in first] == [("r0", "RUNNING")]
    with pytest.raises(VersionNotFoundError):
        runs(lake_uri, version=10_000)
    with pytest.raises(ValueError, match="not both"):
        runs(lake_uri, version=1, timestamp=logged)


def test_metric_history(lake_uri, logged):
    hist = metric_history(lake_uri, keys=["rmse"])
    assert hist.count() == 3 * 2 + 1 + 1
    r0 = mlflow.search_runs(experiment_names=["churn"], filter_string="tags.mlflow.runName = 'r0'")["run_id"][0]
    assert [(r.step, r.value) for r in metric_history(lake_uri, run_ids=[r0], keys=["rmse"]).collect()] == [
        (0, 1.0),
        (1, 0.5),
    ]
    assert metric_history(lake_uri, keys=["rmse"], timestamp=logged).count() == 6


def test_which_version_was_in_production_at_a_time(lake_uri, spark):
    from tracking import model_versions

    mlflow.set_tracking_uri(lake_uri)
    client = mlflow.MlflowClient()
    client.create_registered_model("churn")
    for _ in range(2):
        client.create_model_version("churn", source="file:///tmp/model", run_id=None)
    client.transition_model_version_stage("churn", "1", "Production")
    client.set_registered_model_alias("churn", "champion", "1")
    time.sleep(0.05)
    first_production = datetime.now(UTC)
    time.sleep(0.05)
    client.transition_model_version_stage("churn", "2", "Production", archive_existing_versions=True)
    client.set_registered_model_alias("churn", "champion", "2")

    def production(**kw):
        df = model_versions(lake_uri, name="churn", **kw).where("current_stage = 'Production'")
        return [(r.version, r.aliases) for r in df.collect()]

    assert production() == [(2, ["champion"])]
    assert production(timestamp=first_production) == [(1, ["champion"])]
    stages = {r.version: r.current_stage for r in model_versions(lake_uri, name="churn").collect()}
    assert stages == {1: "Archived", 2: "Production"}
    assert model_versions(lake_uri, name="churn", version=0).count() == 0
