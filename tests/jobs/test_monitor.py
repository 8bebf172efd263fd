"""The `monitor` job on a real lake: a registered sklearn model, a labelled Delta table of four monthly windows
whose last one drifts and degrades, MLflow on `lakehouse:///`.

Every expected value is computed here, independently: the windows by pandas' UTC months, the metrics by sklearn
on the estimator trained here, PSI by a few lines of numpy over `pd.cut` bins, KS by scipy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from scipy.stats import ks_2samp
from sklearn import metrics as skm
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import jobs
from jobs._monitor import ALERT_TAG, _clean, _frequency, _split, monitor
from jobs.errors import InvalidJobArgumentError, JobsError
from lakehouse import Lakehouse

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
FEATURES = ["x1", "x2", "color"]
ROWS_PER_MONTH = 400
EXPERIMENT = "/monitoring/churn"
FAST = {"pip_requirements": ["scikit-learn"]}
"""Skips MLflow's requirement inference (a subprocess loading the model: ~30 s on a busy machine)."""


def _rows(rng: np.random.Generator, n: int, month: str | None, drifted: bool) -> pd.DataFrame:
    x1 = rng.normal(2.0 if drifted else 0.0, 1.0, n)
    x2 = rng.uniform(-1, 1, n)
    color = rng.choice(["red", "green", "blue"], n, p=[0.2, 0.3, 0.5] if drifted else [0.5, 0.3, 0.2])
    signal = x1 + x2 + (color == "red") * 0.5
    # the relationship itself changes in the drifted month: the model's learnt boundary no longer holds
    churned = ((signal < 2.0) if drifted else (signal > 0.25)) ^ (rng.random(n) < 0.05)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "churned": churned.astype("int64")})
    frame["price"] = 3.0 * x1 - 2.0 * x2 + rng.normal(0, 0.5 if not drifted else 2.0, n)
    if month is not None:
        start = pd.Timestamp(month, tz="UTC")
        seconds = rng.integers(0, int((start + pd.offsets.MonthBegin(1) - start).total_seconds()), n)
        frame["ts"] = start + pd.to_timedelta(seconds, unit="s")
    return frame


@pytest.fixture(scope="module")
def base(tmp_path_factory, spark):
    """A lake with `labels.churn` (four months), `train.churn` (the training set), model `churn` (a classifier,
    @champion, training accuracy logged) and `price` (a regressor in Production). Tests work on a copy."""
    root = str(tmp_path_factory.mktemp("monitor") / "lake")
    rng = np.random.default_rng(7)
    labels = pd.concat([_rows(rng, ROWS_PER_MONTH, m, drifted=(m == MONTHS[-1])) for m in MONTHS], ignore_index=True)
    train = _rows(rng, 1000, None, drifted=False)
    lh = Lakehouse(root, spark=spark, engine="deltalake")
    lh.create_table("labels.churn", pa.Table.from_pandas(labels, preserve_index=False))
    lh.create_table("train.churn", pa.Table.from_pandas(train[[*FEATURES, "churned"]], preserve_index=False))
    uri = f"lakehouse://{root}"
    mlflow.set_tracking_uri(uri)
    try:
        clf = make_pipeline(
            ColumnTransformer([("c", OneHotEncoder(), ["color"])], remainder="passthrough"), LogisticRegression()
        ).fit(train[FEATURES], train["churned"])
        reg = LinearRegression().fit(train[["x1", "x2"]], train["price"])
        train_accuracy = skm.accuracy_score(train["churned"], clf.predict(train[FEATURES]))
        with mlflow.start_run():
            mlflow.log_metric("training_accuracy_score", train_accuracy)
            mlflow.sklearn.log_model(
                clf, name="m", input_example=train[FEATURES][:3], registered_model_name="churn", **FAST
            )
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                reg, name="m", input_example=train[["x1", "x2"]][:3], registered_model_name="price", **FAST
            )
    finally:
        mlflow.set_tracking_uri(None)
    client = MlflowClient(uri, uri)
    client.set_registered_model_alias("churn", "champion", "1")
    client.transition_model_version_stage("price", "1", "Production")
    return {"root": root, "labels": labels, "train": train, "clf": clf, "reg": reg, "train_accuracy": train_accuracy}


@pytest.fixture
def lake(base, tmp_path):
    """A copy of the base lake for one test (Delta logs hold relative paths; artifacts stay in the base)."""
    root = str(tmp_path / "lake")
    shutil.copytree(base["root"], root)
    return root


def _client(root: str) -> MlflowClient:
    return MlflowClient(f"lakehouse://{root}", f"lakehouse://{root}")


def _months(labels: pd.DataFrame) -> dict[str, pd.DataFrame]:
    key = labels["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-01")
    return {m: labels[key == m] for m in MONTHS}


def _psi(reference: pd.Series, current: pd.Series) -> float:
    """The module docstring's PSI, written out: decile bins of the reference (categories for strings)."""
    if not pd.api.types.is_numeric_dtype(reference):
        cats = list(reference.unique())
        ref = reference.value_counts().reindex(cats).to_numpy() / len(reference)
        cur = current.value_counts().reindex(cats, fill_value=0).to_numpy() / len(current)
        cur = np.append(cur, (~current.isin(cats)).sum() / len(current))
        ref = np.append(ref, 0.0)
    else:
        edges = np.unique(np.quantile(reference, [i / 10 for i in range(1, 10)]))
        bins = [-np.inf, *edges, np.inf]
        ref = pd.cut(reference, bins, right=False).value_counts(sort=False).to_numpy() / len(reference)
        cur = pd.cut(current, bins, right=False).value_counts(sort=False).to_numpy() / len(current)
    ref, cur = np.maximum(ref, 1e-4), np.maximum(cur, 1e-4)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def test_windows_metrics_drift_runs_alert_and_report(base, lake, spark, tmp_path):
    # A job triggered by the alert tag: what a team wires to retrain or page on drift.
    marker = tmp_path / "alerted.txt"
    trigger = jobs.create_trigger(
        lake,
        name="on-alert",
        model_name="churn",
        tag=ALERT_TAG,
        command=[sys.executable, "-c", f"import os; open({str(marker)!r}, 'w').write(os.environ['MODEL_VERSION'])"],
    )
    out = monitor(
        lake,
        model_name="churn",
        alias="champion",
        table="labels.churn",
        label_column="churned",
        timestamp_column="ts",
        reference_table="train.churn",
    )
    by_month = _months(base["labels"])
    assert [w["window"] for w in out["windows"]] == MONTHS
    assert [w["rows"] for w in out["windows"]] == [len(by_month[m]) for m in MONTHS] == [ROWS_PER_MONTH] * 4
    assert out["task"] == "classification" and out["version"] == "1" and out["selector"] == "alias:champion"
    assert out["baseline"] == {"source": "training", "metrics": {"accuracy": pytest.approx(base["train_accuracy"])}}

    clf, train = base["clf"], base["train"]
    expected_alerts = set()
    limit = base["train_accuracy"] - 0.05
    for w in out["windows"]:
        rows = by_month[w["window"]]
        y, pred = rows["churned"], clf.predict(rows[FEATURES])
        proba = clf.predict_proba(rows[FEATURES])[:, 1]
        assert w["metrics"] == pytest.approx(
            {
                "accuracy": skm.accuracy_score(y, pred),
                "precision": skm.precision_score(y, pred),
                "recall": skm.recall_score(y, pred),
                "f1": skm.f1_score(y, pred),
                "roc_auc": skm.roc_auc_score(y, proba),
            },
            rel=1e-12,
        )
        psi = {f"drift.psi.{f}": _psi(train[f], rows[f]) for f in FEATURES}
        assert w["drift"] == pytest.approx(psi, rel=1e-9)
        if skm.accuracy_score(y, pred) < limit:
            expected_alerts.add((w["window"], "accuracy"))
        expected_alerts |= {(w["window"], k) for k, v in psi.items() if v > 0.2}
    assert {(a["window"], a["metric"]) for a in out["alerts"]} == expected_alerts
    assert {w for w, _ in expected_alerts} == {MONTHS[-1]}  # the data were made so: only April degrades and drifts
    assert (MONTHS[-1], "accuracy") in expected_alerts and (MONTHS[-1], "drift.psi.x1") in expected_alerts

    client = _client(lake)
    tag = json.loads(client.get_model_version("churn", "1").tags[ALERT_TAG])
    assert tag["window"] == MONTHS[-1] and tag["alerts"] == len(expected_alerts)
    first = out["alerts"][0]
    assert {k: tag[k] for k in ("metric", "value", "threshold")} == {
        k: first[k] for k in ("metric", "value", "threshold")
    }
    assert "monitoring.alert" not in client.get_model_version("price", "1").tags
    # the registry's outbox holds the tag's event, which it delivers to webhooks subscribed to it
    files = Lakehouse(lake, spark=spark, engine="deltalake").data_files("mlflow.registry_events").files
    events = [r for f in files for r in pq.read_table(f).to_pylist() if r["event"] == "model_version_tag.set"]
    payloads = [json.loads(r["payload"]) for r in events if r["name"] == "churn" and r["version"] == "1"]
    assert [p["value"] for p in payloads if p["key"] == ALERT_TAG] == [out["alert_tag"]]

    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.data.tags["monitoring.window"]: r for r in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == MONTHS
    for w in out["windows"]:
        run = runs[w["window"]]
        assert run.info.run_id == w["run_id"] and run.info.status == "FINISHED"
        assert run.data.metrics == pytest.approx({**w["metrics"], **w["drift"], "rows": w["rows"]})
        assert run.data.params["model_version"] == "1" and run.data.params["window"] == w["window"]
    steps = [client.get_metric_history(runs[m].info.run_id, "accuracy")[0].step for m in MONTHS]
    assert steps == sorted(steps) and len(set(steps)) == 4  # the UI's step axis puts the windows in order

    with open(out["chart"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(out["report"], encoding="utf-8") as f:
        page = f.read()
    assert f"&lt; {limit:.4f}" in page and "&gt; 0.2000" in page  # the thresholds, in the tables
    assert "data:image/png;base64," in page and "http" not in page  # self-contained
    assert out["chart"].startswith(os.path.join(lake, "monitoring", "churn"))

    deadline = time.time() + 60  # the registry's dispatcher runs the alert's job in its own process
    while not jobs.list_runs(lake):
        assert time.time() < deadline, "the monitoring.alert trigger never ran"
        time.sleep(0.1)
    [run] = jobs.list_runs(lake)
    assert (run.trigger_id, run.version, run.status) == (trigger.trigger_id, "1", "succeeded")
    assert marker.read_text() == "1"


def test_a_rerun_logs_into_the_same_runs(lake):
    args = dict(
        model_name="churn", alias="champion", table="labels.churn", label_column="churned", timestamp_column="ts"
    )
    one = monitor(lake, **args)
    two = monitor(lake, **args)
    assert [w["run_id"] for w in one["windows"]] == [w["run_id"] for w in two["windows"]]
    client = _client(lake)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert len(client.search_runs([exp.experiment_id])) == 4
    history = client.get_metric_history(two["windows"][0]["run_id"], "accuracy")
    assert len(history) == 2 and {h.value for h in history} == {two["windows"][0]["metrics"]["accuracy"]}


def test_no_alert_and_no_tag_when_nothing_crosses(lake):
    out = monitor(
        lake,
        model_name="churn",
        alias="champion",
        table="labels.churn",
        label_column="churned",
        timestamp_column="ts",
        end="2024-04-01",
        reference_table="train.churn",
    )
    assert [w["window"] for w in out["windows"]] == MONTHS[:3]
    assert out["alerts"] == [] and out["alert_tag"] is None
    assert ALERT_TAG not in _client(lake).get_model_version("churn", "1").tags


def test_regression_at_a_stage_with_ks_drift_against_the_first_window(base, lake):
    out = monitor(
        lake,
        model_name="price",
        stage="production",
        table="labels.churn",
        label_column="price",
        timestamp_column="ts",
        baseline="window:first",
        drift_method="ks",
        tolerances={"mae": 5.0, "r2": float("inf")},
        experiment="/monitoring/price-ks",
    )
    assert out["task"] == "regression" and out["selector"] == "stage:Production"
    by_month = _months(base["labels"])
    first = by_month[MONTHS[0]]
    reg = base["reg"]
    rmse0 = skm.root_mean_squared_error(first["price"], reg.predict(first[["x1", "x2"]]))
    assert out["limits"]["rmse"] == {"threshold": pytest.approx(rmse0 * 1.1), "direction": "above"}
    for w in out["windows"]:
        rows = by_month[w["window"]]
        pred = reg.predict(rows[["x1", "x2"]])
        assert w["metrics"] == pytest.approx(
            {
                "rmse": skm.root_mean_squared_error(rows["price"], pred),
                "mae": skm.mean_absolute_error(rows["price"], pred),
                "r2": skm.r2_score(rows["price"], pred),
            },
            rel=1e-12,
        )
        assert w["drift"] == pytest.approx(
            {f"drift.ks.{f}": ks_2samp(first[f], rows[f]).statistic for f in ("x1", "x2")}, rel=1e-12
        )
    april = {a["metric"] for a in out["alerts"] if a["window"] == MONTHS[-1]}
    assert {"rmse", "drift.ks.x1"} <= april and not {"mae", "r2"} & april  # mae tolerates +500%, r2 is off
    assert "r2" not in out["limits"]


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"table": "labels.nope"}, "table"),
        ({"label_column": "churn"}, "label_column"),
        ({"timestamp_column": "x1"}, "timestamp_column"),
        ({"stage": "Production"}, "stage/alias"),
        ({"alias": None}, "stage/alias"),
        ({"model_name": "nope"}, "model_name"),
        ({"alias": "challenger"}, "alias"),
        ({"alias": None, "stage": "Staging"}, "stage"),
        ({"window": "fortnight"}, "window"),
        ({"tolerances": {"rmse": 0.1}}, "tolerances"),
        ({"features": ["x1", "size"]}, "features"),
        ({"baseline": "window:2023-06-01"}, "baseline"),
        ({"start": "2024-03-01", "end": "2024-02-01"}, "end"),
        ({"reference_table": "labels.none"}, "reference_table"),
        ({"drift_method": "wasserstein"}, "drift_method"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(lake, change, argument):
    client = _client(lake)

    def runs() -> set[str]:
        return {r.info.run_id for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}

    before = runs()
    assert len(before) == 2  # the two training runs
    args = dict(
        model_name="churn", alias="champion", table="labels.churn", label_column="churned", timestamp_column="ts"
    )
    with pytest.raises(InvalidJobArgumentError) as info:
        monitor(lake, **{**args, **change})
    assert info.value.argument == argument and isinstance(info.value, JobsError)
    assert argument.split("/")[0] in str(info.value) and "Nothing was written" in str(info.value)
    assert client.get_experiment_by_name(EXPERIMENT) is None
    assert runs() == before
    assert ALERT_TAG not in client.get_model_version("churn", "1").tags
    assert not os.path.exists(os.path.join(lake, "monitoring"))


def test_errors_name_what_exists(lake):
    args = dict(model_name="churn", table="labels.churn", label_column="churned", timestamp_column="ts")
    with pytest.raises(InvalidJobArgumentError, match=r"\{'champion': 1\}"):
        monitor(lake, **args, alias="challenger")
    with pytest.raises(InvalidJobArgumentError, match=r"'churned', 'color', 'price', 'ts', 'x1', 'x2'"):
        monitor(lake, **{**args, "label_column": "churn"}, alias="champion")
    with pytest.raises(InvalidJobArgumentError, match=r"\['churn', 'price'\]"):
        monitor(lake, **{**args, "model_name": "chrun"}, alias="champion")
    with pytest.raises(InvalidJobArgumentError, match=r"labels\.churn"):
        monitor(lake, **{**args, "table": "label.churn"}, alias="champion")


def test_the_job_exits_0_in_its_own_process(lake):
    # deltalake + pyarrow can abort a process at exit (134) after some reads: the job's process must end cleanly
    code = (
        "import json, sys\n"
        "from jobs._monitor import monitor\n"
        f"out = monitor({'lakehouse://' + lake!r}, model_name='churn', alias='champion', table='labels.churn', "
        "label_column='churned', timestamp_column='ts')\n"
        "print(json.dumps({'windows': len(out['windows']), 'alerts': len(out['alerts'])}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=os.getcwd())
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["windows"] == 4 and figures["alerts"] > 0


@pytest.mark.parametrize("window", ["week", "7D", "quarter", "12h", "day", 3])
def test_windows_match_a_per_row_oracle(window):
    """Rows land in the window a by-eye rule gives each of them, for calendar and fixed-length windows."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2024-01-03 05:00", tz="UTC")  # a Wednesday, not midnight
    times = start + pd.to_timedelta(rng.integers(0, 200 * 86_400, 500), unit="s")
    frame = pd.DataFrame({"ts": times, "y": rng.integers(0, 2, 500)})

    def oracle(t: pd.Timestamp) -> str:
        day = t.normalize()
        if window == "week":
            return (day - pd.Timedelta(days=t.weekday())).date().isoformat()
        if window == "quarter":
            return f"{t.year}-{3 * ((t.month - 1) // 3) + 1:02d}-01"
        length = {"7D": pd.Timedelta(days=7), "12h": pd.Timedelta(hours=12), "day": pd.Timedelta(days=1)}
        step = length.get(window, pd.Timedelta(days=3))  # fixed lengths count from `start`
        return (start + step * ((t - start) // step)).isoformat()

    data, ns = _clean(frame, "y", "ts", start, None, [])
    windows, slices = _split(data, ns, _frequency(window), start, None)
    got = {w.label: s.stop - s.start for w, s in zip(windows, slices, strict=True)}
    assert got == dict(sorted(pd.Series([oracle(t) for t in times]).value_counts().items()))
    for w, s in zip(windows, slices, strict=True):
        assert ((data["ts"].iloc[s] >= w.start) & (data["ts"].iloc[s] < w.end)).all()
