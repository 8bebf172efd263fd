"""`lakehouse-jobs` conventions, run as the real command: a mistyped lake refused with one line and nothing
created, every job run recorded with its exit code, a timed-out job's whole process group killed, and a drain whose
deliveries gave up exiting non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

import jobs
from jobs import _runner
from jobs.errors import InvalidJobArgumentError, JobsError, LakeNotFoundError
from lakehouse import find_tables

CLI = [sys.executable, "-m", "jobs"]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.fixture
def lake(tmp_path):
    """A lake with its registry tables (as any MLflow call on lakehouse:/// makes)."""
    root = tmp_path / "lake"
    mlflow.MlflowClient(f"lakehouse://{root}").create_registered_model("churn")
    return root


@pytest.mark.parametrize("command", ["runs", "triggers", "history", "drain"])
def test_a_mistyped_lake_is_refused_and_nothing_is_created(tmp_path, lake, command):
    typo = tmp_path / "laek"
    p = cli(command, str(typo))
    assert p.returncode == _runner.EXIT_USAGE, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(typo) in lines[0] and "--create" in lines[0], p.stderr
    assert not typo.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    p = cli(command, f"lakehouse://{empty}")
    assert p.returncode == _runner.EXIT_USAGE and "holds no Delta table" in p.stderr
    assert list(empty.iterdir()) == []
    assert cli(command, str(lake)).returncode == 0


def test_require_lake_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(LakeNotFoundError) as info:
        _runner.require_lake(tmp_path / "nowhere")
    assert info.value.lake == str(tmp_path / "nowhere") and isinstance(info.value, FileNotFoundError)
    with pytest.raises(InvalidJobArgumentError, match="lakehouse:///<absolute path"):
        _runner.require_lake("lakehouse://relative/path")
    assert _runner.require_lake(tmp_path / "new", create=True) == str(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def _ok(root: str, *, n: int) -> dict:
    return {"rows": n}


def _alert(root: str) -> dict:
    return {"alerts": [{"metric": "f1", "value": 0.5, "threshold": 0.8}]}


def _fails(root: str) -> dict:
    raise JobsError("window 2026-03 failed: boom")


def _verdict(root: str) -> dict:
    return {"status": "failed", "metric": "accuracy", "candidate": 0.61, "production": 0.74}


def _refuses(root: str) -> dict:
    raise InvalidJobArgumentError("demo", "table", "nope", "one of ['a', 'b']")


def test_every_run_is_recorded_with_its_status_exit_code_and_figures(lake):
    outcomes = {
        "ok": _runner.run_job("ok", _ok, str(lake), {"n": 3}),
        "alert": _runner.run_job("alert", _alert, str(lake), {}),
        "fails": _runner.run_job("fails", _fails, str(lake), {}),
        "refused": _runner.run_job("refused", _refuses, str(lake), {}),
        "verdict": _runner.run_job("verdict", _verdict, str(lake), {}),
    }
    codes = {k: o.exit_code for k, o in outcomes.items()}
    assert codes == {"ok": 0, "alert": 3, "fails": 1, "refused": 2, "verdict": 1}
    assert outcomes["fails"].error == "window 2026-03 failed: boom"
    history = {h.job: h for h in _runner.history(lake)}
    assert set(history) == {"ok", "alert", "fails", "verdict"}, "a refused run writes nothing, not even its record"
    assert history["verdict"].status == "failed" and history["verdict"].figures["candidate"] == 0.61
    assert "reported status 'failed'" in (outcomes["verdict"].error or "")
    assert history["ok"].status == "succeeded" and history["ok"].figures == {"rows": 3}
    assert history["ok"].arguments == {"n": 3} and history["ok"].start_time <= history["ok"].end_time
    assert history["alert"].status == "alert" and history["alert"].exit_code == 3
    assert history["fails"].status == "failed" and history["fails"].error == "window 2026-03 failed: boom"
    p = cli("history", str(lake), "--job", "ok")
    assert p.returncode == 0 and [json.loads(line)["job"] for line in p.stdout.splitlines()] == ["ok"]


GRANDCHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(600)
"""


def test_a_timed_out_trigger_job_takes_its_whole_process_group_with_it(tmp_path):
    script = tmp_path / "slow_job.py"
    script.write_text(GRANDCHILD)
    pid_file = tmp_path / "grandchild.pid"
    lake = tmp_path / "lake"
    # The registry writes happen in a process that delivers nothing (LAKEHOUSE_REGISTRY_DISPATCH=0): a dispatcher
    # thread here (started by any registry write of this process) would run the job before the drain below does.
    setup = (
        "import mlflow, sys, jobs\n"
        "lake, script, pid_file = sys.argv[1:]\n"
        "c = mlflow.MlflowClient('lakehouse://' + lake)\n"
        "c.create_registered_model('churn')\n"
        "jobs.create_trigger(lake, name='slow', model_name='churn', stage='Staging',\n"
        "                    command=[sys.executable, script, pid_file], timeout_seconds=2)\n"
        "c.create_model_version('churn', 's3://b/1')\n"
        "c.transition_model_version_stage('churn', 1, 'Staging')\n"
    )
    env = {**os.environ, "LAKEHOUSE_REGISTRY_DISPATCH": "0"}
    argv = [sys.executable, "-c", setup, str(lake), str(script), str(pid_file)]
    subprocess.run(argv, check=True, env=env, timeout=300, capture_output=True)
    p = cli("drain", str(lake), env={"LAKEHOUSE_REGISTRY_DISPATCH": "0"})
    assert p.returncode == _runner.EXIT_FAILED, (p.stdout, p.stderr)
    assert "gave up" in p.stderr and "job exited None" in p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["gave_up"][0]["subscriber"].startswith("trigger:")
    (run,) = jobs.list_runs(lake)
    assert run.status == "failed" and "[killed after 2 s]" in run.output
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 30
    while _alive(grandchild):
        assert time.time() < deadline, f"the job's child {grandchild} outlived the job's timeout"
        time.sleep(0.1)
    assert cli("drain", str(lake)).returncode == 0, "nothing is due any more: a later drain succeeds"


def test_help_names_every_command_and_the_exit_codes():
    p = cli("--help")
    assert p.returncode == 0
    for word in ("drain", "triggers", "runs", "history", "exit codes", "alert", "--timeout"[2:]):
        assert word in p.stdout
    assert find_tables("/nonexistent/lake") == []
