"""`mlflow gc` on the lake: deleted runs, logged models and experiments erased with their data and artifacts,
as on MLflow's SQL store; after VACUUM past the retention, time travel cannot read them either."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from lakehouse import Lakehouse
from lakehouse.errors import DataFilesMissingError
from tracking._store import LakehouseTrackingStore

pytestmark = pytest.mark.filterwarnings("ignore")

RUN_TABLES = ["runs", "params", "tags", "metrics", "latest_metrics", "inputs"]


def rows_of(lake: str, table: str, column: str, value: str) -> int:
    """How many rows of `mlflow.<table>` have `column` = `value`, read with delta-rs (not through the store)."""
    dt = DeltaTable(os.path.join(lake, "mlflow", table))
    result = QueryBuilder().register("t", dt).execute(f"select count(*) as n from t where {column} = '{value}'")
    return pa.table(result.read_all()).column("n").to_pylist()[0]


def gc(uri: str, *args: str) -> subprocess.CompletedProcess:
    """The real `mlflow gc` command, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "mlflow", "gc", "--backend-store-uri", uri, "--tracking-uri", uri, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def populated_run(client: mlflow.MlflowClient, exp: str, name: str) -> str:
    run_id = client.create_run(exp, run_name=name).info.run_id
    client.log_batch(run_id, [Metric("m", 1.0, 0, 0), Metric("m", 2.0, 1, 1)], [Param("p", "1")], [RunTag("t", "v")])
    dataset = mlflow.data.from_pandas(__import__("pandas").DataFrame({"x": [1, 2]}), name="train")
    client.log_inputs(run_id, [mlflow.entities.DatasetInput(dataset._to_mlflow_entity(), [])])
    client.log_text(run_id, "hello", "notes/a.txt")
    return run_id


def test_gc_erases_deleted_runs_models_and_experiments(tmp_path, lake_uri):
    lake = str(tmp_path / "lake")
    mlflow.set_tracking_uri(lake_uri)  # where traces are exported to
    client = mlflow.MlflowClient(lake_uri)
    exp = client.create_experiment("kept")
    gone, kept = populated_run(client, exp, "gone"), populated_run(client, exp, "kept")
    artifacts = client.get_run(gone).info.artifact_uri.removeprefix("file://")
    assert os.path.exists(os.path.join(artifacts, "notes", "a.txt"))
    store = client._tracking_client.store
    model = store.create_logged_model(exp, name="old-model", source_run_id=kept)
    store.log_logged_model_params(model.model_id, [mlflow.entities.LoggedModelParameter("alpha", "0.1")])
    store.delete_logged_model(model.model_id)
    doomed = client.create_experiment("doomed")
    in_doomed = populated_run(client, doomed, "in-doomed")
    span = client.start_trace("traced", experiment_id=doomed)
    client.end_trace(span.trace_id)
    mlflow.flush_trace_async_logging()
    traced = span.trace_id
    assert rows_of(lake, "spans", "trace_id", traced) == 1
    client.delete_run(gone)
    client.delete_experiment(doomed)
    assert sorted(store._get_deleted_runs()) == sorted([gone, in_doomed])
    assert store._get_deleted_runs(older_than=86_400_000) == []  # deleted just now: not a day ago

    young = gc(lake_uri, "--older-than", "1d")
    assert young.returncode == 0, young.stderr
    assert client.get_run(gone).info.lifecycle_stage == "deleted"  # too young to collect

    done = gc(lake_uri)
    assert done.returncode == 0, done.stderr
    assert f"Run with ID {gone} has been permanently deleted." in done.stdout
    assert f"Experiment with ID {doomed} has been permanently deleted." in done.stdout

    fresh = mlflow.MlflowClient(lake_uri)  # a new process's view: nothing cached
    for run_id in (gone, in_doomed):
        with pytest.raises(MlflowException) as info:
            fresh.get_run(run_id)
        assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        for table in RUN_TABLES:
            assert rows_of(lake, table, "run_id", run_id) == 0, table
    assert not os.path.exists(artifacts)
    with pytest.raises(MlflowException) as info:
        fresh._tracking_client.store.get_logged_model(model.model_id, allow_deleted=True)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert rows_of(lake, "logged_model_params", "model_id", model.model_id) == 0
    assert rows_of(lake, "experiments", "experiment_id", doomed) == 0
    for table in ("traces", "spans", "trace_tags", "trace_request_metadata"):  # its traces went with it
        assert rows_of(lake, table, "trace_id", traced) == 0, table
    # what was not deleted is all there
    run = fresh.get_run(kept)
    assert (run.data.params, run.data.metrics, run.data.tags["t"]) == ({"p": "1"}, {"m": 2.0}, "v")
    assert [m.value for m in fresh.get_metric_history(kept, "m")] == [1.0, 2.0]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["train"]
    # an erased experiment's name is free again (and, as on SQLite, its id may be given out again)
    again = fresh.create_experiment("doomed")
    assert fresh.get_experiment(again).lifecycle_stage == "active"
    assert fresh.search_runs([again]) == []


def test_gc_refuses_what_is_not_deleted_and_hard_delete_checks_like_sqlite(lake_uri, sqlite_uri):
    outcomes = {}
    for label, uri in (("sqlite", sqlite_uri), ("lake", lake_uri)):
        client = mlflow.MlflowClient(uri)
        exp = client.create_experiment("active")
        run_id = client.create_run(exp).info.run_id
        store = client._tracking_client.store
        answers = []
        for method, arg in (
            ("_hard_delete_experiment", exp),  # active: not found among the deleted
            ("_hard_delete_run", "0" * 32),
            ("_hard_delete_logged_model", "m-" + "0" * 32),
        ):
            with pytest.raises(MlflowException) as info:
                getattr(store, method)(arg)
            answers.append(info.value.error_code)
        answers.append(store._get_deleted_runs())
        outcomes[label] = answers
        refused = gc(uri, "--run-ids", run_id)
        assert refused.returncode != 0
        assert f"Run {run_id} is not in `deleted` lifecycle stage" in refused.stderr
        assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert (
        outcomes["lake"]
        == outcomes["sqlite"]
        == [
            "RESOURCE_DOES_NOT_EXIST",
            "RESOURCE_DOES_NOT_EXIST",
            "RESOURCE_DOES_NOT_EXIST",
            [],
        ]
    )


def test_after_gc_and_vacuum_time_travel_cannot_read_the_erased_rows(tmp_path, lake_uri, spark):
    store = LakehouseTrackingStore(lake_uri)
    run_id = store.create_run("0", "u", 0, [], "secret").info.run_id
    store.log_batch(run_id, [], [Param("password_hint", "hunter2")], [])
    store.delete_run(run_id)
    lake = Lakehouse(str(tmp_path / "lake"), spark=spark)
    before = lake.history("mlflow.params")[0].version
    store._hard_delete_run(run_id)

    def hints(version: int | None = None) -> list:
        rows = lake.read("mlflow.params", version=version).where(f"run_id = '{run_id}'").collect()
        return [r["value"] for r in rows]

    assert hints() == []
    assert hints(before) == ["hunter2"]  # Delta keeps the earlier version's files until VACUUM
    lake.vacuum("mlflow.params", retention_hours=0, dry_run=False, enforce_retention_duration=False)
    with pytest.raises(DataFilesMissingError):
        hints(before)
