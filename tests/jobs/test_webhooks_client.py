"""Databricks' registry webhooks client on a lake: a course-style job webhook run by a real transition, an
HTTP webhook delivering signed requests to a real local server, list / update / test / delete, bad arguments."""

from __future__ import annotations

import json
import time

import mlflow
import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature
from test_registry_events import Receiver  # tests/tracking's receiver (on the pytest pythonpath)

import jobs
from jobs._webhooks_client import (
    HttpUrlSpec,
    InvalidWebhookError,
    JobSpec,
    RegistryWebhooksClient,
    UnsupportedWebhookEventError,
    WebhookNotFoundError,
)
from jobs.errors import JobsError

pytestmark = pytest.mark.filterwarnings("ignore")
SECRET = "s3cr3t"
JOB = (
    "import json, os\n"
    "def run(event):\n"
    "    with open(os.path.join(os.path.dirname(__file__), 'ran-%s.json' % event['version']), 'w') as fh:\n"
    "        json.dump({'event': event, 'message': json.loads(os.environ['EVENT_MESSAGE'])}, fh)\n"
    "    return 'deployed %s v%s' % (event['name'], event['version'])\n"
)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """The course's setting: MLflow's registry URI names the lake; a job module in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("LAKEHOUSE_DISPATCH_POLL_SECONDS", "0.2")
    (tmp_path / "deploy_job.py").write_text(JOB)
    uri = f"lakehouse://{tmp_path}/lake"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    client.create_registered_model("churn")
    for i in (1, 2):
        client.create_model_version("churn", f"s3://bucket/churn/{i}")
    return tmp_path


def _wait_for_runs(lake, n: int, timeout: float = 120.0) -> list[jobs.JobRun]:
    deadline = time.time() + timeout
    while len(runs := jobs.list_runs(lake)) < n:
        assert time.time() < deadline, f"{len(runs)} of {n} job runs after {timeout} s: {runs}"
        time.sleep(0.1)
    return runs


def test_course_job_webhook_runs_the_job_on_a_transition_to_production(registry):
    lake = registry / "lake"
    hook = RegistryWebhooksClient().create_webhook(
        model_name="churn",
        events=["MODEL_VERSION_TRANSITIONED_STAGE"],
        job_spec={"job_id": "deploy_job:run", "access_token": "dapi-not-kept", "workspace_url": "https://x.cloud"},
        description="deploy on Production",
        target_stage="Production",
    )
    assert (hook.model_name, hook.status, hook.target_stage) == ("churn", "ACTIVE", "Production")
    assert hook.job_spec.callable == "deploy_job:run" and hook.job_spec.access_token is None
    client = mlflow.MlflowClient()
    client.transition_model_version_stage("churn", 1, "Staging")  # not Production: no run
    client.transition_model_version_stage("churn", 2, "Production")
    (run,) = _wait_for_runs(lake, 1)
    assert (run.status, run.exit_code, run.version, run.stage) == ("succeeded", 0, "2", "Production"), run.output
    assert "deployed churn v2" in run.output
    ran = json.loads((registry / "ran-2.json").read_text())
    assert ran["event"]["payload"] == {
        "name": "churn",
        "version": "2",
        "from_stage": "None",
        "to_stage": "Production",
        "archived_versions": [],
    }
    message = ran["message"]
    assert {k: message[k] for k in ("event", "webhook_id", "model_name", "version", "from_stage", "to_stage")} == {
        "event": "MODEL_VERSION_TRANSITIONED_STAGE",
        "webhook_id": hook.id,
        "model_name": "churn",
        "version": "2",
        "from_stage": "None",
        "to_stage": "Production",
    }
    assert not (registry / "ran-1.json").exists()
    (trigger,) = jobs.list_triggers(lake)
    assert trigger.stage == "Production" and trigger.name == f"registry-webhook:{hook.id}"
    assert "dapi-not-kept" not in json.dumps(trigger.command)  # the access token is never stored
    assert RegistryWebhooksClient().list_webhooks(model_name="churn") == [hook]


def test_http_webhook_delivers_signed_requests_to_a_local_server(registry):
    receiver = Receiver().start()
    try:
        webhooks = RegistryWebhooksClient(lake=registry / "lake")
        hook = webhooks.create_webhook(
            events=["MODEL_VERSION_CREATED", "REGISTERED_MODEL_CREATED"],
            http_url_spec=HttpUrlSpec(url=receiver.url, secret=SECRET),
            description="notify",
        )
        assert hook.http_url_spec == HttpUrlSpec(url=receiver.url)  # the secret is not returned
        mlflow.MlflowClient().create_model_version("churn", "s3://bucket/churn/3", run_id="r3")
        receiver.wait_for(1)
        (got,) = receiver.received
        h = got["headers"]
        assert h["X-MLflow-Signature"] == _generate_hmac_signature(
            SECRET, h["X-MLflow-Delivery-Id"], h["X-MLflow-Timestamp"], got["body"]
        )
        body = json.loads(got["body"])
        assert (body["entity"], body["action"]) == ("model_version", "created")
        assert (body["data"]["name"], body["data"]["version"], body["data"]["run_id"]) == ("churn", "3", "r3")
        answer = webhooks.test_webhook(id=hook.id, event="REGISTERED_MODEL_CREATED")
        assert (answer.status_code, answer.body) == (200, "ok")
        receiver.wait_for(2)
        assert json.loads(receiver.received[1]["body"])["entity"] == "registered_model"
        assert [w.id for w in webhooks.list_webhooks(events=["REGISTERED_MODEL_CREATED"])] == [hook.id]
        webhooks.delete_webhook(id=hook.id)
        assert webhooks.list_webhooks() == []
        mlflow.MlflowClient().create_model_version("churn", "s3://bucket/churn/4")
        jobs.drain(registry / "lake")  # every due delivery made: none is due to the deleted webhook
        assert len(receiver.received) == 2
    finally:
        receiver.stop()


def test_list_update_test_and_delete(registry):
    lake = registry / "lake"
    webhooks = RegistryWebhooksClient()
    staged = webhooks.create_webhook(
        events=["MODEL_VERSION_TRANSITIONED_TO_STAGING", "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"],
        job_spec=JobSpec(job_id="123", access_token="t", callable="deploy_job:run"),
        model_name="churn",
        status="TEST_MODE",
    )
    anywhere = webhooks.create_webhook(
        events=["MODEL_VERSION_TRANSITIONED_STAGE"], job_spec={"command": ["true"]}, model_name="other"
    )
    http = webhooks.create_webhook(events=["MODEL_VERSION_TAG_SET"], http_url_spec={"url": "https://example.com/h"})
    assert sorted(t.stage for t in jobs.list_triggers(lake) if t.model_name == "churn") == ["Archived", "Staging"]
    assert sorted(t.stage for t in jobs.list_triggers(lake) if t.model_name == "other") == [
        "Archived",
        "None",
        "Production",
        "Staging",
    ]
    assert [w.id for w in webhooks.list_webhooks()] == [http.id, anywhere.id, staged.id]  # newest first
    assert [w.id for w in webhooks.list_webhooks(model_name="churn")] == [staged.id]
    assert [w.id for w in webhooks.list_webhooks(events=["MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"])] == [staged.id]
    assert [w.status for w in webhooks.list_webhooks(max_results=2)] == ["ACTIVE", "ACTIVE"]

    # TEST_MODE: a real transition runs nothing but a "skipped" exit 0; test_webhook runs the job.
    mlflow.MlflowClient().transition_model_version_stage("churn", 1, "Staging")
    (skipped,) = _wait_for_runs(lake, 1)
    assert skipped.exit_code == 0 and f"skipped: registry webhook {staged.id} is TEST_MODE" in skipped.output
    assert not (registry / "ran-1.json").exists()
    answer = webhooks.test_webhook(id=staged.id)
    assert answer.status_code == 200 and "deployed churn vNone" in answer.body

    live = webhooks.update_webhook(id=staged.id, events=["MODEL_VERSION_TRANSITIONED_TO_STAGING"])  # ACTIVE
    assert (live.id, live.status, live.events) == (staged.id, "ACTIVE", ["MODEL_VERSION_TRANSITIONED_TO_STAGING"])
    assert live.creation_timestamp == staged.creation_timestamp
    assert [t.stage for t in jobs.list_triggers(lake) if t.model_name == "churn"] == ["Staging"]
    mlflow.MlflowClient().transition_model_version_stage("churn", 2, "Staging")
    runs = _wait_for_runs(lake, 2)
    assert runs[-1].exit_code == 0 and "deployed churn v2" in runs[-1].output

    with pytest.raises(WebhookNotFoundError) as info:
        webhooks.delete_webhook(id="nope")
    assert set(info.value.live) == {staged.id, anywhere.id, http.id} and "nope" in str(info.value)
    for hook in (staged, anywhere, http):
        webhooks.delete_webhook(id=hook.id)
    assert webhooks.list_webhooks() == [] and jobs.list_triggers(lake) == []
    assert len(jobs.list_runs(lake)) == 2  # past runs stay recorded


HOOK = {"events": ["MODEL_VERSION_TRANSITIONED_STAGE"], "model_name": "churn", "job_spec": {"callable": "a:b"}}
URL = {"url": "https://example.com/hook"}


@pytest.mark.parametrize(
    ("change", "argument", "named"),
    [
        ({"events": ["MODEL_VERSION_DELETED"]}, "events", "MODEL_VERSION_DELETED"),
        ({"events": "MODEL_VERSION_CREATED"}, "events", "non-empty list"),
        ({"events": ["MODEL_VERSION_CREATED"]}, "events", "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"),
        ({"events": ["TRANSITION_REQUEST_CREATED"]}, "events", "no transition requests"),
        ({"job_spec": {"job_id": "123", "access_token": "t"}}, "job_spec", "callable='package.module:function'"),
        ({"job_spec": {"callable": "a:b", "notebook": "x"}}, "job_spec", "notebook"),
        ({"job_spec": {"callable": "a.b"}}, "job_spec.callable", "package.module:function"),
        ({"job_spec": {"command": []}}, "job_spec.command", "non-empty"),
        ({"model_name": None}, "model_name", "watches one model"),
        ({"target_stage": "Prod"}, "target_stage", "Production"),
        ({"events": ["MODEL_VERSION_TRANSITIONED_TO_STAGING"], "target_stage": "Production"}, "target_stage", "Staging"),
        ({"status": "PAUSED"}, "status", "TEST_MODE"),
        ({"http_url_spec": URL}, "http_url_spec/job_spec", "exactly one"),
        ({"job_spec": None}, "http_url_spec/job_spec", "exactly one"),
        ({"job_spec": None, "http_url_spec": URL}, "events", "MODEL_VERSION_CREATED"),
        ({"job_spec": None, "http_url_spec": URL, "events": ["MODEL_VERSION_CREATED"]}, "model_name", "registry-wide"),
        (
            {"job_spec": None, "model_name": None, "events": ["MODEL_VERSION_CREATED"], "http_url_spec": {**URL, "authorization": "Bearer x"}},
            "http_url_spec.authorization",
            "X-MLflow-Signature",
        ),
        (
            {"job_spec": None, "model_name": None, "events": ["MODEL_VERSION_CREATED"], "http_url_spec": {**URL, "enable_ssl_verification": False}},
            "http_url_spec.enable_ssl_verification",
            "True",
        ),
        (
            {"job_spec": None, "model_name": None, "events": ["MODEL_VERSION_CREATED"], "http_url_spec": {"url": "ftp://x"}},
            "http_url_spec",
            "ftp://x",
        ),
    ],
)  # fmt: skip
def test_bad_arguments_are_named_and_nothing_is_written(registry, change, argument, named):
    webhooks = RegistryWebhooksClient()
    with pytest.raises(InvalidWebhookError) as info:
        webhooks.create_webhook(**{**HOOK, **change})
    assert info.value.argument == argument and named in str(info.value), str(info.value)
    assert isinstance(info.value, JobsError) and isinstance(info.value, ValueError)
    assert "Nothing was written" in str(info.value)
    assert webhooks.list_webhooks() == [] and jobs.list_triggers(registry / "lake") == []


def test_unsupported_events_name_themselves_and_the_supported_list(registry):
    with pytest.raises(UnsupportedWebhookEventError) as info:
        RegistryWebhooksClient().create_webhook(
            events=["COMMENT_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"], http_url_spec=URL
        )
    assert info.value.events == ("COMMENT_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE")
    assert info.value.supported == ("MODEL_VERSION_CREATED", "REGISTERED_MODEL_CREATED", "MODEL_VERSION_TAG_SET")


def test_a_registry_that_is_not_a_lake_is_refused(monkeypatch):
    with pytest.raises(InvalidWebhookError, match="lakehouse:///<lake> registry URI") as info:
        RegistryWebhooksClient("databricks")
    assert info.value.argument == "registry_uri"
