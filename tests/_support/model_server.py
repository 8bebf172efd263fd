"""A real `mlflow models serve` on a free 127.0.0.1 port, for the tests that post requests to a served model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ModelServer:
    base: str
    log: str = ""  # the server's output, filled in when it has stopped

    def invoke(self, records: list[dict[str, Any]], timeout: float = 30.0) -> Any:
        """POST `records` to /invocations (MLflow's `dataframe_records` format); the decoded JSON answer."""
        body = json.dumps({"dataframe_records": records}).encode()
        request = urllib.request.Request(
            f"{self.base}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())


@contextmanager
def model_server(
    model_uri: str, env: Mapping[str, str], env_manager: str = "local", timeout: float = 120.0
) -> Iterator[ModelServer]:
    """Start `mlflow models serve -m model_uri` with `env` added to this process's environment, wait until /ping
    answers, yield it; on exit stop it with SIGTERM (its output is in `log`)."""
    port = free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        env_manager,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # the server's output goes to a file: a pipe nobody reads fills up (64 KiB) and stalls the server mid-request
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(
        command,
        # the server execs `uvicorn` from PATH: this interpreter's scripts first, as in an activated venv
        env={**os.environ, "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served = ModelServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{served.base}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, f"server exited early ({server.returncode}): {_read(log)}"
            assert time.time() < deadline, f"model server did not answer /ping in {timeout:.0f} s"
            time.sleep(0.25)
        yield served
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        served.log = _read(log)
        log.close()


def _read(log: Any) -> str:
    log.seek(0)
    return log.read()
