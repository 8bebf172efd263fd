"""write_table: merge semantics, key uniqueness, schema enforcement and evolution, overwrite."""

import pytest
from chispa import assert_df_equality
from feature_store_helpers import FEATURES_SCHEMA, ts

from feature_store import errors


def test_merge_updates_inserts_and_keeps_uncarried_columns(fs, spark, customer_features):
    upd = spark.createDataFrame([(1, ts(3), 33.0), (7, ts(7), 7.0)], "customer_id long, ts timestamp, f1 double")
    v = fs.write_table(customer_features, upd, mode="merge")
    assert v == 1
    got = fs.read_table(customer_features)
    expected = spark.createDataFrame(
        [
            (1, ts(1), 1.0, 10.0),
            (1, ts(3), 33.0, 30.0),
            (1, ts(5), 5.0, None),
            (2, ts(2), 2.0, 20.0),
            (7, ts(7), 7.0, None),
        ],
        FEATURES_SCHEMA,
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_merge_refuses_duplicate_and_null_keys(fs, spark, customer_features):
    dup = spark.createDataFrame([(1, ts(3), 1.0, 1.0), (1, ts(3), 2.0, 2.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.DuplicateKeyError, match="customer_id=1"):
        fs.write_table(customer_features, dup)
    null = spark.createDataFrame([(1, None, 1.0, 1.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.NullKeyError, match="ts"):
        fs.write_table(customer_features, null)
    assert fs.get_table(customer_features).latest_version == 0


def test_schema_mismatch_names_expected_and_received(fs, spark, customer_features):
    extra = spark.createDataFrame([(1, ts(3), 1.0, 1.0, 5)], FEATURES_SCHEMA + ", f3 int")
    with pytest.raises(errors.SchemaMismatchError) as ei:
        fs.write_table(customer_features, extra)
    assert "f3" in str(ei.value) and ("f1", "double") in ei.value.expected
    mistyped = spark.createDataFrame([(1, ts(3), "x")], "customer_id long, ts timestamp, f1 string")
    with pytest.raises(errors.SchemaMismatchError, match="f1"):
        fs.write_table(customer_features, mistyped)
    no_key = spark.createDataFrame([(1, 1.0)], "customer_id long, f1 double")
    with pytest.raises(errors.SchemaMismatchError, match="'ts' is missing"):
        fs.write_table(customer_features, no_key)
    fs.write_table(customer_features, extra, schema_evolution=True)
    assert "f3" in fs.get_table(customer_features).feature_names


def test_overwrite_needs_every_column_and_unique_keys(fs, spark, customer_features):
    partial = spark.createDataFrame([(1, ts(3), 1.0)], "customer_id long, ts timestamp, f1 double")
    with pytest.raises(errors.SchemaMismatchError, match="'f2' is missing"):
        fs.write_table(customer_features, partial, mode="overwrite")
    dup = spark.createDataFrame([(1, ts(3), 1.0, 1.0), (1, ts(3), 2.0, 2.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.DuplicateKeyError):
        fs.write_table(customer_features, dup, mode="overwrite")
    fs.write_table(customer_features, spark.createDataFrame([(5, ts(5), 5.0, 5.0)], FEATURES_SCHEMA), mode="overwrite")
    assert fs.read_table(customer_features).count() == 1
    with pytest.raises(ValueError, match="mode="):
        fs.write_table(customer_features, dup, mode="append")
