"""Credentials inside webhook URLs never stored or shown in clear (issue 16, "Secrets").

A URL such as `http://user:pass@host/hook?token=...` is sealed whole in `mlflow.webhooks.url` (the webhook
secret's key and opt-out), returned as registered by `get_webhook` / `list_webhooks` (MLflow's SQL store does),
delivered with its credentials intact (an Authorization header for the userinfo, the token in the request line),
and shown redacted (`http://***@host/hook?token=***`) in every log line, error and delivery record. Receivers are
real HTTP servers on 127.0.0.1 (MLflow's loopback/http allowances switched on, as in test_webhook_delivery.py)."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pyarrow.parquet as pq
import pytest
from mlflow.entities.webhook import WebhookEvent
from mlflow.exceptions import MlflowException
from test_secrets import local_delivery  # noqa: F401 (autouse: loopback delivery, fresh keys, no opt-out)
from test_webhook_delivery import _free_port, _rows, _wait_rows

from jobs._webhooks_client import HttpUrlSpec, InvalidWebhookError, RegistryWebhooksClient
from tracking import _secrets
from tracking._registry_tables import open_lake

pytestmark = pytest.mark.filterwarnings("ignore")
KEY_VAR = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
USER, PASSWORD, TOKEN = "hookuser", "p4ss-url-cred-31d7", "tok-url-cred-8e2a"
EVENTS = [WebhookEvent("registered_model", "created")]


class PathReceiver:
    """Records each POST's request line (path and query) and headers; answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.port = _free_port()
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"path": self.path, "headers": dict(self.headers)})
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, user: str = USER, password: str = PASSWORD, token: str = TOKEN) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}/hook?token={token}&v=1"

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while len(self.received) < n:
            assert time.time() < deadline, f"receiver got {len(self.received)} of {n} requests in {timeout} s"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _files_holding(top, needles: list[str]) -> list[str]:
    """Files under `top` holding a needle: raw bytes of every file (log JSON, checkpoints, key files), and every
    Parquet file read back with pyarrow, every value of every column (compression cannot hide a value)."""
    hits = []
    for folder, _, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                data = fh.read()
            text = ""
            if name.endswith(".parquet"):
                text = str(pq.read_table(path).to_pylist())
            if any(n.encode() in data or n in text for n in needles):
                hits.append(path)
    return hits


# -- redaction: the expected forms written out by hand ---------------------------------------------------
@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://user:p4ss@hooks.example.com/x", "https://***@hooks.example.com/x"),
        ("https://tok3n@hooks.example.com/x", "https://***@hooks.example.com/x"),
        ("https://hooks.example.com/x?token=abc&v=1", "https://hooks.example.com/x?token=***&v=1"),
        ("https://u:p@hooks.example.com:8443/x?token=abc", "https://***@hooks.example.com:8443/x?token=***"),
        ("https://f.azurewebsites.net/api/h?code=Zm9v%3D%3D", "https://f.azurewebsites.net/api/h?code=***"),
        ("https://a.blob.core.windows.net/c?sv=2022&sig=abc%2B", "https://a.blob.core.windows.net/c?sv=2022&sig=***"),
        ("https://h.example.com/x?API_KEY=k&Access-Token=t", "https://h.example.com/x?API_KEY=***&Access-Token=***"),
        (
            "https://s3.example.com/o?X-Amz-Signature=ff&X-Amz-Date=1",
            "https://s3.example.com/o?X-Amz-Signature=***&X-Amz-Date=1",
        ),
        ("https://h.example.com/x?key=&flag&page=2", "https://h.example.com/x?key=&flag&page=2"),
        ("https://h.example.com/cb#access_token=t&state=s", "https://h.example.com/cb#access_token=***&state=s"),
        ("https://hooks.example.com/x?monkey=banana", "https://hooks.example.com/x?monkey=banana"),
        ("https://hooks.example.com/plain", "https://hooks.example.com/plain"),
        ("http://[::1/x?token=abc", "***"),
    ],
)
def test_redact_url(url, shown):
    assert _secrets.redact_url(url) == shown
    assert _secrets.url_has_credentials(url) == (shown != url)


# -- at rest, returned, delivered ------------------------------------------------------------------------
def test_url_credentials_sealed_at_rest_returned_as_registered_and_delivered_intact(tmp_path, lake_uri):
    lake = tmp_path / "lake"
    receiver = PathReceiver()
    plain = "https://hooks.example.com/no-credentials"
    try:
        client = mlflow.MlflowClient(lake_uri)
        url = receiver.url()
        hook = client.create_webhook("h", url, events=EVENTS, secret="s")
        other = client.create_webhook("g", plain, events=[WebhookEvent("model_version", "created")])
        assert hook.url == url and client.get_webhook(hook.webhook_id).url == url
        assert {w.url for w in client.list_webhooks()} == {url, plain}
        shown = repr(client.get_webhook(hook.webhook_id)) + str(client.list_webhooks())
        assert f"url='http://***@127.0.0.1:{receiver.port}/hook?token=***&v=1'" in shown
        assert PASSWORD not in shown and TOKEN not in shown
        # Enough updates for a checkpoint of mlflow.webhooks (one every 100 commits): the URL stays sealed.
        for i in range(100):
            client.update_webhook(hook.webhook_id, description=f"d{i}")
        assert client.get_webhook(hook.webhook_id).url == url
        client.create_registered_model("m")
        receiver.wait_for(1)
    finally:
        receiver.stop()
    log_dir = lake / "mlflow" / "webhooks" / "_delta_log"
    assert any(n.endswith(".checkpoint.parquet") for n in os.listdir(log_dir))
    assert _files_holding(lake, [PASSWORD, TOKEN]) == []
    rows = {r["webhook_id"]: r for r in _rows(str(lake), "webhooks")}
    assert rows[hook.webhook_id]["url"].startswith("fernet:")
    assert rows[other.webhook_id]["url"] == plain  # no credential: readable by Spark as it was
    (got,) = receiver.received
    assert got["path"] == f"/hook?token={TOKEN}&v=1"
    assert got["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def test_logs_errors_and_delivery_records_show_only_the_redacted_url(tmp_path, lake_uri, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", "0")
    lake = tmp_path / "lake"
    failing = PathReceiver(status=500)
    dead_port = _free_port()
    dead_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{dead_port}/hook?token={TOKEN}"
    seen: list[str] = []
    try:
        client = mlflow.MlflowClient(lake_uri)
        h500 = client.create_webhook("failing", failing.url(), events=EVENTS)
        dead = client.create_webhook("dead", dead_url, events=EVENTS)
        client.create_registered_model("m")
        failing.wait_for(1)
        gave_up = _wait_rows(str(lake), "webhook_deliveries", lambda r: r["status"] == "gave_up")
        refused = _wait_rows(
            str(lake), "webhook_deliveries", lambda r: r["subscriber"] == f"webhook:{dead.webhook_id}" and r["error"]
        )
        seen += [r["error"] for r in gave_up + refused]
        dead_test = repr(client.test_webhook(dead.webhook_id))
        # Refused at send time (private addresses no longer allowed): the SSRF message.
        monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "false")
        ssrf_test = repr(client.test_webhook(h500.webhook_id))
        seen += [dead_test, ssrf_test]
        # Refused at create/update: MLflow's validator names the whole URL when it has no hostname.
        for call in (
            lambda: client.create_webhook("x", f"https://{USER}:{PASSWORD}@/x?token={TOKEN}", events=EVENTS),
            lambda: client.update_webhook(h500.webhook_id, url=f"https://{USER}:{PASSWORD}@/x?token={TOKEN}"),
        ):
            with pytest.raises(MlflowException, match=r"https://\*\*\*@/x\?token=\*\*\*") as e:
                call()
            assert e.value.error_code == "INVALID_PARAMETER_VALUE"
            seen += [str(e.value), repr(e.value)]
    finally:
        failing.stop()
    assert gave_up[0]["response_status"] == 500
    assert refused[0]["response_status"] is None and "token=***" in refused[0]["error"]  # urllib3 named the path
    assert "Failed to test webhook: ConnectionError" in dead_test and "/hook?token=***" in dead_test
    assert "URL refused" in ssrf_test and "non-public IP" in ssrf_test
    records = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert '"POST /hook?token=***&v=1 HTTP/1.1" 500' in records  # urllib3's DEBUG request line, redacted
    text = "\n".join(seen) + records
    for needle in (PASSWORD, TOKEN):
        assert needle not in text
    assert _files_holding(lake, [PASSWORD, TOKEN]) == []


def test_another_process_opens_the_sealed_url_and_its_logs_show_it_redacted(tmp_path, lake_uri, monkeypatch):
    """The URL sealed here (the lake's key file: no key in the environment) is delivered by `lakehouse-jobs
    drain` in another process, at DEBUG level: credentials reach the receiver, its stderr shows them masked."""
    monkeypatch.setenv("LAKEHOUSE_REGISTRY_DISPATCH", "0")  # this process delivers nothing: the drain does
    lake = tmp_path / "lake"
    receiver = PathReceiver()
    dead_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}/hook?token={TOKEN}"
    try:
        client = mlflow.MlflowClient(lake_uri)
        client.create_webhook("live", receiver.url(), events=EVENTS)
        client.create_webhook("dead", dead_url, events=EVENTS)
        client.create_registered_model("m")
        assert receiver.received == []
        env = {**os.environ, "LAKEHOUSE_REGISTRY_DISPATCH": "0", "PYTHONPATH": os.getcwd()}
        p = subprocess.run(
            [sys.executable, "-m", "jobs", "-v", "drain", str(lake)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert len(receiver.received) == 1, (p.returncode, p.stderr[-3000:])
    finally:
        receiver.stop()
    (got,) = receiver.received
    assert got["path"] == f"/hook?token={TOKEN}&v=1"
    assert got["headers"]["Authorization"] == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert '"POST /hook?token=***&v=1 HTTP/1.1" 200' in p.stderr  # urllib3's DEBUG line in that process
    assert "token=***" in p.stdout + p.stderr + str(_rows(str(lake), "webhook_deliveries"))  # the dead one's error
    for needle in (PASSWORD, TOKEN):
        assert needle not in p.stdout + p.stderr
    assert _files_holding(lake, [PASSWORD, TOKEN]) == []


# -- the opt-out and the migration -----------------------------------------------------------------------
def test_opt_out_stores_the_url_as_given(tmp_path, lake_uri, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_SECRETS", "clear")
    url = f"https://{USER}:{PASSWORD}@hooks.example.com/x?token={TOKEN}"
    hook = mlflow.MlflowClient(lake_uri).create_webhook("h", url, events=EVENTS)
    (row,) = _rows(str(tmp_path / "lake"), "webhooks")
    assert row["url"] == url and hook.url == url
    assert not os.path.exists(_secrets.key_path(str(tmp_path / "lake")))


def test_migration_seals_clear_urls_and_removes_the_files_that_held_them(tmp_path, lake_uri, monkeypatch):
    lake = tmp_path / "lake"
    old = f"https://{USER}:{PASSWORD}@hooks.example.com/x?token={TOKEN}"
    new = "https://hooks.example.com/x?sig=sig-url-cred-4c9b"
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_SECRETS", "clear")  # how an older version stored them
    client = mlflow.MlflowClient(lake_uri)
    hook = client.create_webhook("h", old, events=EVENTS)
    client.update_webhook(hook.webhook_id, url=new)  # the old URL stays in a removed file
    kept = client.create_webhook("k", old, events=EVENTS)
    plain = client.create_webhook("p", "https://hooks.example.com/plain", events=EVENTS)
    before = _files_holding(lake, [PASSWORD, TOKEN, "sig-url-cred-4c9b"])
    assert len(before) >= 2
    monkeypatch.delenv("LAKEHOUSE_WEBHOOK_SECRETS")
    assert client.get_webhook(hook.webhook_id).url == new  # the first webhook call seals and vacuums
    assert _files_holding(lake, [PASSWORD, TOKEN, "sig-url-cred-4c9b"]) == []
    assert not any(os.path.exists(p) for p in before)
    rows = {r["webhook_id"]: r for r in _rows(str(lake), "webhooks")}
    assert rows[hook.webhook_id]["url"].startswith("fernet:") and rows[kept.webhook_id]["url"].startswith("fernet:")
    assert rows[plain.webhook_id]["url"] == "https://hooks.example.com/plain"
    assert client.get_webhook(kept.webhook_id).url == old
    lk = open_lake(str(lake))
    assert _secrets.seal_stored_secrets(lk.t, lk.lock, once=False) == {"sealed": 0, "vacuumed": 0}


# -- the Databricks-style client (jobs) ------------------------------------------------------------------
def test_databricks_client_errors_and_reprs_show_the_url_redacted(tmp_path):
    wh = RegistryWebhooksClient(lake=tmp_path / "lake")
    url = f"ftp://{USER}:{PASSWORD}@hooks.example.com/x?token={TOKEN}"
    seen = [repr(HttpUrlSpec(url=url))]
    for spec in ({"url": url}, {"url": url, "bogus": 1}, HttpUrlSpec(url=url)):
        with pytest.raises(InvalidWebhookError) as e:
            wh.create_webhook(["MODEL_VERSION_CREATED"], http_url_spec=spec)
        seen += [str(e.value), repr(e.value)]
    text = "\n".join(seen)
    assert "ftp://***@hooks.example.com/x?token=***" in text
    assert PASSWORD not in text and TOKEN not in text
