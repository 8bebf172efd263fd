"""Local job triggers: run a Python callable or a command when a registry event matches.

A trigger names a registered model and a stage ("when a version of `churn` moves to Staging") or an alias
("when `@champion` is set on a version of `churn`"). The registry's dispatcher (`tracking._events`) treats
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

from lakehouse import Change, Row, is_object_store
from tracking import (
    JOB_RUNS,
    SCHEME,
    STAGE_TRANSITIONED,
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

OUTPUT_TAIL = 4000
"""Characters of a job's combined stdout and stderr kept in `mlflow.job_runs.output`."""


@dataclass(frozen=True)
class Trigger:
    """What to run on which event: `stage` or `alias` of `model_name`; `callable` or `command`."""

    trigger_id: str
    name: str
    model_name: str
    stage: str | None
    alias: str | None
    callable: str | None
    command: tuple[str, ...] | None
    timeout_seconds: int


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


def _to_trigger(row: Row) -> Trigger:
    return Trigger(
        trigger_id=row["trigger_id"],
        name=row["name"],
        model_name=row["model_name"],
        stage=row["stage"],
        alias=row["alias"],
        callable=row["callable"],
        command=tuple(json.loads(row["command"])) if row["command"] else None,
        timeout_seconds=row["timeout_seconds"],
    )


def create_trigger(
    lake: str | os.PathLike,
    *,
    name: str,
    model_name: str,
    stage: str | None = None,
    alias: str | None = None,
    callable: str | None = None,
    command: list[str] | None = None,
    timeout_seconds: int = 3600,
) -> Trigger:
    """Run a job whenever a version of `model_name` moves to `stage` (or gets `alias`).

    Args:
        lake: the lake root path or its `lakehouse:///` URI.
        name: a label for the trigger (not required to be unique).
        model_name: the registered model watched.
        stage: MLflow stage (case-insensitive: "staging", "Production", ...); exactly one of stage/alias.
        alias: alias name, e.g. "champion".
        callable: "package.module:function", called with the event dict; exactly one of callable/command.
        command: argv list run as is (no shell).
        timeout_seconds: the job is killed and recorded as failed after this long.

    Example:
        >>> create_trigger("/data/lake", name="validate", model_name="churn", stage="Staging",
        ...                callable="my_jobs.validate:run")
    """
    for argument, value in (("name", name), ("model_name", model_name)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidTriggerError(argument, value, "a non-empty string")
    if (stage is None) == (alias is None):
        raise InvalidTriggerError("stage/alias", (stage, alias), "give exactly one of stage= or alias=")
    if alias is not None and (not isinstance(alias, str) or not alias.strip()):
        raise InvalidTriggerError("alias", alias, "a non-empty alias name such as 'champion'")
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
    lk = _lake(lake)
    with lk.lock:
        lk.t.write(TRIGGERS, lambda: Change([[row]]))
    return _to_trigger(row)


def list_triggers(lake: str | os.PathLike) -> list[Trigger]:
    """Live triggers, oldest first."""
    lk = _lake(lake)
    with lk.lock:
        lk.t.refresh([TRIGGERS])
        rows = [h[0].row for h in lk.t.triggers.groups.values()]
    return [
        _to_trigger(r) for r in sorted(rows, key=lambda r: r["creation_timestamp"]) if r["deleted_timestamp"] is None
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


def _matches(trig: Row, event: Row) -> bool:
    if trig["deleted_timestamp"] is not None or trig["model_name"] != event["name"]:
        return False
    if trig["creation_timestamp"] > event["timestamp"]:
        return False
    payload: dict[str, Any] = json.loads(event["payload"])
    if trig["stage"] is not None:
        return event["event"] == STAGE_TRANSITIONED and payload.get("to_stage") == trig["stage"]
    return event["event"] == "model_version_alias.created" and payload.get("alias") == trig["alias"]


def trigger_subscribers(lake: Lake, event: Row) -> list[TriggerSubscriber]:
    """The live triggers matching `event` (created no later than it)."""
    return [
        TriggerSubscriber(f"trigger:{row['trigger_id']}", row, lake, timeout_seconds=row["timeout_seconds"])
        for hits in lake.t.triggers.groups.values()
        for row in [hits[0].row]
        if _matches(row, event)
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
