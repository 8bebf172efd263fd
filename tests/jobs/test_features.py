"""The `features` job: a user pipeline run window by window over a real Delta source, merged into a feature table.

The pipeline (written per test into an importable module) aggregates a Delta table of raw events per customer and
window; every expected table is computed independently from the same events with pandas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from feature_store import FeatureStoreClient
from jobs._features import WINDOWS_TABLE, FeatureWindowError, Window, features, plan_windows, window_state
from jobs.errors import InvalidJobArgumentError, JobsError
from lakehouse import Lakehouse

EVENTS_SCHEMA = "customer_id long, event_time timestamp, amount double"
TABLE = "features.customer_daily"
DAY = timedelta(days=1)


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, d, hour, tzinfo=UTC)


# customer 1 buys on days 1, 2 and 4; customer 2 on days 1 and 3; customer 3 twice on day 2
EVENTS = [
    (1, day(1, 9), 10.0),
    (1, day(1, 17), 5.0),
    (2, day(1, 12), 7.5),
    (1, day(2, 8), 3.0),
    (3, day(2, 10), 1.0),
    (3, day(2, 23), 2.0),
    (2, day(3, 6), 4.0),
    (1, day(4, 20), 8.0),
]

PIPELINE = '''
import os
from datetime import timedelta
from pyspark.sql import SparkSession, functions as F

EVENTS = {events!r}


def daily(start, end):
    """One row per customer with events in [start, end): their count and total, stamped with the window start."""
    if os.environ.get("FEATURES_FAIL_AT") == start.isoformat():
        raise RuntimeError("upstream not ready for " + start.isoformat())
    spark = SparkSession.builder.getOrCreate()
    events = spark.read.format("delta").load(EVENTS)
    return (
        events.where((F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(end)))
        .groupBy("customer_id")
        .agg(F.count("*").alias("n_events"), F.sum("amount").alias("total"))
        .withColumn("ts", F.lit(start).cast("timestamp"))
    )


def as_pandas(start, end):
    import pandas as pd
    out = daily(start, end).toPandas()
    out["n_events"] = out["n_events"].astype("int64")
    return out


def not_a_frame(start, end):
    return [1, 2, 3]
'''


@pytest.fixture
def lake(tmp_path, spark) -> Lakehouse:
    lh = Lakehouse(tmp_path / "lake", spark=spark)
    lh.create_table("raw.events", spark.createDataFrame(EVENTS, EVENTS_SCHEMA))
    return lh


@pytest.fixture
def pipeline(lake, tmp_path, monkeypatch) -> str:
    """The name of a fresh module holding the pipelines (fresh per test: modules are cached by name)."""
    name = f"pipes_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PIPELINE.format(events=lake.table_path("raw.events")))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FEATURES_FAIL_AT", raising=False)
    return name


def oracle(events: list[tuple], start: datetime, end: datetime) -> pd.DataFrame:
    """The feature rows of [start, end) computed with pandas from the raw events, one window a day."""
    frame = pd.DataFrame(events, columns=["customer_id", "event_time", "amount"])
    frame = frame[(frame.event_time >= start) & (frame.event_time < end)]
    frame = frame.assign(ts=frame.event_time.dt.floor("D"))
    out = frame.groupby(["customer_id", "ts"]).agg(n_events=("amount", "size"), total=("amount", "sum")).reset_index()
    return _canonical(out)


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[["customer_id", "ts", "n_events", "total"]].copy()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["customer_id"] = frame["customer_id"].astype("int64")
    frame["n_events"] = frame["n_events"].astype("int64")
    return frame.sort_values(["ts", "customer_id"]).reset_index(drop=True)


def table_rows(lake: Lakehouse, version: int | None = None) -> pd.DataFrame:
    # unix_micros: collecting timestamps would give naive datetimes in the machine's zone (the suite runs in NY)
    frame = lake.read(TABLE, version=version).selectExpr("customer_id", "unix_micros(ts) as us", "n_events", "total")
    frame = frame.toPandas()
    frame["ts"] = pd.to_datetime(frame.pop("us"), unit="us", utc=True)
    return _canonical(frame)


def files_under(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


# -- windows --------------------------------------------------------------------------------------------------
def test_windows_cover_the_range_from_start_and_the_last_one_ends_at_end():
    assert plan_windows("2026-01-01", "2026-01-04", "day") == [
        Window(day(1), day(2)),
        Window(day(2), day(3)),
        Window(day(3), day(4)),
    ]
    # naive and offset-less times are UTC whatever the machine's zone (the suite runs in New York)
    assert plan_windows(datetime(2026, 1, 1, 12), "2026-01-02T18:00:00+00:00", "1d") == [
        Window(day(1, 12), day(2, 12)),
        Window(day(2, 12), day(2, 18)),
    ]
    assert [w.start.day for w in plan_windows("2026-01-01", "2026-01-20", "week")] == [1, 8, 15]
    months = plan_windows("2026-01-31", "2026-05-01", "month")
    assert [(w.start.month, w.start.day) for w in months] == [(1, 31), (2, 28), (3, 31), (4, 30)]
    assert months[-1].end == datetime(2026, 5, 1, tzinfo=UTC)
    assert len(plan_windows("2026-01-01", "2026-01-02", "6h")) == 4


# -- a backfill ---------------------------------------------------------------------------------------------
def test_a_backfill_creates_the_table_and_merges_each_window_once(lake, pipeline, spark):
    out = features(
        lake.root,
        pipeline=f"{pipeline}:daily",
        table=TABLE,
        start="2026-01-01",
        end="2026-01-05",
        primary_keys=["customer_id"],
        timestamp_keys="ts",
        spark=spark,
    )
    assert (out["windows"], out["ran"], out["skipped"], out["created"]) == (4, 4, 0, True)
    expected = oracle(EVENTS, day(1), day(5))
    assert out["rows_written"] == len(expected) == 6
    pd.testing.assert_frame_equal(table_rows(lake), expected)
    t = FeatureStoreClient(lake.root, spark=spark).get_table(TABLE)
    assert (t.primary_keys, t.timestamp_keys) == (("customer_id",), ("ts",))
    # version 0 is the table made from day 1, then one merge commit per later window
    assert [w["table_version"] for w in out["windows_run"]] == [0, 1, 2, 3]
    assert lake.latest_version(TABLE) == 3
    state = window_state(lake.root, TABLE, f"{pipeline}:daily")
    assert state == {w: ("succeeded", None) for w in plan_windows("2026-01-01", "2026-01-05", "1d")}

    # The same range again: every window is done, nothing runs, nothing is committed.
    again = features(lake.root, pipeline=f"{pipeline}:daily", table=TABLE, start="2026-01-01", end="2026-01-05")
    assert (again["ran"], again["skipped"], again["table_version"]) == (0, 4, None)
    assert lake.latest_version(TABLE) == 3

    # A late event on day 2, then day 2 run again on purpose: its rows are replaced, none duplicated.
    late = [*EVENTS, (2, day(2, 13), 6.0), (1, day(2, 15), 1.5)]
    lake.append("raw.events", spark.createDataFrame(late[len(EVENTS) :], EVENTS_SCHEMA))
    rerun = features(
        lake.root,
        pipeline=f"{pipeline}:as_pandas",  # the pandas path, and another pipeline: its own window state
        table=TABLE,
        start="2026-01-02",
        end="2026-01-03",
        rerun=True,
        spark=spark,
    )
    assert (rerun["ran"], rerun["rows_written"], rerun["created"]) == (1, 3, False)
    pd.testing.assert_frame_equal(table_rows(lake), oracle(late, day(1), day(5)))
    assert len(table_rows(lake)) == 7  # customer 2 is new on day 2; customers 1 and 3 were replaced


# -- a failed window, then a resume in a new process ---------------------------------------------------------
@pytest.mark.parametrize("resume_in", ["a fresh call", pytest.param("a new process", marks=pytest.mark.slow)])
def test_a_failed_window_stops_the_run_and_the_next_run_resumes_there(
    lake, pipeline, spark, monkeypatch, tmp_path, resume_in
):
    monkeypatch.setenv("FEATURES_FAIL_AT", day(2).isoformat())
    name = f"{pipeline}:daily"
    with pytest.raises(FeatureWindowError) as caught:
        features(
            lake.root,
            pipeline=name,
            table=TABLE,
            start="2026-01-01",
            end="2026-01-04",
            primary_keys="customer_id",
            timestamp_keys="ts",
            spark=spark,
        )
    err = caught.value
    assert isinstance(err, JobsError)
    assert (err.window, err.completed, err.table) == (Window(day(2), day(3)), 1, TABLE)
    assert "upstream not ready for 2026-01-02T00:00:00+00:00" in str(err)
    assert "2026-01-02" in str(err) and "resumes at this window" in str(err)
    # day 1 is committed, nothing after the failure ran
    pd.testing.assert_frame_equal(table_rows(lake), oracle(EVENTS, day(1), day(2)))
    state = window_state(lake.root, TABLE, name)
    assert set(state) == {Window(day(1), day(2)), Window(day(2), day(3))}
    assert state[Window(day(1), day(2))] == ("succeeded", None)
    status, error = state[Window(day(2), day(3))]
    assert status == "failed" and "RuntimeError: upstream not ready" in error

    # The same job again, upstream fixed: it starts at day 2 and finishes the range. Only the lake is shared.
    monkeypatch.delenv("FEATURES_FAIL_AT")
    arguments = {"pipeline": name, "table": TABLE, "start": "2026-01-01", "end": "2026-01-04"}
    if resume_in == "a fresh call":
        out = features(lake.root, spark=spark, **arguments)
    else:
        code = f"import json; from jobs._features import features; print(json.dumps(features({lake.root!r}, **{arguments!r})))"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]  # 0: no abort at exit either
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["ran"], out["skipped"], out["resumed_from"]) == (2, 1, day(2).isoformat())
    assert [w["start"] for w in out["windows_run"]] == [day(d).isoformat() for d in (2, 3)]
    pd.testing.assert_frame_equal(table_rows(lake), oracle(EVENTS, day(1), day(4)))
    assert set(window_state(lake.root, TABLE, name).values()) == {("succeeded", None)}
    # the state is a Delta table Spark reads: day 2 was attempted twice, the others once
    attempts = lake.read(WINDOWS_TABLE).groupBy("window_start").count().toPandas()
    assert sorted(attempts["count"].tolist()) == [1, 1, 2]


def test_a_pipeline_returning_no_dataframe_fails_its_window(lake, pipeline, spark):
    with pytest.raises(FeatureWindowError, match="must be a Spark DataFrame") as caught:
        features(
            lake.root,
            pipeline=f"{pipeline}:not_a_frame",
            table=TABLE,
            start="2026-01-01",
            end="2026-01-02",
            primary_keys="customer_id",
            spark=spark,
        )
    assert caught.value.completed == 0
    assert not lake.exists(TABLE)


# -- bad arguments: refused, nothing written ---------------------------------------------------------------
GOOD = {"table": TABLE, "start": "2026-01-01", "end": "2026-01-03", "primary_keys": ["customer_id"]}


@pytest.mark.parametrize(
    ("change", "argument", "says"),
    [
        ({"pipeline": "no_such_module_xyz:daily"}, "pipeline", "No module named 'no_such_module_xyz'"),
        ({"pipeline": "{module}:missing"}, "pipeline", "has no function 'missing'"),
        ({"pipeline": "{module}.daily"}, "pipeline", "package.module:function"),
        ({"pipeline": 3}, "pipeline", "package.module:function"),
        ({"window": "2x"}, "window", "'1d'"),
        ({"window": "0d"}, "window", "'1d'"),
        ({"window": "1s"}, "window", "'1d'"),
        ({"start": "2026-01-03"}, "end", "a time after start"),
        ({"start": "yesterday"}, "start", "ISO 8601"),
        ({"primary_keys": None}, "table", "pass primary_keys"),
        ({"primary_keys": []}, "primary_keys", "column name"),
        ({"table": ""}, "table", "feature table name"),
        ({"table": "raw.events"}, "table", "register_table"),
        ({"rerun": "yes"}, "rerun", "True or False"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(lake, pipeline, spark, change, argument, says):
    arguments = {"pipeline": f"{pipeline}:daily", **GOOD, **change}
    if isinstance(arguments["pipeline"], str):
        arguments["pipeline"] = arguments["pipeline"].format(module=pipeline)
    before = files_under(lake.root)
    with pytest.raises(InvalidJobArgumentError) as caught:
        features(lake.root, spark=spark, **arguments)
    assert caught.value.argument == argument and caught.value.job == "features"
    assert says in str(caught.value) and "Nothing was written" in str(caught.value)
    assert files_under(lake.root) == before


def test_keys_that_are_not_the_existing_tables_are_refused(lake, pipeline, spark):
    fs = FeatureStoreClient(lake.root, spark=spark)
    schema = "customer_id long, ts timestamp, n_events long, total double"
    fs.create_table(TABLE, ["customer_id"], spark.createDataFrame([(1, day(1), 1, 1.0)], schema), timestamp_keys="ts")
    before = files_under(lake.root)
    for change, argument, says in (
        ({"primary_keys": ["ts", "n_events"]}, "primary_keys", "['customer_id']"),
        ({"timestamp_keys": ["other"]}, "timestamp_keys", "['ts']"),
    ):
        with pytest.raises(InvalidJobArgumentError) as caught:
            features(lake.root, pipeline=f"{pipeline}:daily", spark=spark, **{**GOOD, **change})
        assert caught.value.argument == argument and says in str(caught.value)
    assert files_under(lake.root) == before
    # the table's own keys, or none, are accepted (Unity Catalog's form lists the timestamp key too)
    out = features(
        lake.root, pipeline=f"{pipeline}:daily", spark=spark, **{**GOOD, "primary_keys": ["customer_id", "ts"]}
    )
    assert out["ran"] == 2 and not out["created"]
