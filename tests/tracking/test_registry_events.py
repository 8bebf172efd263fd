"""Registry events: signed webhook deliveries to a real receiver, retries, the delivery log, job triggers,
crash recovery, and several processes on one lake."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from mlflow.entities.webhook import WebhookEvent
from mlflow.webhooks.delivery import _generate_hmac_signature

import jobs

pytestmark = pytest.mark.filterwarnings("ignore")
WORKER = os.path.join(os.path.dirname(__file__), "_registry_worker.py")
SECRET = "s3cr3t"


@pytest.fixture(autouse=True)
def fast_local_delivery(monkeypatch):
    """Let webhooks reach 127.0.0.1 over http, and retry and poll quickly."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("LAKEHOUSE_DISPATCH_POLL_SECONDS", "0.2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """An HTTP receiver on 127.0.0.1 recording each POST; answers `fail_with` to the first `failures` ones."""

    def __init__(self, port: int | None = None, failures: int = 0, fail_with: int = 503) -> None:
        self.port = port or _free_port()
        self.received: list[dict] = []
        self.failures, self.fail_with = failures, fail_with
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append({"headers": dict(self.headers), "body": body, "at": time.time()})
                failing = receiver.failures > 0
                receiver.failures -= 1
                self.send_response(receiver.fail_with if failing else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.Handler = Handler
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def ok_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def wait_for(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.time() + timeout
        while len(self.received) < n:
            assert time.time() < deadline, f"receiver got {len(self.received)} of {n} deliveries in {timeout} s"
            time.sleep(0.02)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _rows(tmp_path, table: str) -> list[dict]:
    """The table's live rows, read from its Delta log's files (never deltalake's pyarrow-dataset reader, which
    can abort the test process at exit with code 134)."""
    return [
        row
        for uri in DeltaTable(str(tmp_path / "lake" / "mlflow" / table)).file_uris()
        for row in pq.read_table(uri).to_pylist()
    ]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [os.getcwd(), os.path.dirname(os.path.dirname(WORKER)) + "/..", os.environ.get("PYTHONPATH", "")]
        ),
        **kw.pop("env", {}),
    }
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, **kw)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def test_signed_delivery_payload_latency_and_log(tmp_path, lake_uri, receiver):
    client = mlflow.MlflowClient(lake_uri)
    hook = client.create_webhook(
        "h",
        receiver.url,
        secret=SECRET,
        events=[
            WebhookEvent("registered_model", "created"),
            WebhookEvent("model_version", "created"),
            WebhookEvent("model_version_alias", "created"),
        ],
    )
    client.create_registered_model("churn", tags={"team": "ml"}, description="d")
    client.create_model_version("churn", "s3://b/1", run_id="r1", tags={"k": "v"})
    done = time.time()
    client.set_model_version_tag("churn", 1, "not", "subscribed")
    client.set_registered_model_alias("churn", "champion", 1)
    receiver.wait_for(3)
    version_at = next(r["at"] for r in receiver.received if '"model_version"' in r["body"])
    assert version_at - done < 1.0, f"delivery took {version_at - done:.2f} s"
    for r in receiver.received:
        h = r["headers"]
        assert h["X-MLflow-Signature"] == _generate_hmac_signature(
            SECRET, h["X-MLflow-Delivery-Id"], h["X-MLflow-Timestamp"], r["body"]
        )
    bodies = sorted(
        receiver.ok_bodies(),
        key=lambda b: ["registered_model", "model_version", "model_version_alias"].index(b["entity"]),
    )
    assert [(b["entity"], b["action"]) for b in bodies] == [  # deliveries run in parallel: any order
        ("registered_model", "created"),
        ("model_version", "created"),
        ("model_version_alias", "created"),
    ]
    assert bodies[0]["data"] == {"name": "churn", "tags": {"team": "ml"}, "description": "d"}
    assert bodies[1]["data"] == {
        "name": "churn",
        "version": "1",
        "source": "s3://b/1",
        "run_id": "r1",
        "tags": {"k": "v"},
        "description": None,
    }
    assert bodies[2]["data"] == {"name": "churn", "alias": "champion", "version": "1"}
    time.sleep(0.3)
    assert len(receiver.received) == 3  # exactly once each
    log = [r for r in _rows(tmp_path, "webhook_deliveries") if r["subscriber"] == f"webhook:{hook.webhook_id}"]
    assert sorted(r["status"] for r in log) == ["in_progress"] * 3 + ["succeeded"] * 3
    assert {r["response_status"] for r in log if r["status"] == "succeeded"} == {200}
    events = {r["event"] for r in _rows(tmp_path, "registry_events")}
    assert {
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_alias.created",
    } <= events
    assert client.test_webhook(hook.webhook_id).success
    assert json.loads(receiver.received[-1]["body"])["entity"] == "registered_model"


def test_receiver_down_then_up_is_retried_with_backoff(tmp_path, lake_uri):
    down = Receiver()  # port chosen, nothing listening yet
    client = mlflow.MlflowClient(lake_uri)
    client.create_webhook("h", down.url, events=[WebhookEvent("model_version", "created")])
    client.create_registered_model("m")
    client.create_model_version("m", "s3://b/1")  # must not raise although the receiver is down
    time.sleep(0.5)
    up = Receiver(port=down.port, failures=1, fail_with=503).start()  # up, and answers 503 once more
    try:
        up.wait_for(2, timeout=20)
        time.sleep(0.3)
        assert len(up.received) == 2
        assert up.received[0]["body"] != "" and json.loads(up.received[1]["body"])["data"]["version"] == "1"
    finally:
        up.stop()
    log = sorted(
        (r for r in _rows(tmp_path, "webhook_deliveries") if r["status"] != "in_progress"), key=lambda r: r["attempt"]
    )
    assert [r["status"] for r in log][-1] == "succeeded"
    assert all(r["status"] == "failed" for r in log[:-1]) and len(log) >= 3
    assert log[0]["response_status"] is None and "Connection" in log[0]["error"]
    assert log[-2]["response_status"] == 503
    gaps = [(b["timestamp"] - a["timestamp"]) for a, b in itertools.pairwise(log)]
    assert all(g >= 150 for g in gaps), gaps  # backoff 0.2 s, 0.4 s, ...


def test_failing_receiver_gives_up_without_failing_the_registry(tmp_path, lake_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", "1")
    bad = Receiver(failures=100, fail_with=500).start()
    try:
        client = mlflow.MlflowClient(lake_uri)
        client.create_webhook("h", bad.url, events=[WebhookEvent("registered_model", "created")])
        assert client.create_registered_model("m").name == "m"
        bad.wait_for(2)
        deadline = time.time() + 10
        while not any(r["status"] == "gave_up" for r in _rows(tmp_path, "webhook_deliveries")):
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        bad.stop()
    assert len(bad.received) == 2


def test_trigger_runs_a_job_on_stage_transition_and_alias(tmp_path, lake_uri):
    (tmp_path / "validate_job.py").write_text(
        "import json, os\n"
        "def run(event):\n"
        "    with open(os.path.join(os.path.dirname(__file__), 'validated.json'), 'w') as fh:\n"
        "        json.dump(event, fh)\n"
        "    print('validated', event['name'], event['version'])\n"
    )
    lake = tmp_path / "lake"
    client = mlflow.MlflowClient(lake_uri)
    client.create_registered_model("churn")
    client.create_model_version("churn", "s3://b/1")
    client.create_model_version("churn", "s3://b/2")
    staging = jobs.create_trigger(
        lake, name="validate", model_name="churn", stage="staging", callable="validate_job:run"
    )
    marker = tmp_path / "alias.txt"
    alias = jobs.create_trigger(
        lake_uri,
        name="promote",
        model_name="churn",
        alias="champion",
        command=[sys.executable, "-c", f"import os; open({str(marker)!r}, 'w').write(os.environ['MODEL_VERSION'])"],
    )
    with pytest.raises(ValueError, match="exactly one of stage=, alias= or tag="):
        jobs.create_trigger(lake, name="x", model_name="churn", callable="a:b")
    client.transition_model_version_stage("churn", 1, "Production")  # not watched
    client.transition_model_version_stage("churn", 2, "Staging")
    client.set_registered_model_alias("churn", "champion", 2)
    deadline = time.time() + 30
    while len(jobs.list_runs(lake)) < 2:
        assert time.time() < deadline, jobs.list_runs(lake)
        time.sleep(0.1)
    runs = {r.trigger_id: r for r in jobs.list_runs(lake)}
    assert runs[staging.trigger_id].status == "succeeded"
    assert runs[staging.trigger_id].version == "2" and runs[staging.trigger_id].stage == "Staging"
    assert "validated churn 2" in runs[staging.trigger_id].output
    event = json.loads((tmp_path / "validated.json").read_text())
    assert event["payload"]["to_stage"] == "Staging" and event["payload"]["from_stage"] == "None"
    assert runs[alias.trigger_id].exit_code == 0 and marker.read_text() == "2"
    assert [t.name for t in jobs.list_triggers(lake)] == ["validate", "promote"]
    jobs.delete_trigger(lake, alias.trigger_id)
    assert [t.name for t in jobs.list_triggers(lake)] == ["validate"]


def test_crash_right_after_the_write_loses_nothing_and_drainers_never_duplicate(
    tmp_path, lake_uri, receiver, monkeypatch
):
    monkeypatch.setenv("LAKEHOUSE_REGISTRY_DISPATCH", "0")  # only the drainers below deliver
    client = mlflow.MlflowClient(lake_uri)
    client.create_webhook("h", receiver.url, secret=SECRET, events=[WebhookEvent("model_version", "created")])
    client.create_registered_model("m")
    _run([sys.executable, WORKER, "crash", lake_uri, "m"], env={"LAKEHOUSE_REGISTRY_DISPATCH": "0"})
    assert [r["version"] for r in _rows(tmp_path, "model_versions")] == [1]
    # The crash happened before the outbox copy: only the model's creation is there.
    assert [r["event"] for r in _rows(tmp_path, "registry_events")] == ["registered_model.created"]
    # More events, written while no dispatcher runs; then two drainers race over all of them.
    for i in range(4):
        client.create_model_version("m", f"s3://b/{i}")
    drain = [sys.executable, "-m", "jobs", "drain", str(tmp_path / "lake"), "--follow", "1"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    procs = [
        subprocess.Popen(drain, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    versions = sorted(json.loads(r["body"])["data"]["version"] for r in receiver.received)
    assert versions == ["1", "2", "3", "4", "5"]  # the crashed one included, each exactly once
    outbox = [r for r in _rows(tmp_path, "registry_events") if r["event"] == "model_version.created"]
    assert sorted(r["version"] for r in outbox) == ["1", "2", "3", "4", "5"]


def test_two_processes_get_distinct_version_numbers(tmp_path, lake_uri):
    mlflow.MlflowClient(lake_uri).create_registered_model("shared")
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "LAKEHOUSE_REGISTRY_DISPATCH": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "versions", lake_uri, "shared", "15"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    versions = mlflow.MlflowClient(lake_uri).search_model_versions("name = 'shared'", max_results=100)
    assert sorted(int(v.version) for v in versions) == list(range(1, 31))
    assert len({v.source for v in versions}) == 30
