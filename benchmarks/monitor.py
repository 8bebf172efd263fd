"""monitor benchmark (issue 15): the `monitor` job over 12 monthly windows of 100k rows each, in a fresh process.

    python benchmarks/monitor.py              # 12 windows x 100,000 rows (1.2M rows), target < 120 s
    python benchmarks/monitor.py --quick      # 12 windows x 5,000 rows

Data: `bench.labels` (--windows months from 2025-01 of --rows-per-window rows each: five double features
f1..f5, a string feature `segment` (4 values), an int64 label `churned`, a timestamp `ts`), written once with
the deltalake engine; the last three months drift (f1 shifted, the label's rule changed). `bench.train`: 50k
rows of the same shape (the drift reference). A LogisticRegression pipeline (one-hot `segment`) trained on it is
logged with its training accuracy, registered as `bench_monitor` and given the alias @champion (MLflow tracking
URI lakehouse:///<temp dir>).

Timed: one run of the job as `lakehouse-jobs monitor` would run it, in a fresh Python process: interpreter
start, imports, the Spark session the table read starts, model load, read, scoring, metrics, drift (PSI), 12
MLflow runs, the alert tag, the chart and the report. The child also prints the time of the `monitor()` call
alone. Target: the fresh process finishes in under 120 s (PASS/FAIL), beside the machine's load (2 cores
shared). Everything lives in a temp directory deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from _machine import load, revision
from mlflow import MlflowClient
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from lakehouse import Lakehouse, local_spark

MODEL = "bench_monitor"
FEATURES = ["f1", "f2", "f3", "f4", "f5", "segment"]
TARGET_SECONDS = 120.0
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from jobs._monitor import monitor
lake = sys.argv[1]
t1 = time.perf_counter()
out = monitor(lake, model_name=%(model)r, alias="champion", table="bench.labels", label_column="churned",
              timestamp_column="ts", reference_table="bench.train")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "monitor_s": t2 - t1, "windows": len(out["windows"]), "rows": out["rows"],
                  "alerts": len(out["alerts"]), "alerted_windows": sorted({a["window"] for a in out["alerts"]}),
                  "report": out["report"]}))
"""


def frame(rng: np.random.Generator, n: int, month: pd.Timestamp | None, drifted: bool) -> pd.DataFrame:
    x = rng.normal(0.0, 1.0, (n, 5))
    if drifted:
        x[:, 0] += 1.5
    segment = rng.choice(["a", "b", "c", "d"], n)
    score = x[:, 0] + 0.5 * x[:, 1] - 0.5 * x[:, 2] + (segment == "a") * 0.5
    label = (score < 0.8) if drifted else (score > 0.0)
    label ^= rng.random(n) < 0.05
    out = pd.DataFrame({f"f{i + 1}": x[:, i] for i in range(5)})
    out["segment"] = segment
    out["churned"] = label.astype("int64")
    if month is not None:
        seconds = int((month + pd.offsets.MonthBegin(1) - month).total_seconds())
        out["ts"] = month + pd.to_timedelta(rng.integers(0, seconds, n), unit="s")
    return out


def build(root: str, windows: int, rows: int) -> None:
    rng = np.random.default_rng(15)
    lh = Lakehouse(root, spark=local_spark(master="local[2]", shuffle_partitions=2), engine="deltalake")
    months = pd.date_range("2025-01-01", periods=windows, freq="MS", tz="UTC")
    for i, month in enumerate(months):
        part = pa.Table.from_pandas(frame(rng, rows, month, drifted=i >= windows - 3), preserve_index=False)
        if i == 0:
            lh.create_table("bench.labels", part)
        else:
            lh.append("bench.labels", part)
    train = frame(rng, 50_000, None, drifted=False)
    lh.create_table("bench.train", pa.Table.from_pandas(train[[*FEATURES, "churned"]], preserve_index=False))
    uri = f"lakehouse://{root}"
    mlflow.set_tracking_uri(uri)
    model = make_pipeline(
        ColumnTransformer([("s", OneHotEncoder(), ["segment"])], remainder="passthrough"), LogisticRegression()
    ).fit(train[FEATURES], train["churned"])
    with mlflow.start_run():
        mlflow.log_metric("training_accuracy_score", accuracy_score(train["churned"], model.predict(train[FEATURES])))
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=train[FEATURES][:5],
            registered_model_name=MODEL,
            pip_requirements=["scikit-learn"],
        )
    mlflow.set_tracking_uri(None)
    MlflowClient(uri, uri).set_registered_model_alias(MODEL, "champion", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=12)
    ap.add_argument("--rows-per-window", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="5,000 rows per window")
    args = ap.parse_args()
    rows = 5_000 if args.quick else args.rows_per_window
    tmp = tempfile.mkdtemp(prefix="bench_monitor_")
    try:
        root = os.path.join(tmp, "lake")
        started = time.perf_counter()
        build(root, args.windows, rows)
        print(f"data: {args.windows} windows x {rows:,} rows written in {time.perf_counter() - started:.1f} s")
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        print(f"{revision()}, {load()} before the run")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD % {"model": MODEL}, root], cwd=repo, capture_output=True, text=True
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"the job's process exited {proc.returncode}")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"monitor: {figures['windows']} windows, {figures['rows']:,} rows, {figures['alerts']} alerts "
            f"(windows {', '.join(figures['alerted_windows'])})"
        )
        print(
            f"  fresh process {wall:.1f} s (exit 0): imports {figures['import_s']:.1f} s, "
            f"monitor() {figures['monitor_s']:.1f} s; {load()} after"
        )
        verdict = "PASS" if wall < TARGET_SECONDS else "FAIL"
        print(f"  target: under {TARGET_SECONDS:.0f} s for the whole process: {verdict}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
