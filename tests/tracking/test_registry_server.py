"""`mlflow server --backend-store-uri lakehouse:///...` delivers each registry event to a webhook exactly once.

Two deliverers could fire in the server process: MLflow's own in-process delivery after each REST request
(it asks the store's `list_webhooks_by_event`, which answers nothing on purpose) and the store's outbox
dispatcher. The receiver counts what actually arrives.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import mlflow
import pytest
from _mlflow_server import mlflow_server
from mlflow.entities.webhook import WebhookEvent
from mlflow.webhooks.delivery import _generate_hmac_signature
from test_registry_events import SECRET, Receiver, _rows

pytestmark = pytest.mark.filterwarnings("ignore")

EVENTS = [
    WebhookEvent("registered_model", "created"),
    WebhookEvent("model_version", "created"),
    WebhookEvent("model_version_tag", "set"),
    WebhookEvent("model_version_alias", "created"),
    WebhookEvent("model_version_alias", "deleted"),
]


@pytest.mark.slow
def test_served_lake_delivers_each_webhook_event_exactly_once(tmp_path, lake_uri, monkeypatch):
    # Inherited by the server: webhooks may target http://127.0.0.1, and the dispatcher polls and retries fast.
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("LAKEHOUSE_DISPATCH_POLL_SECONDS", "0.2")
    receiver = Receiver().start()
    with mlflow_server(lake_uri, str(tmp_path / "art")) as served:
        base = served.base
        client = mlflow.MlflowClient(tracking_uri=base, registry_uri=base)
        hook = client.create_webhook("h", receiver.url, events=EVENTS, secret=SECRET)
        assert [w.webhook_id for w in client.list_webhooks()] == [hook.webhook_id]
        client.create_registered_model("churn", tags={"team": "ml"})
        client.create_model_version("churn", "s3://b/1", run_id="r1")
        client.create_model_version("churn", "s3://b/2", run_id="r2")
        client.set_model_version_tag("churn", "2", "validated", "yes")
        client.set_registered_model_alias("churn", "champion", "2")
        client.delete_registered_model_alias("churn", "champion")
        client.transition_model_version_stage("churn", "1", "Staging")  # not subscribed: never delivered
        expected = Counter(
            {
                ("registered_model", "created", "churn", None): 1,
                ("model_version", "created", "churn", "1"): 1,
                ("model_version", "created", "churn", "2"): 1,
                ("model_version_tag", "set", "churn", "2"): 1,
                ("model_version_alias", "created", "churn", "2"): 1,
                ("model_version_alias", "deleted", "churn", None): 1,
            }
        )
        receiver.wait_for(sum(expected.values()), timeout=30)

        # Stragglers: wait until the lake's delivery log is settled (every event's attempt succeeded and no
        # claim is left open), so any second deliverer has had its turn before the count below.
        def settled() -> bool:
            log = [r for r in _rows(tmp_path, "webhook_deliveries") if r["subscriber"] == f"webhook:{hook.webhook_id}"]
            done = {r["event_id"] for r in log if r["status"] == "succeeded"}
            claims = sum(r["status"] == "in_progress" for r in log)
            return len(done) >= sum(expected.values()) and claims == len(log) - claims

        deadline = time.monotonic() + 30
        while not settled():
            assert time.monotonic() < deadline, "the delivery log did not settle in 30 s"
            time.sleep(0.05)
    receiver.stop()
    out = served.log
    got = Counter()
    for r in receiver.received:
        body, h = json.loads(r["body"]), r["headers"]
        assert h["X-MLflow-Signature"] == _generate_hmac_signature(
            SECRET, h["X-MLflow-Delivery-Id"], h["X-MLflow-Timestamp"], r["body"]
        )
        got[(body["entity"], body["action"], body["data"]["name"], body["data"].get("version"))] += 1
    assert got == expected, f"deliveries (event: count), want each exactly once:\n{got}\nserver log:\n{out[-3000:]}"
    assert len({r["headers"]["X-MLflow-Delivery-Id"] for r in receiver.received}) == len(receiver.received)
    # The delivery log in the lake agrees: one successful attempt per (event, webhook).
    log = [r for r in _rows(tmp_path, "webhook_deliveries") if r["subscriber"] == f"webhook:{hook.webhook_id}"]
    done = Counter(r["event_id"] for r in log if r["status"] == "succeeded")
    assert len(done) == sum(expected.values()) and set(done.values()) == {1}, log
