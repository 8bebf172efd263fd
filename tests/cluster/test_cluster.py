"""The lakehouse on a Spark standalone cluster: feature-store training sets, merges, OPTIMIZE and the tracking
analysis API give the same results as in local mode, computed by executors in their own JVMs.

Runs only with `LAKEHOUSE_TEST_CLUSTER=1`: the module costs about a minute of CPU and two of wall time on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from worker_env import worker_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("LAKEHOUSE_TEST_CLUSTER") != "1",
        reason="starts a Spark standalone cluster: set LAKEHOUSE_TEST_CLUSTER=1 to run it",
    ),
]

DRIVER = Path(__file__).with_name("cluster_driver.py")
DRIVER_TIMEOUT = 300


def _driver_module() -> ModuleType:
    """cluster_driver.py, imported by path (test folders are not packages, and this one is not on pythonpath)."""
    spec = importlib.util.spec_from_file_location("cluster_driver", DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cluster_results_equal_local_mode(standalone_cluster, spark, tmp_path):
    output = tmp_path / "cluster.json"
    env = {
        **os.environ,
        "LAKEHOUSE_SPARK_MASTER": standalone_cluster.master_url,
        "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers import this venv's packages
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
    }
    run_dir = tmp_path / "driver"
    run_dir.mkdir()
    with open(tmp_path / "driver.log", "wb") as log:
        driver = subprocess.Popen(
            [sys.executable, str(DRIVER), str(tmp_path / "cluster-lake"), str(output)],
            cwd=run_dir,
            env=worker_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            # The reference, in local mode on the suite's session, while the cluster works.
            local = _driver_module().workload(spark, tmp_path / "local-lake")
            rc = driver.wait(timeout=DRIVER_TIMEOUT)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait()
    if rc != 0:
        log_tail = "\n".join((tmp_path / "driver.log").read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"cluster driver exited {rc}:\n{log_tail}\n{standalone_cluster.logs_tail()}")
    report = json.loads(output.read_text())

    assert report["master"] == standalone_cluster.master_url
    executors = report["executors"]
    assert [e["main_class"] for e in executors] == ["org.apache.spark.executor.CoarseGrainedExecutorBackend"] * 2
    pids = {e["pid"] for e in executors}
    assert len(pids) == 2 and report["driver_jvm_pid"] not in pids, report
    assert {e["ppid"] for e in executors} == {w.pid for w in standalone_cluster.workers}, "one executor per worker"

    cluster = report["results"]
    assert sorted(cluster) == sorted(local)
    for name in local:
        assert cluster[name] == json.loads(json.dumps(local[name])), name
