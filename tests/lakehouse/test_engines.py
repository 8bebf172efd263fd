import subprocess
import sys

import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from worker_env import worker_env

from lakehouse import Lakehouse, delta_classes_loaded
from lakehouse.errors import EngineUnavailableError


def test_auto_uses_deltalake_without_delta_classes(tmp_path, spark, monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_ENGINE", raising=False)
    expected = "delta-spark" if delta_classes_loaded(spark) else "deltalake"
    assert Lakehouse(tmp_path, spark=spark).engine == expected


def test_engine_from_environment_and_argument(tmp_path, spark, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "deltalake")
    assert Lakehouse(tmp_path, spark=spark).engine == "deltalake"
    monkeypatch.setenv("LAKEHOUSE_ENGINE", "sqlite")
    with pytest.raises(ValueError, match="not one of auto, deltalake, delta-spark"):
        Lakehouse(tmp_path, spark=spark)


def test_forcing_delta_spark_without_its_classes_is_a_clear_error(tmp_path, spark):
    if delta_classes_loaded(spark):
        pytest.skip("Delta's classes are loaded here: forcing delta-spark succeeds")
    with pytest.raises(EngineUnavailableError, match="LAKEHOUSE_DELTA_JARS"):
        Lakehouse(tmp_path, spark=spark, engine="delta-spark")


def test_tables_we_write_are_plain_delta_for_other_readers(rs_lake, spark):
    rs_lake.create_table("i.t", spark.range(5).selectExpr("id", "cast(id % 2 as string) as p"), partition_by="p")
    rs_lake.merge("i.t", spark.range(3, 8).selectExpr("id", "cast(id % 2 as string) as p"), on="id")
    dt = DeltaTable(rs_lake.table_path("i.t"))
    got = QueryBuilder().register("t", dt).execute("select id, p from t order by id").read_all()
    assert got.column("id").to_pylist() == list(range(8))
    assert [str(v) for v in got.column("p").to_pylist()] == [str(i % 2) for i in range(8)]


def test_tables_written_by_deltalake_are_readable(rs_lake, spark):
    import pyarrow as pa

    path = rs_lake.table_path("ext.t")
    write_deltalake(path, pa.table({"id": [1, 2], "p": ["a b/c", None]}), partition_by=["p"])
    write_deltalake(path, pa.table({"id": [3], "p": ["x%y=z"]}), mode="append")
    got = sorted((r.id, r.p) for r in rs_lake.read("ext.t").collect())
    assert got == [(1, "a b/c"), (2, None), (3, "x%y=z")]
    assert [t.name for t in rs_lake.list_tables()] == ["ext.t"]


JVM_LESS = """
import sys, deltalake, pyarrow as pa
from pyspark import SparkContext
from lakehouse import Lakehouse
from jobs import maintain
root = sys.argv[1]
deltalake.write_deltalake(f"{root}/f/t", pa.table({"id": [1, 2, 3]}))
deltalake.write_deltalake(f"{root}/f/t", pa.table({"id": [4]}), mode="append")
lh = Lakehouse(root, engine="deltalake")
assert [h.operation for h in lh.history("f.t")] == ["WRITE", "WRITE"], lh.history("f.t")
assert lh.optimize("f.t", z_order_by=["id"]).num_files_removed == 2
assert lh.vacuum("f.t", dry_run=True).files == ()
assert lh.restore("f.t", version=0).restored_version == 0
assert [t.name for t in lh.list_tables()] == ["f.t"]
assert maintain(root)["totals"]["tables"] == 1
print("JVM", SparkContext._gateway is not None, SparkContext._active_spark_context is not None)
print("ROWS", lh.read("f.t").count(), flush=True)  # a DataFrame: Spark starts now, on demand
"""


@pytest.mark.slow
def test_the_deltalake_engine_runs_maintenance_without_a_jvm(tmp_path):
    """engine="deltalake" is the JVM-less engine: history, OPTIMIZE (Z-order), VACUUM, RESTORE, listing and the
    maintain job start no Spark (a cron `maintain` took ~8 s more for the JVM); a DataFrame starts it on demand."""
    proc = subprocess.run(
        [sys.executable, "-c", JVM_LESS, str(tmp_path / "lake")],
        capture_output=True,
        text=True,
        timeout=600,
        env=worker_env(LAKEHOUSE_ENGINE="auto"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JVM False False" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "ROWS 3" in proc.stdout  # restored to version 0
