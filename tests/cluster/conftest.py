"""A Spark standalone cluster from the installed pyspark: a master and two workers (1 core, 1g each), separate
JVMs on 127.0.0.1, started once for the module that asks for it and stopped with every process it left.

The pyspark wheel has no sbin/ start scripts: each daemon is `bin/spark-class <main class>`, which execs its
JVM (the pid we start is the daemon's). Ports are free ones found at run time; readiness is the master's JSON
status listing both workers ALIVE.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyspark
import pytest
from worker_env import worker_env

START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
WORKERS = 2


@dataclass
class StandaloneCluster:
    """A running master and its workers: the URL drivers connect to, and the processes to stop."""

    master_url: str
    status_url: str
    base: Path
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def processes(self) -> dict[str, subprocess.Popen[bytes]]:
        return {"master": self.master, **{f"worker{i}": w for i, w in enumerate(self.workers, 1)}}

    def logs_tail(self, lines: int = 15) -> str:
        """The last lines of every daemon's log and every executor's stderr, for a failure message."""
        parts = []
        for log in sorted(self.base.glob("logs/*.log")) + sorted(self.base.glob("work/*/app-*/*/stderr")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.relative_to(self.base)}\n" + "\n".join(text))
        return "\n".join(parts)

    def alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as resp:
                status = json.load(resp)
        except (OSError, urllib.error.URLError, ValueError):  # not listening yet, or a partial answer
            return 0
        return sum(w["state"] == "ALIVE" for w in status["workers"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The pids whose parent is `pid` (a worker's executors), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # the process ended while we looked
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop(pids: list[int], procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, wait until all are gone, SIGKILL whatever outlives STOP_TIMEOUT."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended already
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        for proc in procs:
            proc.poll()  # reap our own children, or they stay zombies
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=STOP_TIMEOUT)


def _daemon(base: Path, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with open(base / "logs" / f"{name}.log", "wb") as log:
        return subprocess.Popen([str(spark_class), *args], stdout=log, stderr=subprocess.STDOUT, env=env)


def _cluster_env(base: Path) -> dict[str, str]:
    # Short-lived JVM flags for the daemons and (through the workers' environment) their executors: the module
    # measured 66 s of CPU and 118 s of wall time with them, 152 s and 231 s without, on a loaded 2-core machine.
    return {
        **worker_env(),
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_HOSTNAME": "127.0.0.1",
        "SPARK_LOG_DIR": str(base / "logs"),
        "SPARK_CONF_DIR": str(base / "conf"),
    }


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory) -> Iterator[StandaloneCluster]:
    """A master and two 1-core, 1g workers on 127.0.0.1, ready (both workers registered) when yielded."""
    base = tmp_path_factory.mktemp("standalone")
    for d in ("logs", "conf", "work", "local"):
        (base / d).mkdir()
    env = _cluster_env(base)
    port, ui_port = _free_port(), _free_port()
    master = _daemon(
        base,
        "master",
        [
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui_port),
        ],
        env,
    )
    cluster = StandaloneCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}/json/", base, master)
    try:
        for i in range(1, WORKERS + 1):
            work, local = base / "work" / f"w{i}", base / "local" / f"w{i}"
            work.mkdir()
            local.mkdir()
            worker = _daemon(
                base,
                f"worker{i}",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    cluster.master_url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    "0",
                    "--work-dir",
                    str(work),
                ],
                {**env, "SPARK_LOCAL_DIRS": str(local)},
            )
            cluster.workers.append(worker)
        deadline = time.monotonic() + START_TIMEOUT
        while cluster.alive_workers() < WORKERS:
            dead = [name for name, p in cluster.processes.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                reason = f"exited: {dead}" if dead else f"not ready after {START_TIMEOUT:.0f} s"
                pytest.fail(f"standalone cluster {reason}\n{cluster.logs_tail()}")
            time.sleep(0.1)
        yield cluster
    finally:
        # Workers first (each takes its executors down; any it left are stopped next), the master last.
        executors = [c for w in cluster.workers for c in _children(w.pid)]
        _stop([w.pid for w in cluster.workers], cluster.workers)
        _stop([e for e in executors if _alive(e)], [])
        _stop([master.pid], [master])
        shutil.rmtree(base, ignore_errors=True)
