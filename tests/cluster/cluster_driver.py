"""The cluster test's workload, and the driver script that runs it on a Spark standalone cluster.

`workload(spark, root)` runs the feature store, a merge, OPTIMIZE and the tracking analysis API on a fresh lake
and returns every result as sorted JSON-ready rows; the test runs it in-process on the local session and
compares. Run as a script (`python cluster_driver.py <lake root> <output.json>`, with `$LAKEHOUSE_SPARK_MASTER`
set to the cluster's `spark://` URL), it builds its session with `local_spark()`, reports which processes
ran its tasks, runs the workload and writes both to the output file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from feature_store import FeatureLookup, FeatureStoreClient
from feature_store._local import THRESHOLD_CONF
from lakehouse import Lakehouse, local_spark
from lakehouse._session import scoped_conf

Rows = list[dict[str, Any]]

# The cluster's workers: 1 core and 1g each (the test's fixture starts them so); an executor asking for more
# memory than a worker offers would wait forever for one.
CLUSTER_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.executor.memory": "1g",
    "spark.executor.cores": "1",
    "spark.cores.max": "2",
}
SHUFFLE_PARTITIONS = 2  # as the suite's local[2] session: the same plans, the same number of files
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _day(day: int, hour: int = 0) -> datetime:
    return T0.replace(day=day, hour=hour)


def _value(v: Any) -> Any:
    """A collected value as JSON: instants as UTC ISO strings (Spark hands back naive local times)."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    return v


def _sorted(rows: Rows) -> Rows:
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def _rows(df: DataFrame) -> Rows:
    return _sorted([_value(r.asDict(recursive=True)) for r in df.collect()])


def _features(lh: Lakehouse, spark: SparkSession) -> dict[str, Rows]:
    """A feature table with a timestamp key, upserted, then a point-in-time training set on both join paths."""
    fs = FeatureStoreClient(lakehouse=lh)
    schema = "customer_id long, ts timestamp, f1 double, segment string"
    v0 = [(1, _day(1), 1.0, "a"), (1, _day(3), 3.0, "a"), (2, _day(2), 2.0, "b"), (3, _day(5), 5.0, None)]
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame(v0, schema),
    )
    upsert = [(1, _day(3), 3.5, "a"), (2, _day(4), 4.0, "c"), (4, _day(1), 0.25, "d")]  # one update, two inserts
    version = fs.write_table("customer_features", spark.createDataFrame(upsert, schema), mode="merge")
    labels = [(1, _day(2, 12), 0), (1, _day(9), 1), (2, _day(3), 0), (2, _day(4), 1), (3, _day(4), 0), (5, _day(9), 1)]
    # Stored as a table, the labels are a file scan whose size Spark knows: small, they take the local path.
    lh.create_table("labels", spark.createDataFrame(labels, "customer_id long, label_ts timestamp, churn int"))
    training_set = fs.create_training_set(
        lh.read("labels"),
        [FeatureLookup(table_name="customer_features", lookup_key="customer_id", timestamp_lookup_key="label_ts")],
        label="churn",
    )
    out = {
        "features.write_version": [{"version": version}],
        "features.rows": _rows(fs.read_table("customer_features")),
        "training_set.local": _rows(training_set.load_df(include_matched_timestamps=True)),
    }
    with scoped_conf(spark, **{THRESHOLD_CONF: "-1"}):  # the distributed join: cogrouped on the executors
        out["training_set.distributed"] = _rows(training_set.load_df(include_matched_timestamps=True))
    return out


def _orders(lh: Lakehouse, spark: SparkSession) -> dict[str, Rows]:
    """A Lakehouse merge (update, insert, delete by source) into a table of several files, then OPTIMIZE ZORDER."""
    schema = "order_id long, customer_id long, amount double, day date"
    v0 = [(i, i % 5, i * 1.5, date(2026, 1, 1 + i % 3)) for i in range(40)]
    lh.create_table("sales.orders", spark.createDataFrame(v0, schema).repartition(4, "order_id"))
    changes = [(i, i % 7, -float(i), date(2026, 2, 1)) for i in range(30, 50)]  # 10 updated, 10 new, 30 gone
    merged = lh.merge(
        "sales.orders", spark.createDataFrame(changes, schema), on="order_id", when_not_matched_by_source="delete"
    )
    optimized = lh.optimize("sales.orders", z_order_by="customer_id")
    return {
        "orders.merge": [asdict(merged)],
        "orders.optimize": [
            {
                "version": optimized.version,
                "num_files_added": optimized.num_files_added,
                "num_files_removed": optimized.num_files_removed,
                "z_order_by": list(optimized.z_order_by),
            }
        ],
        "orders.rows": _rows(lh.read("sales.orders")),
        "orders.history": _sorted(
            [{"version": h.version, "operation": h.operation} for h in lh.history("sales.orders")]
        ),
    }


def _tracking(lh: Lakehouse) -> dict[str, Rows]:
    """MLflow runs logged to the lake with fixed times, read back with `tracking.runs()` on the session."""
    import mlflow
    from mlflow.entities import Metric, Param

    from tracking import runs
    from tracking._uri import lake_uri

    client = mlflow.MlflowClient(tracking_uri=lake_uri(lh.root))
    experiment_id = client.create_experiment("churn")
    ms = int(T0.timestamp() * 1000)
    for i in range(3):
        run = client.create_run(experiment_id, start_time=ms + i * 60_000, run_name=f"r{i}", tags={"team": "risk"})
        rmse = [Metric("rmse", 1.0 - i / 10 - step / 100, ms + step, step) for step in range(3)]
        client.log_batch(
            run.info.run_id, metrics=[*rmse, Metric("auc", 0.5 + i / 8, ms, 0)], params=[Param("alpha", str(i / 10))]
        )
        client.set_terminated(run.info.run_id, status="FINISHED" if i else "FAILED", end_time=ms + i * 60_000 + 30_000)
        if i == 1:
            client.delete_run(run.info.run_id)
    frame = runs(lh, experiment_names=["churn"], include_deleted=True)  # r1 is there, as deleted
    # Run ids are random and artifact URIs name the lake: key each run by its name instead.
    rows = []
    for r in frame.drop("artifact_uri").collect():
        row = _value(r.asDict())
        row["run_id"] = row["run_name"]
        rows.append(row)
    return {"runs": _sorted(rows)}


def workload(spark: SparkSession, root: Path) -> dict[str, Rows]:
    """Run the whole workload on a fresh lake at `root` with `spark`; every result as sorted JSON rows."""
    lh = Lakehouse(root, spark=spark, engine="delta-spark")  # Spark's own Delta: the work runs on executors
    return {**_features(lh, spark), **_orders(lh, spark), **_tracking(lh)}


def _executor_processes(spark: SparkSession, expected: int, timeout: float) -> list[dict[str, Any]]:
    """The JVM processes that ran this session's tasks (pid, parent pid, main class), once `expected` executors
    have registered: each task's Python worker is forked by a daemon whose parent is the executor's JVM."""
    sc = spark.sparkContext
    tracker = sc._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout
    while len(tracker.getExecutorInfos()) < expected + 1:  # the driver is listed too
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(tracker.getExecutorInfos()) - 1} of {expected} executors registered")
        time.sleep(0.05)

    def who(_: int) -> tuple[int, int, str]:
        def parent(pid: int) -> int:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])

        jvm = parent(os.getppid())
        with open(f"/proc/{jvm}/cmdline") as f:
            args = f.read().split("\0")
        main = next((a for a in args if a.startswith("org.apache.spark.")), "")
        return jvm, parent(jvm), main

    seen = sc.parallelize(range(4 * expected), 4 * expected).map(who).distinct().collect()
    return [{"pid": pid, "ppid": ppid, "main_class": main} for pid, ppid, main in sorted(seen)]


def main(root: str, output: str) -> None:
    spark = local_spark(shuffle_partitions=SHUFFLE_PARTITIONS, extra_conf=CLUSTER_CONF)
    try:
        report = {
            "master": spark.sparkContext.master,
            "driver_jvm_pid": spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid(),  # type: ignore[union-attr]
            "executors": _executor_processes(spark, expected=2, timeout=60),
            "results": workload(spark, Path(root)),
        }
    finally:
        spark.stop()
    Path(output).write_text(json.dumps(report, sort_keys=True, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
