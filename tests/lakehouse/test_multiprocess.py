"""Several processes on one table: no lost rows, no duplicated rows, and every process exits 0."""

import subprocess
import sys
from pathlib import Path

import pytest
from worker_env import worker_env

WORKER = str(Path(__file__).with_name("_worker.py"))


def run_all(cmds, timeout=300):
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env()
        )
        for c in cmds
    ]
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"worker exited {p.returncode}\n{out}\n{err[-3000:]}"
    return [o for o, _ in outs]


@pytest.mark.slow
def test_concurrent_appends_from_several_processes_lose_nothing(rs_lake, spark, trials):
    """2 processes (one per core) x 5 appends of 20 rows; `pytest --long`: 4 processes."""
    workers = trials(2, 4)
    rs_lake.create_table("t", schema="id long")
    run_all([["append", rs_lake.root, str(w), "5", "20"] for w in range(workers)])
    ids = [r.id for r in rs_lake.read("t").collect()]
    assert len(ids) == workers * 5 * 20
    assert sorted(ids) == list(range(workers * 100))
    assert rs_lake.latest_version("t") == workers * 5


@pytest.mark.slow
def test_concurrent_merges_are_retried_and_all_apply(rs_lake, spark, trials):
    """2 processes x 4 upserts of 25 keys each; `pytest --long`: 3 processes."""
    workers = trials(2, 3)
    rs_lake.create_table("t", schema="id long, round int")
    run_all([["merge", rs_lake.root, str(w), "4", "25"] for w in range(workers)])
    rows = rs_lake.read("t").collect()
    assert sorted(r.id for r in rows) == list(range(workers * 25))  # every key exactly once
    assert {r.round for r in rows} == {3}  # every worker's last upsert won for its own keys
    assert len([h for h in rs_lake.history("t") if h.operation == "MERGE"]) == workers * 4


@pytest.mark.slow
def test_concurrent_optimize_never_duplicates_rows(rs_lake, spark, tmp_path):
    rs_lake.create_table("t", spark.range(0, 10))
    for i in range(1, 12):
        rs_lake.append("t", spark.range(i * 10, i * 10 + 10))
    start = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "optimize", rs_lake.root, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=worker_env(),
        )
        for _ in range(2)
    ]
    import time

    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("go.ready-*"))) < 2:  # both workers have Spark up and poll for the start file
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.poll() for p in procs]
        time.sleep(0.05)
    start.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ids = [r.id for r in rs_lake.read("t").collect()]
    assert sorted(ids) == list(range(120)), "OPTIMIZE duplicated or lost rows"
    compactions = [h for h in rs_lake.history("t") if h.operation == "OPTIMIZE"]
    assert len(compactions) == 1, "the second OPTIMIZE should have found nothing left to compact"


@pytest.mark.slow
def test_processes_that_read_or_write_exit_zero_every_time(rs_lake, spark, trials):
    """deltalake's pyarrow-dataset readers can abort a process at exit (exit 134); the lakehouse's must not.

    Fresh processes, alternately reading and appending, two at a time (one per core): 4, or 30 under
    `pytest --long`."""
    rs_lake.create_table("t", spark.range(10))
    runs = trials(4, 30)
    modes = ["read", "write"] * (runs // 2)
    for i in range(0, runs, 2):
        procs = [
            subprocess.Popen(
                [sys.executable, WORKER, m, rs_lake.root],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=worker_env(),
            )
            for m in modes[i : i + 2]
        ]
        for j, p in enumerate(procs):
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, f"run {i + j} ({modes[i + j]}): exit {p.returncode}\n{err[-3000:]}"
    assert rs_lake.read("t").count() == 10 + (runs // 2) * 5
