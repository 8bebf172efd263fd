"""MLflow on a lake in a bucket: `lakehouse:s3://bucket/lake` is all a user changes. Runs, metrics, the registry
and artifacts (MLflow's own S3 artifact repository) land on the object store; a fresh store (another
process's view) and delta-rs (an independent reader) see them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tracking import LakehouseRegistryStore, LakehouseTrackingStore, open_lake


def _query(path: str, sql: str) -> list[dict]:
    return pa.table(QueryBuilder().register("t", DeltaTable(path)).execute(sql).read_all()).to_pylist()


def test_runs_registry_and_artifacts_on_an_s3_lake(s3, s3_root, tmp_path):
    uri = f"lakehouse:{s3_root}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("on-s3")
    run = client.create_run(exp, tags={"team": "risk"})
    run_id = run.info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (step + 1), 1_700_000_000_000 + step, step) for step in range(5)],
        params=[Param("lr", "0.1"), Param("depth", "6")],
        tags=[RunTag("stage", "train")],
    )
    (tmp_path / "model.txt").write_text("weights")
    client.log_artifact(run_id, str(tmp_path / "model.txt"))
    client.set_terminated(run_id)
    client.create_registered_model("churn")
    client.create_model_version("churn", f"runs:/{run_id}/model.txt", run_id=run_id)
    client.set_registered_model_alias("churn", "champion", "1")
    open_lake(s3_root).dispatcher.close(
        budget_seconds=5
    )  # its events delivered (none subscribed) before the server stops

    fresh = LakehouseTrackingStore(uri)  # a new snapshot read from the bucket, as another process has
    got = fresh.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.params == {"lr": "0.1", "depth": "6"}
    assert got.data.tags["stage"] == "train" and got.data.tags["team"] == "risk"
    assert got.data.metrics == {"loss": 0.2}
    history = fresh.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    found = fresh.search_runs([exp], "params.lr = '0.1' and metrics.loss < 0.5", run_view_type=1)
    assert [r.info.run_id for r in found] == [run_id]
    assert LakehouseRegistryStore(uri).get_model_version_by_alias("churn", "champion").run_id == run_id

    assert got.info.artifact_uri.startswith(f"{s3_root}/_mlflow_artifacts/{exp}/")
    local = client.download_artifacts(run_id, "model.txt", str(tmp_path / "down"))
    assert Path(local).read_text() == "weights"
    key = got.info.artifact_uri[len(f"s3://{s3.bucket}/") :] + "/model.txt"
    assert s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read() == b"weights"

    assert _query(f"{s3_root}/mlflow/runs", "SELECT run_id, status FROM t") == [
        {"run_id": run_id, "status": "FINISHED"}
    ]
    points = _query(f"{s3_root}/mlflow/metrics", "SELECT step, value FROM t ORDER BY step")
    assert [(p["step"], p["value"]) for p in points] == [(s, 1.0 / (s + 1)) for s in range(5)]
