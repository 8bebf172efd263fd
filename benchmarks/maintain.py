"""Issue 15's target: after `maintain`, a lake written by 2,000 small commits reads as fast as a fresh one.

    python benchmarks/maintain.py [--runs 20] [--trials 3] [--workdir /tmp/bench-maintain]

Lake A: `--runs` runs written call by call (create_run, 60 log_metric, 20 log_param, 20 set_tag each, every call
its own commit: 2,000 small commits at 20 runs). Lake B: the same values, one log_batch per run. For A before
`maintain`, A after it, and B, each in fresh processes (median of `--trials`): `get_run` of every run (median of
the first read of each), `search_runs` with a param filter and a metric order (median of 5), and a cold start
(open the store, then the first `get_run`; imports not timed). Prints the figures, their ratio to B and the 1.2x
target, the files and bytes before/after, and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _machine import load, revision

STEPS, PARAMS, TAGS = 60, 20, 20
TARGET = 1.2

MEASURE = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
from tracking import LakehouseTrackingStore
from mlflow.entities import ViewType
uri, run_ids = sys.argv[1], json.loads(sys.argv[2])
t1 = time.perf_counter()
store = LakehouseTrackingStore(uri)
store.get_run(run_ids[0])
cold = time.perf_counter() - t1
gets = []
for rid in run_ids[1:]:
    t = time.perf_counter(); store.get_run(rid); gets.append(time.perf_counter() - t)
exp = store.get_run(run_ids[0]).info.experiment_id
searches = []
for _ in range(5):
    t = time.perf_counter()
    found = store.search_runs([exp], "params.p1 = 'v1'", ViewType.ACTIVE_ONLY, max_results=1000, order_by=["metrics.loss DESC"])
    searches.append(time.perf_counter() - t)
assert len(found) == len(run_ids), len(found)
print(json.dumps({"cold": cold, "get_run": statistics.median(gets), "search_runs": statistics.median(searches)}))
"""


def _values(r: int):
    losses = [("loss", 1.0 / (s + 1) + r, 1_700_000_000_000 + s, s) for s in range(STEPS)]
    params = {f"p{i}": f"v{i}" for i in range(PARAMS)}
    tags = {f"t{i}": f"{r}-{i}" for i in range(TAGS)}
    return losses, params, tags


def write_small(uri: str, runs: int) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment("bench")
    ids = []
    for r in range(runs):
        rid = client.create_run(exp).info.run_id
        losses, params, tags = _values(r)
        for key, value, ts, step in losses:
            client.log_metric(rid, key, value, ts, step)
        for k, v in params.items():
            client.log_param(rid, k, v)
        for k, v in tags.items():
            client.set_tag(rid, k, v)
        client.set_terminated(rid)
        ids.append(rid)
    return ids


def write_fresh(uri: str, runs: int) -> list[str]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(uri)
    exp = client.create_experiment("bench")
    ids = []
    for r in range(runs):
        rid = client.create_run(exp).info.run_id
        losses, params, tags = _values(r)
        client.log_batch(
            rid,
            metrics=[Metric(k, v, ts, s) for k, v, ts, s in losses],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        client.set_terminated(rid)
        ids.append(rid)
    return ids


def measure(uri: str, ids: list[str], trials: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    got = []
    for _ in range(trials):
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, uri, json.dumps(ids)], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"measuring {uri} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        got.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(g[k] for g in got) for k in got[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs per lake (100 small commits each in lake A)")
    ap.add_argument("--trials", type=int, default=3, help="fresh measuring processes per lake (median)")
    ap.add_argument("--workdir", default=None, help="where the lakes go (default: a temporary folder, removed)")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="bench-maintain-")
    a, b = os.path.join(work, "a"), os.path.join(work, "b")
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)
    print(f"{revision()}, {load()}, runs={args.runs} ({args.runs * (STEPS + PARAMS + TAGS)} small commits in A)")
    t = time.perf_counter()
    ids_a = write_small(f"lakehouse://{a}", args.runs)
    print(f"lake A written call by call in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    ids_b = write_fresh(f"lakehouse://{b}", args.runs)
    print(f"lake B written by log_batch in {time.perf_counter() - t:.1f} s")

    before = measure(f"lakehouse://{a}", ids_a, args.trials)
    fresh = measure(f"lakehouse://{b}", ids_b, args.trials)
    from jobs._maintain import maintain

    t = time.perf_counter()
    result = maintain(a)  # optimize + a dry-run VACUUM, as scheduled
    took = time.perf_counter() - t
    after = measure(f"lakehouse://{a}", ids_a, args.trials)
    fresh2 = measure(f"lakehouse://{b}", ids_b, args.trials)  # B again: load drifts over the run
    fresh = {k: min(fresh[k], fresh2[k]) for k in fresh}

    totals = result["totals"]
    print(
        f"maintain: {took:.1f} s, {totals['commits']} OPTIMIZE commit(s); files {totals['files_before']} -> "
        f"{totals['files_after']}, bytes {totals['bytes_before']:,} -> {totals['bytes_after']:,}; "
        f"VACUUM dry run: {totals['vacuum_files']} file(s)"
    )
    for name, f in result["tables"].items():
        if f["files_before"] != f["files_after"]:
            print(
                f"  {name}: files {f['files_before']} -> {f['files_after']}, bytes {f['bytes_before']:,} -> {f['bytes_after']:,}"
            )
    print(f"{'figure (ms)':<22}{'A before':>10}{'A after':>10}{'B fresh':>10}{'before/B':>10}{'after/B':>10}  target")
    for k, label in (("get_run", "get_run"), ("search_runs", "search_runs"), ("cold", "cold start+get_run")):
        r0, r1 = before[k] / fresh[k], after[k] / fresh[k]
        verdict = "PASS" if r1 <= TARGET else "FAIL"
        print(
            f"{label:<22}{before[k] * 1e3:>10.2f}{after[k] * 1e3:>10.2f}{fresh[k] * 1e3:>10.2f}{r0:>9.2f}x{r1:>9.2f}x"
            f"  <= {TARGET}x {verdict}"
        )
    print(load())
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
