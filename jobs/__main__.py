"""`lakehouse-jobs` (or `python -m jobs`): the lake's batch jobs and registry automation, for cron, Airflow or a
Databricks job.

Every job checks that the lake exists (only --create makes a new one), records its run in `mlflow.job_history`,
prints its figures as JSON on stdout and logs to stderr; a failure ends with one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from . import _runner
from ._cli_jobs import JOBS, CliJob
from ._triggers import call, drain, list_runs, list_triggers
from .errors import JobsError

EPILOG = """exit codes:
  0  ok
  1  the job failed (one line on stderr says why; the run is recorded in mlflow.job_history)
  2  bad arguments, or no lake at the path given (nothing was written)
  3  alert: the job ran and a monitored metric or drift score crossed its threshold
  4  the job ran past --timeout and its whole process group was killed
"""


class _UsageError(Exception):
    """A command line argparse refused: reported as one line, exit code 2, by `main`."""


class _Parser(argparse.ArgumentParser):
    """argparse, except that a bad command line is one line on stderr (not the usage block) and `main` returns 2
    instead of exiting, so `jobs.cli(argv)` returns the code in a caller's process too."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="lakehouse-jobs", description=__doc__, epilog=EPILOG, formatter_class=fmt)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level (default INFO)")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name, spec in JOBS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help, epilog=EPILOG, formatter_class=fmt)
        p.add_argument("lake", help="lake root path or lakehouse:/// URI")
        p.add_argument("--create", action="store_true", help="make a new lake at this path if there is none")
        p.add_argument(
            "--timeout", type=float, metavar="SECONDS", help="kill the job (its whole process group) after this long"
        )
        spec.add_arguments(p)
    d = sub.add_parser("drain", help="deliver every due registry event (webhooks and job triggers)", epilog=EPILOG)
    d.add_argument("lake", help="lake root path or lakehouse:/// URI")
    d.add_argument(
        "--follow", type=float, default=0.0, metavar="SECONDS", help="keep delivering (retries included) for this long"
    )
    for name, what in (
        ("triggers", "the lake's job triggers"),
        ("runs", "the runs of triggered jobs"),
        ("history", "the runs of lakehouse-jobs jobs"),
    ):
        h = sub.add_parser(name, help=f"print {what} as JSON lines", epilog=EPILOG)
        h.add_argument("lake", help="lake root path or lakehouse:/// URI")
        if name == "history":
            h.add_argument("--job", help="only this job's runs")
    c = sub.add_parser("call", help="(internal) call package.module:function with $LAKEHOUSE_EVENT")
    c.add_argument("target")
    return parser


def _bad_seconds(args: argparse.Namespace) -> str | None:
    """Why --timeout or --follow cannot be used (not a finite number of seconds above / at least 0), or None."""
    for flag, value, low in (
        ("--timeout", getattr(args, "timeout", None), "> 0"),
        ("--follow", getattr(args, "follow", None), ">= 0"),
    ):
        if value is None:
            continue
        if not math.isfinite(value) or (value <= 0 if low == "> 0" else value < 0):
            return f"{flag} {value:g} is not a number of seconds {low}; give e.g. {flag} 3600"
    return None


def _bad_target(target: str) -> str | None:
    """Why `call`'s `package.module:function` cannot be called (malformed, not importable, not callable), or None."""
    import importlib

    module, _, name = target.partition(":")
    if not module.strip() or not name.strip() or target.count(":") != 1:
        return f"target {target!r} is not 'package.module:function'"
    try:
        fn = getattr(importlib.import_module(module), name, None)
    except Exception as e:  # noqa: BLE001 - whatever the module raises on import is the user's to see
        return f"target {target!r}: importing {module!r} raised {type(e).__name__}: {e}"
    if not callable(fn):
        return f"target {target!r}: {module} has no function {name!r}"
    return None


def _fail(cmd: str, message: str, code: int) -> int:
    print(f"lakehouse-jobs {cmd}: error: {message}", file=sys.stderr)
    return code


def _run_job(name: str, spec: CliJob, args: argparse.Namespace, argv: list[str]) -> int:
    if args.timeout is not None:
        return _run_with_timeout(name, args, argv)
    arguments = spec.arguments(args)
    outcome = _runner.run_job(name, spec.function(), args.lake, arguments, create=args.create)
    if outcome.figures is not None:
        print(json.dumps(outcome.figures, default=str, sort_keys=True))
    if outcome.exit_code == _runner.EXIT_ALERT:
        alerts = outcome.figures.get("alerts", []) if outcome.figures else []
        return _fail(name, f"{len(alerts)} alert(s): {json.dumps(alerts, default=str)[:500]}", _runner.EXIT_ALERT)
    if outcome.error is not None:
        return _fail(name, outcome.error.splitlines()[0] if outcome.error else "failed", outcome.exit_code)
    return outcome.exit_code


def _run_with_timeout(name: str, args: argparse.Namespace, argv: list[str]) -> int:
    """Run the job again in a child process of its own process group; kill the group when the time is up."""
    try:
        root = _runner.require_lake(args.lake, create=args.create)
    except JobsError as e:
        return _fail(name, str(e), _runner.EXIT_USAGE)
    child = _without_timeout(argv)
    start = int(time.time() * 1000)
    code = _runner.run_with_timeout([sys.executable, "-m", "jobs", *child], args.timeout)
    if code is not None:
        return code
    message = f"killed after --timeout {args.timeout:g} s (the job's whole process group)"
    _runner.record(
        root,
        {
            "run_id": uuid.uuid4().hex,
            "job": name,
            "arguments": json.dumps({"argv": child}),
            "status": "timed_out",
            "exit_code": _runner.EXIT_TIMEOUT,
            "start_time": start,
            "end_time": int(time.time() * 1000),
            "figures": None,
            "error": message,
            "host": os.uname().nodename,
            "pid": os.getpid(),
        },
    )
    return _fail(name, message, _runner.EXIT_TIMEOUT)


def _without_timeout(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--timeout":
            skip = True
        elif not a.startswith("--timeout="):
            out.append(a)
    return out


def _print_rows(rows: list[Any]) -> int:
    for r in rows:
        print(json.dumps(dataclasses.asdict(r), default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return _runner.EXIT_USAGE
    bad = _bad_seconds(args)
    if bad is not None:
        return _fail(args.cmd, bad, _runner.EXIT_USAGE)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # py4j logs its shutdown at INFO when the interpreter exits, after a failure's one line
        logging.getLogger("py4j").setLevel(logging.WARNING)
    if args.cmd in JOBS:
        return _run_job(args.cmd, JOBS[args.cmd], args, argv)
    if args.cmd == "call":
        bad_target = _bad_target(args.target)
        if bad_target is not None:
            return _fail("call", bad_target, _runner.EXIT_USAGE)
        call(args.target)
        return 0
    try:
        root = _runner.require_lake(args.lake)
    except JobsError as e:
        return _fail(args.cmd, str(e), _runner.EXIT_USAGE)
    commands: dict[str, Callable[[], int]] = {
        "drain": lambda: _drain(root, args.follow),
        "triggers": lambda: _print_rows(list_triggers(root)),
        "runs": lambda: _print_rows(list_runs(root)),
        "history": lambda: _print_rows(_runner.history(root, args.job)),
    }
    return commands[args.cmd]()


def _drain(root: str, follow: float) -> int:
    summary = drain(root, follow_seconds=follow)
    print(json.dumps(summary, sort_keys=True))
    if summary["gave_up"]:
        first = summary["gave_up"][0]
        return _fail(
            "drain",
            f"{len(summary['gave_up'])} delivery(ies) gave up, e.g. event {first['event_id']} to "
            f"{first['subscriber']}: {first['error']}",
            _runner.EXIT_FAILED,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
