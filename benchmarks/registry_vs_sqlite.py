"""Time the same MLflow registry workload against sqlite:/// and lakehouse:/// through MlflowClient.

    python benchmarks/registry_vs_sqlite.py [--workdir /tmp/bench]

Workloads (issue 4): a) register 100 versions (create_model_version); b) 100 stage transitions
(archive_existing_versions=True); c) search_model_versions with filter + order over 1,000 versions (median
of 5); d) load_model by stage and e) by alias (pyfunc, median of 5); f) webhook latency on lakehouse: from
create_model_version returning to the POST arriving at a receiver on 127.0.0.1 (median of 20); g) 100 times
three one-table calls (move an alias, set a version tag, update a description: 300 calls).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookEvent


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench(uri: str) -> dict[str, float]:
    mlflow.set_tracking_uri(uri)
    c = MlflowClient(uri)
    c.search_registered_models()  # store init is not timed
    out: dict[str, float] = {}
    c.create_registered_model("a")
    out["a) register 100 versions (s)"] = _timed(
        lambda: [c.create_model_version("a", f"s3://b/{i}") for i in range(100)]
    )
    stages = ["Staging", "Production"]
    out["b) 100 stage transitions (s)"] = _timed(
        lambda: [
            c.transition_model_version_stage("a", i + 1, stages[i % 2], archive_existing_versions=True)
            for i in range(100)
        ]
    )
    out["g) 100 x (alias move, version tag, description) (s)"] = _timed(
        lambda: [
            (
                c.set_registered_model_alias("a", "champion", i + 1),
                c.set_model_version_tag("a", i + 1, "checked", "yes"),
                c.update_model_version("a", i + 1, f"run {i}"),
            )
            for i in range(100)
        ]
    )
    for m in range(10):
        c.create_registered_model(f"s{m}")
        for i in range(100 if m else 0):
            c.create_model_version(f"s{m}", f"s3://b/{m}/{i}", run_id=f"r{i % 10}")
    for i in range(100):
        c.create_model_version("s0", f"s3://b/0/{i}", run_id=f"r{i % 10}")

    def search():
        got = c.search_model_versions(
            "run_id = 'r3' AND name LIKE 's%'", max_results=1000, order_by=["version_number DESC"]
        )
        assert len(got) == 100, len(got)

    out["c) search_model_versions over 1,000 versions (ms)"] = 1000 * statistics.median(
        _timed(search) for _ in range(5)
    )
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name="served")
    c.transition_model_version_stage("served", 1, "Production")
    c.set_registered_model_alias("served", "champion", 1)
    data = pd.DataFrame({"x": [1.0]})
    out["d) load_model models:/served/Production (ms)"] = 1000 * statistics.median(
        _timed(lambda: mlflow.pyfunc.load_model("models:/served/Production").predict(data)) for _ in range(5)
    )
    out["e) load_model models:/served@champion (ms)"] = 1000 * statistics.median(
        _timed(lambda: mlflow.pyfunc.load_model("models:/served@champion").predict(data)) for _ in range(5)
    )
    return out


def webhook_latency(uri: str, n: int = 20) -> float:
    os.environ.setdefault("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    os.environ.setdefault("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    arrived: list[float] = []
    got = threading.Event()

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.append(time.perf_counter())
            got.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    c = MlflowClient(uri)
    c.create_webhook("bench", f"http://127.0.0.1:{port}/", events=[WebhookEvent("model_version", "created")])
    c.create_registered_model("hooked")
    lat = []
    for i in range(n):
        got.clear()
        c.create_model_version("hooked", f"s3://b/{i}")
        t = time.perf_counter()
        assert got.wait(10), "no delivery within 10 s"
        lat.append(arrived[-1] - t)
    server.shutdown()
    return statistics.median(lat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="registry-bench-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    results = {}
    for name, uri in (("sqlite", f"sqlite:///{work}/mlflow.db"), ("lakehouse", f"lakehouse://{work}/lake")):
        results[name] = bench(uri)
    print(f"{'workload':52} {'sqlite':>10} {'lakehouse':>10} {'ratio':>7}")
    for k in results["sqlite"]:
        s, lk = results["sqlite"][k], results["lakehouse"][k]
        print(f"{k:52} {s:10.3f} {lk:10.3f} {lk / s:7.2f}")
    print(
        f"f) webhook latency, lakehouse, median of 20 (ms)        {1000 * webhook_latency(f'lakehouse://{work}/lake'):.1f}"
    )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
