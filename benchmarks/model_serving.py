"""Served feature-aware model: latency of one keys-only request, against the same model served plainly.

    python benchmarks/model_serving.py                 # 10,000 keys, 1,000 requests per server
    python benchmarks/model_serving.py --requests 200  # quicker

Two real `mlflow models serve --env-manager local` servers on 127.0.0.1, one after the other, with the same
sklearn model (LinearRegression on four double features):
  ours   : logged with FeatureStoreClient.log_model; each request carries one `customer_id` only and the model
           reads the four features from the online store (SQLite in the lake, published first)
  anchor : logged with mlflow.sklearn.log_model; each request carries the four features themselves
Each request is one HTTP POST of one row to /invocations, sent one at a time (no concurrency), after 50 warm-up
requests; the keys are drawn at random. Printed: p50 / p99 / max per server, the ratio ours / anchor, and the
target (issue 13: served model p99 under 20 ms for one key). Both answers are checked equal for every key asked.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.linear_model import LinearRegression

from feature_store import FeatureLookup, FeatureStoreClient
from lakehouse import local_spark

# model_server (a real `mlflow models serve` on a free port), by path: tests/ is no package
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "_support"))
from model_server import ModelServer, model_server

FEATURES = ["f1", "f2", "f3", "f4"]


def timed(server: ModelServer, records: list[dict], warmup: int) -> tuple[list[float], list[float]]:
    for r in records[:warmup]:
        server.invoke([r])
    latencies, answers = [], []
    for r in records:
        t0 = time.perf_counter()
        answers.append(server.invoke([r])["predictions"][0])
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, answers


def summary(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-serving-")
    try:
        spark = local_spark(master="local[2]", shuffle_partitions=4)
        root = os.path.join(tmp, "lake")
        fs = FeatureStoreClient(root=root, spark=spark)
        tracking_uri = f"lakehouse://{root}"
        mlflow.set_tracking_uri(tracking_uri)
        rng = np.random.default_rng(7)
        values = rng.normal(size=(args.keys, len(FEATURES)))
        rows = [(i, *map(float, v)) for i, v in enumerate(values)]
        schema = "customer_id long, " + ", ".join(f"{f} double" for f in FEATURES)
        fs.create_table(name="cf", primary_keys=["customer_id"], df=spark.createDataFrame(rows, schema))
        labels = spark.createDataFrame(
            [(i, float(i % 7)) for i in range(0, args.keys, 10)], "customer_id long, y double"
        )
        ts = fs.create_training_set(labels, [FeatureLookup("cf", "customer_id")], "y", exclude_columns=["customer_id"])
        train = ts.load_df().toPandas()
        model = LinearRegression().fit(train[FEATURES], train["y"])
        ours = fs.log_model(model, "model", flavor=mlflow.sklearn, training_set=ts, pip_requirements=["scikit-learn"])
        with mlflow.start_run():
            plain = mlflow.sklearn.log_model(model, name="plain", pip_requirements=["scikit-learn"])
        fs.publish_table("cf")
        pick = random.Random(11)
        keys = [pick.randrange(args.keys) for _ in range(args.requests)]
        by_key = [{"customer_id": k} for k in keys]
        with_features = [dict(zip(FEATURES, map(float, values[k]), strict=True)) for k in keys]
        print(f"2 cores; {args.keys:,} keys published to SQLite; {args.requests:,} sequential one-row requests each")
        env = {"MLFLOW_TRACKING_URI": tracking_uri}
        with model_server(ours.model_uri, env) as server:
            ours_ms, ours_answers = timed(server, by_key, 50)
        with model_server(plain.model_uri, env) as server:
            plain_ms, plain_answers = timed(server, with_features, 50)
        if not np.allclose(ours_answers, plain_answers, rtol=0, atol=1e-12):
            raise SystemExit("the two servers disagree")
        o, p = summary(ours_ms), summary(plain_ms)
        print(f"{'':<44}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        print(f"{'ours: keys only, features from SQLite':<44}{o[0]:>9.2f}{o[1]:>9.2f}{o[2]:>9.2f}")
        print(f"{'anchor: plain sklearn, features in request':<44}{p[0]:>9.2f}{p[1]:>9.2f}{p[2]:>9.2f}")
        print(f"{'ratio ours / anchor':<44}{o[0] / p[0]:>9.2f}{o[1] / p[1]:>9.2f}")
        print(f"target: served p99 < 20 ms for one key: {o[1]:.2f} ms {'PASS' if o[1] < 20 else 'FAIL'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
