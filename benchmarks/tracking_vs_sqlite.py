"""Time the same MLflow workload against sqlite:/// (MLflow's default) and lakehouse:/// and print the ratio.

    python benchmarks/tracking_vs_sqlite.py [--large-runs 10000] [--workdir /tmp/bench] [--only aef --reads 5000]

Workloads (issue 3): a) 1000 synchronous log_metric; b) one log_batch of 1000 metrics; c) 1000 runs x
(5 params + 3 metrics) through the fluent API; d) search_runs with filter + order over those 1000 runs
(median of 5); e) get_run (median of 200); f) get_metric_history of 1000 points (median of 20);
g) search_runs with filter + order over --large-runs runs (median of 3; populated with MlflowClient
create_run + log_batch + set_terminated, not timed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

FILTER, ORDER = "metrics.m1 > 0.5", ["metrics.m1 DESC"]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(uri: str, large_runs: int, only: str = "abcdefg", reads: int = 200) -> dict[str, float]:
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    client.search_experiments()  # store init (sqlite migrations) is not timed
    out: dict[str, float] = {}

    mlflow.set_experiment("a-log-metric")
    with mlflow.start_run() as run:
        out["a) 1000 x log_metric (s)"] = _timed(lambda: [mlflow.log_metric("m", i, step=i) for i in range(1000)])
    hist_run = run.info.run_id

    if "b" in only:
        rid = client.create_run(mlflow.get_experiment_by_name("a-log-metric").experiment_id).info.run_id
        batch = [Metric(f"k{i}", float(i), 1, 0) for i in range(1000)]
        out["b) log_batch of 1000 metrics (s)"] = _timed(lambda: client.log_batch(rid, metrics=batch))

    exp_c = mlflow.set_experiment("c-runs").experiment_id

    def many_runs():
        for i in range(1000):
            with mlflow.start_run():
                mlflow.log_params({f"p{j}": str(i * j) for j in range(5)})
                mlflow.log_metrics({"m1": (i % 100) / 100, "m2": i, "m3": -i})

    if "c" in only or "d" in only:
        out["c) 1000 runs x (5 params + 3 metrics) (s)"] = _timed(many_runs)

    def search():
        runs = mlflow.search_runs([exp_c], FILTER, order_by=ORDER, output_format="list")
        assert len(runs) == 490 and runs[0].data.metrics["m1"] == 0.99, len(runs)

    if "d" in only:
        out["d) search_runs filter+order, 1000 runs (s)"] = statistics.median(_timed(search) for _ in range(5))
    if "e" in only:
        out["e) get_run (ms)"] = 1000 * statistics.median(
            _timed(lambda: client.get_run(hist_run)) for _ in range(reads)
        )

    def history():
        assert len(client.get_metric_history(hist_run, "m")) == 1000

    if "f" in only:
        out["f) get_metric_history 1000 points (ms)"] = 1000 * statistics.median(
            _timed(history) for _ in range(max(20, reads // 10))
        )

    if large_runs and "g" in only:
        exp_g = client.create_experiment("g-large")
        for i in range(large_runs):
            r = client.create_run(exp_g).info.run_id
            client.log_batch(
                r, metrics=[Metric("m1", (i % 100) / 100, 1, 0), Metric("m2", i, 1, 0)], params=[Param("p", str(i))]
            )
            client.set_terminated(r)
        want = sum(1 for i in range(large_runs) if (i % 100) / 100 > 0.5)

        def search_large():
            runs = mlflow.search_runs([exp_g], FILTER, order_by=ORDER, output_format="list")
            assert len(runs) == want, len(runs)

        out[f"g) search_runs filter+order, {large_runs} runs (s)"] = statistics.median(
            _timed(search_large) for _ in range(3)
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large-runs", type=int, default=10000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--only", default="abcdefg", help="the workloads to run, by letter (a always runs: e, f read it)")
    ap.add_argument("--reads", type=int, default=200, help="timed get_run calls (e); f makes a tenth, at least 20")
    args = ap.parse_args()
    if set(args.only) - set("abcdefg"):
        ap.error(f"--only takes letters a-g, got {args.only!r}")
    work = args.workdir or tempfile.mkdtemp(prefix="tracking-bench-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chdir(work)  # sqlite's default artifact root is ./mlruns
    results = {
        "sqlite": bench(f"sqlite:///{work}/mlflow.db", args.large_runs, args.only, args.reads),
        "lakehouse": bench(f"lakehouse://{work}/lake", args.large_runs, args.only, args.reads),
    }
    print(f"{'workload':48} {'sqlite':>10} {'lakehouse':>10} {'lake/sqlite':>12}")
    for key in results["sqlite"]:
        s, lk = results["sqlite"][key], results["lakehouse"][key]
        print(f"{key:48} {s:10.3f} {lk:10.3f} {lk / s:12.2f}")


if __name__ == "__main__":
    main()
