"""Delta tables by name in a lake on an object store, on the deltalake engine (delta-rs commits with the store's
conditional PUT). delta-rs read directly is the independent oracle."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from lakehouse import Lakehouse
from lakehouse.errors import EngineUnavailableError


def _query(path: str, sql: str, version: int | None = None) -> list[dict]:
    dt = DeltaTable(path, version=version)
    return pa.table(QueryBuilder().register("t", dt).execute(sql).read_all()).to_pylist()


def test_tables_by_name_on_s3_write_merge_time_travel_optimize(spark, s3_root):
    lh = Lakehouse(s3_root, spark=spark)  # without hadoop-aws Spark cannot reach s3://: deltalake serves the lake
    assert lh.engine == "deltalake"
    df = spark.createDataFrame([(1, "a", 1.0), (2, "b", 2.0)], "id long, name string, score double")
    assert lh.create_table("features.customers", df, description="on s3").version == 0
    lh.append("features.customers", spark.createDataFrame([(3, "c", 3.0)], df.schema))
    merged = lh.merge("features.customers", spark.createDataFrame([(2, "B", 20.0), (4, "d", 4.0)], df.schema), on="id")
    assert (merged.num_target_rows_updated, merged.num_target_rows_inserted) == (1, 1)

    path = lh.table_path("features.customers")
    assert path == f"{s3_root}/features/customers"
    rows = sorted(tuple(r) for r in lh.read("features.customers").collect())
    assert rows == [(1, "a", 1.0), (2, "B", 20.0), (3, "c", 3.0), (4, "d", 4.0)]
    assert rows == sorted(tuple(r.values()) for r in _query(path, "SELECT id, name, score FROM t"))
    assert sorted(tuple(r) for r in lh.read("features.customers", version=1).collect()) == sorted(
        tuple(r.values()) for r in _query(path, "SELECT id, name, score FROM t", version=1)
    )
    history = lh.history("features.customers")
    assert [h.version for h in history] == [2, 1, 0] and history[0].operation == "MERGE"
    assert [t.name for t in lh.list_tables()] == ["features.customers"]

    optimized = lh.optimize("features.customers")
    assert optimized.num_files_removed >= 2 and optimized.num_files_added == 1
    assert sorted(tuple(r) for r in lh.read("features.customers").collect()) == rows


def test_delta_spark_on_a_store_spark_cannot_reach_is_refused_with_the_fix(spark, s3_root):
    with pytest.raises(EngineUnavailableError, match=r"no Hadoop file system for s3://.*engine='deltalake'"):
        Lakehouse(s3_root, spark=spark, engine="delta-spark")
