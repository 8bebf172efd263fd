"""The feature store's training sets over Spark Connect (what Databricks serverless and shared clusters speak):
a process whose only Spark is a Connect session builds them and gets the rows the classic session gets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import table_ops
import training_sets
from worker_env import worker_env

from feature_store import FeatureStoreClient
from lakehouse import Lakehouse

pytestmark = pytest.mark.slow
CLIENT = Path(__file__).with_name("connect_client.py")


def test_training_sets_over_spark_connect_equal_the_classic_session(connect_server, spark, tmp_path):
    root = tmp_path / "lake"
    fs = FeatureStoreClient(root, spark=spark)
    training_sets.prepare(fs, spark)
    classic = training_sets.build(fs, spark)
    assert len(classic["default"]) == 44 and classic["default"] == classic["distributed"]

    output = tmp_path / "connect.json"
    done = subprocess.run(
        [sys.executable, str(CLIENT), connect_server.url, str(root), str(output), str(tmp_path / "ops-connect")],
        cwd=tmp_path,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the Connect client exited {done.returncode}:\n{done.stderr[-4000:]}\n{connect_server.log_tail()}")
    report = json.loads(output.read_text())
    assert report["session"] == "pyspark.sql.connect.session"
    assert report["engine"] == "delta-spark"
    assert report["results"] == json.loads(json.dumps(classic))

    # MERGE, OPTIMIZE ... ZORDER BY and RESTORE through Connect (SQL statements) equal the classic DeltaTable API
    ops_classic = json.loads(json.dumps(table_ops.run(Lakehouse(str(tmp_path / "ops-classic"), spark=spark), spark)))
    assert ops_classic["merge"][:2] == [1, 2] and ops_classic["delete"][0] == 1
    assert ops_classic["after_restore"] == ops_classic["version_1"] != ops_classic["after_optimize"]
    assert ops_classic["operations"][0] == "RESTORE" and "OPTIMIZE" in ops_classic["operations"]
    assert report["table_ops"] == ops_classic
