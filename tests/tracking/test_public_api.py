"""The tracking package's public face, its entry point, its unsupported APIs, and its tables as Delta."""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import mlflow
import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder
from mlflow.exceptions import MlflowException

import tracking
from tracking import TABLES, LakehouseTrackingStore


def test_all_is_pinned():
    assert tracking.__all__ == sorted(tracking.__all__)
    assert tracking.__all__ == [
        "JOB_HISTORY",
        "JOB_RUNS",
        "Lake",
        "LakehouseRegistryStore",
        "LakehouseTrackingStore",
        "Outcome",
        "SCHEME",
        "STAGE_TRANSITIONED",
        "Subscriber",
        "TABLES",
        "TRIGGERS",
        "TRIGGER_TAGS",
        "VALIDATION_PASSED",
        "VALIDATION_REQUIRED_TAG",
        "VALIDATION_STATUS_TAG",
        "factory",
        "lake_root_from_uri",
        "lake_uri",
        "metric_history",
        "model_versions",
        "open_lake",
        "redact_url",
        "registry_factory",
        "runs",
    ]


def test_entry_point_is_registered():
    eps = {ep.name: ep.value for ep in entry_points(group="mlflow.tracking_store")}
    assert eps.get("lakehouse") == "tracking:factory"


def test_bad_uri_names_the_expected_form():
    with pytest.raises(MlflowException, match="lakehouse:///"):
        LakehouseTrackingStore("lakehouse://host/relative")


def test_every_abstract_store_method_is_implemented_or_declared_unsupported():
    """An MLflow upgrade that adds a store method fails here until it is implemented or listed as unsupported."""
    from mlflow.store.tracking.abstract_store import AbstractStore

    from tracking._store_traces import TraceMethods
    from tracking._unsupported import UnsupportedStoreMethods

    unsupported = {n for n in vars(UnsupportedStoreMethods) if not n.startswith("_")}
    ours = set(vars(LakehouseTrackingStore)) | set(vars(TraceMethods))
    assert not unsupported & ours, "implemented and declared unsupported at once"
    inherited = []
    for name, value in vars(AbstractStore).items():
        if name.startswith("_") or not callable(value) or name in ours or name in unsupported:
            continue
        if getattr(value, "__isabstractmethod__", False) or "NotImplementedError" in (
            value.__code__.co_names if hasattr(value, "__code__") else ()
        ):
            inherited.append(name)
    assert not inherited, f"AbstractStore methods neither implemented nor declared unsupported: {inherited}"
    assert LakehouseTrackingStore.create_dataset.__doc__.startswith("Not supported")


@pytest.mark.parametrize("start_time", ["yesterday", 2**63, True, 1.5])
def test_a_malformed_start_time_is_refused_before_anything_is_written(lake_uri, start_time):
    store = LakehouseTrackingStore(lake_uri)
    exp = store.create_experiment("e")
    with pytest.raises(MlflowException, match="start_time") as e:
        store.create_run(exp, "u", start_time, [mlflow.entities.RunTag("k", "v")], "r")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    fresh = LakehouseTrackingStore(lake_uri)  # another process's view: no run, and no orphan tag row
    assert fresh.search_runs([exp], None, mlflow.entities.ViewType.ALL) == []
    root = lake_uri.removeprefix("lakehouse://")
    assert [uri for uri in DeltaTable(os.path.join(root, "mlflow", "tags")).file_uris()] == []
    assert store.create_run(exp, "u", 1.7e12, [], "r").info.start_time == 1_700_000_000_000


@pytest.mark.parametrize("call", ["create_dataset", "register_scorer", "unlink_traces_from_run"])
def test_the_genai_family_is_refused_clearly(lake_uri, call):
    """Out of scope (README): a NOT_IMPLEMENTED MlflowException naming the method, never an AttributeError."""
    store = LakehouseTrackingStore(lake_uri)
    with pytest.raises(MlflowException, match=f"{call} is not supported by the lakehouse tracking store") as e:
        getattr(store, call)("x")
    assert e.value.error_code == "NOT_IMPLEMENTED"


def test_tables_are_delta_tables_with_time_travel(tmp_path, lake_uri):
    mlflow.set_tracking_uri(lake_uri)
    with mlflow.start_run(run_name="first"):
        mlflow.log_metric("m", 1.0)
    v1 = DeltaTable(os.path.join(tmp_path, "lake", "mlflow", "runs")).version()
    with mlflow.start_run(run_name="second"):
        mlflow.log_metric("m", 2.0)
    for name in TABLES:
        path = os.path.join(tmp_path, "lake", *name.split("."))
        assert DeltaTable(path).metadata().name == name
    runs = os.path.join(tmp_path, "lake", "mlflow", "runs")

    def names(version=None):
        dt = DeltaTable(runs, version=version)
        return sorted(
            pa.table(QueryBuilder().register("t", dt).execute("select name from t").read_all())
            .column("name")
            .to_pylist()
        )

    assert names() == ["first", "second"]
    assert names(v1) == ["first"]


def test_compaction_and_checkpoints_keep_every_row(tmp_path, lake_uri):
    """300 single-row commits: the table is compacted and checkpointed, and a cold reader sees all rows."""
    store = LakehouseTrackingStore(lake_uri)
    run_id = store.create_run("0", "u", 0, [], "r").info.run_id
    for i in range(300):
        store.log_metric(run_id, mlflow.entities.Metric("m", float(i), i, i))
    path = os.path.join(tmp_path, "lake", "mlflow", "metrics")
    assert os.path.exists(os.path.join(path, "_delta_log", "_last_checkpoint"))
    dt = DeltaTable(path)
    assert len(dt.file_uris()) < 100
    count = pa.table(QueryBuilder().register("t", dt).execute("select count(*) as n from t").read_all())
    assert count.column("n").to_pylist() == [300]
    cold = LakehouseTrackingStore(lake_uri)
    assert [m.value for m in cold.get_metric_history(run_id, "m")] == [float(i) for i in range(300)]


@pytest.mark.parametrize("field, value", [("step", 1.5), ("step", 2**63), ("timestamp", 2**64), ("timestamp", 0.5)])
def test_metric_steps_and_timestamps_are_whole_64_bit_numbers(lake_uri, field, value):
    client = mlflow.MlflowClient(lake_uri)
    run_id = client.create_run(client.create_experiment("e")).info.run_id
    point = {"step": 1, "timestamp": 1000, field: value}
    with pytest.raises(MlflowException, match=field) as e:
        client.log_metric(run_id, "m", 0.5, timestamp=point["timestamp"], step=point["step"])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_metric_history(run_id, "m") == []
    client.log_metric(run_id, "m", 0.5, timestamp=1000, step=2.0)  # a whole float is a whole number
    assert [(m.step, m.timestamp) for m in client.get_metric_history(run_id, "m")] == [(2, 1000)]


@pytest.mark.parametrize(
    ("uri", "root"),
    [
        ("lakehouse:///data/lake", "/data/lake"),
        ("lakehouse:///data/lake/", "/data/lake"),
        ("lakehouse:s3://bucket/lake", "s3://bucket/lake"),
        ("lakehouse:s3a://bucket/lake/", "s3a://bucket/lake"),
        ("lakehouse:gs://bucket/a/b", "gs://bucket/a/b"),
    ],
)
def test_lake_uris_round_trip(uri, root):
    assert tracking.lake_root_from_uri(uri) == root
    assert tracking.lake_root_from_uri(tracking.lake_uri(root)) == root


@pytest.mark.parametrize(
    "uri",
    ["lakehouse://data/lake", "lakehouse:relative/lake", "lakehouse:s3://", "lakehouse:http://host/lake", "file:///x"],
)
def test_a_malformed_lake_uri_names_both_accepted_forms(uri):
    with pytest.raises(MlflowException, match=r"lakehouse:///<absolute path.*lakehouse:s3://bucket/lake") as err:
        tracking.lake_root_from_uri(uri)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
