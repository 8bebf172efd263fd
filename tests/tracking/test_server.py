"""`mlflow server --backend-store-uri lakehouse:///...` serves the runs logged to the lake over REST."""

from __future__ import annotations

import json
import urllib.request

import mlflow
import pandas as pd
import pytest
from _mlflow_server import mlflow_server


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_server_answers_runs_search(tmp_path, lake_uri):
    mlflow.set_tracking_uri(lake_uri)
    exp = mlflow.create_experiment("served")
    for i in range(3):
        with mlflow.start_run(experiment_id=exp, run_name=f"r{i}"):
            mlflow.log_param("i", str(i))
            mlflow.log_metric("score", i / 10)
            if i < 2:  # the same dataset twice: one summary
                mlflow.log_input(mlflow.data.from_pandas(pd.DataFrame({"x": [1]}), name="train"), context="training")
    with mlflow_server(lake_uri, str(tmp_path / "art")) as served:
        base = served.base
        body = _post(
            f"{base}/api/2.0/mlflow/runs/search",
            {
                "experiment_ids": [exp],
                "filter": "metrics.score > 0.05",
                "order_by": ["metrics.score DESC"],
            },
        )
        names = [r["info"]["run_name"] for r in body["runs"]]
        assert names == ["r2", "r1"]
        assert body["runs"][0]["data"]["params"] == [{"key": "i", "value": "2"}]
        # The runs page's Datasets filter (the UI's call; HTTP 500 before the store had `_search_datasets`).
        digest = mlflow.data.from_pandas(pd.DataFrame({"x": [1]}), name="train").digest
        found = _post(f"{base}/ajax-api/2.0/mlflow/experiments/search-datasets", {"experiment_ids": [exp]})
        assert found["dataset_summaries"] == [
            {"experiment_id": exp, "name": "train", "digest": digest, "context": "training"}
        ]
        # A write through the server lands in the lake and is visible to this process's store.
        created = _post(f"{base}/api/2.0/mlflow/runs/create", {"experiment_id": exp, "run_name": "via-rest"})
        run_id = created["run"]["info"]["run_id"]
        assert mlflow.MlflowClient(lake_uri).get_run(run_id).info.run_name == "via-rest"
