"""create_training_set / load_df: hand-written rows for each rule."""

from datetime import UTC, date, datetime, timedelta

import pytest
from chispa import assert_df_equality
from feature_store_helpers import LABELS_SCHEMA, ts

from feature_store import FeatureLookup, errors


def lookup(**kw):
    return FeatureLookup(
        **{"table_name": "customer_features", "lookup_key": "customer_id", "timestamp_lookup_key": "label_ts", **kw}
    )


def test_inclusive_ties_duplicates_nulls_rename_default_exclude(fs, spark, join_path, customer_features):
    labels = spark.createDataFrame(
        [
            (1, ts(3), 1),  # exactly at a feature ts: inclusive
            (1, ts(3), 1),  # a duplicate label row: appears twice
            (1, ts(2, 23, 59), 0),  # just before: the day-1 row
            (1, ts(5), 0),  # f2 stored null -> default
            (None, ts(5), 0),  # null key: no match
            (2, None, 0),  # null label time: no match
            (2, ts(1), 1),
        ],  # before the first feature row
        LABELS_SCHEMA,
    )
    t = fs.create_training_set(
        labels,
        [lookup(rename_outputs={"f1": "f1_x"}, default_values={"f2": 0.0})],
        label="churn",
        exclude_columns=["label_ts"],
    )
    expected = spark.createDataFrame(
        [
            (1, 1, 3.0, 30.0),
            (1, 1, 3.0, 30.0),
            (1, 0, 1.0, 10.0),
            (1, 0, 5.0, 0.0),
            (None, 0, None, 0.0),
            (2, 0, None, 0.0),
            (2, 1, None, 0.0),
        ],
        "customer_id long, churn int, f1_x double, f2 double",
    )
    assert_df_equality(t.load_df(), expected, ignore_row_order=True, ignore_nullable=True)


def test_lookback_window(fs, spark, join_path, customer_features):
    labels = spark.createDataFrame([(1, ts(4), 1), (1, ts(6), 1), (1, ts(7), 1)], LABELS_SCHEMA)
    t = fs.create_training_set(labels, [lookup(feature_names=["f1"], lookback_window=timedelta(days=1))], "churn")
    got = {(r.label_ts.astimezone(UTC).day, r.f1) for r in t.load_df().collect()}
    assert got == {(4, 3.0), (6, 5.0), (7, None)}  # day 6 - day 5 = 1 day: inclusive


def test_several_tables_multi_column_keys_and_latest_value_table(fs, spark, join_path, customer_features):
    fs.create_table(
        name="shop.pairs",
        primary_keys=["a", "b"],
        timestamp_keys="ts",
        df=spark.createDataFrame([(1, "x", ts(1), 7), (1, "y", ts(1), 8)], "a int, b string, ts timestamp, n int"),
    )
    fs.create_table(
        name="profile", primary_keys="cid", df=spark.createDataFrame([(1, "gold")], "cid long, tier string")
    )
    labels = spark.createDataFrame(
        [(1, "y", ts(2), 0), (2, "x", ts(2), 1)], "customer_id long, shop string, label_ts timestamp, churn int"
    )
    t = fs.create_training_set(
        labels,
        [
            lookup(feature_names="f1"),
            FeatureLookup(table_name="shop.pairs", lookup_key=["customer_id", "shop"], timestamp_lookup_key="label_ts"),
            FeatureLookup(table_name="profile", lookup_key="customer_id", default_values={"tier": "none"}),
        ],
        label="churn",
    )
    expected = spark.createDataFrame(
        [(1, "y", ts(2), 0, 1.0, 8, "gold"), (2, "x", ts(2), 1, 2.0, None, "none")],
        "customer_id long, shop string, label_ts timestamp, churn int, f1 double, n int, tier string",
    )
    assert_df_equality(t.load_df(), expected, ignore_row_order=True, ignore_nullable=True)
    assert t.versions == {"customer_features": 0, "shop.pairs": 0, "profile": 0}


def test_date_and_ntz_are_explicit(fs, spark, join_path):
    fs.create_table(
        name="daily",
        primary_keys="k",
        timestamp_keys="d",
        df=spark.createDataFrame([(1, date(2026, 1, 2), 2.0)], "k long, d date, v double"),
    )
    labels = spark.createDataFrame(
        [(1, datetime(2026, 1, 2, 0, 0)), (1, datetime(2026, 1, 1, 23, 59))], "k long, t timestamp_ntz"
    )
    got = fs.create_training_set(
        labels, [FeatureLookup(table_name="daily", lookup_key="k", timestamp_lookup_key="t")], label=None
    ).load_df()
    assert sorted((r.t.day, r.v) for r in got.collect()) == [(1, None), (2, 2.0)]  # date = 00:00 of that day
    fs.create_table(
        name="zoned",
        primary_keys="k",
        timestamp_keys="ts",
        df=spark.createDataFrame([(1, ts(1), 1.0)], "k long, ts timestamp, v double"),
    )
    with pytest.raises(errors.ColumnTypeError, match="zoneless"):
        fs.create_training_set(
            labels, [FeatureLookup(table_name="zoned", lookup_key="k", timestamp_lookup_key="t")], label=None
        )


def test_validation_errors_name_the_problem(fs, spark, customer_features):
    labels = spark.createDataFrame([(1, ts(4), 1)], LABELS_SCHEMA)
    with pytest.raises(errors.FeatureNotFoundError, match="nope"):
        fs.create_training_set(labels, [lookup(feature_names=["nope"])], "churn")
    with pytest.raises(errors.LookupKeyError, match="2 lookup column"):
        fs.create_training_set(labels, [lookup(lookup_key=["customer_id", "churn"])], "churn")
    with pytest.raises(ValueError, match="needs timestamp_lookup_key"):
        fs.create_training_set(
            labels, [FeatureLookup(table_name="customer_features", lookup_key="customer_id")], "churn"
        )
    with pytest.raises(errors.OutputNameConflictError, match="churn"):
        fs.create_training_set(labels, [lookup(rename_outputs={"f1": "churn"})], "churn")
    with pytest.raises(errors.ColumnTypeError, match="customer_id"):
        fs.create_training_set(labels.withColumn("customer_id", labels.customer_id.cast("string")), [lookup()], "churn")
    with pytest.raises(errors.ColumnTypeError, match="default"):
        fs.create_training_set(labels, [lookup(default_values={"f1": "zero"})], "churn")
    with pytest.raises(errors.FeatureTableNotFoundError):
        fs.create_training_set(labels, [lookup(table_name="nope")], "churn")


def test_audit_reports_match_rate_and_ages(fs, spark, customer_features):
    labels = spark.createDataFrame([(1, ts(4), 1), (2, ts(3), 0), (3, ts(3), 0), (1, ts(1), 1)], LABELS_SCHEMA)
    t = fs.create_training_set(labels, [lookup()], "churn")
    a = t.audit()
    (la,) = a.lookups
    assert (a.num_rows, la.num_matched, la.future_matches) == (4, 3, 0)
    assert la.match_rate == 0.75
    assert la.age_quantiles[0.0] == timedelta(0) and la.age_quantiles[1.0] == timedelta(days=1)
    with_ts = t.load_df(include_matched_timestamps=True)
    assert "__fs_matched_ts_0" in with_ts.columns
