"""Hostile and malformed arguments to `lakehouse-jobs` (issue 16): exit code 2 with ONE line on stderr that names
the argument and the way out, no traceback, and nothing written under the lake (not even a job-history row).

Most cases run in this process through `jobs.cli(argv)` (fast); a few run the real command in a subprocess, where
the exit code and the whole of stderr are what a cron or Airflow job sees. Cases already in test_bad_arguments.py
and test_cli.py (a mistyped or empty lake) are not repeated.
"""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest

import jobs
from jobs import _runner

L = "{lake}"
"""Replaced by the lake's root in each argv."""

# (case, argv, text the one stderr line must hold: the argument or flag it names)
CASES = [
    # -- the command line itself
    ("no-command", [], "COMMAND"),
    ("unknown-command", ["optimise", L], "invalid choice"),
    ("unknown-flag", ["maintain", L, "--bogus-flag", "1"], "--bogus-flag"),
    ("missing-lake", ["maintain"], "lake"),
    ("missing-required", ["features", L, "--table", "f.t"], "--pipeline"),
    # -- the lake argument
    ("lake-is-a-file", ["maintain", "{file}"], "file"),
    ("lake-missing", ["triggers", "{lake}/nope"], "--create"),
    ("lake-empty-string", ["history", ""], "lake"),
    ("lake-dotdot-escape", ["runs", "{lake}/../../../../nonexistent-h5"], "nonexistent-h5"),
    ("lake-unknown-scheme", ["maintain", "gopher://host/lake"], "gopher"),
    ("lake-uri-no-path", ["runs", "lakehouse://"], "lake"),
    ("lake-uri-host", ["drain", "lakehouse://evil.example.com/lake"], "lake"),
    ("lake-nul-byte", ["history", "{lake}\x00x"], "lake"),
    ("lake-is-a-table-folder", ["history", "{lake}/mlflow"], "inside the lake"),
    ("lake-not-a-lake-dir", ["triggers", "{outside}"], "Delta table"),
    # -- seconds
    ("timeout-zero", ["maintain", L, "--timeout", "0"], "--timeout"),
    ("timeout-negative", ["maintain", L, "--timeout", "-5"], "--timeout"),
    (
        "timeout-nan",
        [
            "validate",
            L,
            "--timeout",
            "nan",
            "--model",
            "churn",
            "--version",
            "1",
            "--holdout-table",
            "h",
            "--label",
            "y",
        ],
        "--timeout",
    ),
    ("timeout-inf", ["maintain", L, "--timeout", "inf"], "--timeout"),
    ("timeout-text", ["maintain", L, "--timeout", "soon"], "--timeout"),
    ("follow-negative", ["drain", L, "--follow", "-1"], "--follow"),
    ("follow-nan", ["drain", L, "--follow", "nan"], "--follow"),
    # -- maintain
    ("retention-negative", ["maintain", L, "--retention-hours", "-1"], "retention_hours"),
    ("retention-nan", ["maintain", L, "--retention-hours", "nan"], "retention_hours"),
    ("retention-inf", ["maintain", L, "--retention-hours", "inf"], "retention_hours"),
    ("retention-text", ["maintain", L, "--retention-hours", "a week"], "--retention-hours"),
    ("tables-dotdot", ["maintain", L, "--tables", "../x"], "tables"),
    ("tables-absolute-outside", ["maintain", L, "--tables", "/etc"], "tables"),
    ("tables-injection", ["maintain", L, "--tables", "mlflow.runs; DROP TABLE x"], "tables"),
    ("tables-unknown", ["maintain", L, "--tables", "nope.nope"], "nope.nope"),
    ("tables-nul", ["maintain", L, "--tables", "t\x00"], "tables"),
    ("tables-only-commas", ["maintain", L, "--tables", ",,,"], "tables"),
    ("zorder-no-equals", ["maintain", L, "--zorder", "mlflow.runs"], "zorder"),
    ("zorder-no-columns", ["maintain", L, "--zorder", "mlflow.runs="], "zorder"),
    ("zorder-unknown-table", ["maintain", L, "--zorder", "nope.t=id"], "zorder"),
    ("zorder-unknown-column", ["maintain", L, "--zorder", "features.f=nope"], "nope"),
    ("zorder-injection", ["maintain", L, "--zorder", "features.f=id`); DROP TABLE x; --"], "zorder"),
    # -- features
    (
        "pipeline-no-colon",
        ["features", L, "--pipeline", "os.path.join", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-01-02"],
        "pipeline",
    ),
    (
        "pipeline-not-importable",
        [
            "features",
            L,
            "--pipeline",
            "no_such_pkg_h5:fn",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
        ],
        "pipeline",
    ),
    (
        "pipeline-no-function",
        [
            "features",
            L,
            "--pipeline",
            "os:no_such_fn",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
        ],
        "pipeline",
    ),
    (
        "pipeline-not-callable",
        ["features", L, "--pipeline", "os:sep", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-01-02"],
        "pipeline",
    ),
    (
        "pipeline-relative-import",
        ["features", L, "--pipeline", ".mod:fn", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-01-02"],
        "pipeline",
    ),
    (
        "pipeline-path",
        ["features", L, "--pipeline", "/tmp/x.py:fn", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-01-02"],
        "pipeline",
    ),
    (
        "features-table-dotdot",
        ["features", L, "--pipeline", "os:getcwd", "--table", "../x", "--start", "2026-01-01", "--end", "2026-01-02"],
        "table",
    ),
    (
        "features-table-absolute",
        ["features", L, "--pipeline", "os:getcwd", "--table", "/tmp/x", "--start", "2026-01-01", "--end", "2026-01-02"],
        "table",
    ),
    (
        "features-table-injection",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t;DROP",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
        ],
        "table",
    ),
    (
        "start-not-a-date",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "yesterday", "--end", "2026-01-02"],
        "start",
    ),
    (
        "end-not-a-date",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-13-01"],
        "end",
    ),
    (
        "end-before-start",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "2026-01-02", "--end", "2026-01-01"],
        "end",
    ),
    (
        "end-equals-start",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "2026-01-01", "--end", "2026-01-01"],
        "end",
    ),
    (
        "start-naive-end-aware",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01T01:00:00",
            "--end",
            "2026-01-01T02:00:00+02:00",
        ],
        "end",
    ),
    (
        "start-year-10000",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "10000-01-01", "--end", "2026-01-02"],
        "start",
    ),
    (
        "window-zero",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "0d",
        ],
        "window",
    ),
    (
        "window-negative",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "-1d",
        ],
        "window",
    ),
    (
        "window-nan",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "nan",
        ],
        "window",
    ),
    (
        "window-unknown-unit",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "3 fortnights",
        ],
        "window",
    ),
    (
        "window-huge",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "99999999999d",
        ],
        "primary_keys",
    ),
    (
        "primary-keys-empty",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--primary-keys",
            ",",
        ],
        "--primary-keys",
    ),
    # -- score
    (
        "score-unknown-model",
        [
            "score",
            L,
            "--model",
            "nope",
            "--stage",
            "Production",
            "--keys-table",
            "features.f",
            "--output-table",
            "p.out",
        ],
        "nope",
    ),
    (
        "score-no-stage-or-alias",
        ["score", L, "--model", "churn", "--keys-table", "features.f", "--output-table", "p.out"],
        "stage",
    ),
    (
        "score-unknown-stage",
        ["score", L, "--model", "churn", "--stage", "Prod", "--keys-table", "features.f", "--output-table", "p.out"],
        "stage",
    ),
    (
        "score-unknown-alias",
        ["score", L, "--model", "churn", "--alias", "nope", "--keys-table", "features.f", "--output-table", "p.out"],
        "alias",
    ),
    (
        "score-version-text",
        ["score", L, "--model", "churn", "--version", "one", "--keys-table", "features.f", "--output-table", "p.out"],
        "version",
    ),
    (
        "score-version-negative",
        ["score", L, "--model", "churn", "--version", "-1", "--keys-table", "features.f", "--output-table", "p.out"],
        "version",
    ),
    (
        "score-version-missing",
        ["score", L, "--model", "churn", "--version", "99", "--keys-table", "features.f", "--output-table", "p.out"],
        "99",
    ),
    (
        "score-start-without-time",
        [
            "score",
            L,
            "--model",
            "churn",
            "--version",
            "1",
            "--keys-table",
            "features.f",
            "--output-table",
            "p.out",
            "--start",
            "2026-01-01",
        ],
        "time",
    ),
    # -- monitor
    (
        "monitor-unknown-model",
        [
            "monitor",
            L,
            "--model",
            "nope",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
        ],
        "nope",
    ),
    (
        "monitor-unknown-stage",
        ["monitor", L, "--model", "churn", "--stage", "Prod", "--table", "features.f", "--label", "y", "--time", "ts"],
        "stage",
    ),
    (
        "monitor-unknown-task",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--task",
            "ranking",
        ],
        "--task",
    ),
    (
        "monitor-drift-method",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--drift-method",
            "chi2",
        ],
        "--drift-method",
    ),
    (
        "monitor-threshold-nan",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--drift-threshold",
            "nan",
        ],
        "drift_threshold",
    ),
    (
        "monitor-threshold-negative",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--drift-threshold",
            "-0.1",
        ],
        "drift_threshold",
    ),
    (
        "monitor-threshold-text",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--drift-threshold",
            "high",
        ],
        "--drift-threshold",
    ),
    (
        "monitor-window-zero",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--window",
            "0",
        ],
        "window",
    ),
    (
        "monitor-window-negative",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--window",
            "-7",
        ],
        "window",
    ),
    (
        "monitor-window-garbage",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--window",
            "fortnightly!",
        ],
        "window",
    ),
    (
        "monitor-start-garbage",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--start",
            "Jan 1st",
        ],
        "start",
    ),
    (
        "monitor-end-before-start",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--start",
            "2026-02-01",
            "--end",
            "2026-01-01",
        ],
        "end",
    ),
    (
        "monitor-tolerance-garbage",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--tolerances",
            "accuracy",
        ],
        "tolerances",
    ),
    (
        "monitor-tolerance-negative",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--tolerances",
            "accuracy=-1",
        ],
        "tolerances",
    ),
    (
        "monitor-tolerance-nan",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--tolerances",
            "accuracy=nan",
        ],
        "tolerances",
    ),
    (
        "monitor-baseline-garbage",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--baseline",
            "yesterday",
        ],
        "baseline",
    ),
    (
        "monitor-label-is-time",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "ts",
            "--time",
            "ts",
        ],
        "label",
    ),
    # -- validate
    (
        "validate-unknown-model",
        ["validate", L, "--model", "nope", "--version", "1", "--holdout-table", "features.f", "--label", "y"],
        "nope",
    ),
    (
        "validate-version-text",
        ["validate", L, "--model", "churn", "--version", "latest", "--holdout-table", "features.f", "--label", "y"],
        "version",
    ),
    (
        "validate-version-zero",
        ["validate", L, "--model", "churn", "--version", "0", "--holdout-table", "features.f", "--label", "y"],
        "version",
    ),
    (
        "validate-version-missing",
        ["validate", L, "--model", "churn", "--version", "42", "--holdout-table", "features.f", "--label", "y"],
        "42",
    ),
    (
        "validate-version-float",
        ["validate", L, "--model", "churn", "--version", "1.5", "--holdout-table", "features.f", "--label", "y"],
        "version",
    ),
    (
        "validate-tolerance-nan",
        [
            "validate",
            L,
            "--model",
            "churn",
            "--version",
            "1",
            "--holdout-table",
            "features.f",
            "--label",
            "y",
            "--tolerance",
            "nan",
        ],
        "tolerance",
    ),
    (
        "validate-tolerance-negative",
        [
            "validate",
            L,
            "--model",
            "churn",
            "--version",
            "1",
            "--holdout-table",
            "features.f",
            "--label",
            "y",
            "--tolerance",
            "-0.5",
        ],
        "tolerance",
    ),
    (
        "validate-metric-unknown",
        [
            "validate",
            L,
            "--model",
            "churn",
            "--version",
            "1",
            "--holdout-table",
            "features.f",
            "--label",
            "y",
            "--metric",
            "f7",
        ],
        "metric",
    ),
    # -- history / call
    ("history-job-injection", ["history", L, "--job", "maintain' OR '1'='1"], None),
    ("call-no-colon", ["call", "os.getcwd"], "target"),
    ("call-not-importable", ["call", "no_such_pkg_h5:fn"], "target"),
    ("call-not-callable", ["call", "os:sep"], "target"),
    ("call-empty", ["call", ""], "target"),
    (
        "features-start-empty",
        ["features", L, "--pipeline", "os:getcwd", "--table", "f.t", "--start", "", "--end", "2026-01-02"],
        "start",
    ),
    (
        "features-window-fraction",
        [
            "features",
            L,
            "--pipeline",
            "os:getcwd",
            "--table",
            "f.t",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--window",
            "1.5d",
        ],
        "window",
    ),
    (
        "score-stage-and-alias",
        [
            "score",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--alias",
            "champion",
            "--keys-table",
            "features.f",
            "--output-table",
            "p.out",
        ],
        "alias",
    ),
    (
        "score-version-and-stage",
        [
            "score",
            L,
            "--model",
            "churn",
            "--version",
            "1",
            "--stage",
            "Production",
            "--keys-table",
            "features.f",
            "--output-table",
            "p.out",
        ],
        "stage",
    ),
    (
        "monitor-features-empty",
        [
            "monitor",
            L,
            "--model",
            "churn",
            "--stage",
            "Production",
            "--table",
            "features.f",
            "--label",
            "y",
            "--time",
            "ts",
            "--features",
            ",",
        ],
        "--features",
    ),
    ("tables-unknown-scheme", ["maintain", L, "--tables", "gopher://x/t"], "gopher"),
]


@pytest.fixture(scope="module")
def hostile_lake(tmp_path_factory):
    """A lake with the registry tables (model `churn`, no versions) and one feature table; a plain file beside it."""
    base = tmp_path_factory.mktemp("jobs-hostile")
    root = base / "lake"
    mlflow.MlflowClient(f"lakehouse://{root}").create_registered_model("churn")
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(root / "features" / "f"), pa.table({"id": [1, 2], "ts": [1, 2], "y": [0, 1], "x": [0.5, 1.5]}))
    (base / "file.txt").write_text("not a lake")
    (base / "outside").mkdir()
    return base


def _files(top):
    out = {}
    for folder, _, names in os.walk(top):
        for n in names:
            p = os.path.join(folder, n)
            out[p] = os.lstat(p).st_size
    return out


def _argv(argv, base):
    fill = {"lake": str(base / "lake"), "file": str(base / "file.txt"), "outside": str(base / "outside")}
    return [a.format(**fill) if "{" in a else a for a in argv]


@pytest.mark.parametrize(("case", "argv", "text"), CASES, ids=[c[0] for c in CASES])
def test_hostile_arguments_exit_2_with_one_line_and_write_nothing(hostile_lake, capsys, case, argv, text):
    before = _files(hostile_lake)
    code = jobs.cli(_argv(argv, hostile_lake))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and " INFO " not in line and " WARNING " not in line]
    if text is None:  # a filter value that matches nothing: an ordinary, empty answer
        assert code == 0 and lines == [], err
    else:
        assert code == _runner.EXIT_USAGE, err
        assert len(lines) == 1, err
        assert "Traceback" not in err
        assert text in lines[0], lines[0]
    assert _files(hostile_lake) == before


def test_distinct_classes():
    assert len({c[0] for c in CASES}) == len(CASES) >= 100


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["maintain", "{file}"], "the path is a file"),
        (["maintain", "{lake}", "--timeout", "-1"], "--timeout"),
        (
            [
                "features",
                "{lake}",
                "--pipeline",
                "no_such_pkg_h5:fn",
                "--table",
                "f.t",
                "--start",
                "2026-01-01",
                "--end",
                "2026-01-02",
            ],
            "pipeline",
        ),
        (["maintain", "{lake}", "--retention-hours", "soon"], "--retention-hours"),
    ],
    ids=["lake-is-a-file", "timeout", "pipeline", "argparse-type"],
)
def test_the_real_command_exits_2_with_exactly_one_line(hostile_lake, argv, text):
    before = _files(hostile_lake)
    p = subprocess.run(
        [sys.executable, "-m", "jobs", *_argv(argv, hostile_lake)], capture_output=True, text=True, timeout=300
    )
    assert p.returncode == _runner.EXIT_USAGE, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lakehouse-jobs") and text in lines[0], p.stderr
    assert _files(hostile_lake) == before
