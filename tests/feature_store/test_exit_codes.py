"""Processes that build training sets exit 0 every time: the local join path reads Parquet with pyarrow
in the driver, next to deltalake's native code, and an abort at exit (code 134) would fail a batch job."""

import subprocess
import sys
from pathlib import Path

import pytest
from worker_env import worker_env

WORKER = str(Path(__file__).with_name("_worker.py"))


@pytest.mark.slow
def test_training_set_processes_exit_zero_every_time(tmp_path, trials):
    """3 processes (one creates the table, then two at once, one per core); `pytest --long`: 11."""
    root = str(tmp_path / "lake")
    first = subprocess.run(
        [sys.executable, WORKER, root], capture_output=True, text=True, timeout=300, env=worker_env()
    )
    assert first.returncode == 0, first.stderr[-3000:]
    runs = trials(2, 10)
    for i in range(0, runs, 2):
        procs = [
            subprocess.Popen(
                [sys.executable, WORKER, root],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=worker_env(),
            )
            for _ in range(2)
        ]
        for j, p in enumerate(procs):
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, f"run {i + j}: exit {p.returncode}\n{err[-3000:]}"
