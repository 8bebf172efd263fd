"""A real `mlflow server` on a free 127.0.0.1 port for the tests that talk to the lake over REST."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from http_process import Running, free_port, running, script


@contextmanager
def mlflow_server(backend_uri: str, artifact_root: str, timeout: float = 90.0) -> Iterator[Running]:
    """Start `mlflow server` against `backend_uri`, wait until /health answers, yield it (`base` is its URL); on
    exit stop it with SIGTERM and assert it exited 0 (its output is in the assertion message and in `log`)."""
    port = free_port()
    command = [script("mlflow"), "server", "--backend-store-uri", backend_uri]
    command += ["--default-artifact-root", artifact_root, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running(command, port, "/health", timeout=timeout) as served:
        yield served
    assert served.process.returncode == 0, f"server exited {served.process.returncode}:\n{served.log[-3000:]}"
