import os

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakehouse import Lakehouse
from lakehouse.errors import (
    InvalidTableNameError,
    SchemaMismatchError,
    TableAlreadyExistsError,
    TableNotFoundError,
)


def people(spark):
    return spark.createDataFrame([(1, "ann", 3.5), (2, "bob", None)], "id long, name string, score double")


def test_create_from_dataframe_then_read_back(lake, spark):
    res = lake.create_table("crm.people", people(spark), description="people", properties={"team": "crm"})
    assert res.num_rows == 2
    assert_df_equality(lake.read("crm.people"), people(spark), ignore_row_order=True, ignore_nullable=True)
    info = lake.describe("crm.people")
    assert info.name == "crm.people"
    assert info.path == str(lake.root) + "/crm/people"
    assert info.version == res.version
    assert info.description == "people"
    assert info.properties["team"] == "crm"
    assert info.columns == (("id", "bigint"), ("name", "string"), ("score", "double"))


def test_create_makes_columns_nullable_like_delta(lake, spark):
    lake.create_table("t", spark.range(3))  # spark.range's id is NOT NULL
    assert all(f.nullable for f in lake.schema("t").fields)


def test_create_from_schema_ddl_and_struct(lake, spark):
    lake.create_table("a", schema="id long, ts timestamp, d date, amount decimal(18,5)")
    assert lake.read("a").count() == 0
    assert lake.read("a").schema.simpleString() == "struct<id:bigint,ts:timestamp,d:date,amount:decimal(18,5)>"
    struct = T.StructType([T.StructField("k", T.StringType()), T.StructField("n", T.TimestampNTZType())])
    lake.create_table("b", schema=struct, partition_by=["k"])
    assert lake.describe("b").partition_columns == ("k",)
    assert lake.read("b").schema.simpleString() == "struct<k:string,n:timestamp_ntz>"


def test_partitioned_table_keeps_partition_values_and_types(lake, spark):
    rows = [(1, "a b/c", 10), (2, None, 11), (3, "01", 12), (4, "007", 13), (5, "x%y=z", 14)]
    df = spark.createDataFrame(rows, "id long, p string, v int")
    lake.create_table("parts", df, partition_by="p")
    assert_df_equality(lake.read("parts"), df, ignore_row_order=True, ignore_nullable=True)
    df2 = spark.createDataFrame([(6, 2, True), (7, None, False)], "id long, n int, flag boolean")
    lake.create_table("parts_int", df2, partition_by=["n", "flag"])
    assert_df_equality(lake.read("parts_int"), df2, ignore_row_order=True, ignore_nullable=True)


def test_partitioned_by_timestamp_and_double_columns(lake, spark):
    df = spark.sql("select id, timestamp'2026-01-01 10:00:00' as ts, cast(id as double) / 2 as x from range(4)")
    lake.create_table("tsparts", df, partition_by=["ts", "x"])
    assert_df_equality(lake.read("tsparts"), df, ignore_row_order=True, ignore_nullable=True)


def test_create_existing_table_is_refused_or_ignored(lake, spark):
    lake.create_table("t", people(spark))
    with pytest.raises(TableAlreadyExistsError, match="'t' already exists"):
        lake.create_table("t", people(spark))
    assert lake.create_table("t", people(spark), exists_ok=True).version == 0
    assert lake.read("t").count() == 2


def test_void_column_is_refused_and_nothing_is_created(lake, spark):
    df = spark.range(2).withColumn("nothing", F.lit(None))
    with pytest.raises(SchemaMismatchError, match="'nothing' has no type"):
        lake.create_table("t", df)
    assert not lake.exists("t")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "exactly one of df="),
        ({"schema": "id long", "partition_by": ["nope"]}, "partition_by column"),
        ({"schema": 42}, "schema must be a StructType"),
    ],
)
def test_create_argument_errors(lake, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        lake.create_table("t", **kwargs)
    assert not lake.exists("t")


@pytest.mark.parametrize(
    "name", ["", "1abc", "a..b", "a.b-c", "with space", "../x", "./x", "a/b", ".hidden", "x" * 256, "ns." + "y" * 300]
)
def test_invalid_names(lake, name):
    with pytest.raises(InvalidTableNameError):
        lake.table_path(name)


def test_a_relative_path_is_refused_and_nothing_lands_outside_the_lake(lake, spark, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidTableNameError, match="working directory"):
        lake.create_table("../escaped", spark.range(1))
    assert not (tmp_path.parent / "escaped").exists()
    assert lake.table_path("x" * 255).endswith("x" * 255)  # the longest folder name is fine


def test_bad_schema_strings_and_backticked_columns_are_refused(lake, spark):
    for ddl in ("id lng,", "id long, , name string", "int"):
        with pytest.raises(SchemaMismatchError, match="schema"):
            lake.create_table("ddl", schema=ddl)
    with pytest.raises(SchemaMismatchError, match="backtick"):
        lake.create_table("bt", spark.range(1).selectExpr("id as `a``b`"))
    lake.create_table("ok", spark.range(1))
    with pytest.raises(SchemaMismatchError, match="backtick"):
        lake.append("ok", spark.range(1).selectExpr("id", "id as `c``d`"), schema_evolution=True)
    assert not lake.exists("ddl") and not lake.exists("bt") and lake.read("ok").columns == ["id"]


def test_tables_by_path_and_listing(lake, spark, tmp_path):
    lake.create_table("sales.orders", spark.range(2), description="orders")
    lake.create_table("sales.items", spark.range(3))
    lake.create_table("top", spark.range(1))
    outside = str(tmp_path / "elsewhere" / "t")
    lake.create_table(outside, spark.range(4))
    assert lake.read(outside).count() == 4
    infos = lake.list_tables()
    assert [i.name for i in infos] == ["sales.items", "sales.orders", "top"]
    assert [i.version for i in infos] == [0, 0, 0]
    assert infos[1].description == "orders"


def test_list_tables_keeps_the_platform_namespaces_apart(lake, spark):
    """The users' tables, MLflow's `mlflow.*` and the feature store's `_feature_store` are listed apart."""
    lake.create_table("sales.orders", spark.range(1))
    lake.create_table("mlflow.runs", spark.range(1))
    lake.create_table(os.path.join(lake.root, "_feature_store", "tables"), spark.range(1))
    assert [i.name for i in lake.list_tables()] == ["sales.orders"]
    assert [i.name for i in lake.list_tables("mlflow")] == ["mlflow.runs"]
    assert [i.name for i in lake.list_tables("_feature_store")] == ["_feature_store.tables"]
    assert [i.name for i in lake.list_tables("sales")] == ["sales.orders"]


def test_missing_table_error_names_table_and_what_exists(lake, spark):
    lake.create_table("known", spark.range(1))
    with pytest.raises(TableNotFoundError) as info:
        lake.read("unknown")
    assert "'unknown'" in str(info.value) and "known" in str(info.value)
    assert info.value.available == ["known"]


def test_drop_table(lake, spark):
    lake.create_table("gone", spark.range(1))
    lake.drop_table("gone")
    assert not lake.exists("gone")
    with pytest.raises(TableNotFoundError):
        lake.drop_table("gone")


def test_root_defaults_to_env(monkeypatch, tmp_path, spark):
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "envlake"))
    assert Lakehouse(spark=spark, engine="deltalake").root == str(tmp_path / "envlake")
    monkeypatch.delenv("LAKEHOUSE_ROOT")
    with pytest.raises(ValueError, match="LAKEHOUSE_ROOT"):
        Lakehouse(spark=spark)
