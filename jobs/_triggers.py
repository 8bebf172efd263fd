"""Local job triggers: run a Python callable or a command when a registry event matches.

A trigger names a registered model and a stage ("when a version of `churn` moves to Staging"), an alias
("when `@champion` is set on a version of `churn`") or a version tag ("when `monitoring.alert` is set on a version
of `churn`", optionally only to one value: the `monitor` job's alert). A tag trigger's condition is a row of
`mlflow.job_trigger_tags` (trigger id, tag key, tag value or null for any), written before its trigger row, so a
crash between the two leaves an inert condition, never a trigger without one. The registry's dispatcher (`tracking._events`) treats
each trigger as a subscriber `trigger:<id>`: the job runs at least once per matching event, exactly once
unless a dispatcher dies mid-run, in a subprocess, and each run is recorded in `mlflow.job_runs`. A failing
job is recorded as failed and not retried (unlike an HTTP delivery, its failure is not transient).

The job sees the event as JSON in `LAKEHOUSE_EVENT` and the model in `MODEL_NAME`, `MODEL_VERSION`,
`MODEL_STAGE`, with `MLFLOW_TRACKING_URI` pointing at the event's lake unless already set; a callable
`"package.module:function"` is called with the event dict. `jobs:validate_model` is a ready-made one.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from mlflow.entities.model_registry.model_version_stages import ALL_STAGES, get_canonical_stage
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_tag_name

from lakehouse import Change, Row, is_object_store
from tracking import (
    JOB_RUNS,
    SCHEME,
    STAGE_TRANSITIONED,
    TRIGGER_TAGS,
    TRIGGERS,
    Lake,
    Outcome,
    lake_root_from_uri,
    lake_uri,
    open_lake,
)

from ._runner import kill_group
from .errors import InvalidTriggerError, TriggerNotFoundError

_log = logging.getLogger(__name__)

MODEL_VERSION_TAG_SET = "model_version_tag.set"
"""MLflow's webhook event for a model-version tag set (payload: name, version, key, value)."""

OUTPUT_TAIL = 4000
"""Characters of a job's combined stdout and stderr kept in `mlflow.job_runs.output`."""


@dataclass(frozen=True)
class Trigger:
    """What to run on which event: `stage`, `alias` or version `tag` (with `tag_value`, None: any value) of
    `model_name`; `callable` or `command`."""

    trigger_id: str
    name: str
    model_name: str
    stage: str | None
    alias: str | None
    callable: str | None
    command: tuple[str, ...] | None
    timeout_seconds: int
    tag: str | None = None
    tag_value: str | None = None


@dataclass(frozen=True)
class JobRun:
    """One run of a triggered job. `status` is 'succeeded' or 'failed'; times are epoch ms (UTC)."""

    run_id: str
    trigger_id: str
    event_id: str
    model_name: str
    version: str | None
    stage: str | None
    status: str
    exit_code: int | None
    start_time: int
    end_time: int
    output: str


def _lake(lake: str | os.PathLike) -> Lake:
    lake = os.fspath(lake)
    if lake.startswith(f"{SCHEME}:"):
        return open_lake(lake_root_from_uri(lake))
    return open_lake(lake if is_object_store(lake) else os.path.abspath(lake))


def _to_trigger(row: Row, condition: Row | None = None) -> Trigger:
    return Trigger(
        trigger_id=row["trigger_id"],
        name=row["name"],
        model_name=row["model_name"],
        stage=row["stage"],
        alias=row["alias"],
        callable=row["callable"],
        command=tuple(json.loads(row["command"])) if row["command"] else None,
        timeout_seconds=row["timeout_seconds"],
        tag=None if condition is None else condition["tag_key"],
        tag_value=None if condition is None else condition["tag_value"],
    )


def _condition(lk: Lake, trigger_id: str) -> Row | None:
    hit = lk.t.trigger_tags.get(trigger_id, 0)
    return None if hit is None else hit.row


def create_trigger(
    lake: str | os.PathLike,
    *,
    name: str,
    model_name: str,
    stage: str | None = None,
    alias: str | None = None,
    tag: str | None = None,
    tag_value: str | None = None,
    callable: str | None = None,
    command: list[str] | None = None,
    timeout_seconds: int = 3600,
) -> Trigger:
    """Run a job whenever a version of `model_name` moves to `stage`, gets `alias`, or gets tag `tag`.

    Args:
        lake: the lake root path or its `lakehouse:///` URI.
        name: a label for the trigger (not required to be unique).
        model_name: the registered model watched.
        stage: MLflow stage (case-insensitive: "staging", "Production", ...); exactly one of stage/alias/tag.
        alias: alias name, e.g. "champion".
        tag: a model-version tag key, e.g. "monitoring.alert" (set by the `monitor` job when a threshold is
            crossed): the job runs each time the tag is set on a version.
        tag_value: only when the tag is set to this value (default: any value).
        callable: "package.module:function", called with the event dict; exactly one of callable/command.
        command: argv list run as is (no shell).
        timeout_seconds: the job is killed and recorded as failed after this long.

    Example:
        >>> create_trigger("/data/lake", name="validate", model_name="churn", stage="Staging",
        ...                callable="my_jobs.validate:run")
        >>> create_trigger("/data/lake", name="retrain", model_name="churn", tag="monitoring.alert",
        ...                command=["python", "retrain.py"])
    """
    for argument, value in (("name", name), ("model_name", model_name)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidTriggerError(argument, value, "a non-empty string")
    if sum(x is not None for x in (stage, alias, tag)) != 1:
        raise InvalidTriggerError("stage/alias/tag", (stage, alias, tag), "give exactly one of stage=, alias= or tag=")
    if alias is not None and (not isinstance(alias, str) or not alias.strip()):
        raise InvalidTriggerError("alias", alias, "a non-empty alias name such as 'champion'")
    if tag is not None:
        try:
            if not isinstance(tag, str):
                raise MlflowException(f"tag={tag!r} is not a string")
            _validate_tag_name(tag)
        except MlflowException:
            raise InvalidTriggerError("tag", tag, "a model-version tag key such as 'monitoring.alert'") from None
    if tag_value is not None and (tag is None or not isinstance(tag_value, str)):
        raise InvalidTriggerError("tag_value", tag_value, "a string, with tag= naming the tag it is a value of")
    if (callable is None) == (command is None):
        raise InvalidTriggerError("callable/command", (callable, command), "give exactly one of callable= or command=")
    if callable is not None and (
        not isinstance(callable, str) or ":" not in callable or not all(p.strip() for p in callable.split(":", 1))
    ):
        raise InvalidTriggerError("callable", callable, "a string like 'package.module:function'")
    if command is not None and (
        isinstance(command, str) or not command or not all(isinstance(a, str) for a in command)
    ):
        raise InvalidTriggerError("command", command, "a non-empty list of strings such as ['python', 'job.py']")
    if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int) or timeout_seconds < 1:
        raise InvalidTriggerError("timeout_seconds", timeout_seconds, "a positive whole number of seconds")
    if stage is not None:
        try:
            stage = get_canonical_stage(stage)
        except MlflowException:
            raise InvalidTriggerError("stage", stage, f"one of {', '.join(ALL_STAGES)}") from None
    row = {
        "trigger_id": uuid.uuid4().hex,
        "name": name,
        "model_name": model_name,
        "stage": stage,
        "alias": alias,
        "callable": callable,
        "command": json.dumps(list(command)) if command else None,
        "timeout_seconds": timeout_seconds,
        "creation_timestamp": int(time.time() * 1000),
        "deleted_timestamp": None,
    }
    condition = None if tag is None else {"trigger_id": row["trigger_id"], "tag_key": tag, "tag_value": tag_value}
    lk = _lake(lake)
    with lk.lock:
        if condition is not None:  # first: without its trigger row it is inert
            lk.t.write(TRIGGER_TAGS, lambda: Change([[condition]]))
        lk.t.write(TRIGGERS, lambda: Change([[row]]))
    return _to_trigger(row, condition)


def list_triggers(lake: str | os.PathLike) -> list[Trigger]:
    """Live triggers, oldest first."""
    lk = _lake(lake)
    with lk.lock:
        lk.t.refresh([TRIGGERS, TRIGGER_TAGS])
        rows = [h[0].row for h in lk.t.triggers.groups.values()]
        return [
            _to_trigger(r, _condition(lk, r["trigger_id"]))
            for r in sorted(rows, key=lambda r: r["creation_timestamp"])
            if r["deleted_timestamp"] is None
        ]


def delete_trigger(lake: str | os.PathLike, trigger_id: str) -> None:
    """Stop a trigger (its past runs stay recorded). Raises TriggerNotFoundError naming the live ids if unknown."""
    lk = _lake(lake)

    def plan():
        hit = lk.t.triggers.get(trigger_id, 0)
        if hit is None or hit.row["deleted_timestamp"] is not None:
            live = [str(i) for i, h in lk.t.triggers.groups.items() if h[0].row["deleted_timestamp"] is None]
            raise TriggerNotFoundError(trigger_id, live)
        return lk.t.replace(
            TRIGGERS, lk.t.triggers, [(trigger_id, 0)], [{**hit.row, "deleted_timestamp": int(time.time() * 1000)}]
        )

    with lk.lock:
        lk.t.write(TRIGGERS, plan)


def list_runs(lake: str | os.PathLike, trigger_id: str | None = None) -> list[JobRun]:
    """Recorded job runs (of one trigger, or all), oldest first."""
    lk = _lake(lake)
    with lk.lock:
        lk.t.refresh([JOB_RUNS])
        rows = [h[0].row for h in lk.t.job_runs.groups.values()]
    rows = [r for r in rows if trigger_id is None or r["trigger_id"] == trigger_id]
    return [JobRun(**r) for r in sorted(rows, key=lambda r: r["start_time"])]


def drain(lake: str | os.PathLike, *, follow_seconds: float = 0.0) -> dict[str, Any]:
    """Deliver every due registry event of the lake (webhooks and triggers) from this process.

    With `follow_seconds`, keeps delivering (retries included) until that many seconds have passed.
    Safe beside other drainers, the in-process dispatchers and `mlflow server`: attempts are claimed.
    Returns what this call did: `attempts`, `succeeded`, `retrying` (counts) and `gave_up` (one dict per
    delivery that will not be tried again: event_id, subscriber, attempt, error); the CLI exits non-zero on
    any give-up.
    """
    lk = _lake(lake)
    seen = len(lk.dispatcher.outcomes)
    deadline = time.time() + follow_seconds
    while True:
        wake = lk.dispatcher.drain(wait=True)
        left = deadline - time.time()
        if left <= 0:
            break
        time.sleep(min(left, 0.5 if wake is None else max(0.02, min(0.5, wake - time.time()))))
    done = lk.dispatcher.outcomes[seen:]
    return {
        "attempts": len(done),
        "succeeded": sum(o["status"] == "succeeded" for o in done),
        "retrying": sum(o["status"] == "failed" for o in done),
        "gave_up": [o for o in done if o["status"] == "gave_up"],
    }


# -- the dispatcher's side --------------------------------------------------------------------------------
@dataclass
class TriggerSubscriber:
    id: str
    trigger: Row
    lake: Lake
    max_attempts: int = 1
    timeout_seconds: int = 3600

    def deliver(self, event: Row) -> Outcome:
        trig, payload = self.trigger, json.loads(event["payload"])
        stage = payload.get("to_stage")
        env = {
            **os.environ,
            "LAKEHOUSE_EVENT": json.dumps({**event, "payload": payload}),
            "MODEL_NAME": event["name"],
            "MODEL_VERSION": event["version"] or "",
            "MODEL_STAGE": stage or "",
        }
        # The job talks to the lake the event came from, unless the environment names a tracking server.
        env.setdefault("MLFLOW_TRACKING_URI", lake_uri(self.lake.root))
        argv = call_argv(trig["callable"], os.getcwd()) if trig["callable"] else json.loads(trig["command"])
        start = int(time.time() * 1000)
        try:
            # A process group of its own: on timeout the job's children (a Spark JVM, a pool) die with it.
            proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
            try:
                output, _ = proc.communicate(timeout=trig["timeout_seconds"])
                code = proc.returncode
            except subprocess.TimeoutExpired:
                kill_group(proc)
                output, _ = proc.communicate()
                code, output = None, (output or "") + f"\n[killed after {trig['timeout_seconds']} s]"
        except OSError as e:
            code, output = None, f"could not start {argv!r}: {e}"
        end = int(time.time() * 1000)
        status = "succeeded" if code == 0 else "failed"
        _log.info("trigger %s on %s: job %s (exit %s)", trig["trigger_id"], event["event_id"], status, code)
        row = {
            "run_id": uuid.uuid4().hex,
            "trigger_id": trig["trigger_id"],
            "event_id": event["event_id"],
            "model_name": event["name"],
            "version": event["version"],
            "stage": stage,
            "status": status,
            "exit_code": code,
            "start_time": start,
            "end_time": end,
            "output": output[-OUTPUT_TAIL:],
        }
        with self.lake.lock:
            self.lake.t.write(JOB_RUNS, lambda: Change([[row]]))
        return Outcome(ok=code == 0, error=None if code == 0 else f"job exited {code}")


def _matches(trig: Row, event: Row, condition: Row | None) -> bool:
    if trig["deleted_timestamp"] is not None or trig["model_name"] != event["name"]:
        return False
    if trig["creation_timestamp"] > event["timestamp"]:
        return False
    payload: dict[str, Any] = json.loads(event["payload"])
    if trig["stage"] is not None:
        return event["event"] == STAGE_TRANSITIONED and payload.get("to_stage") == trig["stage"]
    if trig["alias"] is not None:
        return event["event"] == "model_version_alias.created" and payload.get("alias") == trig["alias"]
    if condition is None:  # a trigger row without its condition: matches nothing (never written so)
        return False
    return (
        event["event"] == MODEL_VERSION_TAG_SET
        and payload.get("key") == condition["tag_key"]
        and condition["tag_value"] in (None, payload.get("value"))
    )


def trigger_subscribers(lake: Lake, event: Row) -> list[TriggerSubscriber]:
    """The live triggers matching `event` (created no later than it)."""
    if event["event"] == MODEL_VERSION_TAG_SET:
        lake.t.refresh([TRIGGER_TAGS])
    return [
        TriggerSubscriber(f"trigger:{row['trigger_id']}", row, lake, timeout_seconds=row["timeout_seconds"])
        for hits in lake.t.triggers.groups.values()
        for row in [hits[0].row]
        if _matches(row, event, _condition(lake, row["trigger_id"]))
    ]


_CALL = "import sys; from jobs._triggers import call; sys.path.insert(0, sys.argv[2]); call(sys.argv[1])"


def call_argv(target: str, cwd: str) -> list[str]:
    """The command that calls `package.module:function` with the user's modules in `cwd` importable.

    `jobs` is imported before `cwd` joins the path (`-P`: nothing prepended at start-up), so a `jobs/` folder
    of the user's cannot stand in for this package, as it would under `python -m jobs`.
    """
    return [sys.executable, "-P", "-c", _CALL, target, cwd]


def call(target: str) -> None:
    """Import `package.module:function` and call it with the event from `LAKEHOUSE_EVENT`."""
    import importlib

    module, _, func = target.partition(":")
    fn = getattr(importlib.import_module(module), func)
    result = fn(json.loads(os.environ.get("LAKEHOUSE_EVENT", "{}")))
    if result is not None:
        print(result)
