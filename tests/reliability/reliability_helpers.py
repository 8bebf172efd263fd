"""Oracles and process handling shared by the reliability suites.

Tables are read here with deltalake's file list and pyarrow (no code of ours reads them back), acknowledgements
from the files the workers append to, and processes are started and killed by pid only.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from deltalake import DeltaTable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):  # a venv elsewhere: the interpreter running the tests is the project's
    PYTHON = sys.executable
WORKER = os.path.join(HERE, "reliability_worker.py")
JOBS = [PYTHON, "-m", "jobs"]
_COMMIT = re.compile(r"^\d{20}\.json$")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, HERE])}


def spawn(*args: str, log: str | None = None) -> subprocess.Popen:
    """A worker process (`_worker.py ARGS`), its stderr to `log` (or discarded)."""
    err = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen([PYTHON, WORKER, *args], stdout=subprocess.DEVNULL, stderr=err, env=env())


def jobs(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`lakehouse-jobs ARGS` as a real process."""
    return subprocess.run([*JOBS, *args], capture_output=True, text=True, timeout=timeout, env=env())


def wait_for(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def acks(path: str) -> list[list[str]]:
    """The acknowledgement lines of a worker, split into fields (a missing file: none)."""
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [line.split(" ", 3) if line.startswith("error") else line.split() for line in fh if line.strip()]


def errors_in(lines: list[list[str]]) -> list[list[str]]:
    return [line for line in lines if line[0] == "error"]


def rows(path: str, version: int | None = None) -> list[dict]:
    """Every row of the Delta table at `path` (its latest version, or `version`), read with deltalake + pyarrow."""
    table = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
    return [r for uri in table.file_uris() for r in pq.read_table(uri).to_pylist()]


def tables_under(root: str) -> list[str]:
    """Every Delta table directory below `root`."""
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        if "_delta_log" in dirnames:
            found.append(dirpath)
            dirnames.clear()
    return sorted(found)


def commits(table: str) -> set[str]:
    log = os.path.join(table, "_delta_log")
    return {n for n in os.listdir(log) if _COMMIT.match(n)} if os.path.isdir(log) else set()


def data_files(table: str) -> set[str]:
    return {n for n in os.listdir(table) if n.endswith(".parquet")} if os.path.isdir(table) else set()


@dataclass
class Watch:
    """The files of some table directories, to kill a process the moment a new data file or commit appears."""

    tables: list[str]
    kind: str  # "data" (a new Parquet file), "commit" (a new _delta_log/<v>.json)
    before: set[tuple[str, str]] = field(default_factory=set)

    def snapshot(self) -> set[tuple[str, str]]:
        listing = data_files if self.kind == "data" else commits
        return {(t, n) for t in self.tables for n in listing(t)}

    def __post_init__(self) -> None:
        self.before = self.snapshot()

    def fired(self) -> bool:
        return bool(self.snapshot() - self.before)


def kill_when(proc: subprocess.Popen, fired: Callable[[], bool] | None, delay: float = 0.0) -> bool:
    """SIGKILL `proc` the moment `fired()` holds (polled every millisecond), or after `delay` seconds when `fired`
    is None. Returns False when the process ended first (its work then completed; the caller's checks cover that
    too), True when it was killed."""
    deadline = time.monotonic() + (delay if fired is None else 300)
    while proc.poll() is None and time.monotonic() < deadline:
        if fired is not None and fired():
            break
        time.sleep(0.001)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return True


def stop(proc: subprocess.Popen) -> None:
    """Kill a process this test started, if it still runs."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def tail(path: str, n: int = 3000) -> str:
    try:
        with open(path) as fh:
            return fh.read()[-n:]
    except FileNotFoundError:
        return ""
