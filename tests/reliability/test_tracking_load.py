"""Tracking under load: 8 writer processes log runs, params and metric steps (log_batch and log_metric) into one
experiment while `lakehouse-jobs maintain` (OPTIMIZE + VACUUM, --no-dry-run) runs over and over in another
process and reader processes search the whole time; then the same with delta-spark as a second writer (this
process's Spark session appends to and OPTIMIZEs a user table of the same lake, which maintain compacts too).

Oracles: the writers' acknowledgements (one line per completed call, `_worker.py`), deltalake's reading of the
tables (`reliability_helpers.rows`), and values computed from the worker's own formulas (acc, loss, lr).

Afterwards every acknowledged row is there exactly once; no reader saw a torn state (`_worker.check_run`,
`check_history`: part of a log_batch, a finished run without its data, a metric history with a gap or a duplicate
step or fewer points than a read before it showed, a search count going down, a filtered search missing a run an
earlier search showed); no caller saw an error, retryable (a lost commit race, TEMPORARILY_UNAVAILABLE) or not;
every maintain run exited 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter

import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType
from reliability_helpers import acks, errors_in, jobs, rows, spawn, stop, tail, wait_for
from reliability_worker import BATCH_STEPS, PARAMS, TS, acc, loss, lr

from lakehouse._log import AUTO_COMPACT_PROPERTY

WRITERS = 8
READERS = 2


class Maintainer(threading.Thread):
    """`lakehouse-jobs maintain LAKE --no-dry-run` as real processes, one after another until stopped."""

    def __init__(self, lake: str) -> None:
        super().__init__(daemon=True)
        self.lake = lake
        self.halt = threading.Event()
        self.results: list[tuple[int, str]] = []
        self.compacted = 0

    def run(self) -> None:
        while not self.halt.is_set():
            p = jobs("maintain", self.lake, "--no-dry-run")
            self.results.append((p.returncode, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""))
            if p.returncode == 0:
                self.compacted += _files_compacted(p.stdout)


def _files_compacted(stdout: str) -> int:
    """Files removed by the OPTIMIZEs of one maintain run, from its JSON figures (0 when it reports none)."""
    try:
        figures = json.loads(stdout)
    except ValueError:
        return 0
    total = 0
    for table in figures.get("tables", {}).values() if isinstance(figures.get("tables"), dict) else []:
        optimize = table.get("optimize") or {}
        total += int(optimize.get("files_removed") or optimize.get("numFilesRemoved") or 0)
    return total


class SparkAppender(threading.Thread):
    """delta-spark as a second writer: appends batches of 100 rows to the user table `events` of the same lake,
    OPTIMIZE every third batch (a batch counts as acknowledged once `append` returned); and once, after the
    second batch, OPTIMIZE of the tracking table `mlflow.metrics` in this session, as
    tests/interop/test_delta_spark_maintenance_on_tracking_tables.py does (the store's own compaction of it
    turned off first; Delta's concurrent-modification conflicts retried, as a delta-spark caller does)."""

    def __init__(self, spark, root: str) -> None:
        super().__init__(daemon=True)
        from lakehouse import Lakehouse

        self.spark = spark
        self.lake = Lakehouse(root, spark=spark, engine="delta-spark")
        self.halt = threading.Event()
        self.acked: list[int] = []
        self.optimized = 0
        self.tracking_optimize_retries: int | None = None
        self.error: BaseException | None = None
        self.metrics_path = os.path.join(root, "mlflow", "metrics")

    def _retrying(self, sql: str) -> int:
        """Run `sql`, retrying delta-spark's concurrent-modification conflicts (its normal outcome beside other
        writers) for up to 300 s; return the retries."""
        deadline = time.monotonic() + 300
        retries = 0
        while True:
            try:
                self.spark.sql(sql).collect()
                return retries
            except Exception as exc:
                if "Concurrent" not in str(exc) or time.monotonic() > deadline:
                    raise
                retries += 1

    def run(self) -> None:
        try:
            batch = 0
            while not self.halt.is_set():
                df = self.spark.sql(f"select {batch} as batch, id as i from range(100)")
                if batch == 0:
                    self.lake.create_table("events", df)
                else:
                    self.lake.append("events", df)
                self.acked.append(batch)
                batch += 1
                if batch == 2:
                    path = self.metrics_path
                    self.tracking_optimize_retries = self._retrying(
                        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('{AUTO_COMPACT_PROPERTY}' = 'false')"
                    ) + self._retrying(f"OPTIMIZE delta.`{path}` ZORDER BY (run_id)")
                if batch % 3 == 0:
                    self.lake.optimize("events")
                    self.optimized += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _run_load(tmp_path, trials, figures, spark=None) -> None:
    runs_each, steps = trials(2, 6), trials(4, 20)
    lake = str(tmp_path / "lake")
    uri = f"lakehouse://{lake}"
    exp = MlflowClient(uri).create_experiment("load")
    stop_file = str(tmp_path / "stop")
    logs = tmp_path / "logs"
    logs.mkdir()

    maintainer = Maintainer(lake)
    maintainer.start()
    appender = None
    if spark is not None:
        appender = SparkAppender(spark, lake)
        appender.start()
    readers = [
        spawn(
            "tracking-reader", uri, exp, stop_file, str(logs / f"reader{i}.json"), str(steps), log=str(logs / f"r{i}")
        )
        for i in range(READERS)
    ]
    writers = [
        spawn("tracking-writer", uri, exp, str(w), str(runs_each), str(steps), str(logs / f"acks{w}"), log=str(logs / f"w{w}"))
        for w in range(WRITERS)
    ]  # fmt: skip
    try:
        for p in writers:
            p.wait(timeout=1200)
        # maintain ran beside the writers (at least one whole pass started before they finished)
        wait_for(lambda: maintainer.results, timeout=600, what="a maintain run to finish")
    finally:
        maintainer.halt.set()
        if appender is not None:
            appender.halt.set()
        open(stop_file, "w").close()
        for p in [*writers, *readers]:
            if p.poll() is None:
                try:
                    p.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    stop(p)
        maintainer.join(timeout=900)
        if appender is not None:
            appender.join(timeout=300)

    ack_lines = {w: acks(str(logs / f"acks{w}")) for w in range(WRITERS)}
    reports = [json.loads((logs / f"reader{i}.json").read_text()) for i in range(READERS)]
    figures.update(
        writers=WRITERS,
        readers=READERS,
        runs_per_writer=runs_each,
        loss_steps=steps,
        maintain_runs=len(maintainer.results),
        maintain_exit_codes=dict(Counter(rc for rc, _ in maintainer.results)),
        reader_searches=sum(r["searches"] + r["filtered_searches"] for r in reports),
        reader_runs_checked=sum(r["runs_checked"] for r in reports),
        reader_histories=sum(r["histories"] for r in reports),
        torn_states=sum(len(r["torn"]) for r in reports),
        reader_errors=sum(len(r["errors"]) for r in reports),
        writer_errors=sum(len(errors_in(lines)) for lines in ack_lines.values()),
        retryable_errors=sum(r["retryable_errors"] for r in reports)
        + sum(1 for lines in ack_lines.values() for e in errors_in(lines) if e[2] == "retryable"),
    )
    for w, p in enumerate(writers):
        assert p.returncode == 0 and ack_lines[w][-1:] == [["done"]], (
            f"writer {w} exited {p.returncode}: {errors_in(ack_lines[w])}\n{tail(str(logs / f'w{w}'))}"
        )
    for i, r in enumerate(reports):
        assert not r["errors"], f"reader {i} saw errors: {r['errors']}"
        assert not r["torn"], f"reader {i} saw torn states: {r['torn']}"
        assert r["searches"] >= 2, f"reader {i} searched only {r['searches']} times while the writers ran"
    assert all(rc == 0 for rc, _ in maintainer.results), f"maintain failed: {maintainer.results}"

    # The oracle: what the acknowledgements say exists.
    expected_runs: dict[str, tuple[int, int]] = {}
    expected_params: Counter = Counter()
    expected_points: Counter = Counter()
    for w, lines in ack_lines.items():
        names = {}
        for line in lines:
            if line[0] == "run":
                rid, name = line[1], line[2]
                i = int(name.split("-r")[1])
                names[rid] = i
                expected_runs[rid] = (w, i)
            elif line[0] == "batch":
                i = names[line[1]]
                expected_params.update({(line[1], "w"): 1, (line[1], "i"): 1, (line[1], "lr"): 1})
                for s in range(BATCH_STEPS):
                    expected_points[(line[1], "acc", s, acc(w, i, s))] += 1
            elif line[0] == "loss":
                s = int(line[2])
                expected_points[(line[1], "loss", s, loss(s))] += 1
    # A fresh store (a new process's view; its first read applies any journal rows not yet applied)
    client = MlflowClient(uri)
    found = client.search_runs([exp], "", ViewType.ALL, max_results=10_000)
    assert sorted(r.info.run_id for r in found) == sorted(expected_runs)
    for run in found:
        w, i = expected_runs[run.info.run_id]
        assert run.info.status == "FINISHED" and run.info.run_name == f"w{w}-r{i}"
        assert run.data.params == {"w": str(w), "i": str(i), "lr": lr(w, i)}
        assert run.data.metrics == {"acc": acc(w, i, BATCH_STEPS - 1), "loss": loss(steps - 1)}
    # The tables as deltalake reads them: every acknowledged row exactly once, nothing else.
    root = os.path.join(lake, "mlflow")
    run_rows = Counter(r["run_id"] for r in rows(f"{root}/runs"))
    param_rows = Counter((r["run_id"], r["key"]) for r in rows(f"{root}/params"))
    point_rows = Counter((r["run_id"], r["key"], r["step"], r["value"]) for r in rows(f"{root}/metrics"))
    assert all(r["timestamp"] == TS + r["step"] for r in rows(f"{root}/metrics"))
    lost = sum(1 for k in expected_runs if not run_rows[k])
    lost += sum(1 for k in expected_params if not param_rows[k]) + sum(1 for k in expected_points if not point_rows[k])
    duplicates = sum(n - 1 for c in (run_rows, param_rows, point_rows) for n in c.values() if n > 1)
    unexpected = (set(run_rows) - set(expected_runs)) | (set(param_rows) - set(expected_params))
    unexpected |= set(point_rows) - set(expected_points)
    figures.update(
        rows_checked=len(expected_runs) + len(expected_params) + len(expected_points),
        rows_lost=lost,
        duplicates=duplicates,
        unexpected_rows=len(unexpected),
    )
    assert set(PARAMS) == {k for _, k in param_rows}
    assert (lost, duplicates, len(unexpected)) == (0, 0, 0), sorted(unexpected)[:10]
    assert len(expected_points) == len(expected_runs) * (BATCH_STEPS + steps)

    if appender is not None:
        assert appender.error is None, f"the delta-spark writer failed: {appender.error!r}"
        events = Counter((r["batch"], r["i"]) for r in rows(os.path.join(lake, "events")))
        spark_lost = sum(1 for b in appender.acked for i in range(100) if not events[(b, i)])
        spark_dups = sum(n - 1 for n in events.values() if n > 1)
        figures.update(
            spark_batches_acked=len(appender.acked),
            spark_optimizes=appender.optimized,
            spark_tracking_optimize_retries=appender.tracking_optimize_retries,
            spark_rows_checked=100 * len(appender.acked),
            spark_rows_lost=spark_lost,
            spark_duplicates=spark_dups,
        )
        assert appender.acked, "the delta-spark writer committed nothing while the store's writers ran"
        assert appender.tracking_optimize_retries is not None, "delta-spark's OPTIMIZE of mlflow.metrics never ran"
        assert (spark_lost, spark_dups) == (0, 0)
        assert {b for b, _ in events} <= set(range(len(appender.acked) + 1))  # at most the batch in flight


@pytest.mark.slow
def test_eight_writers_readers_and_maintain_lose_nothing(tmp_path, trials, figures):
    """8 writers x 2 runs x (1 log_batch + 4 log_metric), 2 readers, maintain looping; `--long`: 6 runs x 20 steps."""
    _run_load(tmp_path, trials, figures)


@pytest.mark.slow
def test_the_same_with_delta_spark_as_a_second_writer(tmp_path, trials, figures, spark, request):
    """As above, with this process's delta-spark session appending to and OPTIMIZing a user table of the lake.
    Under --long only (5-9 minutes on 2 cores); the default run has delta-spark beside a store writer in
    tests/interop/test_delta_spark_maintenance_on_tracking_tables.py."""
    if not request.config.getoption("--long"):
        pytest.skip("the load with delta-spark as a second writer runs under --long")
    _run_load(tmp_path, trials, figures, spark=spark)
