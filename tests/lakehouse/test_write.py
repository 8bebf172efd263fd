import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from lakehouse.errors import SchemaMismatchError

SCHEMA = "id long, name string, score double, n int"


def base(spark):
    return spark.createDataFrame([(1, "a", 1.0, 10), (2, "b", 2.0, 20)], SCHEMA)


@pytest.fixture
def table(lake, spark):
    lake.create_table("t", base(spark))
    return "t"


def test_append_adds_rows_in_a_new_version(lake, spark, table):
    more = spark.createDataFrame([(3, "c", 3.0, 30)], SCHEMA)
    res = lake.append(table, more)
    assert res.num_rows == 1 and res.version == lake.latest_version(table)
    assert_df_equality(lake.read(table), base(spark).union(more), ignore_row_order=True, ignore_nullable=True)
    assert lake.read(table, version=res.version - 1).count() == 2


def test_append_matches_columns_by_name(lake, spark, table):
    reordered = spark.createDataFrame([(30, 3.0, "c", 3)], "n int, score double, name string, id long")
    lake.append(table, reordered)
    assert lake.read(table).where("id = 3").first().asDict() == {"id": 3, "name": "c", "score": 3.0, "n": 30}


def test_missing_nullable_columns_are_written_as_null(lake, spark, table):
    lake.append(table, spark.createDataFrame([(3, "c")], "id long, name string"))
    row = lake.read(table).where("id = 3").first()
    assert row.score is None and row.n is None


@pytest.mark.parametrize(
    "df_sql, problem",
    [
        ("select 3L as id, 'c' as name, 1.5D as score, 1.5D as n", "'n' is double but the table has int"),
        ("select 3L as id, 'c' as name, 1.5D as score, '2' as n", "'n' is string but the table has int"),
        ("select '3' as id, 'c' as name", "'id' is string but the table has bigint"),
        ("select 3L as id, 'c' as name, 'x' as extra", "'extra' (string) is not in the table"),
        ("select 3L as id, 'c' as Name", "'Name' differs only in case"),
    ],
)
def test_schema_mismatch_is_refused_with_expected_and_received(lake, spark, table, df_sql, problem):
    before = lake.latest_version(table)
    with pytest.raises(SchemaMismatchError) as info:
        lake.append(table, spark.sql(df_sql))
    msg = str(info.value)
    assert problem in msg
    assert "expected: id: bigint, name: string, score: double, n: int" in msg
    assert "received: " in msg and "Nothing was written" in msg
    assert info.value.expected[0] == ("id", "bigint")
    assert lake.latest_version(table) == before
    assert lake.read(table).count() == 2


def test_lossless_widening_is_accepted_and_cast(lake, spark, table):
    df = spark.createDataFrame([(3, "c", 3.0, 30)], "id int, name string, score float, n short")
    lake.append(table, df)
    assert lake.read(table).schema.simpleString() == "struct<id:bigint,name:string,score:double,n:int>"
    assert lake.read(table).where("id = 3").first().n == 30


def test_decimal_widening_only_when_every_value_fits(lake, spark):
    lake.create_table("dec", spark.sql("select cast(1.5 as decimal(4,1)) as d"))
    lake.append("dec", spark.sql("select cast(2.5 as decimal(2,1)) as d"))
    assert sorted(float(r.d) for r in lake.read("dec").collect()) == [1.5, 2.5]
    with pytest.raises(SchemaMismatchError, match="decimal"):
        lake.append("dec", spark.sql("select cast(2.55 as decimal(3,2)) as d"))  # would round
    with pytest.raises(SchemaMismatchError, match="decimal"):
        lake.append("dec", spark.sql("select cast(12345.5 as decimal(6,1)) as d"))  # would overflow


def test_schema_evolution_adds_columns_only_when_asked(lake, spark, table):
    df = spark.createDataFrame([(3, "c", 3.0, 30, "new")], SCHEMA + ", tag string")
    with pytest.raises(SchemaMismatchError):
        lake.append(table, df)
    lake.append(table, df, schema_evolution=True)
    out = lake.read(table)
    assert out.columns == ["id", "name", "score", "n", "tag"]
    assert out.where("tag is null").count() == 2 and out.where("tag = 'new'").count() == 1
    # the old version still has the old schema
    assert lake.read(table, version=0).columns == ["id", "name", "score", "n"]


def test_overwrite_replaces_rows_and_keeps_history(lake, spark, table):
    new = spark.createDataFrame([(9, "z", 9.0, 90)], SCHEMA)
    res = lake.overwrite(table, new)
    assert_df_equality(lake.read(table), new, ignore_nullable=True)
    assert lake.read(table, version=res.version - 1).count() == 2


def test_overwrite_schema(lake, spark, table):
    with pytest.raises(SchemaMismatchError):
        lake.overwrite(table, spark.createDataFrame([("x",)], "other string"))
    lake.overwrite(table, spark.createDataFrame([("x",)], "other string"), overwrite_schema=True)
    assert lake.read(table).columns == ["other"]


def test_append_to_partitioned_table(lake, spark):
    df = spark.createDataFrame([(1, "x"), (2, "y")], "id long, p string")
    lake.create_table("pt", df, partition_by="p")
    lake.append("pt", spark.createDataFrame([(3, "x"), (4, None)], "id long, p string"))
    assert sorted(r.id for r in lake.read("pt").where("p = 'x'").collect()) == [1, 3]
    assert lake.read("pt").where("p is null").first().id == 4
    with pytest.raises(SchemaMismatchError, match="required column 'p' is missing"):
        lake.append("pt", spark.createDataFrame([(5,)], "id long"))


def test_types_round_trip_exactly(lake, spark):
    df = spark.sql(
        """select 1L as id, timestamp'2026-03-01 12:00:00' as ts, timestamp_ntz'2026-03-01 12:00:00' as ntz,
                  cast('123.45678' as decimal(18,5)) as dec, date'2026-03-01' as d, array(1, 2) as arr,
                  named_struct('a', 1, 'b', 'x') as st, map('k', 1.0D) as m, cast(null as string) as s"""
    )
    lake.create_table("types", df)
    lake.append("types", df.withColumn("id", F.lit(2)))
    out = lake.read("types")
    assert out.schema.simpleString() == df.schema.simpleString()
    assert out.where("id = 1").collect() == df.collect()  # chispa cannot ignore nullability inside maps


def test_pandas_and_arrow_inputs(lake, spark, table):
    pdf = pd.DataFrame({"id": [5], "name": ["p"], "score": [5.0], "n": pd.Series([50], dtype="int32")})
    lake.append(table, pdf)
    assert lake.read(table).where("id = 5").count() == 1
    with pytest.raises(TypeError, match="df must be a Spark DataFrame"):
        lake.append(table, [(1, "a")])


def test_failed_write_leaves_no_files_behind(lake, spark, table):
    import os

    before = sorted(os.listdir(lake.table_path(table)))
    with pytest.raises(SchemaMismatchError):
        lake.append(table, spark.sql("select 'x' as id"))
    assert sorted(os.listdir(lake.table_path(table))) == before
