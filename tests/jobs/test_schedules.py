"""The scheduling examples in notebooks/schedules (cron, an Airflow DAG, a Databricks job) call `lakehouse-jobs`
with arguments the real command line accepts: each command is parsed by the CLI's own parser, so a renamed or
removed flag fails here instead of in a user's scheduler. Airflow is not installed: the DAG file is read as
source, its `bash_command` strings evaluated from their literal parts."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

import pytest

from jobs.__main__ import _parser
from jobs._cli_jobs import JOBS

SCHEDULES = Path(__file__).parents[2] / "notebooks" / "schedules"


def _parse(argv: list[str]) -> str:
    """The subcommand `argv` runs, after the CLI's parser accepted it (argparse exits 2 on anything else)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # pragma: no cover - the failure message is what matters
        pytest.fail(f"lakehouse-jobs refuses {argv}: exit {e.code}")
    return str(args.cmd)


def _cron_commands() -> list[list[str]]:
    out = []
    for line in (SCHEDULES / "crontab").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" in line.split()[0]:
            continue
        words = shlex.split(line.replace("\\%", "%"))
        at = words.index("$LJ")
        out.append(words[at + 1 :])
    return out


def _airflow_commands() -> list[list[str]]:
    tree = ast.parse((SCHEDULES / "airflow_lakehouse_dag.py").read_text())
    names = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    constants = {k: ast.literal_eval(v) for k, v in names.items() if isinstance(v, ast.Constant)}

    def text(node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.JoinedStr):
            return "".join(text(v.value) if isinstance(v, ast.FormattedValue) else str(v.value) for v in node.values)
        if isinstance(node, ast.Name):
            return str(constants[node.id])
        if isinstance(node, ast.BinOp):
            return text(node.left) + text(node.right)
        raise AssertionError(f"unexpected bash_command part {ast.dump(node)}")

    commands = [
        shlex.split(text(k.value))
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        for k in call.keywords
        if k.arg == "bash_command"
    ]
    return [c[1:] for c in commands]


def _databricks_commands() -> list[list[str]]:
    job = json.loads((SCHEDULES / "databricks_job.json").read_text())
    tasks = [t["python_wheel_task"] for t in job["tasks"]]
    assert {t["entry_point"] for t in tasks} == {"lakehouse-jobs"} and {t["package_name"] for t in tasks} == {
        "lakehouse-ml"
    }
    return [t["parameters"] for t in tasks]


@pytest.mark.parametrize(
    ("source", "commands"),
    [("cron", _cron_commands), ("airflow", _airflow_commands), ("databricks", _databricks_commands)],
)
def test_every_scheduled_command_parses(source, commands):
    found = commands()
    assert found, f"no lakehouse-jobs command found in the {source} example"
    ran = {_parse(argv) for argv in found}
    assert ran <= {*JOBS, "drain"}, ran
    assert "score" in ran and "maintain" in ran


def test_the_console_script_is_the_one_the_examples_name():
    import tomllib

    pyproject = tomllib.loads((SCHEDULES.parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "lakehouse-ml"
    assert pyproject["project"]["scripts"]["lakehouse-jobs"] == "jobs.__main__:main"
