"""Tables by name in Spark SQL: the lake catalog resolves `ns.table` to `<root>/ns/table` at lookup time.

No metastore is involved, so several processes (a notebook, a batch job, the MLflow server) can use one lake
at once, a table another process creates resolves at once, and two lakes never see each other's tables.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from pyspark.errors import AnalysisException
from worker_env import worker_env

from lakehouse import Lakehouse
from lakehouse._session import lake_catalog_enabled


@pytest.fixture
def named(lake, spark):
    if not lake_catalog_enabled(spark):
        pytest.fail("the lake catalog is not configured: run .venv/bin/lakehouse-setup (needs mvn and javac)")
    lake.create_table("features.customer_features", spark.sql("SELECT id, id * 10 AS spend FROM range(3)"))
    lake.append("features.customer_features", spark.sql("SELECT 3 AS id, 30 AS spend"))
    return lake


def rows(df):
    return sorted(tuple(r) for r in df.collect())


def test_read_and_time_travel_by_name(named, spark):
    assert rows(spark.table("features.customer_features")) == [(0, 0), (1, 10), (2, 20), (3, 30)]
    assert rows(spark.sql("SELECT * FROM features.customer_features VERSION AS OF 0")) == [(0, 0), (1, 10), (2, 20)]
    ts = next(h.timestamp for h in named.history("features.customer_features") if h.version == 0)
    at = spark.sql(f"SELECT * FROM features.customer_features TIMESTAMP AS OF '{ts.isoformat()}'")
    assert rows(at) == [(0, 0), (1, 10), (2, 20)]
    versions = {r.version for r in spark.sql("DESCRIBE HISTORY features.customer_features").collect()}
    assert versions == {0, 1}
    assert "customer_features" in {r.tableName for r in spark.sql("SHOW TABLES IN features").collect()}


def test_delta_sql_commands_by_name(named, spark):
    spark.sql(
        "MERGE INTO features.customer_features t USING (SELECT 1 AS id, 11 AS spend UNION ALL SELECT 9, 90) s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert rows(spark.table("features.customer_features")) == [(0, 0), (1, 11), (2, 20), (3, 30), (9, 90)]
    # what the lakehouse API reads is what Spark SQL wrote
    assert rows(named.read("features.customer_features")) == [(0, 0), (1, 11), (2, 20), (3, 30), (9, 90)]
    spark.sql("OPTIMIZE features.customer_features ZORDER BY (spend)")
    spark.sql("VACUUM features.customer_features RETAIN 168 HOURS DRY RUN").collect()
    spark.sql("RESTORE TABLE features.customer_features TO VERSION AS OF 0")
    assert rows(spark.table("features.customer_features")) == [(0, 0), (1, 10), (2, 20)]
    ops = [h.operation for h in named.history("features.customer_features")]
    assert ops[0] == "RESTORE" and "MERGE" in ops and "OPTIMIZE" in ops


def test_two_lakes_do_not_see_each_other(tmp_path, spark, engine):
    a = Lakehouse(tmp_path / "a", spark=spark, engine=engine)
    a.create_table("ns.only_in_a", spark.range(1))
    assert spark.table("ns.only_in_a").count() == 1
    b = Lakehouse(tmp_path / "b", spark=spark, engine=engine)
    b.create_table("ns.only_in_b", spark.range(2))
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.table("ns.only_in_a")
    assert spark.table("ns.only_in_b").count() == 2
    # a separate session may point at the other lake at the same time
    other = spark.newSession()
    other.conf.set("spark.lakehouse.root", a.root)
    assert other.table("ns.only_in_a").count() == 1
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        other.table("ns.only_in_b")


def test_unknown_names_and_escapes_are_not_found(named, spark):
    with pytest.raises(AnalysisException, match="TABLE_OR_VIEW_NOT_FOUND"):
        spark.table("features.nope")
    with pytest.raises(AnalysisException):
        spark.sql("SELECT * FROM `..`.`features`")


@pytest.mark.slow
def test_another_process_uses_the_lake_by_name_at_the_same_time(named, spark, tmp_path):
    """A second JVM on the same lake (no Derby lock); each sees the table the other created, no restart."""
    script = textwrap.dedent(
        f"""
        import sys
        from lakehouse import Lakehouse, local_spark
        spark = local_spark(master="local[1]", shuffle_partitions=1)
        lh = Lakehouse({named.root!r}, spark=spark)
        lh.create_table("jobs.made_elsewhere", spark.range(5))
        print("COUNT", spark.table("features.customer_features").count(), flush=True)
        """
    )
    env = worker_env(LAKEHOUSE_ENGINE="delta-spark")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "COUNT 4" in proc.stdout
    assert spark.table("jobs.made_elsewhere").count() == 5
    hist = spark.sql("DESCRIBE HISTORY jobs.made_elsewhere").collect()
    assert all("Delta-Lake/" in (h.engineInfo or "") for h in hist)
