"""The notebooks are documentation that must keep running: execute each one, as Jupyter would (the demo:
tests/test_demo.py, a file of its own so that pytest-xdist runs it beside the notebooks).

Each notebook runs in the kernel its metadata names (`lakehouse-ml`, registered for this environment by
`notebooks/register_kernel.py`, which `make` runs in its set-up step), so a missing registration fails here as it
would in a standard Jupyter. A notebook must finish within NOTEBOOK_SECONDS, kernel start included, with no cell in
error. Its key results, the last expression of the cells tagged below, are then checked against oracles computed
here independently: Delta tables read by replaying their `_delta_log` JSON by hand and reading the Parquet files
with pyarrow, a point-in-time join by a loop over the rows, models refitted with scikit-learn.
"""

from __future__ import annotations

import ast
import base64
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "lakehouse-ml"
NOTEBOOK_SECONDS = 120  # the bound for one notebook, top to bottom, on the embedded default
# The kernel's JVM lives a minute or two: C1 alone and one GC thread cost less CPU on 2 shared cores, as for every
# short-lived Spark process the suite starts (tests/_support/worker_env.py).
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
REGISTER = ".venv/bin/python notebooks/register_kernel.py"


# -- running a notebook ------------------------------------------------------------------------------------------


def registered_kernel(name: str) -> str:
    """The kernel `name` must be registered and start this environment's Python, or the test fails naming the fix."""
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        pytest.fail(f"no Jupyter kernel {name!r} is registered: run `{REGISTER}` (make's set-up step runs it)")
    python = Path(spec.argv[0])
    if python.parent.parent.resolve() != Path(sys.prefix).resolve():
        pytest.fail(f"kernel {name!r} starts {python}, not this environment's Python ({sys.prefix}): run `{REGISTER}`")
    return name


def execute(path: Path, workdir: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook in the kernel its metadata names, in `workdir`; return it with its outputs and the time.

    The budget is the whole notebook's, kernel start included: each cell may take what is left of it (nbclient
    asks `timeout_func` before every cell), so the cell that runs past it fails with nbclient's timeout error.
    """
    nb = nbformat.read(path, as_version=4)
    kernel = registered_kernel(nb.metadata.get("kernelspec", {}).get("name", "<none>"))
    start = time.monotonic()
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout_func=lambda cell: max(1, int(start + NOTEBOOK_SECONDS - time.monotonic())),
        startup_timeout=NOTEBOOK_SECONDS,
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute()
    except CellTimeoutError:
        pytest.fail(f"{path.name} did not finish within {NOTEBOOK_SECONDS} s; cell times: {cell_times(nb)}")
    return nb, time.monotonic() - start


def cell_times(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """(first line, seconds) of every executed code cell, from the timings nbclient records."""
    out = []
    for cell in nb.cells:
        run = cell.metadata.get("execution", {})
        if "iopub.execute_input" in run and "shell.execute_reply" in run:
            began, ended = (datetime.fromisoformat(run[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
            out.append((cell.source.splitlines()[0][:60], round((ended - began).total_seconds(), 1)))
    return out


def errors_in(nb: nbformat.NotebookNode) -> list[str]:
    return [
        f"{o.ename}: {o.evalue}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


def result(nb: nbformat.NotebookNode, tag: str) -> Any:
    """The value of the last expression of the cell tagged `tag` (its text/plain result is a Python literal)."""
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    results = [o for o in cells[0].outputs if o.output_type == "execute_result"]
    assert results, f"the cell tagged {tag!r} shows no result"
    return ast.literal_eval(results[-1].data["text/plain"])


# -- oracles -----------------------------------------------------------------------------------------------------


def delta_files(table: Path, version: int) -> list[Path]:
    """The data files of `table` at `version`, by replaying its JSON commits 0..version (no checkpoint needed:
    these tables have fewer than ten commits, and the test checks there is none)."""
    log = table / "_delta_log"
    assert not list(log.glob("*.checkpoint.parquet")), f"{table} has a checkpoint; replay it too"
    live: set[str] = set()
    for v in range(version + 1):
        for line in (log / f"{v:020d}.json").read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                live.add(action["add"]["path"])
            elif "remove" in action:
                live.discard(action["remove"]["path"])
    return [table / p for p in sorted(live)]


def delta_rows(table: Path, version: int) -> list[tuple]:
    """The rows of `table` at `version`, sorted, read file by file with pyarrow."""
    rows: list[tuple] = []
    for f in delta_files(table, version):
        rows.extend(tuple(r.values()) for r in pq.read_table(f).to_pylist())
    return sorted(rows)


def delta_frame(table: Path) -> pd.DataFrame:
    """The latest version of `table` as a pandas DataFrame, read file by file with pyarrow."""
    files = delta_files(table, latest_version(table))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def latest_version(table: Path) -> int:
    return max(int(p.stem) for p in (table / "_delta_log").glob("*.json"))


def as_of(labels: list[tuple], features: list[tuple], lookback: timedelta | None, default: float) -> dict[tuple, float]:
    """For each label (key, time): the value of the feature row with the greatest time <= the label's, within the
    lookback; none gives `default`. Times are 'YYYY-MM-DD HH:MM:SS' strings (UTC)."""
    out = {}
    for key, at, *_ in labels:
        t = datetime.fromisoformat(at)
        best = None
        for fkey, fat, value in features:
            ft = datetime.fromisoformat(fat)
            if fkey == key and ft <= t and (lookback is None or t - ft <= lookback) and (best is None or ft > best[0]):
                best = (ft, value)
        out[(key, at)] = default if best is None or best[1] is None else best[1]
    return out


# -- the notebooks -----------------------------------------------------------------------------------------------


def check_delta_on_spark(nb: nbformat.NotebookNode, root: Path) -> None:
    numbers = root / "exercise1" / "numbers"
    v0 = delta_rows(numbers, 0)
    assert v0 == [(i, i * i) for i in range(5)]  # what the notebook wrote first, by hand
    assert result(nb, "version-0") == v0  # versionAsOf 0
    v1_time, count = result(nb, "timestamp-as-of")
    assert count == len(delta_rows(numbers, 1)) == 10  # timestampAsOf the commit time of version 1
    assert datetime.fromisoformat(v1_time)  # a wall-clock time Spark printed, not a Python local time
    assert result(nb, "merge") == len(delta_rows(numbers, latest_version(numbers))) == 12  # 8, 9 updated; 10, 11 new
    customers = root / "exercise1" / "customers"
    assert result(nb, "sql-version-0") == delta_rows(customers, 0)  # VERSION AS OF 0, by name
    events = root / "exercise1" / "events"
    deleted, count = result(nb, "vacuum")
    first = delta_files(events, 0)
    assert deleted > 0 and not any(f.exists() for f in first)  # VACUUM removed the pre-OPTIMIZE files
    assert count == len(delta_rows(events, latest_version(events))) == 600  # and kept every row of the latest


def check_feature_store(nb: nbformat.NotebookNode, root: Path) -> None:
    features, labels, profile = result(nb, "features-at-training"), result(nb, "labels"), result(nb, "profile")
    spend = as_of(labels, features, timedelta(days=30), 0.0)
    tenure = dict(profile)
    expected = sorted((k, at, spend[(k, at)], tenure.get(k, 0.0), y) for k, at, y in labels)
    assert result(nb, "training-set") == expected
    # the data make the point-in-time rule matter: some label sees an older value than its customer's latest
    latest = {k: v for k, _, v in sorted(features, key=lambda r: r[1])}
    assert any(spend[(k, at)] != latest.get(k, 0.0) for k, at, _ in labels)
    assert result(nb, "reproducible") is True

    # score_batch: the latest feature rows (the late correction included), as of each key's time, then the model
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[r[2], r[3]] for r in expected], [r[4] for r in expected])
    now = as_of(labels, result(nb, "features-latest"), timedelta(days=30), 0.0)
    scoring = sorted((k, at, now[(k, at)], tenure.get(k, 0.0)) for k, at, _ in labels)
    assert any(now[key] != spend[key] for key in spend)  # the correction reaches scoring, not the training set
    predictions = model.predict([[r[2], r[3]] for r in scoring]).tolist()
    assert result(nb, "scored") == [(*r, float(p)) for r, p in zip(scoring, predictions, strict=True)]


def check_mlflow_tracking(nb: nbformat.NotebookNode, root: Path) -> None:
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_squared_error
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)
    models = {a: Ridge(alpha=a).fit(x_train, y_train) for a in (0.01, 0.1, 1.0)}
    rmse = {a: float(np.sqrt(mean_squared_error(y_test, m.predict(x_test)))) for a, m in models.items()}
    got = result(nb, "sql-runs")  # Spark SQL over mlflow.runs, params, metrics
    assert [(name, alpha) for name, alpha, _ in got] == [(f"alpha={a}", a) for a in sorted(rmse)]
    assert all(math.isclose(r, rmse[a], abs_tol=1e-6) for _, a, r in got)
    best = min(rmse, key=rmse.__getitem__)
    alpha, predictions = result(nb, "champion")  # models:/diabetes-ridge@champion
    assert float(alpha) == best
    expected = models[best].predict(x_test.iloc[:5])
    assert all(math.isclose(p, e, abs_tol=1e-5) for p, e in zip(predictions, expected, strict=True))


def check_monitoring(nb: nbformat.NotebookNode, root: Path) -> None:
    import mlflow.sklearn
    from sklearn.metrics import accuracy_score

    lake = root / "monitoring_tour"
    mlflow.set_tracking_uri(f"lakehouse://{lake}")  # tests/conftest.py resets it after the test
    model = mlflow.sklearn.load_model("models:/churn@champion")
    train, traffic = delta_frame(lake / "train" / "churn"), delta_frame(lake / "labels" / "churn")
    features = ["spend", "visits"]
    threshold = accuracy_score(train["churned"], model.predict(train[features])) - 0.05  # baseline - tolerance
    month = pd.to_datetime(traffic["ts"], utc=True).dt.strftime("%Y-%m-01")
    expected = []
    for m, rows in sorted(traffic.groupby(month)):
        accuracy = accuracy_score(rows["churned"], model.predict(rows[features]))
        expected.append((m, len(rows), round(accuracy, 6), accuracy < threshold))
    got = result(nb, "windows")
    assert [(w, n, a) for w, n, a, _ in got] == [(w, n, a) for w, n, a, _ in expected]
    assert [("accuracy" in alerts) for *_, alerts in got] == [alerted for *_, alerted in expected]
    assert [("drift.psi.spend" in alerts) for *_, alerts in got] == [False, False, True]  # the drifted month
    assert expected[-1][3] and not any(alerted for *_, alerted in expected[:-1])  # the data make the point

    png = (lake / "monitoring" / "churn" / "monitoring.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (cell,) = [c for c in nb.cells if "chart" in c.metadata.get("tags", [])]
    shown = [o.data["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
    assert shown == [base64.b64encode(png).decode()]  # the notebook displays the chart the job wrote


CHECKS: dict[str, Callable[[nbformat.NotebookNode, Path], None]] = {
    "01_delta_on_spark.ipynb": check_delta_on_spark,
    "02_feature_store.ipynb": check_feature_store,
    "03_mlflow_tracking.ipynb": check_mlflow_tracking,
    "04_monitoring.ipynb": check_monitoring,
}


def test_every_notebook_has_its_checks():
    assert sorted(CHECKS) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch, record_property):
    root = tmp_path / "lake"
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(root))  # the kernel inherits this process's environment
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {SHORT_LIVED_JVM}".strip())
    nb, seconds = execute(path, tmp_path)
    record_property("seconds", round(seconds, 1))
    print(f"{path.name}: {seconds:.1f} s; {cell_times(nb)}")
    assert not errors_in(nb)
    CHECKS[path.name](nb, root)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_names_the_kernel_and_carries_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_register_kernel_writes_a_spec_for_this_python(tmp_path):
    p = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "register_kernel.py"), "--prefix", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    spec = json.loads((tmp_path / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and spec["display_name"] == "Python (lakehouse-ml)"
