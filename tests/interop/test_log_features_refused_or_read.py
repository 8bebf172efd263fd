"""Delta log features made by delta-spark on a tracking table: the store reads them right or refuses by name.

Each case takes its own lake, lets delta-spark itself produce the feature (deletion vectors, a v2 checkpoint,
a multi-part checkpoint), and after every step asks a cold store (a new `LakehouseTrackingStore`) and the warm
one (MLflow's cached client) for the run's metric history. Each answer must either equal what delta-spark reads
at that version, or be an MlflowException that names the feature and is not an internal error: never other
rows, never a raw Python exception.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from interop_helpers import commit_actions, latest_version, spark_checkpoint, spark_rows
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, ErrorCode

from tracking import LakehouseTrackingStore

KEY = "m"


@dataclass
class Lake:
    uri: str
    path: str  # the metrics table
    run_id: str
    client: MlflowClient


def make_lake(tmp_path) -> Lake:
    """One run whose metric `m` has 6 points in 4 commits (one file of three rows, three of one row)."""
    uri = f"lakehouse://{tmp_path / 'lake'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("features")).info.run_id
    client.log_batch(run_id, metrics=[Metric(KEY, float(s), 1000 + s, s) for s in range(3)])
    for s in range(3, 6):
        client.log_metric(run_id, KEY, float(s), timestamp=1000 + s, step=s)
    return Lake(uri, str(tmp_path / "lake" / "mlflow" / "metrics"), run_id, client)


def check_store(spark, lake: Lake, stage: str, names_feature: re.Pattern) -> list[str]:
    """Compare both stores with delta-spark at the table's latest version; return what each store did."""
    version = latest_version(lake.path)
    expected = sorted(
        (v, ts, s)
        for run, v, ts, s in spark_rows(spark, lake.path, ("run_id", "value", "timestamp", "step"), version)
        if run == lake.run_id
    )
    outcomes = []
    for which, read in (
        ("cold", lambda: LakehouseTrackingStore(lake.uri).get_metric_history(lake.run_id, KEY)),
        ("warm", lambda: lake.client.get_metric_history(lake.run_id, KEY)),
    ):
        try:
            got = sorted((m.value, m.timestamp, m.step) for m in read())
        except MlflowException as exc:
            assert names_feature.search(str(exc)), f"{stage}, {which} store: refusal does not name the feature: {exc}"
            assert exc.error_code != ErrorCode.Name(INTERNAL_ERROR), f"{stage}, {which} store: {exc.error_code}: {exc}"
            outcomes.append(f"{which}: refused ({exc.error_code})")
            continue
        assert got == expected, f"{stage}, {which} store at version {version}: read {got}, delta-spark reads {expected}"
        outcomes.append(f"{which}: read {len(got)} rows")
    return outcomes


def check_write(spark, lake: Lake, stage: str, names_feature: re.Pattern) -> str:
    """A write through the warm store: refused by name, or landed where delta-spark and a cold store see it."""
    try:
        lake.client.log_metric(lake.run_id, KEY, 99.0, timestamp=9999, step=99)
    except MlflowException as exc:
        assert names_feature.search(str(exc)), f"{stage}: write refusal does not name the feature: {exc}"
        assert exc.error_code != ErrorCode.Name(INTERNAL_ERROR), f"{stage}: {exc.error_code}: {exc}"
        return f"write refused ({exc.error_code})"
    rows = spark_rows(spark, lake.path, ("run_id", "value", "timestamp", "step"))
    assert rows.count((lake.run_id, 99.0, 9999, 99)) == 1, rows
    check_store(spark, lake, f"{stage}, after the write", names_feature)
    return "write landed"


@pytest.mark.slow
def test_deletion_vectors(tmp_path, delta_spark):
    spark, lake = delta_spark, make_lake(tmp_path)
    feature = re.compile("deletionVectors")
    report = {"plain": check_store(spark, lake, "plain table", feature)}
    assert report["plain"] == ["cold: read 6 rows", "warm: read 6 rows"]

    spark.sql(f"ALTER TABLE delta.`{lake.path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    report["enabled"] = check_store(spark, lake, "deletion vectors enabled", feature)
    spark.sql(f"DELETE FROM delta.`{lake.path}` WHERE run_id = '{lake.run_id}' AND step = 1")
    added = [a["add"] for a in commit_actions(lake.path, latest_version(lake.path)) if "add" in a]
    assert any(a.get("deletionVector") for a in added), f"delta-spark rewrote the file instead of a DV: {added}"
    report["deleted"] = check_store(spark, lake, "a row deleted through a deletion vector", feature)
    report["write"] = check_write(spark, lake, "deletion vectors", feature)
    print(report)


@pytest.mark.slow
def test_v2_checkpoint(tmp_path, delta_spark):
    spark, lake = delta_spark, make_lake(tmp_path)
    feature = re.compile("v2Checkpoint|checkpointPolicy")
    spark.sql(f"ALTER TABLE delta.`{lake.path}` SET TBLPROPERTIES ('delta.checkpointPolicy' = 'v2')")
    report = {"policy": check_store(spark, lake, "v2 checkpoint policy set", feature)}
    version = spark_checkpoint(spark, lake.path)
    v2 = [
        n
        for n in os.listdir(os.path.join(lake.path, "_delta_log"))
        if re.fullmatch(rf"{version:020d}\.checkpoint\.[0-9a-f-]{{36}}\.(json|parquet)", n)
    ]
    assert v2, f"no v2 checkpoint at version {version}: {sorted(os.listdir(os.path.join(lake.path, '_delta_log')))}"
    report["checkpointed"] = check_store(spark, lake, f"v2 checkpoint {v2[0]}", feature)
    report["write"] = check_write(spark, lake, "v2 checkpoint", feature)
    print(report)


@pytest.mark.slow
def test_multi_part_checkpoint(tmp_path, delta_spark):
    spark, lake = delta_spark, make_lake(tmp_path)
    feature = re.compile(r"multi-?part|checkpoint", re.IGNORECASE)
    spark.conf.set("spark.databricks.delta.checkpoint.partSize", "2")
    try:
        version = spark_checkpoint(spark, lake.path)
    finally:
        spark.conf.unset("spark.databricks.delta.checkpoint.partSize")
    parts = sorted(
        n
        for n in os.listdir(os.path.join(lake.path, "_delta_log"))
        if re.fullmatch(rf"{version:020d}\.checkpoint\.\d{{10}}\.\d{{10}}\.parquet", n)
    )
    assert len(parts) > 1, f"no multi-part checkpoint at version {version}: {parts}"
    report = {"checkpointed": check_store(spark, lake, f"{len(parts)}-part checkpoint", feature)}
    report["write"] = check_write(spark, lake, "multi-part checkpoint", feature)
    # The write's version, read by delta-spark from the multi-part checkpoint plus one commit, is checked above;
    # the checkpoint's own version once more, by time travel.
    expected = sorted((float(s), 1000 + s, s) for s in range(6))
    assert (
        sorted(
            r[1:]
            for r in spark_rows(spark, lake.path, ("run_id", "value", "timestamp", "step"), version)
            if r[0] == lake.run_id
        )
        == expected
    )
    print(report)
