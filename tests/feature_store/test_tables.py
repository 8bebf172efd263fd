"""create_table / register_table / get_table / list, search, tags / drop_table / read_table."""

from datetime import datetime

import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts

import feature_store
from feature_store import FeatureStoreClient, errors


def test_public_api_is_pinned():
    assert feature_store.__all__ == sorted(feature_store.__all__)
    assert feature_store.__all__ == [
        "ConsistencyReport",
        "FeatureEngineeringClient",
        "FeatureFunction",
        "FeatureLookup",
        "FeatureStoreClient",
        "FeatureTable",
        "LookupAudit",
        "Mismatch",
        "ModelVersionUse",
        "PublishResult",
        "RedisOnlineStore",
        "RunUse",
        "SqliteOnlineStore",
        "TableCheck",
        "TrainingSet",
        "TrainingSetAudit",
        "TrainingSetUse",
        "errors",
    ]
    assert errors.__all__ == sorted(errors.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.FeatureStoreError)


def test_get_table_describes_keys_features_tags(fs, customer_features):
    t = fs.get_table(customer_features)
    assert t.primary_keys == ("customer_id",)
    assert t.timestamp_keys == ("ts",)
    assert t.features == (("f1", "double"), ("f2", "double"))
    assert t.description == "test features"
    assert t.tags == {"team": "risk"}
    assert t.latest_version == 0
    assert t.path.endswith("customer_features")
    assert t.created_at is not None and t.created_at.tzinfo is not None
    assert t.used_by == ()


def test_read_table_latest_and_by_version(fs, spark, customer_features):
    fs.write_table(customer_features, spark.createDataFrame([(9, ts(9), 9.0, 9.0)], FEATURES_SCHEMA))
    assert fs.read_table(customer_features).count() == 5
    assert fs.read_table(customer_features, version=0).count() == 4


def test_duplicate_keys_refused_on_create_naming_the_keys(fs, spark):
    df = spark.createDataFrame([(1, ts(1), 1.0, 1.0), (1, ts(1), 2.0, 2.0), (2, ts(1), 1.0, 1.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.DuplicateKeyError) as ei:
        fs.create_table(name="dups", primary_keys="customer_id", timestamp_keys="ts", df=df)
    assert ei.value.keys == ["customer_id", "ts"]
    assert ei.value.examples[0][0] == 1
    assert "customer_id=1" in str(ei.value)
    assert not fs.lakehouse.exists("dups")  # nothing written


def test_null_keys_refused(fs, spark):
    df = spark.createDataFrame([(None, ts(1), 1.0, 1.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.NullKeyError, match="customer_id"):
        fs.create_table(name="nulls", primary_keys="customer_id", timestamp_keys="ts", df=df)
    assert not fs.lakehouse.exists("nulls")


def test_bad_arguments_name_the_argument(fs, spark):
    df = spark.createDataFrame([(1, ts(1), 1.0, 1.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.FeatureNotFoundError, match="nope"):
        fs.create_table(name="t", primary_keys="nope", df=df)
    with pytest.raises(errors.ColumnTypeError, match="f1"):
        fs.create_table(name="t", primary_keys="customer_id", timestamp_keys="f1", df=df)
    with pytest.raises(TypeError, match="primary_keys"):
        fs.create_table(name="t", primary_keys=3, df=df)
    with pytest.raises(ValueError, match="exactly one of df"):
        fs.create_table(name="t", primary_keys="customer_id")
    assert fs.list_tables() == []


def test_create_twice_and_unknown_table(fs, spark, customer_features):
    df = spark.createDataFrame([(1, ts(1), 1.0, 1.0)], FEATURES_SCHEMA)
    with pytest.raises(errors.FeatureTableAlreadyExistsError):
        fs.create_table(name=customer_features, primary_keys="customer_id", timestamp_keys="ts", df=df)
    with pytest.raises(errors.FeatureTableNotFoundError) as ei:
        fs.get_table("missing")
    assert ei.value.available == [customer_features]


def test_create_from_schema_then_write(fs, spark):
    t = fs.create_table(name="empty.feats", primary_keys="customer_id", timestamp_keys="ts", schema=FEATURES_SCHEMA)
    assert t.latest_version == 0
    fs.write_table("empty.feats", spark.createDataFrame([(1, ts(1), 1.0, 1.0)], FEATURES_SCHEMA), mode="merge")
    assert fs.read_table("empty.feats").count() == 1


def test_tags_search_and_drop(fs, spark, customer_features):
    df = spark.createDataFrame([(1, 5.0)], "store_id long, revenue double")
    fs.create_table(name="stores", primary_keys="store_id", df=df, description="store revenue")
    fs.set_feature_table_tag(table_name="stores", key="team", value="retail")
    assert [t.name for t in fs.list_tables()] == ["customer_features", "stores"]
    assert [t.name for t in fs.search_tables(tags={"team": "risk"})] == ["customer_features"]
    assert [t.name for t in fs.search_tables(tags={"team": None})] == ["customer_features", "stores"]
    assert [t.name for t in fs.search_tables("REVENUE")] == ["stores"]
    fs.delete_feature_table_tag(table_name="stores", key="team")
    assert fs.get_table("stores").tags == {}
    fs.drop_table("stores")
    assert [t.name for t in fs.list_tables()] == ["customer_features"]
    with pytest.raises(errors.FeatureTableNotFoundError):
        fs.read_table("stores")
    # metadata tables are hidden from the lakehouse's own listing
    assert [t.name for t in fs.lakehouse.list_tables()] == ["customer_features"]


def test_register_existing_delta_table(fs, spark):
    fs.lakehouse.create_table("raw.scores", spark.createDataFrame([(1, 0.5)], "user_id long, score double"))
    t = fs.register_table(delta_table="raw.scores", primary_keys="user_id")
    assert t.feature_names == ("score",)
    assert isinstance(FeatureStoreClient(lakehouse=fs.lakehouse).get_table("raw.scores").created_at, datetime)


def test_metadata_is_plain_delta_and_clients_see_each_others_changes(fs, spark, customer_features):
    """Two clients on one lake (separate snapshots): each change is one Delta commit that the other sees, and
    delta-spark reads the metadata tables as Delta tables, with the same rows."""
    other = FeatureStoreClient(root=fs.lakehouse.root, spark=spark)
    other.set_feature_table_tag(table_name=customer_features, key="owner", value="ana")
    fs.set_feature_table_tag(table_name=customer_features, key="team", value="fraud")
    assert fs.get_table(customer_features).tags == {"team": "fraud", "owner": "ana"}
    assert other.get_table(customer_features).tags == {"team": "fraud", "owner": "ana"}
    other.delete_feature_table_tag(table_name=customer_features, key="team")

    path = fs.lakehouse.table_path("_feature_store.tags")
    rows = spark.read.format("delta").load(path).collect()
    assert sorted((r.table_name, r.key, r.value) for r in rows) == [(customer_features, "owner", "ana")]
    tables = spark.read.format("delta").load(fs.lakehouse.table_path("_feature_store.tables")).collect()
    assert [(r.name, r.primary_keys) for r in tables] == [(customer_features, '["customer_id"]')]
    # PySpark hands timestamps over as naive local times (the suite's TZ is not UTC)
    assert tables[0].created_at == fs.get_table(customer_features).created_at.astimezone().replace(tzinfo=None)
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert {r.operation for r in history} == {"CREATE TABLE", "MERGE"}
    assert len(history) == 5  # create, the fixture's tag, two tags, one delete: one commit each


def test_the_lakes_own_tables_never_become_feature_tables(fs, spark, customer_features, tmp_path):
    """The metadata table by its absolute path (then an overwrite would erase every registration), MLflow's
    tables, and relative paths that would leave the lake, are all refused; nothing is written."""
    meta = fs.lakehouse.table_path("_feature_store.tables")
    for name in (meta, meta + "/../tags", "mlflow.runs", fs.lakehouse.table_path("mlflow.metrics")):
        with pytest.raises(ValueError, match="lake's own"):
            fs.register_table(delta_table=name, primary_keys="name")
        with pytest.raises(ValueError, match="lake's own"):
            fs.create_table(name=name, primary_keys="id", df=spark.range(1))
    for name in ("../x", "./x", "a/b"):
        with pytest.raises(ValueError, match="relative path"):
            fs.create_table(name=name, primary_keys="id", df=spark.range(1))
    assert [t.name for t in fs.list_tables()] == [customer_features]
    assert fs.get_table(customer_features).primary_keys == ("customer_id",)
    assert not (tmp_path / "x").exists()
