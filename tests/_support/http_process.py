"""A server process for tests: started on a free 127.0.0.1 port, waited for until a URL answers 200, stopped with
SIGTERM (then SIGKILL), its output kept in a file (a pipe nobody reads fills up at 64 KiB and stalls the server
mid-request) and handed back as `log`. `mlflow server` and `mlflow models serve` are both run through it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Running:
    base: str
    process: subprocess.Popen
    log: str = ""  # the server's output, filled in when it has stopped


def script(name: str) -> str:
    """A console script of this interpreter's environment (`mlflow`, `uvicorn`, ...)."""
    return os.path.join(os.path.dirname(sys.executable), name)


@contextmanager
def running(
    command: Sequence[str], port: int, ready_path: str, env: Mapping[str, str] | None = None, timeout: float = 90.0
) -> Iterator[Running]:
    """Run `command` (serving on `port`) with `env` added to this environment and this interpreter's scripts
    first on PATH, as in an activated venv; yield once `ready_path` answers 200; stop it on exit."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, "PATH": path, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        served = Running(f"http://127.0.0.1:{port}", process)
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    with urllib.request.urlopen(served.base + ready_path, timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                assert process.poll() is None, f"{command[:3]} exited early ({process.returncode}): {_read(log)}"
                assert time.time() < deadline, f"{command[:3]} did not answer {ready_path} in {timeout:.0f} s"
                time.sleep(0.25)
            yield served
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            served.log = _read(log)


def _read(log) -> str:
    log.seek(0)
    return log.read()
