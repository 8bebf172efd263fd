"""How every `lakehouse-jobs` job runs: the lake checked first, the run recorded, the exit code chosen.

A job is a plain function `job(lake, **arguments) -> figures` (a JSON-serialisable dict). `run_job` checks that
the lake exists (a mistyped path is refused; only `create=True` makes a new lake), calls the job, and records one
row in `mlflow.job_history` (job, arguments, start, end, status, exit code, figures or error). Exit codes:

    0  EXIT_OK        the job did its work
    1  EXIT_FAILED    the job failed (its error is recorded and printed as one line)
    2  EXIT_USAGE     bad arguments: refused before anything was written (argparse's code too)
    3  EXIT_ALERT     the job ran and raised an alert (e.g. `monitor`: a metric or a drift score crossed its threshold)
    4  EXIT_TIMEOUT   the job ran past its `--timeout` and its whole process group was killed
"""

from __future__ import annotations

import glob
import json
import logging
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

from lakehouse import Change, find_tables, is_object_store
from tracking import JOB_HISTORY, lake_root_from_uri, open_lake

from .errors import InvalidJobArgumentError, JobsError, LakeNotFoundError

_log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ALERT, EXIT_TIMEOUT = 0, 1, 2, 3, 4
KILL_GRACE_SECONDS = 10.0
"""After a timeout: how long the job's process group has between SIGTERM and SIGKILL."""


@dataclass(frozen=True)
class JobHistory:
    """One recorded run of a `lakehouse-jobs` job; times in epoch ms (UTC), arguments and figures decoded."""

    run_id: str
    job: str
    arguments: dict[str, Any]
    status: str
    exit_code: int
    start_time: int
    end_time: int
    figures: dict[str, Any] | None
    error: str | None
    host: str
    pid: int


def lake_root(lake: str | os.PathLike[str], job: str = "lakehouse-jobs") -> str:
    """The root of `lake` (a path, an object-store URI or a `lakehouse:` URI): an absolute local path, or the
    object-store URI without its trailing slash. A malformed `lakehouse:` URI is `job`'s InvalidJobArgumentError."""
    if not isinstance(lake, str | os.PathLike) or not os.fspath(lake):
        raise InvalidJobArgumentError(job, "lake", lake, "a lake root path or a lakehouse:/// URI")
    text = os.fspath(lake)
    if text.startswith("lakehouse:"):
        try:
            return lake_root_from_uri(text)
        except MlflowException as e:
            raise InvalidJobArgumentError(job, "lake", text, e.message) from None
    return text.rstrip("/") if is_object_store(text) else os.path.abspath(text)


def require_lake(lake: str | os.PathLike[str], *, create: bool = False) -> str:
    """The root of an existing lake (one holding at least one Delta table); LakeNotFoundError otherwise.

    With `create`, a missing or empty folder is accepted: the job's first write makes the lake there.
    """
    root = lake_root(lake)
    if create:
        return root
    if not is_object_store(root) and not os.path.isdir(root):
        reason = "the path is a file" if os.path.exists(root) else "the folder does not exist"
        raise LakeNotFoundError(root, reason)
    tables = find_tables(root, include_private=True)
    if not tables:
        raise LakeNotFoundError(root, "it holds no Delta table")
    parent = os.path.dirname(root)
    if all("." not in t for t in tables) and glob.glob(os.path.join(glob.escape(parent), "mlflow", "*", "_delta_log")):
        # e.g. <lake>/mlflow: its tables look like a lake's, and a job would start a second lake inside the first
        raise LakeNotFoundError(root, f"it is the folder {os.path.basename(root)!r} inside the lake at {parent}")
    return root


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def record(root: str, row: dict[str, Any]) -> None:
    """Append one run row to the lake's `mlflow.job_history`."""
    lk = open_lake(root)
    with lk.lock:
        lk.t.write(JOB_HISTORY, lambda: Change([[row]]))


def history(lake: str | os.PathLike[str], job: str | None = None) -> list[JobHistory]:
    """Recorded runs of `lakehouse-jobs` jobs (of one job, or all), oldest first."""
    lk = open_lake(require_lake(lake))
    with lk.lock:
        lk.t.refresh([JOB_HISTORY])
        rows = [h[0].row for h in lk.t.job_history.groups.values()]
    out = []
    for r in sorted(rows, key=lambda r: (r["start_time"], r["run_id"])):
        if job is None or r["job"] == job:
            figures = json.loads(r["figures"]) if r["figures"] else None
            out.append(JobHistory(**{**r, "arguments": json.loads(r["arguments"]), "figures": figures}))
    return out


@dataclass(frozen=True)
class Outcome:
    """What `run_job` did: the exit code, the figures (None on failure) and the one-line error (None on success)."""

    exit_code: int
    figures: dict[str, Any] | None
    error: str | None


def run_job(
    job: str,
    fn: Callable[..., dict[str, Any]],
    lake: str,
    arguments: Mapping[str, Any],
    *,
    create: bool = False,
) -> Outcome:
    """Run `fn(root, **arguments)` as job `job` and record it. Never raises for the job's own failure: the
    outcome says how it ended (figures with a non-empty `alerts` list end as EXIT_ALERT; figures whose `status`
    is "failed", e.g. validate's verdict, as EXIT_FAILED)."""
    try:
        root = require_lake(lake, create=create)
    except JobsError as e:
        return Outcome(EXIT_USAGE, None, str(e))  # nowhere to record: nothing is written
    start = int(time.time() * 1000)
    figures: dict[str, Any] | None = None
    error: str | None = None
    try:
        figures = fn(root, **arguments)
        code = EXIT_ALERT if figures and figures.get("alerts") else EXIT_OK
        status = "alert" if code == EXIT_ALERT else "succeeded"
        if figures and figures.get("status") == "failed":  # a verdict (validate): the job ran, its check failed
            code, status = EXIT_FAILED, "failed"
            error = f"{job} reported status 'failed': {_json({k: figures[k] for k in list(figures)[:6]})[:400]}"
    except InvalidJobArgumentError as e:
        return Outcome(EXIT_USAGE, None, str(e))  # refused before anything was written, and not recorded either
    except JobsError as e:
        code, status, error = EXIT_FAILED, "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a job's unexpected failure is still a recorded, failed run
        _log.debug("job %s failed", job, exc_info=True)  # the traceback with -v; the CLI prints one line
        code, status, error = EXIT_FAILED, "failed", f"{type(e).__name__}: {e}"
    row = {
        "run_id": uuid.uuid4().hex,
        "job": job,
        "arguments": _json(dict(arguments)),
        "status": status,
        "exit_code": code,
        "start_time": start,
        "end_time": int(time.time() * 1000),
        "figures": None if figures is None else _json(figures),
        "error": error,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    record(root, row)
    return Outcome(code, figures, error)


def run_with_timeout(argv: list[str], timeout: float, *, env: Mapping[str, str] | None = None) -> int | None:
    """Run `argv` in a new process group (session); on `timeout` seconds, SIGTERM the whole group, then SIGKILL
    after KILL_GRACE_SECONDS. Returns the exit code, or None when it was killed for the timeout."""
    proc = subprocess.Popen(argv, start_new_session=True, env=None if env is None else dict(env))
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return None


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM `proc`'s process group (it leads one: `start_new_session=True`), SIGKILL what is left after the grace."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGKILL)  # the leader is gone: its children must go too
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
