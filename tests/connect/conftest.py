"""A Spark Connect server (the project's local session with Spark's Connect plugin) for this folder's tests.

`make test` turns them on with LAKEHOUSE_TEST_CONNECT=1; a bare `pytest` skips them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from worker_env import worker_env

HERE = Path(__file__).parent
READY_TIMEOUT = 180


@dataclass
class ConnectServer:
    url: str
    process: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory) -> Iterator[ConnectServer]:
    if os.environ.get("LAKEHOUSE_TEST_CONNECT") != "1":
        pytest.skip("starts a Spark Connect server: set LAKEHOUSE_TEST_CONNECT=1 to run it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tmp_path_factory.mktemp("connect-server")
    log = work / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "connect_server.py"), str(port)],
            cwd=work,
            env=worker_env(SPARK_LOCAL_IP="127.0.0.1"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=out,
        )
    server = ConnectServer(f"sc://127.0.0.1:{port}", process, log)
    ready = threading.Event()

    def wait_ready() -> None:
        assert process.stdout is not None
        if process.stdout.readline().strip() == b"ready":
            ready.set()

    waiter = threading.Thread(target=wait_ready, daemon=True)
    waiter.start()
    waiter.join(READY_TIMEOUT)
    try:
        if not ready.is_set():
            pytest.fail(f"the Spark Connect server did not start (exit {process.poll()}):\n{server.log_tail()}")
        yield server
    finally:
        assert process.stdin is not None
        process.stdin.close()  # the server stops its session and exits
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
