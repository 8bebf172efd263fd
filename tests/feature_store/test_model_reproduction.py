"""load_training_set(model_uri): the DataFrame a model was trained on, re-created and checked by content hash.

The tests run in order on one module's model: later merges change nothing; VACUUM of a version the training set
read gives the lakehouse's typed error naming table and version; a table re-created under the same name is caught
by the hash.
"""

from __future__ import annotations

import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts
from trained_model import FEATURE_ROWS, LOOKUPS, MODEL

from feature_store import errors
from feature_store._reproduce import content_hash
from lakehouse import errors as lh_errors


@pytest.fixture(autouse=True)
def _in_the_models_lake(tracking) -> None:
    pass


def _rows(df) -> list[tuple]:
    return sorted(tuple(r) for r in df.collect())


def test_the_model_reproduces_its_training_set_after_later_merges(trained, spark):
    original = _rows(trained.training_set.load_df())
    fs = trained.fs
    fs.write_table("customer_features", spark.createDataFrame([(1, ts(2), 99.0, 99.0)], FEATURES_SCHEMA), mode="merge")
    ts_ = trained.training_set
    latest = fs.create_training_set(ts_._labels, LOOKUPS, "y", exclude_columns=list(ts_.exclude_columns))
    assert _rows(latest.load_df()) != original  # the merge changed what a new training set reads
    for uri in (f"models:/{MODEL}/Production", f"models:/{MODEL}@champion", trained.runs_uri):
        again = fs.load_training_set(uri)
        assert again.id == trained.training_set.id and again.versions == trained.training_set.versions
        assert _rows(again.load_df()) == original
    # by id too: log_model saved it
    assert trained.training_set.id in fs.list_training_sets()


def test_the_content_hash_is_of_the_rows_whatever_their_order(spark):
    a = spark.createDataFrame([(1, "x", 1.5), (2, None, 2.5), (3, "z", None)], "k long, s string, v double")
    assert content_hash(a) == content_hash(a.orderBy("k", ascending=False).repartition(3))
    changed = spark.createDataFrame([(1, "x", 1.5), (2, None, 2.5), (3, "z", 0.0)], "k long, s string, v double")
    moved_null = spark.createDataFrame([(1, "x", 1.5), (2, "", 2.5), (3, "z", None)], "k long, s string, v double")
    retyped = a.selectExpr("cast(k as int) as k", "s", "v")
    hashes = {content_hash(df) for df in (a, changed, moved_null, retyped, a.limit(2), a.union(a))}
    assert len(hashes) == 6
    assert content_hash(retyped).difference(content_hash(a)) == "the columns or their types differ"


def test_a_vacuumed_version_is_named(trained, spark):
    fs = trained.fs
    fs.write_table(
        "customer_features", spark.createDataFrame([(5, ts(5), 5.0, 5.0)], FEATURES_SCHEMA), mode="overwrite"
    )
    fs.lakehouse.vacuum("customer_features", retention_hours=0, dry_run=False, enforce_retention_duration=False)
    with pytest.raises(lh_errors.DataFilesMissingError) as err:
        fs.load_training_set(trained.runs_uri)
    assert err.value.table == "customer_features" and err.value.version == 0


def test_a_table_recreated_under_the_same_name_is_caught_by_the_hash(trained, spark):
    fs = trained.fs
    fs.drop_table("customer_features", force=True)
    altered = [(c, t, (f1 or 0.0) + 1.0, f2) for c, t, f1, f2 in FEATURE_ROWS]  # version 0 again, other values
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame(altered, FEATURES_SCHEMA),
    )
    with pytest.raises(errors.TrainingSetMismatchError, match="same 8 rows and columns, different values") as err:
        fs.load_training_set(trained.runs_uri)
    assert err.value.model_uri == trained.runs_uri and err.value.recorded != err.value.computed
