"""Benchmark: `search_runs` without a param/tag filter on filled stores, lakehouse:/// beside sqlite:/// in one run.

    .venv/bin/python benchmarks/search_shapes.py --lake LAKE_DIR --sqlite MLFLOW_DB

LAKE_DIR and MLFLOW_DB are stores filled by `benchmarks/tracking_scale.py` (its cache keeps them, e.g.
~/.cache/lakehouse-ml/bench-scale/lake-n20000-fill1-<commit>/lake and .../sqlite-n20000-fill1-mlflow<v>/mlflow.db);
only read here. Two shapes, each in a fresh process per store, timed with time.perf_counter:
  natural: `search_runs([exp], max_results=100)` (MLflow's natural order: what the MLflow UI lists first);
  metric:  `search_runs([exp], order_by=["metrics.loss DESC"], max_results=100)` (the UI sorted by a metric column).
"cold" includes MlflowClient construction and the store's start; "warm" is the same call again in that process.
The process's ru_maxrss is printed too. Both stores must return the same first metric values (checked).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

EXPERIMENT = "scale"
SHAPES = {"natural": None, "metric": ["metrics.loss DESC"]}


def measure(uri: str, shape: str) -> dict:
    from mlflow import MlflowClient

    order_by = SHAPES[shape]
    t0 = time.perf_counter()
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], "", max_results=100, order_by=order_by)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.search_runs([exp.experiment_id], "", max_results=100, order_by=order_by)
    warm = time.perf_counter() - t0
    return {
        "cold_ms": 1000 * cold,
        "warm_ms": 1000 * warm,
        "first": [r.data.metrics.get("loss") for r in runs[:5]],
        "n": len(runs),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", help="a filled lake folder")
    p.add_argument("--sqlite", help="a filled mlflow.db")
    p.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    stores = {"lakehouse": f"lakehouse://{args.lake}", "sqlite": f"sqlite:///{args.sqlite}"}
    print(f"{'shape':<9} {'figure':<14} {'lakehouse':>11} {'sqlite':>11} {'lake/sql':>9}")
    for shape in SHAPES:
        res = {}
        for side, uri in stores.items():
            out = subprocess.run(
                [sys.executable, __file__, "--measure", uri, shape], capture_output=True, text=True, check=True
            )
            res[side] = json.loads(out.stdout.strip().splitlines()[-1])
        if res["lakehouse"]["first"] != res["sqlite"]["first"] or res["lakehouse"]["n"] != res["sqlite"]["n"]:
            raise AssertionError(f"{shape}: the stores disagree: {res}")
        for fig in ("cold_ms", "warm_ms", "maxrss_mb"):
            lake, sq = res["lakehouse"][fig], res["sqlite"][fig]
            print(f"{shape:<9} {fig:<14} {lake:>11,.1f} {sq:>11,.1f} {lake / sq:>8.2f}x")


if __name__ == "__main__":
    main()
