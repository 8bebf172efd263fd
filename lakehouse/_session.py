"""The SparkSession the lakehouse computes with, and detection of Delta's classes in it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from . import _jars
from ._settings import settings

_DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
_DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
ROOT_CONF = "spark.lakehouse.root"
"""The session's lake: the lake catalog resolves `ns.table` to `<root>/ns/table` with it, at lookup time."""

_lock = threading.Lock()
log = logging.getLogger(__name__)


def _delta_jars(explicit: list[str] | None) -> tuple[list[str], str | None, str | None]:
    """(jars for spark.jars, packages for spark.jars.packages, our JVM jar) for a new local session."""
    config = settings()
    given = explicit or list(config.delta_jars)
    if not given and not config.delta_enabled:
        return [], None, None  # asked for a session without Delta, even when its JARs are cached
    have = _jars.complete()
    if have is None and _jars.can_obtain():
        try:
            have = _jars.obtain()
        except _jars.JarSetupError as exc:
            log.warning("could not set up Delta's JARs with Maven: %s", exc)
    have = have or _jars.cached()  # Delta's JARs alone, when ours could not be built
    if given:
        ours = have.lakehouse if have else None
        return [*given, *([ours] if ours else [])], None, ours
    if have is not None:
        return list(have.all), None, have.lakehouse
    # No Maven here: let Spark resolve Delta itself, as configure_spark_with_delta_pip does.
    log.info("Delta JARs not cached and no Maven client: using spark.jars.packages=%s", _jars.delta_coordinate())
    return [], _jars.delta_coordinate(), None


def s3a_conf(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `spark.hadoop.fs.s3a.*` settings the environment implies, read as the AWS SDKs read it.

    `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` -> `fs.s3a.endpoint`, with path-style access (S3-compatible
    servers on a host name of their own rarely serve virtual-hosted buckets) and TLS off for an `http://` URL;
    `AWS_REGION` / `AWS_DEFAULT_REGION` -> `fs.s3a.endpoint.region`. Credentials are not copied into Spark's
    conf (where the UI and event logs would show them): S3A's default provider chain already reads
    `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` through the SDK's environment provider.
    """
    env = os.environ if environ is None else environ
    conf: dict[str, str] = {}
    endpoint = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        host = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}").hostname or ""
        if not host.endswith(".amazonaws.com"):
            conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf


def _s3a_jars() -> _jars.S3AJars | None:
    """The s3a connector and log store when `LAKEHOUSE_HADOOP_AWS` is on (obtained here on first use when Maven is on
    PATH), else None. A failure is logged, not raised: the session starts, and delta-spark on `s3a://` is then
    refused with the command that fixes it."""
    if not settings().hadoop_aws:
        return None
    try:
        have = _jars.cached_s3a()
        if have is None and _jars.can_obtain():
            log.warning("LAKEHOUSE_HADOOP_AWS=1: setting up the s3a connector (a first time: ~560 MB through Maven)")
            have = _jars.obtain_s3a()
    except _jars.JarSetupError as exc:
        log.warning("could not set up the s3a connector: %s", exc)
        have = None
    if have is None:
        log.warning("LAKEHOUSE_HADOOP_AWS=1 but the s3a connector is not set up: run `lakehouse-setup --s3a`")
    return have


def local_spark(
    *,
    master: str | None = None,
    shuffle_partitions: int | None = None,
    ui: bool = False,
    delta_jars: list[str] | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the process's local SparkSession with Delta Lake enabled, creating it on first use.

    UTC session time zone, `master` from `$LAKEHOUSE_SPARK_MASTER` or `local[*]`, shuffle partitions twice
    the cores, UI off unless asked. Delta's JARs come from, in order: `delta_jars`, `$LAKEHOUSE_DELTA_JARS`
    (comma-separated local files), the cache `lakehouse-setup` fills (run by `make install`; run on first use
    here when Maven is on PATH), else Spark's own package resolution (`spark.jars.packages`, needs internet).
    With lakehouse's JVM classes built, the session also gets the lake catalog (tables by name under the
    root a `Lakehouse` sets) and the put-if-absent log store for `file:` tables. `LAKEHOUSE_DELTA=off` starts
    Spark without Delta (the deltalake engine then does all Delta work). `LAKEHOUSE_HADOOP_AWS=1` adds Hadoop's s3a
    connector and the put-if-absent log store for `s3a://` (see `s3a_conf` for what is read from the
    environment, once, here); on a local master the ~560 MB connector goes on the driver's class path, after
    Spark's own JARs, rather than in `spark.jars`, which would copy it into the session's temp folder at every
    start.
    Spark keeps builder options for the life of the process, so this is the one place they are set.
    """
    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        master = master or settings().spark_master
        if master.startswith("local"):
            prepare_python_workers()
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
        jars, packages, ours = _delta_jars(delta_jars)
        if jars or packages:
            if jars:
                b = b.config("spark.jars", ",".join(jars))
            if packages:
                b = b.config("spark.jars.packages", packages)
            b = b.config("spark.sql.extensions", _DELTA_EXTENSION)
            b = b.config("spark.sql.catalog.spark_catalog", _jars.CATALOG_CLASS if ours else _DELTA_CATALOG)
            # Delta's log replay defaults to 50 partitions: seconds of scheduling for a small local table.
            b = b.config("spark.databricks.delta.snapshotPartitions", str(max(2, shuffle_partitions or 2 * cores)))
            # VACUUM lists a table with this many tasks (default 10,000: minutes of scheduling on a laptop).
            b = b.config("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(2 * cores))
            if ours:
                b = b.config("spark.delta.logStore.file.impl", _jars.LOG_STORE_CLASS)
            s3a = _s3a_jars()
            if s3a is not None:
                if master.startswith("local"):
                    # Spark's own JARs first: the SDK bundle carries unshaded slf4j 1.x, netty and httpclient,
                    # which would otherwise shadow Spark's (slf4j 1.x silences Spark's logging).
                    classpath = [str(_jars.spark_jars_dir() / "*"), *s3a.connector]
                    b = b.config("spark.driver.extraClassPath", os.pathsep.join(classpath))
                    jars = [*jars, s3a.log_store]  # next to delta-storage, whose class loader it needs
                else:
                    jars = [*jars, *s3a.all]
                b = b.config("spark.jars", ",".join(jars))
                for scheme in ("s3a", "s3"):  # s3 too, for a cluster whose fs.s3.impl is S3A
                    b = b.config(f"spark.delta.logStore.{scheme}.impl", _jars.S3A_LOG_STORE_CLASS)
                for k, v in s3a_conf().items():
                    b = b.config(k, v)
        for k, v in (extra_conf or {}).items():
            b = b.config(k, v)
        spark = b.getOrCreate()
        spark.sparkContext.setLogLevel(settings().spark_log_level)
        return spark


def prepare_python_workers(spark: SparkSession | None = None) -> None:
    """Local Python workers (UDFs, applyInArrow) must run this interpreter, whose packages the job imports.

    Without it Spark starts whatever `python3` is first on PATH, which in a virtualenv often lacks pyarrow.
    Before a session exists this sets `PYSPARK_PYTHON`; for an existing local session it points the context's
    worker command here. A value the user set (`PYSPARK_PYTHON`, `spark.pyspark.python`) is kept, and on a
    cluster or under Spark Connect (workers elsewhere) nothing is changed.
    """
    if os.environ.get("PYSPARK_PYTHON"):
        return
    if spark is None:
        os.environ["PYSPARK_PYTHON"] = sys.executable
        return
    try:
        sc = spark.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect: the workers run on the server, not here
        return
    if spark.conf.get("spark.pyspark.python", None):
        return
    if str(sc.master).startswith("local") and sc.pythonExec in (None, "python3", "python"):
        sc.pythonExec = sys.executable


@contextlib.contextmanager
def scoped_conf(spark: SparkSession, **settings: str) -> Iterator[None]:
    """Set runtime SQL settings for the duration of one operation, then put the user's values back.

    The lakehouse never leaves a session-wide setting changed behind a user's back.
    """
    old: dict[str, str | None] = {k: spark.conf.get(k, None) for k in settings}
    for k, v in settings.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, before in old.items():
            if before is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, before)


def lake_catalog_enabled(spark: SparkSession) -> bool:
    """True when this session resolves table names through lakehouse's lake catalog."""
    try:
        return spark.conf.get("spark.sql.catalog.spark_catalog", None) == _jars.CATALOG_CLASS
    except Exception:  # noqa: BLE001 - Spark Connect may refuse static conf reads
        return False


def delta_classes_loaded(spark: SparkSession) -> bool:
    """True when Delta Lake's JVM classes are on this session's classpath (a cluster, Databricks)."""
    try:
        jvm = spark.sparkContext._jvm  # classic py4j session
    except Exception:  # noqa: BLE001 - Spark Connect has no JVM handle: probe the data source instead
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


_REACHES: weakref.WeakKeyDictionary[Any, dict[str, bool]] = weakref.WeakKeyDictionary()
"""Per live session (weakly held: a new session never inherits a dead one's answers), scheme -> reachable."""


def spark_reaches(spark: SparkSession, path: str) -> bool:
    """Whether Spark's Hadoop file systems read and write `path`: a local path always, `s3://` / `s3a://` only
    with hadoop-aws on the classpath, and so on. Asked once per session and URI scheme."""
    if "://" not in path or path.startswith("file:"):
        return True
    scheme = path.split("://", 1)[0]
    try:
        known = _REACHES.setdefault(spark, {})
    except TypeError:  # a session type that cannot be weakly referenced: ask every time
        known = {}
    if scheme not in known:
        try:
            sc = spark.sparkContext
            assert sc._jvm is not None
            sc._jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, sc._jsc.hadoopConfiguration())
            known[scheme] = True
        except Exception:  # noqa: BLE001 - no file system for the scheme, or no JVM to ask (Spark Connect)
            known[scheme] = False
    return known[scheme]
