"""Delta-level failures reach MLflow clients as MLflow error codes: 503 for lost races, 501 for unsupported tables."""

from __future__ import annotations

import json
import os

import pytest
from mlflow.entities import Metric, RunTag, ViewType
from mlflow.exceptions import MlflowException

from lakehouse._retry import RetryPolicy
from lakehouse.errors import ConcurrentModificationError
from tracking import LakehouseTrackingStore


def _append_commit(table_path: str, *actions: dict) -> None:
    log = os.path.join(table_path, "_delta_log")
    newest = max(int(n[:20]) for n in os.listdir(log) if n.endswith(".json") and n[:20].isdigit())
    with open(os.path.join(log, f"{newest + 1:020d}.json"), "w") as fh:
        fh.write("\n".join(json.dumps(a) for a in actions) + "\n")


def test_losing_every_race_until_the_deadline_is_temporarily_unavailable(lake_uri, monkeypatch):
    store = LakehouseTrackingStore(lake_uri)
    run_id = store.create_run("0", "u", 0, [], "r").info.run_id
    metrics = store._t.tables["mlflow.metrics"]
    calls = []

    def always_loses(*args, **kwargs):
        calls.append(1)
        raise ConcurrentModificationError("mlflow.metrics", "commit", 1, "version taken by another writer")

    monkeypatch.setattr(metrics, "commit", always_loses)
    monkeypatch.setattr(store._t, "retry_policy", RetryPolicy(deadline=0.2, first_delay=0.001, max_delay=0.01))
    with pytest.raises(MlflowException) as e:
        store.log_batch(run_id, [Metric("m", 1.0, 0, 0)], [], [])
    assert e.value.error_code == "TEMPORARILY_UNAVAILABLE"
    assert e.value.get_http_status_code() == 503
    assert "mlflow.metrics" in e.value.message and "safe to retry" in e.value.message
    assert len(calls) > 1


def test_a_table_with_deletion_vectors_is_refused_clearly(lake_uri, tmp_path):
    LakehouseTrackingStore(lake_uri)
    _append_commit(
        str(tmp_path / "lake" / "mlflow" / "runs"),
        {
            "protocol": {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": ["deletionVectors"],
                "writerFeatures": ["deletionVectors"],
            }
        },
    )
    with pytest.raises(MlflowException) as e:
        LakehouseTrackingStore(lake_uri).search_runs(["0"], "", ViewType.ALL)
    assert e.value.error_code == "NOT_IMPLEMENTED"
    assert "'deletionVectors'" in e.value.message and "'mlflow.runs'" in e.value.message


def test_an_append_only_table_refuses_writes_clearly(lake_uri, tmp_path):
    store = LakehouseTrackingStore(lake_uri)
    run_id = store.create_run("0", "u", 0, [], "r").info.run_id
    table = tmp_path / "lake" / "mlflow" / "tags"
    with open(table / "_delta_log" / f"{0:020d}.json") as fh:
        metadata = next(json.loads(line)["metaData"] for line in fh if '"metaData"' in line)
    _append_commit(str(table), {"metaData": {**metadata, "configuration": {"delta.appendOnly": "true"}}})
    with pytest.raises(MlflowException) as e:
        store.set_tag(run_id, RunTag("k", "v"))
    assert e.value.error_code == "NOT_IMPLEMENTED"
    assert "appendOnly" in e.value.message and "cannot write" in e.value.message
    assert store.get_run(run_id).info.run_name == "r"  # reading still works
