"""A real `mlflow server` on a free 127.0.0.1 port for the tests that talk to the lake over REST."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    base: str
    log: str = ""  # the server's output, filled in when it has stopped


@contextmanager
def mlflow_server(backend_uri: str, artifact_root: str, timeout: float = 90.0) -> Iterator[Served]:
    """Start `mlflow server` against `backend_uri`, wait until /health answers, yield its base URL; on exit
    stop it with SIGTERM and assert it exited 0 (its output is in the assertion message and in `log`)."""
    port = free_port()
    server = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "mlflow"),
            "server",
            "--backend-store-uri",
            backend_uri,
            "--default-artifact-root",
            artifact_root,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = Served(f"http://127.0.0.1:{port}")
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{served.base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"server exited early ({server.returncode}): {server.stdout.read()}"
            assert time.time() < deadline, f"server did not become healthy in {timeout:.0f} s"
            time.sleep(0.5)
        yield served
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        served.log, _ = server.communicate(timeout=60)
    assert server.returncode == 0, f"server exited {server.returncode}:\n{served.log[-3000:]}"
