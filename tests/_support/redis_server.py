"""A real `redis-server` for tests: on a free port of 127.0.0.1, its own temporary folder, no persistence.

Never a fake: the online store's atomicity (MULTI/EXEC, WATCH, RENAME) is the server's, so the tests need the
server. `make test` installs it (`apt-get install -y redis-server`); without it on PATH, `start` raises
RedisServerMissing, and the fixture built on it fails (it does not skip) saying so.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

INSTALL_HINT = (
    "redis-server is not on PATH: the online-store tests run a real Redis. `make test` installs it "
    "(apt-get install -y redis-server); install it the same way to run these tests by hand."
)


class RedisServerMissing(RuntimeError):
    pass


@dataclass
class RedisServer:
    host: str
    port: int
    state_dir: Path
    process: subprocess.Popen = field(repr=False)
    password: str | None = field(default=None, repr=False)

    def client(self):
        import redis

        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_connect_timeout=2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.state_dir / "redis.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def start(state_dir: Path, *, password: str | None = None, timeout: float = 30.0) -> RedisServer:
    """Start redis-server on a free port of 127.0.0.1 (with `password` required, if given); return once it
    answers PING."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RedisServerMissing(INSTALL_HINT)
    state_dir.mkdir(parents=True, exist_ok=True)
    # The port is free when chosen; another process could take it before the server binds, in which case the
    # server exits and its log says so (the loop below reports it).
    port = _free_port()
    args = [
        exe,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(state_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        str(state_dir / "redis.log"),
        *(["--requirepass", password] if password else []),
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    server = RedisServer("127.0.0.1", port, state_dir, process, password)
    client = server.client()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if client.ping():
                    return server
            except Exception:  # noqa: BLE001 - not listening yet (connection refused)
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"redis-server did not answer PING within {timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.02)  # a poll interval, not a barrier: the condition is the PING above
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
