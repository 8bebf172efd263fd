"""Webhook secrets never in clear (issue 16): sealed at rest by default with one key per lake (the environment's,
or a 0600 key file that racing processes create once), a documented opt-out, the migration of secrets stored
in clear (rewritten and vacuumed), and a grep of every file, log line and error for the secret's bytes."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time

import mlflow
import pytest
from cryptography.fernet import Fernet
from mlflow.entities.webhook import WebhookEvent
from mlflow.exceptions import MlflowException
from mlflow.webhooks.delivery import _generate_hmac_signature
from test_webhook_delivery import Receiver, _free_port, _rows, _wait_rows

import jobs
from jobs._webhooks_client import HttpUrlSpec, InvalidWebhookError, RegistryWebhooksClient
from tracking import _secrets

pytestmark = pytest.mark.filterwarnings("ignore")
WORKER = os.path.join(os.path.dirname(__file__), "_webhook_worker.py")
KEY_VAR = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"


@pytest.fixture(autouse=True)
def local_delivery(monkeypatch):
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("LAKEHOUSE_DISPATCH_POLL_SECONDS", "0.1")
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "0.1")
    monkeypatch.delenv(KEY_VAR, raising=False)
    monkeypatch.delenv("LAKEHOUSE_WEBHOOK_SECRETS", raising=False)
    monkeypatch.setattr(_secrets, "_file_keys", {})  # each test's lake reads its own key file afresh
    monkeypatch.setattr(_secrets, "_migrated", set())


def _files_holding(top, needles: list[bytes]) -> list[str]:
    """Every file under `top` whose bytes contain any needle (the independent check: plain grep)."""
    hits = []
    for folder, _, names in os.walk(top):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                data = fh.read()
            if any(n in data for n in needles):
                hits.append(path)
    return hits


def test_racing_processes_create_one_key_file_owner_only(tmp_path, trials):
    root = str(tmp_path / "lake")
    os.makedirs(root)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop(KEY_VAR, None)
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "seal", root, str(go)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(trials(2, 6))
    ]
    for p in procs:  # all imported and waiting: then they race
        assert p.stdout.readline().strip() == b"ready", p.stderr.read().decode()[-3000:]
    go.write_text("go")
    tokens = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-3000:]
        tokens.append(out.decode().strip())
    path = _secrets.key_path(root)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert sorted(os.listdir(os.path.dirname(path))) == [_secrets.KEY_FILE]  # no temporary file left
    with open(path, "rb") as fh:
        key = Fernet(fh.read().strip())
    for t in tokens:  # every process sealed with the one key that is on disk
        assert t.startswith("fernet:") and key.decrypt(t[len("fernet:") :].encode()) == b"race"


def test_secrets_are_sealed_by_default_and_sign_deliveries(tmp_path, lake_uri):
    """No key in the environment: the lake's key file seals the secret (no file holds it in clear), and the
    dispatcher opens it to sign (other processes open it too: see the race test above)."""
    secret = "sealed-by-default-91c2"
    receiver = Receiver()
    try:
        client = mlflow.MlflowClient(lake_uri)
        events = [WebhookEvent("model_version", "created")]
        hook = client.create_webhook("h", receiver.url, events=events, secret=secret)
        assert hook.secret == secret and client.get_webhook(hook.webhook_id).secret == secret
        assert os.path.exists(_secrets.key_path(str(tmp_path / "lake")))
        client.create_registered_model("m")
        client.create_model_version("m", "s3://b/1")
        receiver.wait_for(1)
    finally:
        receiver.stop()
    assert _files_holding(tmp_path / "lake", [secret.encode()]) == []
    (row,) = _rows(str(tmp_path / "lake"), "webhooks")
    assert row["secret"].startswith("fernet:")
    h = receiver.received[0]["headers"]
    assert h["X-MLflow-Signature"] == _generate_hmac_signature(
        secret, h["X-MLflow-Delivery-Id"], h["X-MLflow-Timestamp"], receiver.received[0]["body"]
    )


def test_key_from_the_environment_then_a_process_without_it_gets_a_clear_error(tmp_path, lake_uri, monkeypatch):
    secret = "env-key-secret-55e1"
    monkeypatch.setenv(KEY_VAR, Fernet.generate_key().decode())
    client = mlflow.MlflowClient(lake_uri)
    hook = client.create_webhook(
        "h", "https://example.com/x", events=[WebhookEvent("model_version", "created")], secret=secret
    )
    assert not os.path.exists(_secrets.key_path(str(tmp_path / "lake")))  # the environment's key: no file
    assert _files_holding(tmp_path / "lake", [secret.encode()]) == []
    monkeypatch.delenv(KEY_VAR)
    with pytest.raises(MlflowException, match=f"set {KEY_VAR} to the key it was sealed with") as e:
        client.get_webhook(hook.webhook_id)
    assert secret not in str(e.value)
    monkeypatch.setenv(KEY_VAR, Fernet.generate_key().decode())  # another key
    with pytest.raises(MlflowException, match="sealed with another key") as e:
        client.get_webhook(hook.webhook_id)
    monkeypatch.setenv(KEY_VAR, "not-a-key")
    with pytest.raises(MlflowException, match="is not a Fernet key"):
        client.create_webhook(
            "h2", "https://example.com/x", events=[WebhookEvent("model_version", "created")], secret="x"
        )
    assert len(_rows(str(tmp_path / "lake"), "webhooks")) == 1  # nothing written


def test_a_key_file_others_can_read_is_refused(tmp_path, lake_uri):
    client = mlflow.MlflowClient(lake_uri)
    events = [WebhookEvent("model_version", "created")]
    hook = client.create_webhook("h", "https://example.com/x", events=events, secret="perm-secret-0a1b")
    path = _secrets.key_path(str(tmp_path / "lake"))
    os.chmod(path, 0o644)
    _secrets._file_keys.clear()  # as a new process would
    with pytest.raises(MlflowException, match=f"chmod 600 {path}"):
        client.get_webhook(hook.webhook_id)


def test_opt_out_stores_as_given(tmp_path, lake_uri, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_SECRETS", "clear")
    secret = "opted-out-secret-3c4d"
    client = mlflow.MlflowClient(lake_uri)
    client.create_webhook(
        "h", "https://example.com/x", events=[WebhookEvent("model_version", "created")], secret=secret
    )
    assert _files_holding(tmp_path / "lake", [secret.encode()])  # explicit opt-out: in clear, as documented
    assert not os.path.exists(_secrets.key_path(str(tmp_path / "lake")))


def test_migration_seals_clear_secrets_and_vacuums_their_files(tmp_path, lake_uri, monkeypatch):
    old, new = "clear-old-secret-6e7f", "clear-new-secret-8a9b"
    events = [WebhookEvent("model_version", "created")]
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_SECRETS", "clear")  # how an older version stored them
    client = mlflow.MlflowClient(lake_uri)
    hook = client.create_webhook("h", "https://example.com/x", events=events, secret=old)
    client.update_webhook(hook.webhook_id, secret=new)  # the old value stays in a removed file
    other = client.create_webhook("g", "https://example.com/y", events=events)  # no secret
    lake = tmp_path / "lake"
    assert len(_files_holding(lake, [old.encode(), new.encode()])) >= 2
    monkeypatch.delenv("LAKEHOUSE_WEBHOOK_SECRETS")
    assert client.get_webhook(hook.webhook_id).secret == new  # the first webhook call seals and vacuums
    assert _files_holding(lake, [old.encode(), new.encode()]) == []
    rows = {r["webhook_id"]: r for r in _rows(str(lake), "webhooks")}
    assert rows[hook.webhook_id]["secret"].startswith("fernet:") and rows[other.webhook_id]["secret"] is None
    assert client.get_webhook(other.webhook_id).secret is None
    # Idempotent: a second pass finds nothing.
    lk = __import__("tracking._registry_tables", fromlist=["open_lake"]).open_lake(str(lake))
    assert _secrets.seal_stored_secrets(lk.t, lk.lock, once=False) == {"sealed": 0, "vacuumed": 0}


def test_no_secret_in_any_file_log_or_error(tmp_path, lake_uri, monkeypatch, caplog):
    """Webhooks with distinctive secrets, deliveries that fail every way, bad input naming the secrets: then
    grep every file under the test's folder, the captured logs, the errors and the reprs for them."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES", "1")
    monkeypatch.chdir(tmp_path)
    s_mlflow, s_http, s_token = "grep-me-mlflow-5d1e", "grep-me-http-7c2f", "grep-me-token-9b3a"
    needles = [s.encode() for s in (s_mlflow, s_http, s_token)]
    lake = tmp_path / "lake"
    failing = Receiver([(500, {}), (500, {}), (429, {"Retry-After": "0"}), (503, {})])
    seen: list[str] = []
    try:
        client = mlflow.MlflowClient(lake_uri)
        events = [WebhookEvent("registered_model", "created"), WebhookEvent("model_version", "created")]
        h1 = client.create_webhook("failing", failing.url, events=events, secret=s_mlflow)
        dead = client.create_webhook("dead", f"http://127.0.0.1:{_free_port()}/x", events=events, secret=s_mlflow)
        wh = RegistryWebhooksClient(lake=lake)
        h2 = wh.create_webhook(["MODEL_VERSION_CREATED"], http_url_spec=HttpUrlSpec(failing.url, secret=s_http))
        (tmp_path / "job_mod.py").write_text("def run(event):\n    raise RuntimeError('job failed')\n")
        h3 = wh.create_webhook(
            ["MODEL_VERSION_TRANSITIONED_STAGE"],
            job_spec={"callable": "job_mod:run", "access_token": s_token},
            model_name="m",
        )
        seen += [repr(h) for h in (h1, dead, h2, h3)] + [repr(w) for w in wh.list_webhooks()]
        seen += [repr(client.get_webhook(h1.webhook_id)), str(client.list_webhooks())]
        # Bad input carrying the secrets: refused, and the error does not repeat them.
        bad = [
            lambda: wh.create_webhook(
                ["MODEL_VERSION_CREATED"], http_url_spec={"url": failing.url, "secret": s_http, "bogus": 1}
            ),
            lambda: wh.create_webhook(
                ["MODEL_VERSION_CREATED"],
                http_url_spec={"url": failing.url, "secret": s_http},
                job_spec={"callable": "a:b", "access_token": s_token},
            ),
            lambda: wh.create_webhook(
                ["MODEL_VERSION_TRANSITIONED_STAGE"],
                job_spec={"callable": "a:b", "access_token": s_token, "nope": 1},
                model_name="m",
            ),
            lambda: wh.create_webhook(
                ["MODEL_VERSION_CREATED"], http_url_spec=HttpUrlSpec(failing.url, secret=s_http, authorization=s_token)
            ),
        ]
        for call in bad:
            with pytest.raises(InvalidWebhookError) as e:
                call()
            seen += [str(e.value), repr(e.value), repr(e.value.value)]
        client.create_registered_model("m")
        client.create_model_version("m", "s3://b/1")
        client.transition_model_version_stage("m", 1, "Staging")
        # The failing receiver: 500, 500 (gave up), 429, 503, then 200; the dead one: refused until it gives up.
        _wait_rows(str(lake), "webhook_deliveries", lambda r: r["status"] == "gave_up", timeout=30)
        deadline = time.time() + 60
        while not jobs.list_runs(lake):
            assert time.time() < deadline
            time.sleep(0.1)
        seen += [repr(r) for r in jobs.list_runs(lake)] + [repr(t) for t in jobs.list_triggers(lake)]
        seen.append(str(jobs.drain(lake)))
        seen.append(repr(client.test_webhook(dead.webhook_id)))
        seen.append(repr(wh.test_webhook(h2.id)))
    finally:
        failing.stop()
    assert len(failing.received) >= 3  # deliveries did run and fail
    statuses = {r["status"] for r in _rows(str(lake), "webhook_deliveries")}
    assert {"failed", "gave_up"} <= statuses
    assert _files_holding(tmp_path, needles) == []
    text = "\n".join(seen) + "\n".join(r.getMessage() + str(r.exc_info) + (r.exc_text or "") for r in caplog.records)
    text += caplog.text
    for s in (s_mlflow, s_http, s_token):
        assert s not in text
    assert caplog.records  # the logs were captured (delivery failures are logged)
