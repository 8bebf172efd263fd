"""Oracles for the interop tests that depend on neither the store nor the lakehouse layer.

The Delta log is read here as raw files (version listing, commitInfo), and table contents are read by
delta-spark itself, so a test comparing the store's view with these compares two independent readers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

PYTHON = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".venv", "bin", "python"
)
if not os.path.exists(PYTHON):  # a venv elsewhere: the interpreter running the tests is the project's
    PYTHON = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
_COMMIT = re.compile(r"^(\d{20})\.json$")


def latest_version(table_path: str) -> int:
    """The newest commit version of a Delta table, from the listing of its `_delta_log` directory."""
    versions = [int(m.group(1)) for n in os.listdir(os.path.join(table_path, "_delta_log")) if (m := _COMMIT.match(n))]
    return max(versions)


def commit_info(table_path: str, version: int) -> dict[str, Any]:
    """The `commitInfo` action of one commit, read from its JSON file."""
    with open(os.path.join(table_path, "_delta_log", f"{version:020d}.json"), encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and "commitInfo" in (action := json.loads(line)):
                return action["commitInfo"]
    raise AssertionError(f"commit {version} of {table_path} has no commitInfo")


def commit_actions(table_path: str, version: int) -> list[dict[str, Any]]:
    with open(os.path.join(table_path, "_delta_log", f"{version:020d}.json"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def is_delta_spark_commit(info: dict[str, Any]) -> bool:
    """delta-spark stamps `engineInfo` = 'Apache-Spark/<v> Delta-Lake/<v>'; neither delta-rs nor the lean writer do."""
    engine = info.get("engineInfo") or ""
    return engine.startswith("Apache-Spark/") and "Delta-Lake/" in engine


def spark_rows(spark, table_path: str, columns: Iterable[str], version: int | None = None) -> list[tuple]:
    """The rows of a Delta table (at `version`) as read by delta-spark, projected on `columns`, sorted."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return sorted((tuple(r) for r in reader.load(table_path).select(*columns).collect()), key=repr)


def spark_checkpoint(spark, table_path: str) -> int:
    """Checkpoint a table's latest version with delta-spark (its `DeltaLog`, through py4j); return that version."""
    jvm = spark._jvm
    none = jvm.scala.Option.empty()
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, table_path)
    snapshot = delta_log.update(False, none, none)
    delta_log.checkpoint(snapshot, none)
    return snapshot.version()


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def run_probe(uri: str, request: dict[str, Any], *, timeout: float = 180) -> dict[str, Any]:
    """Run `_store_probe.py` in a fresh Python process (a cold store) and return its JSON answer."""
    proc = subprocess.run(
        [PYTHON, os.path.join(HERE, "_store_probe.py"), uri, json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(),
    )
    assert proc.returncode == 0, f"probe exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(HERE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


child_env = _child_env
