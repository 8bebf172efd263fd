"""Exit codes: every `lakehouse-jobs` command that reads tables exits 0 on success, many times in a row, as a real
process on a small lake (an abort at interpreter exit, the deltalake + pyarrow exit 134, would show as a
non-zero code here); a failure exits non-zero and ends with one clear line on stderr, never a traceback.

Cost: one process per call (~2 s of CPU each on the 2-core machine: the imports of MLflow, deltalake, pyarrow;
no JVM: `maintain` uses the JVM-less deltalake engine), run two at a time: the issue's 10 per command in the
default run, 50 under `--long`. `monitor` and `validate` are left out: each needs a registered pyfunc model and a
labelled table, so a Spark session and a model fit per lake (tests/jobs/test_monitor.py and test_validate.py run
them as real commands; see RELIABILITY.md).
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest
from mlflow import MlflowClient
from reliability_helpers import JOBS, PYTHON, REPO, env

COMMANDS = {
    "history": ["history"],
    "runs": ["runs"],
    "triggers": ["triggers"],
    "maintain": ["maintain"],  # its default: OPTIMIZE, VACUUM as a dry run
    "drain": ["drain"],  # reads the registry's events and the webhooks
}
DEFAULT_RUNS, LONG_RUNS = 10, 50


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory) -> str:
    """A lake with an experiment, runs with params and metrics, a registered model with a version and an alias,
    and a job run recorded (so history, runs and maintain have rows to read)."""
    root = str(tmp_path_factory.mktemp("exit") / "lake")
    uri = f"lakehouse://{root}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("e")
    for i in range(3):
        rid = client.create_run(exp).info.run_id
        client.log_param(rid, "i", str(i))
        for s in range(5):
            client.log_metric(rid, "loss", 1.0 / (s + 1), step=s)
        client.set_terminated(rid)
    client.create_registered_model("m")
    client.create_model_version("m", source="s3://b/m/1")
    client.set_registered_model_alias("m", "champion", "1")
    return root


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*JOBS, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(), cwd=REPO
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_that_reads_tables_exits_zero_every_time(small_lake, command, trials, figures):
    runs = trials(DEFAULT_RUNS, LONG_RUNS)
    codes: Counter = Counter()
    failures: list[str] = []
    for _ in range(0, runs, 2):  # two at a time: one per core
        procs = [_start([*COMMANDS[command][:1], small_lake, *COMMANDS[command][1:]]) for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=600)
            codes[p.returncode] += 1
            if p.returncode != 0:
                failures.append(f"exit {p.returncode}: {err[-2000:]}")
    figures.update(command=command, runs=sum(codes.values()), exit_codes=dict(codes))
    assert codes == {0: sum(codes.values())}, failures[:3]


def _one_clear_line(stderr: str) -> str:
    """The last non-empty line of stderr (the INFO log lines come before it), with no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    return lines[-1]


@pytest.mark.slow
def test_failures_exit_non_zero_with_one_clear_line(small_lake, tmp_path, figures):
    """A lake that is not there (exit 2, nothing created), an unknown table to maintain (exit 2)."""
    cases = {}
    missing = str(tmp_path / "nowhere")
    for command in ("history", "runs", "triggers", "maintain"):
        p = subprocess.run([*JOBS, command, missing], capture_output=True, text=True, env=env(), timeout=600)
        cases[f"{command} (no lake)"] = p.returncode
        assert p.returncode == 2, p.stderr[-2000:]
        assert missing in _one_clear_line(p.stderr)
        assert not os.path.exists(missing)
    p = subprocess.run(
        [*JOBS, "maintain", small_lake, "--tables", "no_such.table"], capture_output=True, text=True, env=env()
    )
    cases["maintain --tables no_such.table"] = p.returncode
    assert p.returncode == 2 and "no_such.table" in _one_clear_line(p.stderr), p.stderr[-2000:]
    figures.update(cases=cases)


@pytest.mark.slow
def test_a_failed_job_ends_with_one_clear_line(tmp_path, figures):
    """A truncated commit in a user table maintain must read: exit 1, and stderr ends with the line naming it."""
    cases = {}
    # a user table whose newest commit is garbage: maintain fails naming it, and nothing else is touched
    corrupt = tmp_path / "corrupt"
    made = subprocess.run(
        [PYTHON, "-c", _CORRUPT_LAKE, str(corrupt)], capture_output=True, text=True, env=env(), timeout=600
    )
    assert made.returncode == 0, made.stderr[-2000:]
    p = subprocess.run([*JOBS, "maintain", str(corrupt)], capture_output=True, text=True, env=env(), timeout=600)
    cases["maintain (a corrupt commit)"] = p.returncode
    figures.update(cases=cases)
    assert p.returncode == 1, p.stderr[-2000:]
    line = _one_clear_line(p.stderr)
    assert "events" in line, line


_CORRUPT_LAKE = """
import sys, deltalake, pyarrow as pa
root = sys.argv[1]
deltalake.write_deltalake(f"{root}/sales/events", pa.table({"id": [1, 2, 3]}))
deltalake.write_deltalake(f"{root}/sales/events", pa.table({"id": [4]}), mode="append")
with open(f"{root}/sales/events/_delta_log/00000000000000000001.json", "w") as fh:
    fh.write('{"add": {"path": "part-x.parquet", "size": 1')  # truncated: the process writing it died
"""


@pytest.mark.slow
def test_the_demo_exits_zero_three_times_in_a_row(tmp_path, request, figures):
    """`notebooks/demo.py` three times, each in a fresh process and lake; only under `--long` (the default run
    already runs it once: tests/test_demo.py)."""
    if not request.config.getoption("--long"):
        pytest.skip("--long only: the default run runs the demo once (tests/test_demo.py)")
    codes = []
    for i in range(3):
        demo_env = {**env(), "LAKEHOUSE_ROOT": str(tmp_path / f"lake{i}")}
        p = subprocess.run(
            [PYTHON, os.path.join(REPO, "notebooks", "demo.py")],
            capture_output=True,
            text=True,
            timeout=1800,
            env=demo_env,
            cwd=tmp_path,
        )
        codes.append(p.returncode)
        assert p.returncode == 0, f"run {i}: exit {p.returncode}\n{p.stderr[-3000:]}"
    figures.update(demo_runs=len(codes), exit_codes=codes)
