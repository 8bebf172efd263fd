"""Webhook delivery under pressure (issue 16): Retry-After obeyed, a receiver down for long gets every event once
it is back (across a process restart, and over a simulated hour), and private URLs refused as MLflow does.

Receivers are real HTTP servers on 127.0.0.1; gaps are measured on the receiver's side."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from mlflow.entities.webhook import WebhookEvent
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_webhook_url
from mlflow.webhooks.delivery import _generate_hmac_signature

from jobs._webhooks_client import HttpUrlSpec, InvalidWebhookError, RegistryWebhooksClient
from tracking import _webhooks
from tracking._registry_tables import open_lake

pytestmark = pytest.mark.filterwarnings("ignore")
WORKER = os.path.join(os.path.dirname(__file__), "_webhook_worker.py")
SECRET = "delivery-secret-7f3a"
MAX_JITTER = 1.0  # the documented bound: min(10% of the delay, 1 s)


@pytest.fixture(autouse=True)
def local_delivery(monkeypatch):
    """Loopback receivers need MLflow's two allowances, turned on explicitly; quick polling."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("LAKEHOUSE_DISPATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "0.2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records each POST (headers, body, arrival time); answers `script[i]` = (status, headers) to the i-th."""

    def __init__(self, script=(), port: int | None = None) -> None:
        self.port = port or _free_port()
        self.script = list(script)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                at = time.time()
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                i = len(receiver.received)
                status, headers = receiver.script[i] if i < len(receiver.script) else (200, {})
                if callable(headers):
                    headers = headers(at)
                receiver.received.append({"headers": dict(self.headers), "body": body, "at": at, "status": status})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.time() + timeout
        while len(self.received) < n:
            assert time.time() < deadline, f"receiver got {len(self.received)} of {n} requests in {timeout} s"
            time.sleep(0.01)


def _rows(root, table: str) -> list[dict]:
    return [
        row
        for uri in DeltaTable(os.path.join(root, "mlflow", table)).file_uris()
        for row in pq.read_table(uri).to_pylist()
    ]


def _wait_rows(root, table: str, pred, timeout: float = 20.0) -> list[dict]:
    deadline = time.time() + timeout
    while not (rows := [r for r in _rows(root, table) if pred(r)]):
        assert time.time() < deadline, f"no row of {table} matched in {timeout} s"
        time.sleep(0.05)
    return rows


def _hook(uri: str, url: str, *events: tuple[str, str]):
    events = events or (("registered_model", "created"),)
    return mlflow.MlflowClient(uri).create_webhook(
        "h", url, secret=SECRET, events=[WebhookEvent(e, a) for e, a in events]
    )


# -- 1. Retry-After -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, form",
    [(429, "seconds"), (503, "http-date")],
)
def test_retry_after_is_obeyed_on_the_receivers_clock(tmp_path, lake_uri, status, form):
    asked = 2.0
    if form == "seconds":
        first = (status, {"Retry-After": "2"})
    else:  # an absolute time, whole seconds (HTTP-dates have no fractions): 2-3 s after the answer
        first = (status, lambda at: {"Retry-After": formatdate(int(at) + 3, usegmt=True)})
    receiver = Receiver([first])
    try:
        _hook(lake_uri, receiver.url)
        mlflow.MlflowClient(lake_uri).create_registered_model("m")
        receiver.wait_for(2, timeout=30)
    finally:
        receiver.stop()
    a, b = receiver.received
    gap = b["at"] - a["at"]
    if form == "http-date":
        asked = int(a["at"]) + 3 - a["at"]
    assert gap >= asked, f"retried after {gap:.3f} s, asked {asked:.3f} s"
    # Upper bound: the jitter (<= 10% of the delay), the dispatcher's wake-up and one delivery, with room.
    assert gap <= asked + 0.1 * asked + 1.5, f"retried after {gap:.3f} s, asked {asked:.3f} s"
    assert a["headers"]["X-MLflow-Delivery-Id"] == b["headers"]["X-MLflow-Delivery-Id"]  # one delivery
    for r in (a, b):
        h = r["headers"]
        assert h["X-MLflow-Signature"] == _generate_hmac_signature(
            SECRET, h["X-MLflow-Delivery-Id"], h["X-MLflow-Timestamp"], r["body"]
        )
    log = sorted(_rows(str(tmp_path / "lake"), "webhook_deliveries"), key=lambda r: (r["attempt"], r["timestamp"]))
    assert [(r["attempt"], r["status"]) for r in log if r["status"] != "in_progress"] == [
        (1, "failed"),
        (2, "succeeded"),
    ]


def test_retry_delay_schedule_and_retry_after_parsing(monkeypatch):
    """The documented schedule, checked against its formula written out here (independent of the code)."""
    import random

    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "1")
    rng = random.Random(7)
    for attempt in range(1, 15):
        base = min(300.0, 1.0 * 2 ** (attempt - 1))
        for _ in range(50):
            d = _webhooks.retry_delay(attempt, None, rng)
            assert base <= d <= base + min(0.1 * base, MAX_JITTER)
    for ask in (0.0, 2.0, 30.0, 7200.0):
        d = _webhooks.retry_delay(5, ask, rng)
        assert ask <= d <= ask + min(0.1 * ask, MAX_JITTER)
    now = 1_700_000_000.0
    assert _webhooks.parse_retry_after("120", now) == 120.0
    assert _webhooks.parse_retry_after(formatdate(now + 90, usegmt=True), now) == 90.0
    assert _webhooks.parse_retry_after(formatdate(now - 90, usegmt=True), now) == 0.0  # in the past: now
    for junk in (None, "", "soon", "-5", "1.5e3", "Mon, 99 Foo 2024"):
        assert _webhooks.parse_retry_after(junk, now) is None  # unreadable: the back-off applies


def test_retry_after_beyond_the_deadline_is_capped_then_gives_up(tmp_path, lake_uri):
    """Retry-After: 3600 on a delivery with 3 s left: one last attempt at the deadline, then gave_up."""
    root = str(tmp_path / "lake")
    open_lake(root).dispatcher.window_seconds = 3.0
    receiver = Receiver([(503, {"Retry-After": "3600"})] * 10)
    try:
        _hook(lake_uri, receiver.url)
        mlflow.MlflowClient(lake_uri).create_registered_model("m")
        event_ts = next(r["timestamp"] for r in _rows(root, "registry_events")) / 1000
        gave_up = _wait_rows(root, "webhook_deliveries", lambda r: r["status"] == "gave_up")
        time.sleep(0.3)  # nothing may follow a give-up
    finally:
        receiver.stop()
    assert len(receiver.received) == 2
    last = receiver.received[1]["at"]
    assert event_ts + 3.0 <= last + 0.01 <= event_ts + 3.0 + 1.5, last - event_ts
    assert gave_up[0]["attempt"] == 2 and gave_up[0]["response_status"] == 503


# -- 2. the durable outbox -----------------------------------------------------------------------------------
def test_receiver_down_across_a_process_restart_gets_every_event_once(tmp_path, lake_uri):
    root = str(tmp_path / "lake")
    port = _free_port()  # nothing listens there yet: connection refused
    url = f"http://127.0.0.1:{port}/hook"
    env = {
        **os.environ,
        "PYTHONPATH": os.getcwd(),
        "WORKER_SECRET": SECRET,
        "LAKEHOUSE_DISPATCH_EXIT_SECONDS": "1",
        "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "2",
        "LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS": "0.05",  # the producer's last back-off is what the drain waits out
    }
    n = 4
    producer = subprocess.Popen(
        [sys.executable, WORKER, "produce", lake_uri, url, str(n)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    acked = []
    try:
        while len(acked) < n + 1:
            line = producer.stdout.readline()
            assert line, f"producer died: {producer.stderr.read()[-3000:]}"
            acked.append(line.split()[1])
        # Its dispatcher has tried and failed (refused); then the process ends (its stdin closes).
        _wait_rows(root, "webhook_deliveries", lambda r: r["status"] == "failed" and r["response_status"] is None)
        producer.stdin.close()
        assert producer.wait(timeout=60) == 0, producer.stderr.read()[-3000:]
    finally:
        if producer.poll() is None:
            os.killpg(producer.pid, signal.SIGKILL)
            producer.wait()
    receiver = Receiver(port=port)  # back, after the process that made the events is gone
    try:
        # This test's process is the new one: its drain finds the undelivered events in the lake.
        dispatcher = open_lake(root).dispatcher
        deadline = time.time() + 60
        while len({r["headers"]["X-MLflow-Delivery-Id"] for r in receiver.received}) < n + 1:
            assert time.time() < deadline, f"{len(receiver.received)} deliveries of {n + 1} events"
            wake = dispatcher.drain(wait=True)
            time.sleep(0.02 if wake is None else max(0.0, min(0.5, wake - time.time())))
        time.sleep(0.3)  # and nothing more arrives
    finally:
        receiver.stop()
    by_id: dict[str, list[dict]] = {}
    for r in receiver.received:
        by_id.setdefault(r["headers"]["X-MLflow-Delivery-Id"], []).append(json.loads(r["body"]))
    # Deduplicated by delivery id: each event once (a repeat carries the same id and the same data).
    assert all(len({json.dumps(b["data"], sort_keys=True) for b in bodies}) == 1 for bodies in by_id.values())
    got = sorted(
        ("model" if b["entity"] == "registered_model" else b["data"]["version"]) for b in (v[0] for v in by_id.values())
    )
    assert got == sorted(acked), (got, acked)


def _drive(dispatcher, clock: list[float], until: float) -> None:
    """Drain at every wake-up the dispatcher asks for, on the simulated clock, until `until` (epoch s)."""
    while clock[0] < until:
        wake = dispatcher.drain(wait=True)  # with wait: the attempts just made count in its wake-up
        if wake is None:
            return
        clock[0] = min(until, max(wake, clock[0] + 0.001))


def _failed_attempts(root) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(_rows(root, "webhook_deliveries"), key=lambda r: r["attempt"]):
        if r["status"] != "in_progress":
            out.setdefault(r["event_id"], []).append(r)
    return out


def test_outage_of_an_hour_on_a_simulated_clock(tmp_path, lake_uri, monkeypatch, trials):
    """Receiver down for `outage` simulated seconds (an hour under --long): the back-off schedule is followed,
    nothing gives up, and once the receiver is back every event arrives, once."""
    monkeypatch.setenv("LAKEHOUSE_REGISTRY_DISPATCH", "0")  # only the simulated drains deliver
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "1")  # the real schedule: 1, 2, 4, ... 300 s
    outage = float(trials(900, 3600))
    root = str(tmp_path / "lake")
    port = _free_port()
    client = mlflow.MlflowClient(lake_uri)
    _hook(lake_uri, f"http://127.0.0.1:{port}/hook", ("registered_model", "created"), ("model_version", "created"))
    client.create_registered_model("m")
    for i in range(3):
        client.create_model_version("m", f"s3://b/{i}")
    dispatcher = open_lake(root).dispatcher
    start = time.time()
    clock = [start]
    monkeypatch.setattr(dispatcher, "clock", lambda: clock[0])
    _drive(dispatcher, clock, start + outage)
    failed = _failed_attempts(root)
    assert len(failed) == 4 and all(r["status"] == "failed" for rows in failed.values() for r in rows)
    for rows in failed.values():  # the schedule, written out: gap n in [b_n, b_n + min(b_n / 10, 1 s)]
        for n, (a, b) in enumerate(itertools.pairwise(rows), start=1):
            base = min(300.0, 2.0 ** (n - 1))
            gap = (b["timestamp"] - a["timestamp"]) / 1000
            assert base - 0.002 <= gap <= base + min(base / 10, MAX_JITTER) + 0.002, (n, gap)
        assert rows[-1]["timestamp"] / 1000 >= start + outage - 300 - MAX_JITTER  # still trying at the end
    receiver = Receiver(port=port)
    try:
        back = clock[0]
        _drive(dispatcher, clock, back + 301 + MAX_JITTER)  # at most one capped back-off later
    finally:
        receiver.stop()
    ids = [r["headers"]["X-MLflow-Delivery-Id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 4  # every event, once
    succeeded = [r for r in _rows(root, "webhook_deliveries") if r["status"] == "succeeded"]
    assert len(succeeded) == 4
    # The first success wakes the rest: all four within a second of simulated time of each other.
    times = sorted(r["timestamp"] for r in succeeded)
    assert times[-1] - times[0] <= 1000, times


def test_unavailable_receiver_gives_up_at_the_deadline(tmp_path, lake_uri, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_REGISTRY_DISPATCH", "0")
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "1")
    root = str(tmp_path / "lake")
    _hook(lake_uri, f"http://127.0.0.1:{_free_port()}/hook")
    mlflow.MlflowClient(lake_uri).create_registered_model("m")
    dispatcher = open_lake(root).dispatcher
    monkeypatch.setattr(dispatcher, "window_seconds", 1000.0)
    event_ts = _rows(root, "registry_events")[0]["timestamp"] / 1000
    clock = [time.time()]
    monkeypatch.setattr(dispatcher, "clock", lambda: clock[0])
    _drive(dispatcher, clock, event_ts + 5000)
    (rows,) = _failed_attempts(root).values()
    assert [r["status"] for r in rows] == ["failed"] * (len(rows) - 1) + ["gave_up"]
    last = rows[-1]["timestamp"] / 1000
    assert event_ts + 1000 <= last <= event_ts + 1000 + 0.01  # the last attempt is at the deadline
    assert dispatcher.drain(wait=True) is None  # nothing left


# -- 4. private and loopback URLs ------------------------------------------------------------------------------
PRIVATE = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/hook",
]


def test_private_urls_refused_as_mlflow_refuses_them(tmp_path, lake_uri, monkeypatch):
    """MLflow's rule and answer for each class of non-public address: the code and message of MLflow's own
    `_validate_webhook_url` (what its SQL store's create_webhook raises first, with
    `MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS` off), from the store and from the Databricks-style client; nothing written."""
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "false")  # the default, said explicitly
    events = [WebhookEvent("model_version", "created")]
    client = mlflow.MlflowClient(lake_uri)
    databricks = RegistryWebhooksClient(lake=tmp_path / "lake")
    for url in PRIVATE:
        with pytest.raises(MlflowException) as expected:
            _validate_webhook_url(url)
        with pytest.raises(MlflowException) as e:
            client.create_webhook("h", url, events=events, secret=SECRET)
        assert (e.value.error_code, e.value.message) == (expected.value.error_code, expected.value.message), url
        assert e.value.error_code == "INVALID_PARAMETER_VALUE" and "non-public" in e.value.message, url
        with pytest.raises(InvalidWebhookError) as e2:
            databricks.create_webhook(["MODEL_VERSION_CREATED"], http_url_spec=HttpUrlSpec(url, secret=SECRET))
        assert expected.value.message in str(e2.value) and SECRET not in str(e2.value)
    assert client.list_webhooks() == []  # nothing written
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")  # the allowance, as MLflow's
    assert client.create_webhook("h", PRIVATE[0], events=events).url == PRIVATE[0]


def test_a_url_allowed_at_creation_is_refused_at_send_time_once_disallowed(tmp_path, lake_uri, monkeypatch):
    root = str(tmp_path / "lake")
    receiver = Receiver()
    try:
        _hook(lake_uri, receiver.url)
        monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "false")
        mlflow.MlflowClient(lake_uri).create_registered_model("m")
        (row,) = _wait_rows(root, "webhook_deliveries", lambda r: r["status"] == "gave_up")
    finally:
        receiver.stop()
    assert receiver.received == []
    assert row["error"].startswith("URL refused:") and "non-public" in row["error"] and row["attempt"] == 1
