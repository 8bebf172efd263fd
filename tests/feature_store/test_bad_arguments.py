"""The public API with bad arguments: every refusal is a `feature_store.errors` type (never a bare ValueError,
TypeError or KeyError), the exact type is pinned per call, and a refused call leaves the lake's files as
they were (nothing written, no half-created table, no metadata commit).

One lake is built for the module (two feature tables, labels, a saved training set); each case runs one call
against it and compares the files under the lake root before and after.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from feature_store_helpers import FEATURES_SCHEMA, LABELS_SCHEMA, ts

from feature_store import FeatureLookup, FeatureStoreClient, errors
from feature_store._local import THRESHOLD_CONF
from lakehouse import errors as lh_errors

CF = "customer_features"
STORES = "stores"  # a feature table without a timestamp key


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("bad_arguments") / "lake"
    fs = FeatureStoreClient(root=str(root), spark=spark)
    rows = [(1, ts(1), 1.0, 10.0), (2, ts(2), 2.0, 20.0)]
    fs.create_table(
        name=CF, primary_keys="customer_id", timestamp_keys="ts", df=spark.createDataFrame(rows, FEATURES_SCHEMA)
    )
    fs.create_table(
        name=STORES, primary_keys="store_id", df=spark.createDataFrame([(1, 5.0)], "store_id long, revenue double")
    )
    fs.lakehouse.create_table("raw.plain", spark.createDataFrame([(1, 1.0)], "id long, x double"))
    labels = spark.createDataFrame([(1, ts(3), 0), (2, ts(3), 1)], LABELS_SCHEMA)
    saved = fs.create_training_set(labels, [FeatureLookup(CF, "customer_id", timestamp_lookup_key="label_ts")], "churn")
    fs.save_training_set(saved)
    return {"fs": fs, "spark": spark, "labels": labels, "saved": saved, "root": str(root)}


def _lookup(**kw):
    return FeatureLookup(CF, kw.pop("lookup_key", "customer_id"), timestamp_lookup_key="label_ts", **kw)


def _features(c, rows, schema=FEATURES_SCHEMA):
    return c["spark"].createDataFrame(rows, schema)


def _one(c):
    return _features(c, [(1, ts(1), 1.0, 1.0)])


def _training_set(c, lookups, label="churn", **kw):
    return c["fs"].create_training_set(c["labels"], lookups, label, **kw)


# (case id, call, expected type: a name in feature_store.errors, or a lakehouse error raised unchanged)
CASES = [
    # -- FeatureStoreClient() ---------------------------------------------------------------------------------
    (
        "client/lakehouse-and-root",
        lambda c: FeatureStoreClient(c["root"], lakehouse=c["fs"].lakehouse),
        "InvalidArgumentError",
    ),
    ("client/lakehouse-not-a-lakehouse", lambda c: FeatureStoreClient(lakehouse=c["root"]), "ArgumentTypeError"),
    ("client/root-int", lambda c: FeatureStoreClient(123, spark=c["spark"]), "ArgumentTypeError"),
    ("client/spark-str", lambda c: FeatureStoreClient(c["root"], spark="local"), "ArgumentTypeError"),
    # -- create_table -------------------------------------------------------------------------------------------
    ("create/name-int", lambda c: c["fs"].create_table(3, "customer_id", _one(c)), "ArgumentTypeError"),
    ("create/name-empty", lambda c: c["fs"].create_table("", "customer_id", _one(c)), "ArgumentTypeError"),
    (
        "create/name-relative-path",
        lambda c: c["fs"].create_table("../t", "customer_id", _one(c)),
        "InvalidTableNameError",
    ),
    (
        "create/name-metadata",
        lambda c: c["fs"].create_table("_feature_store.t", "customer_id", _one(c)),
        "InvalidTableNameError",
    ),
    (
        "create/name-mlflow",
        lambda c: c["fs"].create_table("mlflow.runs", "customer_id", _one(c)),
        "InvalidTableNameError",
    ),
    (
        "create/existing",
        lambda c: c["fs"].create_table(CF, "customer_id", _one(c), timestamp_keys="ts"),
        "FeatureTableAlreadyExistsError",
    ),
    (
        "create/existing-delta",
        lambda c: c["fs"].create_table("raw.plain", "id", c["spark"].createDataFrame([(1, 1.0)], "id long, x double")),
        "FeatureTableAlreadyExistsError",
    ),
    ("create/pks-int", lambda c: c["fs"].create_table("t", 3, _one(c)), "ArgumentTypeError"),
    ("create/pks-empty", lambda c: c["fs"].create_table("t", [], _one(c)), "InvalidArgumentError"),
    (
        "create/pks-repeated",
        lambda c: c["fs"].create_table("t", ["customer_id", "customer_id"], _one(c)),
        "InvalidArgumentError",
    ),
    ("create/pks-missing-column", lambda c: c["fs"].create_table("t", "nope", _one(c)), "FeatureNotFoundError"),
    (
        "create/two-timestamp-keys",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), timestamp_keys=["ts", "f1"]),
        "InvalidArgumentError",
    ),
    (
        "create/key-in-both",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), timestamp_keys="customer_id"),
        "InvalidArgumentError",
    ),
    (
        "create/timestamp-key-double",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), timestamp_keys="f1"),
        "ColumnTypeError",
    ),
    ("create/only-keys", lambda c: c["fs"].create_table("t", "id", c["spark"].range(1)), "InvalidArgumentError"),
    ("create/neither-df-nor-schema", lambda c: c["fs"].create_table("t", "customer_id"), "InvalidArgumentError"),
    (
        "create/df-and-schema",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), schema=FEATURES_SCHEMA),
        "InvalidArgumentError",
    ),
    ("create/df-list", lambda c: c["fs"].create_table("t", "customer_id", [(1, 1.0)]), "ArgumentTypeError"),
    ("create/schema-int", lambda c: c["fs"].create_table("t", "customer_id", schema=3), "ArgumentTypeError"),
    (
        "create/schema-not-ddl",
        lambda c: c["fs"].create_table("t", "customer_id", schema="customer_id lng, f1 !!"),
        "InvalidArgumentError",
    ),
    (
        "create/partition-missing",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), partition_columns="nope"),
        "ColumnNotFoundError",
    ),
    (
        "create/tags-values-int",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), tags={"team": 1}),
        "ArgumentTypeError",
    ),
    ("create/tags-str", lambda c: c["fs"].create_table("t", "customer_id", _one(c), tags="team"), "ArgumentTypeError"),
    (
        "create/description-int",
        lambda c: c["fs"].create_table("t", "customer_id", _one(c), description=3),
        "ArgumentTypeError",
    ),
    (
        "create/null-key",
        lambda c: c["fs"].create_table("t", "customer_id", _features(c, [(None, ts(1), 1.0, 1.0)])),
        "NullKeyError",
    ),
    (
        "create/duplicate-key",
        lambda c: c["fs"].create_table("t", "customer_id", _features(c, [(1, ts(1), 1.0, 1.0)] * 2)),
        "DuplicateKeyError",
    ),
    # -- register_table -----------------------------------------------------------------------------------------
    (
        "register/no-delta-table",
        lambda c: c["fs"].register_table(delta_table="raw.nope", primary_keys="id"),
        "DeltaTableNotFoundError",
    ),
    ("register/name-int", lambda c: c["fs"].register_table(delta_table=3, primary_keys="id"), "ArgumentTypeError"),
    (
        "register/name-metadata-path",
        lambda c: c["fs"].register_table(
            delta_table=c["fs"].lakehouse.table_path("_feature_store.tables"), primary_keys="name"
        ),
        "InvalidTableNameError",
    ),
    (
        "register/pks-missing-column",
        lambda c: c["fs"].register_table(delta_table="raw.plain", primary_keys="nope"),
        "FeatureNotFoundError",
    ),
    (
        "register/already-a-feature-table",
        lambda c: c["fs"].register_table(delta_table=CF, primary_keys="customer_id"),
        "FeatureTableAlreadyExistsError",
    ),
    (
        "register/tags-list",
        lambda c: c["fs"].register_table(delta_table="raw.plain", primary_keys="id", tags=["a"]),
        "ArgumentTypeError",
    ),
    # -- write_table --------------------------------------------------------------------------------------------
    ("write/unknown-table", lambda c: c["fs"].write_table("nope", _one(c)), "FeatureTableNotFoundError"),
    ("write/name-int", lambda c: c["fs"].write_table(3, _one(c)), "ArgumentTypeError"),
    ("write/mode-append", lambda c: c["fs"].write_table(CF, _one(c), mode="append"), "InvalidArgumentError"),
    ("write/df-none", lambda c: c["fs"].write_table(CF, None), "ArgumentTypeError"),
    ("write/df-dict", lambda c: c["fs"].write_table(CF, {"customer_id": 1}), "ArgumentTypeError"),
    (
        "write/schema-evolution-str",
        lambda c: c["fs"].write_table(CF, _one(c), schema_evolution="yes"),
        "ArgumentTypeError",
    ),
    (
        "write/missing-key-column",
        lambda c: c["fs"].write_table(CF, _features(c, [(1, 1.0)], "customer_id long, f1 double")),
        "SchemaMismatchError",
    ),
    (
        "write/extra-column",
        lambda c: c["fs"].write_table(CF, _features(c, [(1, ts(1), 1.0, 1.0, 1)], FEATURES_SCHEMA + ", f3 int")),
        "SchemaMismatchError",
    ),
    (
        "write/mistyped-column",
        lambda c: c["fs"].write_table(CF, _features(c, [(1, ts(1), "x")], "customer_id long, ts timestamp, f1 string")),
        "SchemaMismatchError",
    ),
    ("write/merge-null-key", lambda c: c["fs"].write_table(CF, _features(c, [(1, None, 1.0, 1.0)])), "NullKeyError"),
    (
        "write/merge-duplicate-key",
        lambda c: c["fs"].write_table(CF, _features(c, [(1, ts(1), 1.0, 1.0)] * 2)),
        "DuplicateKeyError",
    ),
    (
        "write/overwrite-null-key",
        lambda c: c["fs"].write_table(CF, _features(c, [(None, ts(1), 1.0, 1.0)]), mode="overwrite"),
        "NullKeyError",
    ),
    (
        "write/overwrite-duplicate-key",
        lambda c: c["fs"].write_table(CF, _features(c, [(1, ts(1), 1.0, 1.0)] * 2), mode="overwrite"),
        "DuplicateKeyError",
    ),
    (
        "write/overwrite-missing-column",
        lambda c: c["fs"].write_table(
            CF, _features(c, [(1, ts(1), 1.0)], "customer_id long, ts timestamp, f1 double"), mode="overwrite"
        ),
        "SchemaMismatchError",
    ),
    # -- read_table / get_table / search / drop / tags ----------------------------------------------------------
    ("read/unknown-table", lambda c: c["fs"].read_table("nope"), "FeatureTableNotFoundError"),
    ("read/version-str", lambda c: c["fs"].read_table(CF, version="0"), "ArgumentTypeError"),
    ("read/version-bool", lambda c: c["fs"].read_table(CF, version=True), "ArgumentTypeError"),
    ("read/version-negative", lambda c: c["fs"].read_table(CF, version=-1), lh_errors.VersionNotFoundError),
    ("read/version-absent", lambda c: c["fs"].read_table(CF, version=99), lh_errors.VersionNotFoundError),
    (
        "read/timestamp-not-iso",
        lambda c: c["fs"].read_table(CF, as_of_delta_timestamp="yesterday"),
        "InvalidArgumentError",
    ),
    ("read/timestamp-int", lambda c: c["fs"].read_table(CF, as_of_delta_timestamp=3), "ArgumentTypeError"),
    (
        "read/version-and-timestamp",
        lambda c: c["fs"].read_table(CF, version=0, as_of_delta_timestamp="2026-01-01"),
        "InvalidArgumentError",
    ),
    ("get/unknown-table", lambda c: c["fs"].get_table("nope"), "FeatureTableNotFoundError"),
    ("get/relative-path", lambda c: c["fs"].get_table("../x"), "FeatureTableNotFoundError"),
    ("get/name-int", lambda c: c["fs"].get_table(3), "ArgumentTypeError"),
    ("search/text-int", lambda c: c["fs"].search_tables(3), "ArgumentTypeError"),
    ("search/tags-str", lambda c: c["fs"].search_tables(tags="team"), "ArgumentTypeError"),
    ("search/tags-value-int", lambda c: c["fs"].search_tables(tags={"team": 3}), "ArgumentTypeError"),
    ("drop/unknown-table", lambda c: c["fs"].drop_table("nope"), "FeatureTableNotFoundError"),
    ("drop/name-none", lambda c: c["fs"].drop_table(None), "ArgumentTypeError"),
    (
        "set-tag/unknown-table",
        lambda c: c["fs"].set_feature_table_tag(table_name="nope", key="k", value="v"),
        "FeatureTableNotFoundError",
    ),
    ("set-tag/key-int", lambda c: c["fs"].set_feature_table_tag(table_name=CF, key=3, value="v"), "ArgumentTypeError"),
    (
        "set-tag/key-empty",
        lambda c: c["fs"].set_feature_table_tag(table_name=CF, key="", value="v"),
        "ArgumentTypeError",
    ),
    (
        "set-tag/value-int",
        lambda c: c["fs"].set_feature_table_tag(table_name=CF, key="k", value=3),
        "ArgumentTypeError",
    ),
    (
        "delete-tag/unknown-table",
        lambda c: c["fs"].delete_feature_table_tag(table_name="nope", key="k"),
        "FeatureTableNotFoundError",
    ),
    ("delete-tag/key-none", lambda c: c["fs"].delete_feature_table_tag(table_name=CF, key=None), "ArgumentTypeError"),
    # -- create_training_set ------------------------------------------------------------------------------------
    ("ts/df-str", lambda c: c["fs"].create_training_set("labels", [_lookup()], "churn"), "ArgumentTypeError"),
    ("ts/lookups-empty", lambda c: _training_set(c, []), "ArgumentTypeError"),
    ("ts/lookups-not-a-list", lambda c: _training_set(c, _lookup()), "ArgumentTypeError"),
    ("ts/lookups-of-str", lambda c: _training_set(c, [CF]), "ArgumentTypeError"),
    ("ts/label-int", lambda c: _training_set(c, [_lookup()], label=3), "ArgumentTypeError"),
    ("ts/label-missing", lambda c: _training_set(c, [_lookup()], label="nope"), "ColumnNotFoundError"),
    ("ts/exclude-missing", lambda c: _training_set(c, [_lookup()], exclude_columns="nope"), "ColumnNotFoundError"),
    ("ts/exclude-label", lambda c: _training_set(c, [_lookup()], exclude_columns="churn"), "InvalidArgumentError"),
    ("ts/as-of-not-iso", lambda c: _training_set(c, [_lookup()], as_of="last week"), "InvalidArgumentError"),
    ("ts/as-of-int", lambda c: _training_set(c, [_lookup()], as_of=3), "ArgumentTypeError"),
    (
        "ts/as-of-future",
        lambda c: _training_set(c, [_lookup()], as_of=datetime.now(UTC) + timedelta(days=1)),
        "InvalidArgumentError",
    ),
    ("ts/as-of-before-table", lambda c: _training_set(c, [_lookup()], as_of="2000-01-01"), "NotKnownAtError"),
    (
        "ts/unknown-table",
        lambda c: _training_set(c, [FeatureLookup("nope", "customer_id")]),
        "FeatureTableNotFoundError",
    ),
    ("ts/feature-missing", lambda c: _training_set(c, [_lookup(feature_names="nope")]), "FeatureNotFoundError"),
    ("ts/feature-is-a-key", lambda c: _training_set(c, [_lookup(feature_names="ts")]), "FeatureNotFoundError"),
    (
        "ts/lookup-key-count",
        lambda c: _training_set(c, [_lookup(lookup_key=["customer_id", "churn"])]),
        "LookupKeyError",
    ),
    ("ts/lookup-key-missing", lambda c: _training_set(c, [_lookup(lookup_key="nope")]), "LookupKeyError"),
    ("ts/lookup-key-type", lambda c: _training_set(c, [_lookup(lookup_key="label_ts")]), "ColumnTypeError"),
    (
        "ts/no-timestamp-lookup-key",
        lambda c: _training_set(c, [FeatureLookup(CF, "customer_id")]),
        "InvalidArgumentError",
    ),
    (
        "ts/timestamp-lookup-key-missing",
        lambda c: _training_set(c, [FeatureLookup(CF, "customer_id", timestamp_lookup_key="nope")]),
        "ColumnNotFoundError",
    ),
    (
        "ts/timestamp-lookup-key-int",
        lambda c: _training_set(c, [FeatureLookup(CF, "customer_id", timestamp_lookup_key="churn")]),
        "ColumnTypeError",
    ),
    (
        "ts/timestamp-lookup-key-no-ts-table",
        lambda c: _training_set(c, [FeatureLookup(STORES, "customer_id", timestamp_lookup_key="label_ts")]),
        "InvalidArgumentError",
    ),
    ("ts/default-unknown", lambda c: _training_set(c, [_lookup(default_values={"nope": 1.0})]), "InvalidArgumentError"),
    ("ts/default-type", lambda c: _training_set(c, [_lookup(default_values={"f1": "x"})]), "ColumnTypeError"),
    ("ts/rename-unknown", lambda c: _training_set(c, [_lookup(rename_outputs={"nope": "x"})]), "InvalidArgumentError"),
    (
        "ts/rename-onto-label",
        lambda c: _training_set(c, [_lookup(rename_outputs={"f1": "churn"})]),
        "OutputNameConflictError",
    ),
    (
        "ts/rename-reserved",
        lambda c: _training_set(c, [_lookup(rename_outputs={"f1": "__fs_x"})]),
        "InvalidArgumentError",
    ),
    ("save/not-a-training-set", lambda c: c["fs"].save_training_set("ts"), "ArgumentTypeError"),
    ("load/unknown-id", lambda c: c["fs"].load_training_set("nope"), "TrainingSetNotFoundError"),
    ("load/id-int", lambda c: c["fs"].load_training_set(3), "ArgumentTypeError"),
    # -- FeatureLookup ------------------------------------------------------------------------------------------
    ("lookup/table-int", lambda c: FeatureLookup(3, "customer_id"), "ArgumentTypeError"),
    ("lookup/table-empty", lambda c: FeatureLookup("", "customer_id"), "ArgumentTypeError"),
    ("lookup/key-int", lambda c: FeatureLookup(CF, 3), "ArgumentTypeError"),
    ("lookup/key-empty", lambda c: FeatureLookup(CF, []), "InvalidArgumentError"),
    ("lookup/key-repeated", lambda c: FeatureLookup(CF, ["a", "a"]), "InvalidArgumentError"),
    ("lookup/features-empty", lambda c: FeatureLookup(CF, "customer_id", feature_names=[]), "InvalidArgumentError"),
    ("lookup/features-int", lambda c: FeatureLookup(CF, "customer_id", feature_names=[1]), "ArgumentTypeError"),
    (
        "lookup/timestamp-key-int",
        lambda c: FeatureLookup(CF, "customer_id", timestamp_lookup_key=3),
        "ArgumentTypeError",
    ),
    (
        "lookup/lookback-int",
        lambda c: FeatureLookup(CF, "customer_id", timestamp_lookup_key="t", lookback_window=3),
        "ArgumentTypeError",
    ),
    (
        "lookup/lookback-negative",
        lambda c: FeatureLookup(CF, "customer_id", timestamp_lookup_key="t", lookback_window=timedelta(-1)),
        "InvalidArgumentError",
    ),
    (
        "lookup/lookback-without-timestamp",
        lambda c: FeatureLookup(CF, "customer_id", lookback_window=timedelta(1)),
        "InvalidArgumentError",
    ),
    ("lookup/rename-int", lambda c: FeatureLookup(CF, "customer_id", rename_outputs={"f1": 1}), "ArgumentTypeError"),
    ("lookup/rename-str", lambda c: FeatureLookup(CF, "customer_id", rename_outputs="f1"), "ArgumentTypeError"),
    (
        "lookup/defaults-int-key",
        lambda c: FeatureLookup(CF, "customer_id", default_values={1: 1.0}),
        "ArgumentTypeError",
    ),
    (
        "lookup/defaults-list-value",
        lambda c: FeatureLookup(CF, "customer_id", default_values={"f1": [1.0]}),
        "ArgumentTypeError",
    ),
    ("lookup/defaults-str", lambda c: FeatureLookup(CF, "customer_id", default_values="f1"), "ArgumentTypeError"),
    # -- TrainingSet --------------------------------------------------------------------------------------------
    (
        "training-set/matched-timestamps-str",
        lambda c: c["saved"].load_df(include_matched_timestamps="yes"),
        "ArgumentTypeError",
    ),
]


def _files(root: str) -> dict[str, int]:
    """Every file under the lake with its size: a write, a commit or a new table changes this."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = os.path.getsize(path)
    return out


@pytest.mark.parametrize(("call", "expected"), [pytest.param(f, e, id=i) for i, f, e in CASES])
def test_bad_argument_raises_the_exact_error_and_writes_nothing(ctx, call, expected):
    expected = getattr(errors, expected) if isinstance(expected, str) else expected
    before = _files(ctx["root"])
    with pytest.raises(expected) as ei:
        call(ctx)
    assert type(ei.value) is expected, f"{type(ei.value).__name__} (a subclass): {ei.value}"
    assert _files(ctx["root"]) == before


def test_bad_threshold_setting_names_it(ctx):
    ctx["spark"].conf.set(THRESHOLD_CONF, "lots")
    try:
        with pytest.raises(errors.InvalidArgumentError, match=THRESHOLD_CONF) as ei:
            ctx["saved"].load_df()
    finally:
        ctx["spark"].conf.unset(THRESHOLD_CONF)
    assert ei.value.argument == THRESHOLD_CONF and ei.value.value == "lots"


def test_every_new_error_keeps_its_builtin_base_and_facts():
    """The builtin bases are those the same mistakes raised before, so existing `except` clauses still match."""
    assert issubclass(errors.ArgumentTypeError, TypeError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.ColumnNotFoundError, ValueError)
    assert issubclass(errors.InvalidTableNameError, lh_errors.InvalidTableNameError)
    assert issubclass(errors.DeltaTableNotFoundError, lh_errors.TableNotFoundError)
    e = errors.ArgumentTypeError("primary_keys", 3, "a column name or a list of column names")
    assert (e.argument, e.value) == ("primary_keys", 3)
    assert str(e) == "primary_keys must be a column name or a list of column names, got int 3"
    e = errors.ColumnNotFoundError("label", ["nope"], ["a", "b"], "df")
    assert (e.missing, e.available, e.where) == (["nope"], ["a", "b"], "df")


def test_null_key_in_a_merge_keeps_its_message_and_writes_nothing(ctx):
    """Null keys fail the merge's own pass over its source (no extra job); the error names the column found."""
    fs = ctx["fs"]
    before = _files(ctx["root"])
    df = _features(ctx, [(3, None, 1.0, 1.0), (4, ts(4), 3.0, 3.0)])
    with pytest.raises(errors.NullKeyError) as ei:
        fs.write_table(CF, df)
    assert ei.value.columns == ["ts"]
    assert str(ei.value) == (
        f"the input for feature table {CF!r} has nulls in key column(s) ts; keys must be non-null. "
        "Nothing was written. Filter or fill those rows first."
    )
    # Both keys null: the job stops at the first null it meets, so at least one of them is named.
    with pytest.raises(errors.NullKeyError) as ei:
        fs.write_table(CF, _features(ctx, [(None, None, 1.0, 1.0)]))
    assert ei.value.columns and set(ei.value.columns) <= {"customer_id", "ts"}
    assert _files(ctx["root"]) == before
    assert fs.get_table(CF).latest_version == 0
