"""The distributed point-in-time join's two shapes ("files": features read by pyarrow on the executors;
"cogroup": features read by Spark): the same rows as a pure-Python oracle on awkward data, an Exchange in the
plan and nothing collected to the driver, and the Spark hashes they reproduce."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from chispa import assert_df_equality
from feature_store_helpers import UTC
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feature_store import _pit
from feature_store._local import FeatureSource, feature_source
from feature_store._pit import JoinSpec, point_in_time_join, route_values, spark_xxhash64

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = "region int, shop int, ts timestamp, v double, tag string"
LABELS = "region int, shop long, label_ts timestamp, lid int"
EU, US, AP, XX = 1, 2, 3, 4


def _t(minutes: int | None) -> datetime | None:
    return None if minutes is None else T0 + timedelta(minutes=minutes)


# Two keys (int, and int against a long label key), ties on the label time, a null feature value,
# label rows with a null key or a null time, keys only one side has.
FEATURE_ROWS = [
    (EU, 1, 0, 1.0, "a"),
    (EU, 1, 10, 2.0, None),
    (EU, 1, 20, None, "c"),
    (EU, 2, 5, 4.0, "d"),
    (US, 1, 7, 5.0, "e"),
    (US, 1, 30, 6.0, "f"),
    (AP, 9, 3, 8.0, "h"),
]
LABEL_ROWS = [
    (EU, 1, 10, 0),  # tie: the row at 10 itself
    (EU, 1, 9, 1),
    (EU, 1, 25, 2),  # the latest row has a null value: still the match
    (EU, 1, -1, 3),  # before every row
    (EU, 2, 100, 4),  # far after: only a lookback refuses it
    (US, 1, 8, 5),
    (US, 1, 8, 6),  # a duplicate label row gets the same match
    (None, 1, 5, 7),
    (EU, None, 5, 8),
    (EU, 1, None, 9),
    (XX, 1, 50, 10),
]


def oracle(lookback: int | None) -> dict[int, tuple]:
    """lid -> (v, tag, matched minute, age in minutes) by a loop over the rows anyone can check by eye."""
    out = {}
    for region, shop, t, lid in LABEL_ROWS:
        best = None
        if region is not None and shop is not None and t is not None:
            for fr, fs, ft, v, tag in FEATURE_ROWS:
                in_window = (fr, fs) == (region, shop) and ft <= t and (lookback is None or t - ft <= lookback)
                if in_window and (best is None or ft > best[2]):
                    best = (v, tag, ft)
        out[lid] = (None, None, None, None) if best is None else (best[0], best[1], best[2], t - best[2])
    return out


@pytest.fixture
def awkward(fs, spark):
    rows = [(r, s, _t(m), v, tag) for r, s, m, v, tag in FEATURE_ROWS]
    df = spark.createDataFrame(rows, FEATURES)
    # Several files (one per partition), so the read tasks get several shares.
    fs.create_table(name="shops", primary_keys=["region", "shop"], timestamp_keys="ts", df=df.repartition(3))
    labels = spark.createDataFrame([(r, s, _t(m), lid) for r, s, m, lid in LABEL_ROWS], LABELS)
    return labels, fs.lakehouse.read("shops", version=0), feature_source(fs.lakehouse, "shops", 0)


def _spec(lookback: int | None) -> JoinSpec:
    return JoinSpec(
        label_keys=("region", "shop"),
        feature_keys=("region", "shop"),
        label_ts="label_ts",
        feature_ts="ts",
        features=("v", "tag"),
        outputs=("v", "tag"),
        lookback=None if lookback is None else timedelta(minutes=lookback),
        matched_ts_output="matched",
        age_output="age_us",
    )


@pytest.mark.parametrize("lookback", [None, 0, 15])
@pytest.mark.parametrize("shape", ["files", "cogroup"])
def test_shapes_match_the_oracle(spark, awkward, shape, lookback, monkeypatch):
    labels, features, source = awkward
    assert source is not None
    joined = point_in_time_join(
        labels, features, _spec(lookback), source=source if shape == "files" else None, num_partitions=3
    )
    assert ("Range" in _plan(joined)) == (shape == "files")  # the files shape reads a Range of file shares
    got = {
        r.lid: (
            r.v,
            r.tag,
            None if r.matched is None else round((r.matched.timestamp() - T0.timestamp()) / 60),
            r.age_us,
        )
        for r in joined.collect()
    }
    want = {
        lid: (v, tag, m, None if age is None else age * 60_000_000)
        for lid, (v, tag, m, age) in oracle(lookback).items()
    }
    assert got == want
    assert joined.count() == len(LABEL_ROWS)


def test_files_shape_is_taken_for_hashable_keys_and_matches_cogroup(fs, spark):
    """Integral, date and timestamp keys (the types the feature rows' buckets are computed for in NumPy):
    the files shape runs (its plan reads a Range of shares), and gives the cogroup shape's rows."""
    frows = [(k, date(2026, 1, 1 + k % 3), _t(m), float(m)) for k in range(1, 40) for m in (0, 7, 19) if k % 5]
    fs.create_table(
        name="meters",
        primary_keys=["meter", "day"],
        timestamp_keys="ts",
        df=spark.createDataFrame(frows, "meter int, day date, ts timestamp, v double").repartition(4),
    )
    labels = spark.createDataFrame(
        [(k, date(2026, 1, 1 + k % 3), _t(m)) for k in range(45) for m in (-1, 7, 8, 30)] + [(None, None, _t(9))],
        "meter long, day date, at timestamp",
    )
    spec = JoinSpec(("meter", "day"), ("meter", "day"), "at", "ts", ("v",), ("v",), None, "m", "age")
    features = fs.lakehouse.read("meters", version=0)
    source = feature_source(fs.lakehouse, "meters", 0)
    files = point_in_time_join(labels, features, spec, source=source, num_partitions=5)
    cogroup = point_in_time_join(labels, features, spec)
    assert "Range" in _plan(files) and "Range" not in _plan(cogroup)
    assert_df_equality(files, cogroup, ignore_row_order=True)
    assert files.count() == labels.count()
    assert files.where("v = 7.0").count() == 2 * 32  # labels at 7 and 8 of the 32 keys in 1..39 not divisible by 5


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


@pytest.mark.parametrize("shape", ["files", "cogroup"])
def test_distributed_plan_shuffles_and_collects_nothing(fs, spark, customer_features, shape):
    labels = spark.createDataFrame([(1, _t(60 * 24 * 3), 1)], "customer_id long, label_ts timestamp, churn int")
    features = fs.lakehouse.read(customer_features, version=0)
    source = feature_source(fs.lakehouse, customer_features, 0) if shape == "files" else None
    spec = JoinSpec(("customer_id",), ("customer_id",), "label_ts", "ts", ("f1",), ("f1",), None)
    plan = _plan(point_in_time_join(labels, features, spec, source=source))
    assert "Exchange hashpartitioning" in plan
    assert "toArrow" not in plan and "LocalTableScan" not in plan.replace("LocalTableScan [customer_id", "")


def test_string_keys_take_the_cogroup_shape(fs, spark):
    rows = [("a", _t(0), 1.0), ("a", _t(5), 2.0), ("b", _t(1), 3.0)]
    fs.create_table(
        name="tags",
        primary_keys="k",
        timestamp_keys="ts",
        df=spark.createDataFrame(rows, "k string, ts timestamp, v double"),
    )
    labels = spark.createDataFrame([("a", _t(4)), ("b", _t(9)), ("c", _t(9))], "k string, at timestamp")
    spec = JoinSpec(("k",), ("k",), "at", "ts", ("v",), ("v",), None)
    joined = point_in_time_join(
        labels, fs.lakehouse.read("tags", version=0), spec, source=feature_source(fs.lakehouse, "tags", 0)
    )
    assert "Range" not in _plan(joined)  # Spark's hash of a string is not reproduced in NumPy: cogroup
    assert sorted((r.k, r.v) for r in joined.collect()) == [("a", 1.0), ("b", 3.0), ("c", None)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 16, 200])
def test_route_values_put_bucket_i_in_partition_i(spark, n):
    routes = route_values(n)
    placed = (
        spark.createDataFrame([(r,) for r in routes], "r int")
        .repartition(n, "r")
        .select(F.spark_partition_id().alias("p"), "r")
        .collect()
    )
    assert sorted((row.r, row.p) for row in placed) == sorted((r, i) for i, r in enumerate(routes))


def test_spark_xxhash64_is_sparks(spark):
    rows = [
        (1, 2, 3, True, date(2020, 1, 1), datetime(2021, 1, 1, tzinfo=UTC), -5, 7),
        (None, -2, 0, False, None, None, 1 << 40, -1),
        (2**63 - 1, 2**31 - 1, -32768, None, date(1969, 12, 31), datetime(1960, 5, 5, tzinfo=UTC), 0, 0),
    ]
    df = spark.createDataFrame(rows, "a long, b int, c short, d boolean, e date, f timestamp, g long, h byte")
    table = df.toArrow()
    for cols in (["a"], ["b"], ["c"], ["d"], ["e"], ["f"], ["a", "b", "e"], ["f", "g", "h", "d"]):
        expected = [r[0] for r in df.select(F.xxhash64(*cols)).collect()]
        assert spark_xxhash64([table.column(c) for c in cols]).tolist() == expected, cols
    with pytest.raises(TypeError, match="string"):
        spark_xxhash64([spark.createDataFrame([("x",)], "s string").toArrow().column(0)])


def test_bucket_count_follows_cores_and_rows(spark):
    assert _pit._cores(spark) == 2  # the suite's local[2] session
    assert _pit._ROWS_PER_BUCKET * 2 > 5_000_000  # the benchmark's 5M rows: one bucket per core


def test_only_local_files_are_read_by_the_tasks_themselves():
    """Tasks read a version's files with pyarrow only where they are paths: an object store's endpoint and
    credentials are the driver's environment, which executors (and Python workers started before it) lack."""

    def source(*files: str) -> FeatureSource:
        return FeatureSource("t", 0, T.StructType([]), (), files, tuple({} for _ in files), 0, "7 days")

    assert source("/lake/t/part-0.parquet").readable_on_executors()
    assert source().readable_on_executors()
    assert not source("s3://bucket/lake/t/part-0.parquet").readable_on_executors()
    assert not source("s3a://bucket/lake/t/part-0.parquet").readable_on_executors()
