"""Many writer processes on one lake: every run, param and metric point is there exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from deltalake import DeltaTable, QueryBuilder
from mlflow.entities import ViewType

from tracking import LakehouseTrackingStore

WORKERS = 4


def _sql(path: str, query: str) -> list[dict]:
    """Read a table with delta-rs' own engine: an oracle independent of the store's reader."""
    table = QueryBuilder().register("t", DeltaTable(path)).execute(query).read_all()
    import pyarrow as pa

    return pa.table(table).to_pylist()


@pytest.mark.slow
def test_four_processes_lose_nothing(tmp_path, trials):
    """4 processes x 15 runs x 40 metric steps, each point its own commit; `pytest --long`: 50 runs x 100 steps."""
    runs_each, steps = trials(15, 50), trials(40, 100)
    lake = tmp_path / "lake"
    uri = f"lakehouse://{lake}"
    store = LakehouseTrackingStore(uri)
    exp = store.create_experiment("hpo")
    worker = os.path.join(os.path.dirname(__file__), "_mp_worker.py")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    started = time.time()
    procs = [
        subprocess.Popen(
            [sys.executable, worker, uri, exp, str(w), str(runs_each), str(steps)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, f"worker exited {p.returncode}:\n{err[-3000:]}"
    print(f"{WORKERS}x{runs_each} runs x {steps} steps in {time.time() - started:.1f}s")

    # The store's view, from a fresh instance (cold start from checkpoints + log).
    fresh = LakehouseTrackingStore(uri)
    runs = fresh.search_runs([exp], "", ViewType.ACTIVE_ONLY, max_results=50000)
    assert len(runs) == WORKERS * runs_each
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"w{w}-r{i}" for w in range(WORKERS) for i in range(runs_each)
    )
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params["worker"] == r.info.run_name[1:].split("-")[0]
        assert r.data.tags["done"] == "yes"
        assert r.data.metrics["loss"] == pytest.approx(1.0 / steps)
    history = fresh.get_metric_history(runs[0].info.run_id, "loss")
    assert [m.step for m in history] == list(range(steps))

    # The Delta tables' view, through delta-rs: each row exactly once.
    root = os.path.join(lake, "mlflow")
    assert _sql(f"{root}/runs", "select count(*) as n, count(distinct run_id) as d from t") == [
        {"n": WORKERS * runs_each, "d": WORKERS * runs_each}
    ]
    assert _sql(f"{root}/params", "select count(*) as n, count(distinct concat(run_id, key)) as d from t") == [
        {"n": WORKERS * runs_each * 3, "d": WORKERS * runs_each * 3}
    ]
    assert _sql(
        f"{root}/metrics",
        "select count(*) as n, count(distinct concat(run_id, '/', cast(step as varchar))) as d from t",
    ) == [{"n": WORKERS * runs_each * steps, "d": WORKERS * runs_each * steps}]
