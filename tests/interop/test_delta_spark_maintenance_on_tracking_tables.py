"""delta-spark maintains the metrics table while a store process writes to it, and the store keeps working.

A separate process logs one metric point per call and acknowledges each; meanwhile this test's Spark session
turns the store's compaction off (`delta.autoOptimize.autoCompact=false`, as for delta-spark's own), runs
OPTIMIZE ZORDER, VACUUM (default retention) and a checkpoint, and, in a pause of the writer (Delta's conflict
rules make a DELETE retry as long as appends it cannot rule out keep landing), a DELETE of a few acknowledged
points. Afterwards
every acknowledged point is in the table exactly once except the deleted ones, a cold store in a fresh process
and the warm store here both read what delta-spark wrote, and writes after the maintenance land.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from delta.tables import DeltaTable
from interop_helpers import (
    HERE,
    PYTHON,
    child_env,
    commit_info,
    is_delta_spark_commit,
    latest_version,
    run_probe,
    spark_checkpoint,
    spark_rows,
    wait_for,
)
from mlflow import MlflowClient

from lakehouse._log import AUTO_COMPACT_PROPERTY

DELETED_STEPS = (1, 2, 3)
PAUSE = 0.2  # seconds between the writer's calls: keeps delta-spark's operations from always losing the race


def point(step: int) -> tuple[float, int, int]:
    """(value, timestamp, step) of the writer's point `step` (see _store_writer.py)."""
    return (step * 0.5, 1_000_000 + step, step)


class Writer:
    """The store process of _store_writer.py, its acknowledged steps collected by a reader thread."""

    def __init__(self, uri: str, run_id: str, stop_file: str) -> None:
        self.stop_file = stop_file
        self.acked: list[int] = []
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [PYTHON, os.path.join(HERE, "_store_writer.py"), uri, run_id, "loss", stop_file, str(PAUSE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("ack "):
                self.acked.append(int(line.split()[1]))

    def wait_for_acks(self, n: int, what: str) -> None:
        def enough() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the writer exited {self.proc.returncode} while waiting for {what}: "
                    f"{self.lines[-3:]}\n{self.proc.stderr.read()[-3000:]}"
                )
            return len(self.acked) >= n

        wait_for(enough, timeout=300, what=f"{n} acknowledged writes ({what})")

    def pause(self) -> None:
        """Hold the writer between two calls and wait until it says so."""
        open(self.stop_file + ".pause", "w").close()
        wait_for(lambda: "paused" in self.lines[-2:], timeout=120, what="the writer to pause")

    def resume(self) -> None:
        os.unlink(self.stop_file + ".pause")

    def stop(self) -> None:
        open(self.stop_file, "w").close()
        try:
            self.proc.wait(timeout=120)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(timeout=30)
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, f"writer exited {self.proc.returncode}: {self.lines[-3:]}\n{err[-3000:]}"
        assert self.lines[-1] == "stopped", self.lines[-3:]


def retrying_conflicts(action: Callable[[], object], what: str, timeout: float = 300) -> int:
    """Run a delta-spark operation, retrying Delta's concurrent-modification conflicts; return the retries.

    A conflict with a concurrent writer is Delta's normal outcome (the caller retries); anything else fails.
    """
    deadline = time.monotonic() + timeout
    conflicts: list[str] = []
    while True:
        try:
            action()
            return len(conflicts)
        except Exception as exc:
            text = str(exc)
            if "Concurrent" not in text and "DELTA_CONCURRENT" not in text:
                raise
            conflicts.append(text.splitlines()[0][:300])
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what} lost {len(conflicts)} races with the store's commits in {timeout:g}s; "
                    f"last: {conflicts[-1]}"
                ) from exc


def spark_commits(path: str, after: int) -> dict[str, list[int]]:
    """operation -> versions of the commits after `after` that delta-spark made (by their engineInfo)."""
    found: dict[str, list[int]] = {}
    for v in range(after + 1, latest_version(path) + 1):
        info = commit_info(path, v)
        if is_delta_spark_commit(info):
            found.setdefault(info["operation"], []).append(v)
    return found


@pytest.mark.slow
def test_optimize_vacuum_checkpoint_delete_while_the_store_writes(tmp_path, delta_spark):
    spark = delta_spark
    uri = f"lakehouse://{tmp_path / 'lake'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("maintenance")).info.run_id
    path = str(tmp_path / "lake" / "mlflow" / "metrics")
    before = latest_version(path)
    writer = Writer(uri, run_id, str(tmp_path / "stop"))
    try:
        writer.wait_for_acks(10, "before the maintenance")
        # Two compactions of one table conflict in Delta, and the store compacts every ~40 commits, which is
        # sooner than an OPTIMIZE ZORDER here takes: a table maintained by OPTIMIZE turns the store's compaction
        # off with Delta's own switch, set by delta-spark while the store writes.
        retries = {
            "SET TBLPROPERTIES": retrying_conflicts(
                lambda: spark.sql(
                    f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{AUTO_COMPACT_PROPERTY}' = 'false')"
                ).collect(),
                "ALTER TABLE",
            )
        }
        # ZORDER BY rewrites even a single file (plain compaction skips a table the store just compacted), so
        # delta-spark always makes an OPTIMIZE commit that the store must then read.
        retries["OPTIMIZE"] = retrying_conflicts(
            lambda: spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY (step)").collect(), "OPTIMIZE"
        )
        writer.wait_for_acks(len(writer.acked) + 3, "after OPTIMIZE")
        retries["VACUUM"] = retrying_conflicts(
            lambda: spark.sql(f"VACUUM delta.`{path}` RETAIN 168 HOURS").collect(), "VACUUM"
        )
        writer.wait_for_acks(len(writer.acked) + 3, "after VACUUM")

        checkpointed = spark_checkpoint(spark, path)
        assert f"{checkpointed:020d}.checkpoint.parquet" in os.listdir(os.path.join(path, "_delta_log"))
        writer.wait_for_acks(len(writer.acked) + 3, "after the checkpoint")

        assert set(DELETED_STEPS) <= set(writer.acked)
        steps = ", ".join(map(str, DELETED_STEPS))
        # A DELETE conflicts with every concurrent append that Delta cannot rule out by partition values
        # (delta-spark's own rule: an unpartitioned table's new files may hold matching rows), so against a
        # writer committing every 0.2 s it retries for ever, whoever the writer is. It runs in a pause.
        writer.pause()
        try:
            retries["DELETE"] = retrying_conflicts(
                lambda: spark.sql(
                    f"DELETE FROM delta.`{path}` WHERE run_id = '{run_id}' AND step IN ({steps})"
                ).collect(),
                "DELETE",
            )
        finally:
            writer.resume()
        writer.wait_for_acks(len(writer.acked) + 3, "after DELETE")
    finally:
        writer.stop()
    print(f"{len(writer.acked)} acknowledged writes; delta-spark conflict retries: {retries}")

    assert writer.acked == list(range(len(writer.acked)))
    expected = sorted(point(s) for s in writer.acked if s not in DELETED_STEPS)
    # Every acknowledged point exactly once (a list, not a set), as delta-spark reads the table.
    assert sorted(spark_rows(spark, path, ("value", "timestamp", "step"))) == expected  # numeric order

    # delta-spark made its commits itself (its engineInfo), the store's process all the others: no commit came
    # from a silent fallback to another engine.
    made = spark_commits(path, before)
    assert made.get("DELETE") and made.get("OPTIMIZE") and made.get("SET TBLPROPERTIES"), made
    switched_off = made["SET TBLPROPERTIES"][0]
    for v in range(before + 1, latest_version(path) + 1):
        info = commit_info(path, v)
        if info["operation"] in ("DELETE",) or info["operation"].startswith("VACUUM"):
            assert is_delta_spark_commit(info), (v, info)
        elif not is_delta_spark_commit(info):
            assert info.get("clientVersion") == "lakehouse-ml-tracking", (v, info)
            assert v < switched_off or info["operation"] != "OPTIMIZE", f"the store compacted at {v} after the switch"
    spark_made = {v for vs in made.values() for v in vs}
    history = DeltaTable.forPath(spark, path).history().select("version", "operation", "engineInfo").collect()
    assert {r.version for r in history} == set(range(latest_version(path) + 1))
    for r in history:
        if r.version in spark_made:
            assert r.engineInfo.startswith("Apache-Spark/") and "Delta-Lake/" in r.engineInfo, r

    # A cold store in a fresh process (it starts from delta-spark's checkpoint or a later one) reads the same,
    # and writes after the maintenance.
    new = [point(s) for s in (100_000, 100_001)]
    outcomes = run_probe(
        uri,
        [
            ["history", run_id, "loss"],
            *[["log_metric", run_id, "loss", v, ts, s] for v, ts, s in new],
            ["history", run_id, "loss"],
        ],
    )
    assert all(o["ok"] for o in outcomes), outcomes
    assert sorted(map(tuple, outcomes[0]["value"])) == expected
    assert sorted(map(tuple, outcomes[-1]["value"])) == sorted(expected + new)

    # The warm store of this process follows delta-spark's commits too, and can still write.
    client.log_metric(run_id, "loss", 7.5, timestamp=2_000_000, step=100_002)
    final = sorted(expected + new + [(7.5, 2_000_000, 100_002)])
    assert sorted((m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, "loss")) == final
    assert sorted(spark_rows(spark, path, ("value", "timestamp", "step"))) == final
