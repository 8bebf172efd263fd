"""`mlflow server --backend-store-uri lakehouse:///...` serves the runs logged to the lake over REST."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_server_answers_runs_search(tmp_path, lake_uri):
    mlflow.set_tracking_uri(lake_uri)
    exp = mlflow.create_experiment("served")
    for i in range(3):
        with mlflow.start_run(experiment_id=exp, run_name=f"r{i}"):
            mlflow.log_param("i", str(i))
            mlflow.log_metric("score", i / 10)
    port = _free_port()
    mlflow_bin = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen(
        [mlflow_bin, "server", "--backend-store-uri", lake_uri, "--default-artifact-root", str(tmp_path / "art"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"server exited early ({server.returncode}): {server.stdout.read()}"
            assert time.time() < deadline, "server did not become healthy in 90 s"
            time.sleep(0.5)
        body = _post(f"{base}/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp], "filter": "metrics.score > 0.05", "order_by": ["metrics.score DESC"],
        })
        names = [r["info"]["run_name"] for r in body["runs"]]
        assert names == ["r2", "r1"]
        assert body["runs"][0]["data"]["params"] == [{"key": "i", "value": "2"}]
        # A write through the server lands in the lake and is visible to this process's store.
        created = _post(f"{base}/api/2.0/mlflow/runs/create", {"experiment_id": exp, "run_name": "via-rest"})
        run_id = created["run"]["info"]["run_id"]
        assert mlflow.MlflowClient(lake_uri).get_run(run_id).info.run_name == "via-rest"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert server.returncode == 0, f"server exited {server.returncode}:\n{out[-3000:]}"
