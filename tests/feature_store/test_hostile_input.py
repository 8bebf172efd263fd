"""Hostile and malformed input to the feature store: one catalogue of distinct classes, each refused with a typed
error whose message names what was wrong and how to fix it, and nothing written anywhere.

Classes (none repeats a case of test_bad_arguments.py): table names that try to leave the lake root (nested
`..`, absolute paths, URL-encoded dots, slashes, backslashes, URIs, control characters, a symlink in the lake
pointing outside), wrong types and schemas of the rows written, null / NaN / duplicate keys (NaN keys never
match in a merge), NaN and infinite values where they mean nothing (defaults, lookback windows), naive and
aware timestamps mixed, out-of-range versions and timestamps, unknown tables, features, functions and models,
bad modes, malformed online-store specs and stores, malformed feature functions and online lookups.

After each call, every Delta table under the test's folder (the lake and the folder outside it that the
symlink points to) has the version it had, and no file appeared or changed.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from feature_store_helpers import FEATURES_SCHEMA, LABELS_SCHEMA, ts

from feature_store import (
    FeatureFunction,
    FeatureLookup,
    FeatureStoreClient,
    RedisOnlineStore,
    SqliteOnlineStore,
    errors,
)
from lakehouse import errors as lh_errors

CF = "customer_features"
STORES = "stores"  # no timestamp key
NAN = float("nan")
INF = float("inf")


def _double_fn(x):
    return x * 2.0


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, spark):
    base = tmp_path_factory.mktemp("hostile")
    root = base / "lake"
    fs = FeatureStoreClient(root=str(root), spark=spark)
    rows = [(1, ts(1), 1.0, 10.0), (2, ts(2), 2.0, 20.0)]
    fs.create_table(
        name=CF, primary_keys="customer_id", timestamp_keys="ts", df=spark.createDataFrame(rows, FEATURES_SCHEMA)
    )
    fs.create_table(
        name=STORES, primary_keys="store_id", df=spark.createDataFrame([(1, 5.0)], "store_id long, revenue double")
    )
    fs.lakehouse.create_table("raw.plain", spark.createDataFrame([(1, 1.0)], "id long, x double"))
    fs.lakehouse.create_table("raw.dups", spark.createDataFrame([(1, 1.0), (1, 2.0)], "id long, x double"))
    outside = base / "outside"
    fs.lakehouse.create_table(str(outside / "t"), spark.createDataFrame([(1, 1.0)], "id long, x double"))
    os.symlink(outside, root / "linked")  # a folder in the lake that leads out of it
    (base / "not_a_db.sqlite").write_bytes(b"this is not a SQLite database" * 40)
    (base / "a_file").write_text("a file, not a folder")
    fs.create_feature_function(name="double_it", function=_double_fn, return_type="double")
    fs.publish_table(CF)
    labels = spark.createDataFrame([(1, ts(3), 0), (2, ts(3), 1)], LABELS_SCHEMA)
    return {"fs": fs, "spark": spark, "labels": labels, "root": str(root), "base": base, "outside": str(outside / "t")}


def _df(c, rows, schema=FEATURES_SCHEMA):
    return c["spark"].createDataFrame(rows, schema)


def _one(c):
    return _df(c, [(1, ts(1), 1.0, 1.0)])


def _lookup(table=CF, key="customer_id", **kw):
    return FeatureLookup(table, key, timestamp_lookup_key="label_ts" if table == CF else None, **kw)


def _ts(c, lookups, label="churn", labels=None, **kw):
    return c["fs"].create_training_set(labels if labels is not None else c["labels"], lookups, label, **kw)


def _create(c, name, df=None, pks="customer_id", **kw):
    return c["fs"].create_table(name, pks, df if df is not None else _one(c), timestamp_keys=kw.pop("tks", "ts"), **kw)


def _pandas(rows, columns=("customer_id", "ts", "f1", "f2")):
    return pd.DataFrame(rows, columns=list(columns))


# (id, call, expected error: a name in feature_store.errors or a class, words the message must hold: what was
#  wrong and how to fix it; each a regex searched case-insensitively)
CASES = [
    # -- names that try to leave the lake root ------------------------------------------------------------------
    ("name/nested-dotdot", lambda c: _create(c, "a/../../escape"), "InvalidTableNameError", ["escape", "lake"]),
    ("name/dotdot-namespace", lambda c: _create(c, "...escape"), "InvalidTableNameError", ["escape", "name"]),
    ("name/url-encoded-dotdot", lambda c: _create(c, "%2e%2e/escape"), "InvalidTableNameError", ["%2e%2e", "name"]),
    ("name/url-encoded-slash", lambda c: _create(c, "ns%2fescape"), "InvalidTableNameError", ["%2f", "name"]),
    (
        "name/absolute-outside",
        lambda c: _create(c, "/tmp/fs-hostile-escape"),
        "InvalidTableNameError",
        ["/tmp", "lake"],
    ),
    (
        "name/absolute-existing-outside",
        lambda c: c["fs"].register_table(delta_table=c["outside"], primary_keys="id"),
        "InvalidTableNameError",
        ["outside", "lake"],
    ),
    ("name/slash", lambda c: _create(c, "a/b"), "InvalidTableNameError", ["a/b", "name"]),
    ("name/backslash", lambda c: _create(c, "a\\..\\b"), "InvalidTableNameError", [r"\\", "name"]),
    ("name/file-uri", lambda c: _create(c, "file:///tmp/fs-hostile"), "InvalidTableNameError", ["file:", "lake"]),
    ("name/object-store-uri", lambda c: _create(c, "s3://bucket/t"), "InvalidTableNameError", ["s3:", "lake"]),
    (
        "name/nul-byte",
        lambda c: _create(c, "a\x00b"),
        "InvalidTableNameError",
        ["invalid feature table name", "letters, digits"],
    ),
    (
        "name/newline",
        lambda c: _create(c, "a\nb"),
        "InvalidTableNameError",
        ["invalid feature table name", "letters, digits"],
    ),
    ("name/dot-only", lambda c: _create(c, "."), "InvalidTableNameError", ["'\\.'", "name"]),
    ("name/empty-namespace-part", lambda c: _create(c, "ns..t"), "InvalidTableNameError", ["ns\\.\\.t", "name"]),
    (
        "name/sql-injection",
        lambda c: _create(c, "t`; DROP TABLE x; --"),
        "InvalidTableNameError",
        ["drop table", "name"],
    ),
    ("name/too-long", lambda c: _create(c, "t" * 300), "InvalidTableNameError", ["t{20}", "long|255"]),
    ("name/symlink-create", lambda c: _create(c, "linked.new"), "InvalidTableNameError", ["linked", "outside|symlink"]),
    (
        "name/symlink-register",
        lambda c: c["fs"].register_table(delta_table="linked.t", primary_keys="id"),
        "InvalidTableNameError",
        ["linked", "outside|symlink"],
    ),
    (
        "name/symlink-write",
        lambda c: c["fs"].write_table("linked.t", _df(c, [(1, 2.0)], "id long, x double")),
        "FeatureTableNotFoundError",
        ["linked.t", "create_table|register_table"],
    ),
    (
        "name/dotdot-read",
        lambda c: c["fs"].read_table("x/../" + CF),
        "FeatureTableNotFoundError",
        ["x/\\.\\./", "create_table|register_table"],
    ),
    (
        "name/dotdot-drop",
        lambda c: c["fs"].drop_table("../lake/" + CF),
        "FeatureTableNotFoundError",
        ["\\.\\./lake", "create_table|register_table"],
    ),
    (
        "name/dotdot-lookup",
        lambda c: _ts(c, [_lookup("../lake/" + CF)]),
        "FeatureTableNotFoundError",
        ["\\.\\./lake", "create_table|register_table"],
    ),
    (
        "name/dotdot-publish",
        lambda c: c["fs"].publish_table("../" + CF),
        "FeatureTableNotFoundError",
        ["\\.\\./", "create_table|register_table"],
    ),
    (
        "name/plain-delta-write",
        lambda c: c["fs"].write_table("raw.plain", _df(c, [(1, 2.0)], "id long, x double")),
        "FeatureTableNotFoundError",
        ["raw.plain", "register_table"],
    ),
    (
        "name/plain-delta-lookup",
        lambda c: _ts(c, [FeatureLookup("raw.plain", "customer_id")]),
        "FeatureTableNotFoundError",
        ["raw.plain", "register_table"],
    ),
    (
        "name/tag-on-dotdot",
        lambda c: c["fs"].set_feature_table_tag(table_name="../x", key="k", value="v"),
        "FeatureTableNotFoundError",
        ["\\.\\./x", "create_table|register_table"],
    ),
    # -- wrong types and schemas ---------------------------------------------------------------------------------
    (
        "schema/key-as-string",
        lambda c: c["fs"].write_table(
            CF, _df(c, [("1", ts(1), 1.0, 1.0)], "customer_id string, ts timestamp, f1 double, f2 double")
        ),
        "SchemaMismatchError",
        ["customer_id", "string"],
    ),
    (
        "schema/timestamp-as-string",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, "2026-01-01", 1.0, 1.0)], "customer_id long, ts string, f1 double, f2 double")
        ),
        "SchemaMismatchError",
        ["ts", "string"],
    ),
    (
        "schema/timestamp-as-date",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, date(2026, 1, 1), 1.0, 1.0)], "customer_id long, ts date, f1 double, f2 double")
        ),
        "SchemaMismatchError",
        ["ts", "date"],
    ),
    (
        "schema/feature-struct",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, ts(1), (1.0,), 1.0)], "customer_id long, ts timestamp, f1 struct<a:double>, f2 double")
        ),
        "SchemaMismatchError",
        ["f1", "struct"],
    ),
    (
        "schema/feature-array",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, ts(1), [1.0], 1.0)], "customer_id long, ts timestamp, f1 array<double>, f2 double")
        ),
        "SchemaMismatchError",
        ["f1", "array"],
    ),
    (
        "schema/feature-narrowed-to-int-overwrite",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, ts(1), 1, 1.0)], "customer_id long, ts timestamp, f1 int, f2 double"), mode="overwrite"
        ),
        "SchemaMismatchError",
        ["f1", "int"],
    ),
    (
        "schema/duplicate-column-names",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, ts(1), 1.0, 1.0)], "customer_id long, ts timestamp, f1 double, f1 double")
        ),
        "SchemaMismatchError",
        ["f1", "twice|duplicate"],
    ),
    (
        "schema/column-case-differs",
        lambda c: c["fs"].write_table(
            CF, _df(c, [(1, ts(1), 1.0, 1.0)], "customer_id long, ts timestamp, F1 double, f2 double")
        ),
        "SchemaMismatchError",
        ["F1", "f1"],
    ),
    (
        "schema/pandas-object-mixed",
        lambda c: c["fs"].write_table(CF, _pandas([[1, ts(1), 1.0, 1.0], [2, ts(2), "x", 2.0]])),
        "SchemaMismatchError",
        ["f1", "string"],
    ),
    (
        "schema/arrow-wrong-types",
        lambda c: c["fs"].write_table(CF, pa.table({"customer_id": ["a"], "ts": [ts(1)], "f1": [1.0], "f2": [1.0]})),
        "SchemaMismatchError",
        ["customer_id", "string"],
    ),
    (
        "schema/overwrite-extra-key-type",
        lambda c: c["fs"].write_table(
            STORES, _df(c, [(1.5, 5.0)], "store_id double, revenue double"), mode="overwrite"
        ),
        "SchemaMismatchError",
        ["store_id", "double"],
    ),
    (
        "schema/pandas-empty-columns",
        lambda c: c["fs"].write_table(CF, pd.DataFrame()),
        "InvalidArgumentError",
        ["no columns", "pass"],
    ),
    (
        "schema/create-map-key",
        lambda c: _create(
            c, "maps", _df(c, [({"a": 1}, ts(1), 1.0)], "m map<string,int>, ts timestamp, f double"), pks="m"
        ),
        "ColumnTypeError",
        ["m", "map"],
    ),
    (
        "schema/create-no-columns-ddl",
        lambda c: c["fs"].create_table("empty", "id", schema=""),
        "InvalidArgumentError",
        ["schema", "ddl|column"],
    ),
    (
        "schema/create-ddl-injection",
        lambda c: c["fs"].create_table("inj", "id", schema="id long) USING delta; DROP TABLE x; --"),
        "InvalidArgumentError",
        ["schema", "ddl"],
    ),
    (
        "schema/evolution-mistyped-key",
        lambda c: c["fs"].write_table(
            CF,
            _df(c, [(1, ts(1), 1.0, 1.0, 3)], "customer_id string, ts timestamp, f1 double, f2 double, f3 int"),
            schema_evolution=True,
        ),
        "SchemaMismatchError",
        ["customer_id", "string"],
    ),
    # -- null, NaN and duplicate keys ---------------------------------------------------------------------------
    (
        "keys/null-primary-key-merge",
        lambda c: c["fs"].write_table(STORES, _df(c, [(None, 1.0)], "store_id long, revenue double")),
        "NullKeyError",
        ["store_id", "non-null"],
    ),
    (
        "keys/null-key-pandas",
        lambda c: c["fs"].write_table(STORES, pd.DataFrame({"store_id": [None, 2], "revenue": [1.0, 2.0]})),
        "SchemaMismatchError",
        ["store_id", "double"],
    ),
    (
        "keys/duplicate-timeseries-key",
        lambda c: c["fs"].write_table(CF, _df(c, [(1, ts(1), 1.0, 1.0), (1, ts(1), 2.0, 2.0)])),
        "DuplicateKeyError",
        ["customer_id", "unique|once"],
    ),
    (
        "keys/duplicate-same-instant-zones",
        lambda c: c["fs"].write_table(
            CF,
            _pandas(
                [
                    [1, pd.Timestamp("2026-01-05T00:00:00+00:00"), 1.0, 1.0],
                    [1, pd.Timestamp("2026-01-05T01:00:00+01:00"), 2.0, 2.0],
                ]
            ),
        ),
        "DuplicateKeyError",
        ["customer_id", "unique|once"],
    ),
    (
        "keys/duplicate-register",
        lambda c: c["fs"].register_table(delta_table="raw.dups", primary_keys="id"),
        "DuplicateKeyError",
        ["id", "unique|once"],
    ),
    (
        "keys/null-key-overwrite-stores",
        lambda c: c["fs"].write_table(
            STORES, _df(c, [(None, 1.0), (2, 2.0)], "store_id long, revenue double"), mode="overwrite"
        ),
        "NullKeyError",
        ["store_id", "non-null"],
    ),
    # -- NaN and infinite values where they mean nothing ----------------------------------------------------------
    (
        "values/default-nan",
        lambda c: FeatureLookup(CF, "customer_id", default_values={"f1": NAN}),
        "InvalidArgumentError",
        ["f1", "nan"],
    ),
    (
        "values/default-inf",
        lambda c: FeatureLookup(CF, "customer_id", default_values={"f1": INF}),
        "InvalidArgumentError",
        ["f1", "inf"],
    ),
    (
        "values/default-bool-for-double",
        lambda c: _ts(c, [_lookup(default_values={"f1": True})]),
        "ColumnTypeError",
        ["f1", "bool"],
    ),
    (
        "values/default-float-for-long",
        lambda c: _ts(
            c, [_lookup(STORES, "customer_id", rename_outputs={"revenue": "r"}, default_values={"store_id": 1.5})]
        ),
        "InvalidArgumentError|FeatureNotFoundError",
        ["store_id"],
    ),
    (
        "values/lookback-huge",
        lambda c: _ts(c, [_lookup(lookback_window=timedelta.max)]),
        "InvalidArgumentError",
        ["lookback_window", "at most|too"],
    ),
    (
        "values/lookback-float",
        lambda c: FeatureLookup(CF, "customer_id", timestamp_lookup_key="label_ts", lookback_window=INF),
        "ArgumentTypeError",
        ["lookback_window", "timedelta"],
    ),
    ("values/as-of-nan", lambda c: _ts(c, [_lookup()], as_of=NAN), "ArgumentTypeError", ["as_of", "datetime"]),
    ("values/version-nan", lambda c: c["fs"].read_table(CF, version=NAN), "ArgumentTypeError", ["version", "int"]),
    (
        "values/version-float-integral",
        lambda c: c["fs"].read_table(CF, version=0.0),
        "ArgumentTypeError",
        ["version", "int"],
    ),
    # -- naive and aware timestamps mixed -------------------------------------------------------------------------
    (
        "time/pandas-naive-and-aware",
        lambda c: c["fs"].write_table(
            CF, _pandas([[1, datetime(2026, 1, 6), 1.0, 1.0], [2, datetime(2026, 1, 6, tzinfo=UTC), 2.0, 2.0]])
        ),
        "InvalidArgumentError",
        ["'ts'", "naive", "aware"],
    ),
    (
        "time/labels-naive-and-aware",
        lambda c: _ts(
            c,
            [_lookup()],
            labels=_pandas(
                [[1, datetime(2026, 1, 3), 0], [2, datetime(2026, 1, 3, tzinfo=UTC), 1]],
                ("customer_id", "label_ts", "churn"),
            ),
        ),
        "InvalidArgumentError",
        ["label_ts", "naive", "aware"],
    ),
    (
        "time/as-of-offset-out-of-range",
        lambda c: _ts(c, [_lookup()], as_of="2026-01-03T00:00:00+25:00"),
        "InvalidArgumentError",
        ["as_of", "iso|offset"],
    ),
    (
        "time/as-of-bad-month",
        lambda c: _ts(c, [_lookup()], as_of="2026-13-01"),
        "InvalidArgumentError",
        ["as_of", "month|iso"],
    ),
    (
        "time/read-timestamp-far-past",
        lambda c: c["fs"].read_table(CF, as_of_delta_timestamp=datetime(1, 1, 1, tzinfo=UTC)),
        lh_errors.TimestampOutOfRangeError,
        ["0001|first|earliest", "version|commit"],
    ),
    (
        "time/read-timestamp-far-future",
        lambda c: c["fs"].read_table(CF, as_of_delta_timestamp="9999-12-31T23:59:59Z"),
        lh_errors.TimestampOutOfRangeError,
        ["9999", "latest|last"],
    ),
    (
        "time/read-timestamp-tz-far-future",
        lambda c: c["fs"].read_table(
            CF, as_of_delta_timestamp=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
        ),
        "InvalidArgumentError|TimestampOutOfRangeError",
        ["as_of_delta_timestamp", "years 1 to 9999"],
    ),
    (
        "time/read-timestamp-and-version",
        lambda c: c["fs"].read_table(CF, version=0, as_of_delta_timestamp=ts(1)),
        "InvalidArgumentError",
        ["version", "either"],
    ),
    (
        "time/as-of-date-before-table",
        lambda c: _ts(c, [_lookup()], as_of=date(1999, 1, 1)),
        "NotKnownAtError",
        [CF, "1999"],
    ),
    (
        "time/as-of-bytes",
        lambda c: _ts(c, [_lookup()], as_of=b"2026-01-01"),
        "ArgumentTypeError",
        ["as_of", "datetime"],
    ),
    (
        "time/timestamp-lookup-key-string",
        lambda c: _ts(
            c, [_lookup()], labels=_df(c, [(1, "2026-01-03", 0)], "customer_id long, label_ts string, churn int")
        ),
        "ColumnTypeError",
        ["label_ts", "string"],
    ),
    # -- out-of-range versions ------------------------------------------------------------------------------------
    (
        "version/beyond-int64",
        lambda c: c["fs"].read_table(CF, version=2**64),
        lh_errors.VersionNotFoundError,
        ["18446744073709551616", "0"],
    ),
    (
        "version/int64-max",
        lambda c: c["fs"].read_table(CF, version=2**63 - 1),
        lh_errors.VersionNotFoundError,
        ["9223372036854775807", "0"],
    ),
    (
        "version/numpy-negative",
        lambda c: c["fs"].read_table(CF, version=__import__("numpy").int64(-5)),
        "ArgumentTypeError|VersionNotFoundError",
        ["version|-5"],
    ),
    ("version/str-digits", lambda c: c["fs"].read_table(CF, version=" 0 "), "ArgumentTypeError", ["version", "int"]),
    # -- unknown tables, features, functions, models -------------------------------------------------------------
    (
        "unknown/feature-among-known",
        lambda c: _ts(c, [_lookup(feature_names=["f1", "nope"])]),
        "FeatureNotFoundError",
        ["nope", "f2"],
    ),
    (
        "unknown/feature-repeated",
        lambda c: FeatureLookup(CF, "customer_id", feature_names=["f1", "f1"]),
        "InvalidArgumentError",
        ["f1", "once|repeated|twice"],
    ),
    (
        "unknown/feature-publish",
        lambda c: c["fs"].publish_table(CF, features=["nope"]),
        "FeatureNotFoundError",
        ["nope", "f1"],
    ),
    (
        "unknown/function",
        lambda c: _ts(c, [_lookup(), FeatureFunction(udf_name="nope", input_bindings={"x": "f1"}, output_name="o")]),
        "FeatureFunctionNotFoundError",
        ["nope", "create_feature_function|double_it"],
    ),
    (
        "unknown/function-delete",
        lambda c: c["fs"].delete_feature_function("nope"),
        "FeatureFunctionNotFoundError",
        ["nope", "double_it"],
    ),
    (
        "unknown/function-binding",
        lambda c: _ts(
            c, [_lookup(), FeatureFunction(udf_name="double_it", input_bindings={"y": "f1"}, output_name="o")]
        ),
        "InvalidFeatureFunctionError|InvalidArgumentError",
        ["y", "x"],
    ),
    (
        "unknown/function-input-column",
        lambda c: _ts(
            c, [_lookup(), FeatureFunction(udf_name="double_it", input_bindings={"x": "nope"}, output_name="o")]
        ),
        "ColumnNotFoundError",
        ["nope", "f1|churn"],
    ),
    (
        "unknown/model-uri-scheme",
        lambda c: c["fs"].score_batch("nope://m/1", c["labels"]),
        "ModelNotFoundError|InvalidArgumentError",
        ["nope://m/1"],
    ),
    (
        "unknown/online-unpublished",
        lambda c: c["fs"].get_online_features([_lookup(STORES, "store_id")], [{"store_id": 1}]),
        "OnlineTableNotPublishedError",
        [STORES, "publish_table"],
    ),
    (
        "unknown/online-feature-unpublished",
        lambda c: c["fs"].get_online_features(
            [FeatureLookup(CF, "customer_id", feature_names=["nope"])], [{"customer_id": 1}]
        ),
        "FeatureNotPublishedError|FeatureNotFoundError",
        ["nope", "f1"],
    ),
    (
        "unknown/training-set-id-path",
        lambda c: c["fs"].load_training_set("../../etc/passwd"),
        "TrainingSetNotFoundError",
        ["etc/passwd", "save_training_set|list_training_sets"],
    ),
    (
        "unknown/tag-delete-on-unknown-table",
        lambda c: c["fs"].delete_feature_table_tag(table_name="nope", key="k"),
        "FeatureTableNotFoundError",
        ["nope", "create_table|register_table"],
    ),
    (
        "unknown/exclude-lookup-key-missing-col",
        lambda c: _ts(c, [_lookup()], exclude_columns=["churn_x"]),
        "ColumnNotFoundError",
        ["churn_x", "customer_id"],
    ),
    # -- bad modes and flags ----------------------------------------------------------------------------------
    (
        "mode/write-none",
        lambda c: c["fs"].write_table(CF, _one(c), mode=None),
        "InvalidArgumentError",
        ["mode", "merge"],
    ),
    (
        "mode/write-upper",
        lambda c: c["fs"].write_table(CF, _one(c), mode="MERGE"),
        "InvalidArgumentError",
        ["MERGE", "'merge'"],
    ),
    (
        "mode/publish-append",
        lambda c: c["fs"].publish_table(CF, mode="append"),
        "InvalidArgumentError",
        ["append", "merge"],
    ),
    (
        "mode/publish-streaming",
        lambda c: c["fs"].publish_table(CF, streaming=True),
        "InvalidArgumentError",
        ["streaming", "publish after"],
    ),
    (
        "mode/publish-filter",
        lambda c: c["fs"].publish_table(CF, filter_condition="f1 > 0"),
        "InvalidArgumentError",
        ["filter_condition", "own feature table"],
    ),
    (
        "mode/drop-force-str",
        lambda c: c["fs"].drop_table(CF, force="yes"),
        "ArgumentTypeError",
        ["force", "true or false"],
    ),
    (
        "mode/function-replace-str",
        lambda c: c["fs"].create_feature_function(
            name="double_it", function=_double_fn, return_type="double", replace="yes"
        ),
        "ArgumentTypeError",
        ["replace", "true or false"],
    ),
    # -- online-store specs and stores ----------------------------------------------------------------------------
    (
        "online/spec-str",
        lambda c: c["fs"].publish_table(CF, online_store="sqlite"),
        "ArgumentTypeError",
        ["online_store", "SqliteOnlineStore|RedisOnlineStore"],
    ),
    (
        "online/spec-class-not-instance",
        lambda c: c["fs"].publish_table(CF, online_store=SqliteOnlineStore),
        "ArgumentTypeError",
        ["online_store", "SqliteOnlineStore\\("],
    ),
    ("online/sqlite-path-int", lambda c: SqliteOnlineStore(path=3), "ArgumentTypeError", ["path", "file path"]),
    (
        "online/sqlite-path-directory",
        lambda c: c["fs"].get_online_features(
            [_lookup()], [{"customer_id": 1}], online_store=SqliteOnlineStore(path=str(c["base"]))
        ),
        "OnlineStoreUnavailableError|InvalidArgumentError",
        ["hostile|path", "file"],
    ),
    (
        "online/sqlite-not-a-database",
        lambda c: c["fs"].get_online_features(
            [_lookup()], [{"customer_id": 1}], online_store=SqliteOnlineStore(path=str(c["base"] / "not_a_db.sqlite"))
        ),
        "OnlineStoreUnavailableError",
        ["not_a_db", "database"],
    ),
    (
        "online/sqlite-parent-is-file",
        lambda c: c["fs"].publish_table(CF, SqliteOnlineStore(path=str(c["base"] / "a_file" / "x.sqlite"))),
        "OnlineStoreUnavailableError",
        ["a_file", "exists"],
    ),
    ("online/redis-host-empty", lambda c: RedisOnlineStore(host=""), "ArgumentTypeError", ["host", "non-empty"]),
    ("online/redis-port-str", lambda c: RedisOnlineStore(port="6379"), "ArgumentTypeError", ["port", "int"]),
    (
        "online/redis-port-too-big",
        lambda c: RedisOnlineStore(port=70000),
        "InvalidArgumentError|ArgumentTypeError",
        ["port", "65535"],
    ),
    ("online/redis-db-negative", lambda c: RedisOnlineStore(db=-1), "ArgumentTypeError", ["db", "non-negative"]),
    ("online/redis-port-bool", lambda c: RedisOnlineStore(port=True), "ArgumentTypeError", ["port", "int"]),
    (
        "online/redis-unreachable",
        lambda c: c["fs"].publish_table(CF, RedisOnlineStore(port=1)),
        "OnlineStoreUnavailableError",
        ["127.0.0.1:1|redis", "retry|running"],
    ),
    (
        "online/keys-int",
        lambda c: c["fs"].get_online_features([_lookup()], 3),
        "ArgumentTypeError",
        ["keys", "dict|DataFrame"],
    ),
    (
        "online/keys-missing-lookup-key",
        lambda c: c["fs"].get_online_features([_lookup()], [{"id": 1}]),
        "LookupKeyError|ColumnNotFoundError",
        ["customer_id", "keys"],
    ),
    (
        "online/keys-wrong-type",
        lambda c: c["fs"].get_online_features([_lookup()], [{"customer_id": "one"}]),
        "ColumnTypeError",
        ["customer_id", "str|string"],
    ),
    (
        "online/lookups-empty",
        lambda c: c["fs"].get_online_features([], [{"customer_id": 1}]),
        "ArgumentTypeError|InvalidArgumentError",
        ["lookups", "FeatureLookup"],
    ),
    (
        "online/model-uri-garbage",
        lambda c: c["fs"].get_online_features("not a uri", [{"customer_id": 1}]),
        "ModelNotFoundError|InvalidArgumentError",
        ["not a uri"],
    ),
    # -- feature functions -----------------------------------------------------------------------------------
    (
        "function/name-path",
        lambda c: c["fs"].create_feature_function(name="../evil", function=_double_fn, return_type="double"),
        "InvalidArgumentError|InvalidFeatureFunctionError",
        ["\\.\\./evil", "name"],
    ),
    (
        "function/lambda",
        lambda c: c["fs"].create_feature_function(name="lam", function=lambda x: x, return_type="double"),
        "InvalidFeatureFunctionError",
        ["lam", "def"],
    ),
    (
        "function/builtin",
        lambda c: c["fs"].create_feature_function(name="b", function=len, return_type="bigint"),
        "ArgumentTypeError",
        ["function", "def"],
    ),
    (
        "function/not-callable",
        lambda c: c["fs"].create_feature_function(name="n", function=3, return_type="double"),
        "ArgumentTypeError",
        ["function", "function"],
    ),
    (
        "function/return-type-unknown",
        lambda c: c["fs"].create_feature_function(name="r", function=_double_fn, return_type="decimal(10,2)"),
        "InvalidArgumentError",
        ["return_type", "double"],
    ),
    (
        "function/return-type-int",
        lambda c: c["fs"].create_feature_function(name="r", function=_double_fn, return_type=3),
        "InvalidArgumentError",
        ["return_type", "double"],
    ),
    (
        "function/name-taken",
        lambda c: c["fs"].create_feature_function(name="double_it", function=_double_fn, return_type="double"),
        "InvalidArgumentError",
        ["double_it", "replace=True"],
    ),
    (
        "function/output-name-collides",
        lambda c: _ts(
            c, [_lookup(), FeatureFunction(udf_name="double_it", input_bindings={"x": "f1"}, output_name="f1")]
        ),
        "OutputNameConflictError",
        ["f1", "rename|output"],
    ),
    (
        "function/bindings-str",
        lambda c: FeatureFunction(udf_name="double_it", input_bindings="f1", output_name="o"),
        "ArgumentTypeError",
        ["input_bindings", "mapping|dict"],
    ),
    # -- the client and its lake ---------------------------------------------------------------------------------
    (
        "client/root-is-a-file",
        lambda c: FeatureStoreClient(str(c["base"] / "a_file"), spark=c["spark"]),
        "InvalidArgumentError",
        ["a_file", "folder"],
    ),
    (
        "client/root-nul",
        lambda c: FeatureStoreClient("lake\x00x", spark=c["spark"]),
        "InvalidArgumentError",
        ["root", "NUL"],
    ),
    (
        "client/root-empty",
        lambda c: FeatureStoreClient("", spark=c["spark"]),
        "InvalidArgumentError",
        ["root", "empty"],
    ),
    # -- tags and descriptions --------------------------------------------------------------------------------------
    (
        "tags/key-empty",
        lambda c: c["fs"].set_feature_table_tag(table_name=CF, key="", value="v"),
        "ArgumentTypeError",
        ["key", "non-empty"],
    ),
    (
        "tags/value-none",
        lambda c: c["fs"].set_feature_table_tag(table_name=CF, key="k", value=None),
        "ArgumentTypeError",
        ["value", "str"],
    ),
    ("tags/search-tags-key-int", lambda c: c["fs"].search_tables(tags={3: "v"}), "ArgumentTypeError", ["tags", "str"]),
    (
        "tags/create-key-empty",
        lambda c: _create(c, "tagged", tags={"": "v"}),
        "ArgumentTypeError",
        ["tags", "non-empty"],
    ),
    # -- training sets ---------------------------------------------------------------------------------------------
    (
        "ts/labels-pandas-object",
        lambda c: _ts(
            c, [_lookup()], labels=pd.DataFrame({"customer_id": [1, "a"], "label_ts": [ts(3), ts(3)], "churn": [0, 1]})
        ),
        "ArgumentTypeError|ColumnTypeError",
        ["customer_id|df", "type|column"],
    ),
    (
        "ts/labels-duplicate-columns",
        lambda c: _ts(
            c,
            [_lookup()],
            labels=_df(c, [(1, ts(3), 0, 1)], "customer_id long, label_ts timestamp, churn int, churn int"),
        ),
        "InvalidArgumentError",
        ["churn", "more than once"],
    ),
    (
        "ts/label-list-repeated",
        lambda c: _ts(c, [_lookup()], label=["churn", "churn"]),
        "InvalidArgumentError",
        ["churn", "twice"],
    ),
    (
        "ts/same-lookup-twice",
        lambda c: _ts(c, [_lookup(), _lookup()]),
        "OutputNameConflictError",
        ["f1", "rename_outputs"],
    ),
    (
        "ts/feature-output-onto-label-column",
        lambda c: _ts(c, [_lookup(rename_outputs={"f1": "label_ts"})]),
        "OutputNameConflictError",
        ["label_ts", "rename"],
    ),
    (
        "ts/lookups-generator",
        lambda c: _ts(c, (x for x in [_lookup()])),
        "ArgumentTypeError",
        ["feature_lookups", "list"],
    ),
]


def _tables(base: Path) -> dict[str, int]:
    """Every Delta table under `base` (symlinks not followed) with its latest published version."""
    out = {}
    for folder, dirs, names in os.walk(base):
        if os.path.basename(folder) == "_delta_log":
            versions = [int(n[:20]) for n in names if re.fullmatch(r"\d{20}\.json", n)]
            out[os.path.relpath(os.path.dirname(folder), base)] = max(versions, default=-1)
            dirs[:] = []
    return out


def _files(base: Path) -> dict[str, tuple[int, int]]:
    """Every file with its size and mtime; SQLite's shared-memory index and an empty write-ahead log are left
    out (a reader of the online store's WAL database creates them; they hold no row)."""
    out = {}
    for folder, _, names in os.walk(base):
        for name in names:
            st = os.stat(os.path.join(folder, name))
            if name.endswith("-shm") or (name.endswith("-wal") and st.st_size == 0):
                continue
            out[os.path.relpath(os.path.join(folder, name), base)] = (st.st_size, st.st_mtime_ns)
    return out


def _expected_type(expected):
    if not isinstance(expected, str):
        return (expected,)
    return tuple(getattr(errors, n, None) or getattr(lh_errors, n) for n in expected.split("|"))


@pytest.mark.parametrize(("call", "expected", "words"), [pytest.param(f, e, w, id=i) for i, f, e, w in CASES])
def test_hostile_input_is_refused_naming_it_and_writes_nothing(ctx, call, expected, words):
    base = ctx["base"]
    tables, files = _tables(base), _files(base)
    with pytest.raises(_expected_type(expected)) as ei:
        call(ctx)
    text = str(ei.value)
    for word in words:
        assert re.search(word, text, re.IGNORECASE), f"{word!r} not in the message: {text}"
    assert _tables(base) == tables, "a table's version changed or a table appeared"
    assert _files(base) == files, "a file was written"


def test_the_catalogue_is_large_and_its_ids_distinct():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) >= 100
    assert len({i.split("/")[0] for i in ids}) >= 10
    assert math.isnan(NAN)
