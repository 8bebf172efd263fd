"""Exact reproduction (pinned versions, saved training sets) and as_of time travel."""

import time
from datetime import UTC, datetime

import pytest
from chispa import assert_df_equality
from feature_store_helpers import FEATURES_SCHEMA, LABELS_SCHEMA, ts

from feature_store import FeatureLookup, errors
from lakehouse import errors as lh_errors


def _lookups():
    return [FeatureLookup(table_name="customer_features", lookup_key="customer_id", timestamp_lookup_key="label_ts")]


def test_load_df_unchanged_after_later_merge_and_reloaded_by_id(fs, spark, customer_features):
    labels = spark.createDataFrame([(1, ts(4), 1), (2, ts(9), 0)], LABELS_SCHEMA)
    t = fs.create_training_set(labels, _lookups(), "churn")
    before = t.load_df()
    before_rows = before.collect()
    tid = fs.save_training_set(t)
    fs.write_table(
        customer_features, spark.createDataFrame([(1, ts(3), 99.0, 99.0), (2, ts(8), 8.0, 8.0)], FEATURES_SCHEMA)
    )
    assert_df_equality(t.load_df(), spark.createDataFrame(before_rows, before.schema), ignore_row_order=True)
    again = fs.load_training_set(tid)
    assert again.versions == {"customer_features": 0}
    assert_df_equality(again.load_df(), spark.createDataFrame(before_rows, before.schema), ignore_row_order=True)
    assert fs.get_table(customer_features).used_by == (tid,)
    assert fs.list_training_sets() == [tid]
    fresh = fs.create_training_set(labels, _lookups(), "churn").load_df()
    assert {r.f1 for r in fresh.collect()} == {99.0, 8.0}
    with pytest.raises(errors.TrainingSetNotFoundError):
        fs.load_training_set("nope")


def test_as_of_ignores_later_corrections(fs, spark, customer_features):
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    fs.write_table(customer_features, spark.createDataFrame([(1, ts(3), -1.0, -1.0)], FEATURES_SCHEMA))  # backfill
    labels = spark.createDataFrame([(1, ts(4), 1)], LABELS_SCHEMA)
    assert fs.create_training_set(labels, _lookups(), "churn", as_of=cut).load_df().first().f1 == 3.0
    assert fs.create_training_set(labels, _lookups(), "churn").load_df().first().f1 == -1.0
    with pytest.raises(errors.NotKnownAtError):
        fs.create_training_set(labels, _lookups(), "churn", as_of="2000-01-01")
    with pytest.raises(ValueError, match="future"):
        fs.create_training_set(labels, _lookups(), "churn", as_of="2999-01-01")


def test_vacuumed_version_names_table_version_and_retention(fs, spark, customer_features, join_path):
    labels = spark.createDataFrame([(1, ts(4), 1)], LABELS_SCHEMA)
    t = fs.create_training_set(labels, _lookups(), "churn")
    fs.write_table(customer_features, spark.createDataFrame([(5, ts(5), 5.0, 5.0)], FEATURES_SCHEMA), mode="overwrite")
    fs.lakehouse.vacuum(customer_features, retention_hours=0, dry_run=False, enforce_retention_duration=False)
    with pytest.raises(lh_errors.DataFilesMissingError) as ei:
        t.load_df().collect()
    assert ei.value.table == "customer_features" and ei.value.version == 0
    assert "deletedFileRetentionDuration" in str(ei.value)
