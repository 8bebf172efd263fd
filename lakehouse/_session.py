"""The SparkSession the lakehouse computes with, and detection of Delta's classes in it."""

from __future__ import annotations

import os
import sys
import threading

from pyspark.sql import SparkSession

# Settings every lakehouse session needs, whoever built it: Parquet timestamps Delta readers understand,
# and partition values kept as the strings Delta stores (never re-typed from directory names).
REQUIRED_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}

_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

_lock = threading.Lock()


def local_spark(
    *,
    master: str | None = None,
    shuffle_partitions: int | None = None,
    ui: bool = False,
    delta_jars: list[str] | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the process's local SparkSession, creating it on first use.

    UTC session time zone, `master` from `$LAKEHOUSE_SPARK_MASTER` or `local[*]`, shuffle partitions twice
    the cores, UI off unless asked. Delta's JARs are put on the classpath (enabling the native delta-spark
    engine) when `delta_jars` or `$LAKEHOUSE_DELTA_JARS` (comma-separated local files) name them; Delta's
    catalog is configured only then, because without the JARs it breaks every catalog operation.
    Spark keeps builder options for the life of the process, so this is the one place they are set.
    """
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            prepare_session(active)
            return active
        master = master or os.environ.get("LAKEHOUSE_SPARK_MASTER", "local[*]")
        if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
            # Local Python workers (UDFs, applyInArrow) must run this interpreter, whose packages the job
            # imports, not whatever `python3` is first on PATH.
            os.environ["PYSPARK_PYTHON"] = sys.executable
        cores = os.cpu_count() or 2
        b = (
            SparkSession.builder.master(master)
            .appName("lakehouse-ml")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
            .config("spark.default.parallelism", str(2 * cores))
            .config("spark.ui.enabled", "true" if ui else "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
            .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
            .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        )
        for k, v in REQUIRED_CONF.items():
            b = b.config(k, v)
        jars = delta_jars or [j for j in os.environ.get("LAKEHOUSE_DELTA_JARS", "").split(",") if j]
        if jars:
            b = b.config("spark.jars", ",".join(jars))
            for k, v in _DELTA_CONF.items():
                b = b.config(k, v)
        for k, v in (extra_conf or {}).items():
            b = b.config(k, v)
        spark = b.getOrCreate()
        spark.sparkContext.setLogLevel(os.environ.get("LAKEHOUSE_SPARK_LOG_LEVEL", "ERROR"))
        return spark


def prepare_session(spark: SparkSession) -> None:
    """Apply the runtime settings the lakehouse relies on to a session someone else built."""
    for k, v in REQUIRED_CONF.items():
        if spark.conf.get(k, None) != v:
            spark.conf.set(k, v)


def delta_classes_loaded(spark: SparkSession) -> bool:
    """True when Delta Lake's JVM classes are on this session's classpath (a cluster, Databricks)."""
    try:
        jvm = spark.sparkContext._jvm  # classic py4j session
    except Exception:  # Spark Connect has no JVM handle: probe the data source instead
        try:
            spark.read.format("delta").load("/nonexistent-lakehouse-delta-probe")
            return True
        except Exception as e:  # noqa: BLE001 - any failure other than a missing source means Delta is there
            return "DATA_SOURCE_NOT_FOUND" not in str(e)
    if jvm is None:
        return False
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName("io.delta.tables.DeltaTable", False, loader)
        return True
    except Exception:  # noqa: BLE001 - py4j raises Py4JJavaError / Py4JError for a missing class
        return False
