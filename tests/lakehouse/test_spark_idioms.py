"""The Delta idioms users know from their own training material run verbatim on lakehouse's session."""

from __future__ import annotations

from lakehouse import Lakehouse, local_spark


def test_exercise_1_runs_verbatim(tmp_path):
    # Exercise 1 of the Databricks ML Professional guide, unchanged but for the path.
    from delta.tables import DeltaTable
    from pyspark.sql.functions import col

    spark = local_spark()
    path = str(tmp_path / "exercise1")

    data = spark.range(0, 1000).withColumn("square", col("id") * col("id"))
    data.write.format("delta").save(path)
    df = spark.read.format("delta").load(path)
    spark.range(1000, 2000).withColumn("square", col("id") * col("id")).write.format("delta").mode("append").save(path)
    history = DeltaTable.forPath(spark, path).history()
    v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    optimized = spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY (id)")

    assert df.count() == 2000  # a DataFrame read is lazy: it sees the table when it runs
    assert sorted(r.version for r in history.collect()) == [0, 1]
    assert {r.id for r in v0.collect()} == set(range(1000))
    assert optimized.first().metrics.numFilesAdded >= 1
    latest = spark.read.format("delta").load(path)
    assert latest.count() == 2000
    assert latest.where("square != id * id").count() == 0
    # delta-spark, not a fallback, wrote every commit.
    engines = {r.engineInfo for r in DeltaTable.forPath(spark, path).history().collect()}
    assert all(e.startswith("Apache-Spark/") and "Delta-Lake/" in e for e in engines), engines


def test_delta_spark_is_the_default_engine(tmp_path, spark):
    assert Lakehouse(tmp_path / "lake", spark=spark).engine == "delta-spark"


def test_local_spark_leaves_user_settings_alone(tmp_path, spark):
    """A Lakehouse on the user's session changes none of the settings that alter their other work."""
    keys = ["spark.sql.sources.partitionColumnTypeInference.enabled", "spark.sql.parquet.outputTimestampType"]
    before = {k: spark.conf.get(k, None) for k in keys}
    for engine in ("deltalake", "delta-spark"):
        lh = Lakehouse(tmp_path / engine, spark=spark, engine=engine)
        lh.create_table("t", spark.sql("SELECT 1 AS id, current_timestamp() AS ts, 'a' AS p"), partition_by="p")
        lh.append("t", spark.sql("SELECT 2 AS id, current_timestamp() AS ts, '01' AS p"))
        assert sorted(r.p for r in lh.read("t").collect()) == ["01", "a"]
    assert {k: spark.conf.get(k, None) for k in keys} == before
