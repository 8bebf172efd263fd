"""A real `mlflow models serve` on a free 127.0.0.1 port, for the tests that post requests to a served model."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from http_process import Running, free_port, running, script


@dataclass
class ModelServer:
    served: Running

    @property
    def base(self) -> str:
        return self.served.base

    @property
    def log(self) -> str:
        """The server's output, once it has stopped."""
        return self.served.log

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
    command = [script("mlflow"), "models", "serve", "-m", model_uri, "--env-manager", env_manager]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with running(command, port, "/ping", env, timeout) as served:
        yield ModelServer(served)
