"""The two point-in-time join paths (local, in the driver; distributed, cogrouped on Spark): the same rows,
chosen by the size threshold, and the table layouts the local reader must get right."""

from datetime import date

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable, TableFeatures
from feature_store_helpers import LABELS_SCHEMA, ts

from feature_store import FeatureLookup, _training_set
from feature_store._local import THRESHOLD_CONF, feature_source, local_join_threshold

EVENTS_SCHEMA = "customer_id long, ts timestamp, v double, region string, day date"


def _events_and_tiers(fs, spark):
    """A table partitioned by a string (one value null) and a date, then evolved by a merge that adds a
    column (older files lack it); and a latest-value table without a timestamp key."""
    v0 = [
        (1, ts(1), 1.0, "eu", date(2026, 1, 1)),
        (1, ts(3), 3.0, None, date(2026, 1, 3)),
        (2, ts(2), 2.0, "us", date(2026, 1, 2)),
    ]
    fs.create_table(
        name="events",
        primary_keys="customer_id",
        timestamp_keys="ts",
        df=spark.createDataFrame(v0, EVENTS_SCHEMA),
        partition_columns=["region", "day"],
    )
    fs.write_table(
        "events",
        spark.createDataFrame([(2, ts(4), 4.0, "us", date(2026, 1, 4), 40)], EVENTS_SCHEMA + ", w int"),
        schema_evolution=True,
    )
    fs.create_table(name="tiers", primary_keys="cid", df=spark.createDataFrame([(1, "gold")], "cid long, tier string"))


def test_paths_agree_on_partitioned_evolved_tables(fs, spark, join_path):
    _events_and_tiers(fs, spark)
    labels = spark.createDataFrame(
        [(1, ts(2), 0), (1, ts(5), 1), (2, ts(3), 0), (2, ts(4), 1), (3, ts(9), 0), (None, ts(9), 0)],
        "customer_id long, label_ts timestamp, y int",
    )
    t = fs.create_training_set(
        labels,
        [
            FeatureLookup(
                table_name="events",
                lookup_key="customer_id",
                timestamp_lookup_key="label_ts",
                feature_names=["v", "region", "day", "w"],
            ),
            FeatureLookup(table_name="tiers", lookup_key="customer_id", default_values={"tier": "none"}),
        ],
        label="y",
    )
    assert t.versions == {"events": 1, "tiers": 0}
    expected = spark.createDataFrame(
        [
            (1, ts(2), 0, 1.0, "eu", date(2026, 1, 1), None, ts(1), "gold"),
            (1, ts(5), 1, 3.0, None, date(2026, 1, 3), None, ts(3), "gold"),
            (2, ts(3), 0, 2.0, "us", date(2026, 1, 2), None, ts(2), "none"),
            (2, ts(4), 1, 4.0, "us", date(2026, 1, 4), 40, ts(4), "none"),
            (3, ts(9), 0, None, None, None, None, None, "none"),
            (None, ts(9), 0, None, None, None, None, None, "none"),
        ],
        "customer_id long, label_ts timestamp, y int, v double, region string, day date, w int, "
        "__fs_matched_ts_0 timestamp, tier string",
    )
    assert_df_equality(
        t.load_df(include_matched_timestamps=True), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_local_path_is_chosen_by_estimated_size(fs, spark, tmp_path, customer_features, monkeypatch):
    taken = []
    real = _training_set.run_local
    monkeypatch.setattr(_training_set, "run_local", lambda *a, **k: taken.append(1) or real(*a, **k))
    path = str(tmp_path / "labels")
    spark.createDataFrame([(1, ts(4), 1), (2, ts(9), 0)], LABELS_SCHEMA).write.parquet(path)
    labels = spark.read.parquet(path)  # a file scan: Spark knows its size, as for a broadcast join
    t = fs.create_training_set(
        labels,
        [FeatureLookup(table_name=customer_features, lookup_key="customer_id", timestamp_lookup_key="label_ts")],
        label="churn",
    )
    local_rows = t.load_df().collect()
    assert taken == [1]
    try:
        spark.conf.set(THRESHOLD_CONF, "100")  # bytes: the feature rows alone are larger
        assert_df_equality(t.load_df(), spark.createDataFrame(local_rows, t.load_df().schema), ignore_row_order=True)
        assert taken == [1]
        spark.conf.set(THRESHOLD_CONF, "2m")
        assert local_join_threshold(spark) == 2 * 1024 * 1024
        spark.conf.set(THRESHOLD_CONF, "lots")
        with pytest.raises(ValueError, match=THRESHOLD_CONF):
            t.load_df()
    finally:
        spark.conf.unset(THRESHOLD_CONF)
    assert {(r.customer_id, r.f1) for r in local_rows} == {(1, 3.0), (2, 2.0)}


def test_deletion_vectors_take_the_spark_path(fs, spark, customer_features, monkeypatch):
    monkeypatch.setattr(_training_set, "labels_size", lambda df: 0)  # small enough for the local path...
    taken = []
    real = _training_set.point_in_time_join
    monkeypatch.setattr(_training_set, "point_in_time_join", lambda *a, **k: taken.append(1) or real(*a, **k))
    path = fs.get_table(customer_features).path
    DeltaTable(path).alter.add_feature(TableFeatures.DeletionVectors, allow_protocol_versions_increase=True)
    version = fs.get_table(customer_features).latest_version
    assert feature_source(fs.lakehouse, customer_features, version) is None
    labels = spark.createDataFrame([(1, ts(4), 1)], LABELS_SCHEMA)
    t = fs.create_training_set(
        labels,
        [FeatureLookup(table_name=customer_features, lookup_key="customer_id", timestamp_lookup_key="label_ts")],
        label="churn",
    )
    assert [r.f1 for r in t.load_df().collect()] == [3.0]
    assert taken == [1]  # ...but its files alone may not be the data
