"""Databricks' registry webhooks client (`databricks-registry-webhooks`) on a lake's registry.

Code written for Databricks runs with its import changed::

    from jobs._webhooks_client import RegistryWebhooksClient, JobSpec, HttpUrlSpec   # was databricks_registry_webhooks
    RegistryWebhooksClient().create_webhook(
        model_name="churn", events=["MODEL_VERSION_TRANSITIONED_STAGE"], target_stage="Production",
        job_spec={"callable": "my_jobs:deploy"})                      # or JobSpec(job_id="my_jobs:deploy", ...)

The registry is the MLflow registry URI (`lakehouse:///<lake>`) or `lake=`. A webhook maps onto what exists:

* `job_spec` -> `jobs` triggers of `model_name`, one per stage its events name (all four stages for
  MODEL_VERSION_TRANSITIONED_STAGE without `target_stage`). A Databricks job id means nothing locally: the
  spec names `callable` ("package.module:function", called with the registry event) or `command` (argv), or
  a `job_id` that is itself "package.module:function". `access_token` and `workspace_url` are accepted and
  never stored. The job also gets Databricks' payload as JSON in `EVENT_MESSAGE`. The webhook's facts ride in
  its triggers' command (`run_job`'s argument), so `jobs.list_triggers` shows them as triggers named
  `registry-webhook:<id>`. A DISABLED / TEST_MODE job webhook keeps its triggers and its job exits 0 at once
  ("skipped"), recorded as such in `mlflow.job_runs`.
* `http_url_spec` -> an MLflow webhook of the lake (`MlflowClient.create_webhook`): POSTed with MLflow's
  payload, `X-MLflow-Signature` HMAC keyed by `secret`, and retries. The secret is sealed at rest with the
  lake's key (`tracking` seals every webhook secret) and never shown: not in what this client returns, nor in
  an error about a spec. Private and loopback URLs are refused as MLflow refuses them (its message). MLflow webhooks are registry-wide and
  see only MODEL_VERSION_CREATED, REGISTERED_MODEL_CREATED and MODEL_VERSION_TAG_SET; TEST_MODE is stored as
  MLflow's DISABLED (only `test_webhook` sends), and lists as DISABLED.

What has no equivalent is refused before anything is written, naming the argument and what is supported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.entities.model_registry.model_version_stages import ALL_STAGES, get_canonical_stage
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException

from lakehouse import is_object_store
from tracking import SCHEME, STAGE_TRANSITIONED, lake_root_from_uri, lake_uri, redact_url

from ._triggers import OUTPUT_TAIL, Trigger, create_trigger, delete_trigger, list_triggers
from .errors import InvalidWebhookError, UnsupportedWebhookEventError, WebhookNotFoundError

__all__ = [
    "HttpUrlSpec",
    "InvalidWebhookError",
    "JobSpec",
    "RegistryWebhook",
    "RegistryWebhooksClient",
    "TestWebhookResponse",
    "UnsupportedWebhookEventError",
    "WebhookNotFoundError",
]

ALL_EVENTS = (
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "TRANSITION_REQUEST_CREATED",
    "COMMENT_CREATED",
    "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
)
"""Databricks' registry webhook events."""
JOB_EVENTS: dict[str, tuple[str, ...]] = {
    "MODEL_VERSION_TRANSITIONED_STAGE": tuple(ALL_STAGES),
    "MODEL_VERSION_TRANSITIONED_TO_STAGING": ("Staging",),
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION": ("Production",),
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED": ("Archived",),
}
"""Events a job_spec webhook can run on (local triggers watch stage transitions), with the stages each means."""
HTTP_EVENTS: dict[str, str] = {
    "MODEL_VERSION_CREATED": "model_version.created",
    "REGISTERED_MODEL_CREATED": "registered_model.created",
    "MODEL_VERSION_TAG_SET": "model_version_tag.set",
}
"""Events an http_url_spec webhook can send, with the MLflow webhook event each becomes."""
STATUSES = ("ACTIVE", "DISABLED", "TEST_MODE")
_PREFIX = "registry-webhook:"
_RUN = "import sys; from jobs._webhooks_client import run_job; run_job(sys.argv[1])"
_TEST_ENV = "LAKEHOUSE_WEBHOOK_TEST"


# -- Databricks' entities ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    """What a job webhook runs: Databricks' `JobSpec(job_id, access_token, workspace_url)` plus the local job.

    Locally a job is `callable` ("package.module:function", called with the registry event dict) or
    `command` (argv, no shell); a `job_id` of the form "package.module:function" is taken as `callable`.
    `access_token` is never stored or returned (as on Databricks).
    """

    job_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    workspace_url: str | None = None
    callable: str | None = None
    command: tuple[str, ...] | None = None
    timeout_seconds: int = 3600


@dataclass(frozen=True)
class HttpUrlSpec:
    """Where an HTTP webhook POSTs: Databricks' `HttpUrlSpec(url, secret, authorization, enable_ssl_verification)`.

    `secret` keys MLflow's `X-MLflow-Signature` HMAC; it is not returned when listing.
    """

    url: str
    secret: str | None = field(default=None, repr=False)
    authorization: str | None = field(default=None, repr=False)
    enable_ssl_verification: bool = True

    def __repr__(self) -> str:  # the URL's credentials (userinfo, a token in the query) masked
        return f"HttpUrlSpec(url={redact_url(self.url)!r}, enable_ssl_verification={self.enable_ssl_verification})"


@dataclass(frozen=True)
class RegistryWebhook:
    """A registry webhook as Databricks' client returns it (timestamps: epoch ms, UTC)."""

    id: str
    events: list[str]
    creation_timestamp: int
    last_updated_timestamp: int
    status: str
    http_url_spec: HttpUrlSpec | None = None
    job_spec: JobSpec | None = None
    model_name: str | None = None
    description: str | None = None
    target_stage: str | None = None


@dataclass(frozen=True)
class TestWebhookResponse:
    """The answer to `test_webhook`: the receiver's HTTP status and body, or 200/500 and the job's output."""

    __test__ = False  # not a pytest test class

    status_code: int
    body: str


# -- argument checks --------------------------------------------------------------------------------------
_CREDENTIALS = frozenset({"secret", "authorization", "access_token"})


def _shown(spec: Any) -> Any:
    """What an error may show of a spec argument: never its credentials (a spec's own repr hides them)."""
    if isinstance(spec, Mapping):
        return {
            k: "<hidden>"
            if k in _CREDENTIALS and v is not None
            else redact_url(v)
            if k == "url" and isinstance(v, str)
            else v
            for k, v in spec.items()
        }
    if isinstance(spec, HttpUrlSpec | JobSpec) or spec is None:
        return spec
    return f"<{type(spec).__name__}>"


def _job_spec(spec: Any) -> JobSpec:
    if isinstance(spec, Mapping):
        allowed = {"job_id", "access_token", "workspace_url", "callable", "command", "timeout_seconds"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise InvalidWebhookError("job_spec", _shown(spec), f"keys among {sorted(allowed)} (unknown: {unknown})")
        command = spec.get("command")
        spec = JobSpec(**{**spec, "command": tuple(command) if isinstance(command, list | tuple) else command})
    if not isinstance(spec, JobSpec):
        raise InvalidWebhookError("job_spec", spec, "a JobSpec or a dict with 'callable' or 'command'")
    target = spec.callable
    if target is None and spec.command is None and isinstance(spec.job_id, str) and ":" in spec.job_id:
        target = spec.job_id
    if (target is None) == (spec.command is None):
        raise InvalidWebhookError(
            "job_spec",
            spec,
            "a local job spec names exactly one of callable='package.module:function' (called with the registry "
            "event) or command=['python', 'job.py'] (a Databricks job_id means nothing on a lake, unless it is "
            "itself 'package.module:function')",
        )
    if target is not None and (not isinstance(target, str) or not all(p.strip() for p in target.partition(":")[::2])):
        raise InvalidWebhookError("job_spec.callable", target, "a string like 'package.module:function'")
    if spec.command is not None and (
        isinstance(spec.command, str) or not spec.command or not all(isinstance(a, str) for a in spec.command)
    ):
        raise InvalidWebhookError("job_spec.command", spec.command, "a non-empty list of strings")
    t = spec.timeout_seconds
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise InvalidWebhookError("job_spec.timeout_seconds", t, "a positive whole number of seconds")
    return JobSpec(
        job_id=spec.job_id, workspace_url=spec.workspace_url, callable=target, command=spec.command, timeout_seconds=t
    )


def _http_spec(spec: Any) -> HttpUrlSpec:
    if isinstance(spec, Mapping):
        allowed = {"url", "secret", "authorization", "enable_ssl_verification"}
        unknown = sorted(set(spec) - allowed)
        if unknown or "url" not in spec:
            raise InvalidWebhookError(
                "http_url_spec", _shown(spec), f"a dict with 'url' and optional keys {sorted(allowed)}"
            )
        spec = HttpUrlSpec(**spec)
    if not isinstance(spec, HttpUrlSpec):
        raise InvalidWebhookError("http_url_spec", _shown(spec), "an HttpUrlSpec or a dict with 'url'")
    if spec.authorization is not None:
        raise InvalidWebhookError(
            "http_url_spec.authorization",
            "<hidden>",
            "None: MLflow webhooks send no Authorization header; pass secret= and check the X-MLflow-Signature "
            "HMAC (mlflow.webhooks) at the receiver",
        )
    if spec.enable_ssl_verification is not True:
        raise InvalidWebhookError(
            "http_url_spec.enable_ssl_verification", spec.enable_ssl_verification, "True (MLflow always verifies)"
        )
    return spec


def _events(events: Any) -> list[str]:
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise InvalidWebhookError("events", events, f"a non-empty list of events among {list(ALL_EVENTS)}")
    unknown = [e for e in events if e not in ALL_EVENTS]
    if unknown:
        raise UnsupportedWebhookEventError(unknown, ALL_EVENTS, "registry", "these are not Databricks event names")
    return list(dict.fromkeys(events))


def _status(status: Any) -> str:
    if status not in STATUSES:
        raise InvalidWebhookError("status", status, f"one of {list(STATUSES)}")
    return str(status)


def _stages(events: list[str], target_stage: str | None) -> list[str]:
    """The stages a job webhook watches: its events' stages, narrowed to `target_stage`."""
    unsupported = [e for e in events if e not in JOB_EVENTS]
    if unsupported:
        raise UnsupportedWebhookEventError(
            unsupported,
            list(JOB_EVENTS),
            "job_spec",
            "local job triggers run on stage transitions (no transition requests or comments exist in MLflow; "
            "for MODEL_VERSION_CREATED, REGISTERED_MODEL_CREATED or MODEL_VERSION_TAG_SET use http_url_spec)",
        )
    stages = list(dict.fromkeys(s for e in events for s in JOB_EVENTS[e]))
    if target_stage is None:
        return stages
    if target_stage not in stages:
        raise InvalidWebhookError("target_stage", target_stage, f"a stage the events {events} transition to: {stages}")
    return [target_stage]


def _target_stage(target_stage: Any) -> str | None:
    if target_stage is None:
        return None
    try:
        return get_canonical_stage(target_stage)
    except (MlflowException, AttributeError):
        raise InvalidWebhookError("target_stage", target_stage, f"None or one of {list(ALL_STAGES)}") from None


# -- the client -------------------------------------------------------------------------------------------
def _to_mlflow(event: str) -> WebhookEvent:
    entity, action = HTTP_EVENTS[event].split(".")
    return WebhookEvent(entity, action)


def _mlflow_event_name(e: WebhookEvent) -> str:
    name = f"{e.entity.value}.{e.action.value}"
    return next((k for k, v in HTTP_EVENTS.items() if v == name), name)


class RegistryWebhooksClient:
    """Databricks' `RegistryWebhooksClient` over the registry of a lake (see the module docstring for the mapping).

    Args:
        registry_uri: a `lakehouse:///<lake>` URI; None takes MLflow's registry URI (`mlflow.set_registry_uri`).
        lake: the lake root path instead of a URI.
    """

    def __init__(self, registry_uri: str | None = None, *, lake: str | os.PathLike | None = None) -> None:
        if lake is not None:
            root = os.fspath(lake)
            if root.startswith(f"{SCHEME}:"):
                root = lake_root_from_uri(root)
            elif not is_object_store(root):
                root = os.path.abspath(root)
        else:
            uri = registry_uri if registry_uri is not None else mlflow.get_registry_uri()
            if not isinstance(uri, str) or not uri.startswith(f"{SCHEME}:"):
                raise InvalidWebhookError(
                    "registry_uri",
                    uri,
                    f"a {SCHEME}:///<lake> registry URI (mlflow.set_registry_uri(...)) or lake=<lake root>; "
                    "'databricks' is Databricks' own registry",
                )
            root = lake_root_from_uri(uri)
        self.lake = root
        uri = lake_uri(root)
        self._mlflow = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    # -- create ---------------------------------------------------------------------------------------------
    def create_webhook(
        self,
        events: list[str],
        http_url_spec: HttpUrlSpec | Mapping[str, Any] | None = None,
        job_spec: JobSpec | Mapping[str, Any] | None = None,
        model_name: str | None = None,
        description: str | None = None,
        status: str = "ACTIVE",
        *,
        name: str | None = None,
        target_stage: str | None = None,
    ) -> RegistryWebhook:
        """Create a webhook: exactly one of `http_url_spec` / `job_spec` (objects or Databricks' REST dicts).

        `target_stage` (not in Databricks' API) narrows stage-transition events to one stage; `name` names the
        MLflow webhook of an http_url_spec (default "registry-webhook").

        Raises:
            InvalidWebhookError / UnsupportedWebhookEventError (nothing written).
        """
        events = _events(events)
        status = _status(status)
        stage = _target_stage(target_stage)
        if (http_url_spec is None) == (job_spec is None):
            raise InvalidWebhookError(
                "http_url_spec/job_spec",
                (_shown(http_url_spec), _shown(job_spec)),
                "exactly one of http_url_spec or job_spec",
            )
        if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
            raise InvalidWebhookError("model_name", model_name, "None (registry-wide) or a registered model's name")
        if description is not None and not isinstance(description, str):
            raise InvalidWebhookError("description", description, "None or a string")
        now = int(time.time() * 1000)
        if job_spec is not None:
            spec = _job_spec(job_spec)
            if model_name is None:
                raise InvalidWebhookError(
                    "model_name", None, "a registered model's name: a job webhook on a lake watches one model"
                )
            stages = _stages(events, stage)
            facts = {
                "id": uuid.uuid4().hex,
                "events": events,
                "status": status,
                "description": description,
                "target_stage": stage,
                "model_name": model_name,
                "job": {k: v for k, v in vars(spec).items() if k != "access_token"},
                "creation_timestamp": now,
                "last_updated_timestamp": now,
            }
            self._arm(facts, stages)
            return _job_webhook(facts)
        http = _http_spec(http_url_spec)
        return self._create_http(events, http, model_name, description, status, stage, name)

    def _create_http(self, events, http, model_name, description, status, stage, name) -> RegistryWebhook:
        unsupported = [e for e in events if e not in HTTP_EVENTS]
        if unsupported:
            raise UnsupportedWebhookEventError(
                unsupported,
                list(HTTP_EVENTS),
                "http_url_spec",
                "MLflow webhooks cannot subscribe to stage transitions, transition requests or comments; for a "
                "stage transition use job_spec (a local job can post where it likes)",
            )
        if model_name is not None:
            raise InvalidWebhookError(
                "model_name",
                model_name,
                "None for an http_url_spec webhook: MLflow webhooks are registry-wide (the payload's data.name "
                "names the model; filter at the receiver)",
            )
        if stage is not None:
            raise InvalidWebhookError(
                "target_stage", stage, "None for an http_url_spec webhook (it receives no stage transitions)"
            )
        try:
            hook = self._mlflow.create_webhook(
                name=name or "registry-webhook",
                url=http.url,
                events=[_to_mlflow(e) for e in events],
                description=description,
                secret=http.secret,
                status=WebhookStatus.ACTIVE if status == "ACTIVE" else WebhookStatus.DISABLED,
            )
        except MlflowException as e:
            raise InvalidWebhookError("http_url_spec", redact_url(http.url), e.message) from None
        return _http_webhook(hook)

    def _arm(self, facts: dict[str, Any], stages: list[str]) -> list[Trigger]:
        argv = [sys.executable, "-P", "-c", _RUN, json.dumps(facts)]
        return [
            create_trigger(
                self.lake,
                name=f"{_PREFIX}{facts['id']}",
                model_name=facts["model_name"],
                stage=s,
                command=argv,
                timeout_seconds=facts["job"]["timeout_seconds"],
            )
            for s in stages
        ]

    # -- read -----------------------------------------------------------------------------------------------
    def _job_webhooks(self) -> dict[str, tuple[dict[str, Any], list[Trigger]]]:
        found: dict[str, tuple[dict[str, Any], list[Trigger]]] = {}
        for t in list_triggers(self.lake):
            if t.name.startswith(_PREFIX) and t.command and t.command[3] == _RUN:
                facts = json.loads(t.command[4])
                found.setdefault(facts["id"], (facts, []))[1].append(t)
        return found

    def _http_webhooks(self) -> list[Any]:
        hooks: list[Any] = []
        token = None
        while True:
            page = self._mlflow.list_webhooks(max_results=1000, page_token=token)
            hooks.extend(page)
            token = page.token
            if not token:
                return hooks

    def list_webhooks(
        self, model_name: str | None = None, events: list[str] | None = None, max_results: int = 10000
    ) -> list[RegistryWebhook]:
        """The lake's webhooks, newest first: job webhooks and the MLflow webhooks (registry-wide).

        `model_name` keeps that model's webhooks (registry-wide ones are not "of" a model); `events` keeps
        webhooks with any of them.
        """
        if events is not None:
            events = _events(events)
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise InvalidWebhookError("max_results", max_results, "a positive whole number")
        found = [_job_webhook(facts) for facts, _ in self._job_webhooks().values()]
        found += [_http_webhook(h) for h in self._http_webhooks()]
        found = [
            w
            for w in found
            if (model_name is None or w.model_name == model_name) and (events is None or set(w.events) & set(events))
        ]
        found.sort(key=lambda w: -w.creation_timestamp)
        return found[:max_results]

    def _find(self, webhook_id: str) -> tuple[dict[str, Any], list[Trigger]] | Any:
        jobs_found = self._job_webhooks()
        if webhook_id in jobs_found:
            return jobs_found[webhook_id]
        for h in self._http_webhooks():
            if h.webhook_id == webhook_id:
                return h
        live = [*jobs_found, *(h.webhook_id for h in self._http_webhooks())]
        raise WebhookNotFoundError(webhook_id, live)

    # -- change ---------------------------------------------------------------------------------------------
    def delete_webhook(self, id: str) -> None:
        """Delete a webhook (its past job runs and deliveries stay recorded). WebhookNotFoundError if unknown."""
        found = self._find(id)
        if isinstance(found, tuple):
            for t in found[1]:
                delete_trigger(self.lake, t.trigger_id)
        else:
            self._mlflow.delete_webhook(id)

    def update_webhook(
        self,
        id: str,
        events: list[str] | None = None,
        http_url_spec: HttpUrlSpec | Mapping[str, Any] | None = None,
        job_spec: JobSpec | Mapping[str, Any] | None = None,
        description: str | None = None,
        status: str = "ACTIVE",
        *,
        target_stage: str | None = None,
    ) -> RegistryWebhook:
        """Replace what is given (as Databricks' client, `status` defaults to ACTIVE). A job webhook's triggers are
        replaced by new ones under the same webhook id."""
        status = _status(status)
        if events is not None:
            events = _events(events)
        found = self._find(id)
        if isinstance(found, tuple):
            facts, triggers = found
            if http_url_spec is not None:
                raise InvalidWebhookError("http_url_spec", _shown(http_url_spec), f"None: webhook {id} runs a job")
            new = {
                **facts,
                "events": events or facts["events"],
                "status": status,
                "description": facts["description"] if description is None else description,
                "target_stage": _target_stage(target_stage) if target_stage is not None else facts["target_stage"],
                "last_updated_timestamp": int(time.time() * 1000),
            }
            if job_spec is not None:
                new["job"] = {k: v for k, v in vars(_job_spec(job_spec)).items() if k != "access_token"}
            stages = _stages(new["events"], new["target_stage"])
            self._arm(new, stages)
            for t in triggers:
                delete_trigger(self.lake, t.trigger_id)
            return _job_webhook(new)
        if job_spec is not None:
            raise InvalidWebhookError("job_spec", job_spec, f"None: webhook {id} posts to a URL")
        if target_stage is not None:
            raise InvalidWebhookError("target_stage", target_stage, "None for an http_url_spec webhook")
        if events is not None and any(e not in HTTP_EVENTS for e in events):
            raise UnsupportedWebhookEventError(
                [e for e in events if e not in HTTP_EVENTS], list(HTTP_EVENTS), "http_url_spec", "see create_webhook"
            )
        http = None if http_url_spec is None else _http_spec(http_url_spec)
        try:
            hook = self._mlflow.update_webhook(
                id,
                description=description,
                url=None if http is None else http.url,
                events=None if events is None else [_to_mlflow(e) for e in events],
                secret=None if http is None else http.secret,
                status=WebhookStatus.ACTIVE if status == "ACTIVE" else WebhookStatus.DISABLED,
            )
        except MlflowException as e:
            raise InvalidWebhookError(
                "http_url_spec", None if http is None else redact_url(http.url), e.message
            ) from None
        return _http_webhook(hook)

    def test_webhook(self, id: str, event: str | None = None) -> TestWebhookResponse:
        """Send one test event now, whatever the status: MLflow's example payload to the URL, or run the job
        once in a subprocess (not recorded in `mlflow.job_runs`; exit 0 answers 200, else 500 and the output)."""
        if event is not None:
            _events([event])
        found = self._find(id)
        if not isinstance(found, tuple):
            if event is not None and event not in HTTP_EVENTS:
                raise UnsupportedWebhookEventError([event], list(HTTP_EVENTS), "http_url_spec", "see create_webhook")
            result = self._mlflow.test_webhook(id, None if event is None else _to_mlflow(event))
            if result.response_status is None:
                return TestWebhookResponse(status_code=0, body=result.error_message or "")
            return TestWebhookResponse(status_code=result.response_status, body=result.response_body or "")
        facts, triggers = found
        stage = facts["target_stage"] or triggers[0].stage
        test_event = {
            "event_id": f"test-{uuid.uuid4().hex}",
            "event": STAGE_TRANSITIONED,
            "name": facts["model_name"],
            "version": None,
            "timestamp": int(time.time() * 1000),
            "payload": {"name": facts["model_name"], "version": None, "from_stage": None, "to_stage": stage},
        }
        env = {
            **os.environ,
            _TEST_ENV: "1",
            "LAKEHOUSE_EVENT": json.dumps(test_event),
            "MODEL_NAME": facts["model_name"],
            "MODEL_VERSION": "",
            "MODEL_STAGE": stage or "",
        }
        env.setdefault("MLFLOW_TRACKING_URI", lake_uri(self.lake))
        argv = [sys.executable, "-P", "-c", _RUN, json.dumps(facts)]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=facts["job"]["timeout_seconds"],
            )
        except subprocess.TimeoutExpired as e:
            return TestWebhookResponse(status_code=504, body=str(e)[-OUTPUT_TAIL:])
        return TestWebhookResponse(status_code=200 if proc.returncode == 0 else 500, body=proc.stdout[-OUTPUT_TAIL:])


def _job_webhook(facts: dict[str, Any]) -> RegistryWebhook:
    job = facts["job"]
    return RegistryWebhook(
        id=facts["id"],
        events=list(facts["events"]),
        creation_timestamp=facts["creation_timestamp"],
        last_updated_timestamp=facts["last_updated_timestamp"],
        status=facts["status"],
        job_spec=JobSpec(**{**job, "command": tuple(job["command"]) if job["command"] else None}),
        model_name=facts["model_name"],
        description=facts["description"],
        target_stage=facts["target_stage"],
    )


def _http_webhook(hook: Any) -> RegistryWebhook:
    return RegistryWebhook(
        id=hook.webhook_id,
        events=[_mlflow_event_name(e) for e in hook.events],
        creation_timestamp=hook.creation_timestamp,
        last_updated_timestamp=hook.last_updated_timestamp,
        status=hook.status.value,
        http_url_spec=HttpUrlSpec(url=hook.url),
        description=hook.description,
    )


# -- the job's side ---------------------------------------------------------------------------------------
def event_message(facts: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Databricks' job-webhook payload (`event_message`) for a stage-transition event of the lake."""
    payload = event.get("payload") or {}
    to_stage = payload.get("to_stage")
    name = "MODEL_VERSION_TRANSITIONED_STAGE"
    if name not in facts["events"]:
        name = f"MODEL_VERSION_TRANSITIONED_TO_{str(to_stage).upper()}"
    return {
        "event": name,
        "webhook_id": facts["id"],
        "event_timestamp": event.get("timestamp"),
        "model_name": event.get("name"),
        "version": event.get("version"),
        "from_stage": payload.get("from_stage"),
        "to_stage": to_stage,
        "text": f"Registered model '{event.get('name')}' version {event.get('version')} transitioned from "
        f"{payload.get('from_stage')} to {to_stage}.",
    }


def run_job(facts_json: str) -> None:
    """What a job webhook's trigger runs: skip unless ACTIVE (or a test), then the webhook's callable or command.

    The callable gets the registry event dict (as any trigger callable); `EVENT_MESSAGE` holds Databricks'
    payload as JSON. A command replaces this process (its exit code is the run's).
    """
    facts = json.loads(facts_json)
    event = json.loads(os.environ.get("LAKEHOUSE_EVENT", "{}"))
    if facts["status"] != "ACTIVE" and not os.environ.get(_TEST_ENV):
        print(f"skipped: registry webhook {facts['id']} is {facts['status']}")
        return
    os.environ["EVENT_MESSAGE"] = json.dumps(event_message(facts, event))
    job = facts["job"]
    if job["command"]:
        sys.stdout.flush()
        os.execvpe(job["command"][0], list(job["command"]), os.environ)
    import importlib

    sys.path.insert(0, os.getcwd())  # the user's modules, as a trigger callable sees them (jobs imported first)
    module, _, func = job["callable"].partition(":")
    result = getattr(importlib.import_module(module), func)(event)
    if result is not None:
        print(result)
