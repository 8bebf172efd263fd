"""Delta engines behind one contract, and the choice between them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, cast

from pyspark.sql import SparkSession

from .._jars import S3A_LOG_STORE_CLASS
from .._session import delta_classes_loaded, spark_reaches
from .._settings import settings
from ..errors import EngineUnavailableError, InvalidArgumentError
from ._base import Engine, MergeSpec, TableState, is_session
from ._deltars import DeltaRsEngine
from ._deltaspark import DeltaSparkEngine

EngineName = Literal["auto", "deltalake", "delta-spark"]
_log = logging.getLogger(__name__)

ENGINES = ("auto", "deltalake", "delta-spark")
_S3_SCHEMES = ("s3", "s3a")


def _unreachable_fix(spark: SparkSession, root: str, scheme: str) -> str:
    """Why delta-spark cannot serve `root` in this session, and what to do about it."""
    head = f"this Spark session has no Hadoop file system for {scheme}:// (the lake root is {root})."
    tail = " Or use engine='deltalake', which commits with the store's conditional PUT."
    if scheme not in _S3_SCHEMES:
        return head + f" Start Spark with a Hadoop connector for {scheme}://." + tail
    s3a_root = "s3a://" + root.split("://", 1)[1]
    if spark_reaches(spark, s3a_root):
        return head + f" It reaches S3 through s3a: open the same lake as {s3a_root} for delta-spark." + tail
    if settings().hadoop_aws:
        return (
            head + " LAKEHOUSE_HADOOP_AWS is on but this session has no s3a connector: run `lakehouse-setup --s3a` "
            f"(Maven) and start a new process, then open the lake as {s3a_root}." + tail
        )
    return (
        head
        + " For delta-spark on S3 set LAKEHOUSE_HADOOP_AWS=1 (hadoop-aws and the AWS SDK bundle, ~560 MB, obtained "
        f"by `lakehouse-setup --s3a`) before the session starts, and open the lake as {s3a_root}." + tail
    )


def _warn_unless_put_if_absent(spark: SparkSession, scheme: str) -> None:
    """delta-spark on S3 with Delta's default log store excludes writers only inside one driver: say so."""
    try:
        store = spark.conf.get(f"spark.delta.logStore.{scheme}.impl", None)
    except Exception:  # noqa: BLE001 - Spark Connect may refuse static conf reads
        return
    if store != S3A_LOG_STORE_CLASS:
        _log.warning(
            "delta-spark on %s:// commits with log store %s, which excludes concurrent writers only within one "
            "driver; set spark.delta.logStore.%s.impl=%s (LAKEHOUSE_HADOOP_AWS=1 does) for put-if-absent commits",
            scheme,
            store or "S3SingleDriverLogStore (Delta's default)",
            scheme,
            S3A_LOG_STORE_CLASS,
        )


def choose_engine(
    spark: SparkSession | Callable[[], SparkSession], engine: str | None = None, root: str | None = None
) -> Engine:
    """`engine` (or `$LAKEHOUSE_ENGINE`, default "auto"): delta-spark when Delta's classes are loaded, else deltalake.

    A lake `root` on an object store Spark has no file system for is served by deltalake, which reaches the store
    itself; asking for delta-spark there is refused with the fix. The URI names the client: Spark reaches S3
    through Hadoop's connector as `s3a://` (with `LAKEHOUSE_HADOOP_AWS=1`, which also installs the put-if-absent log
    store for it), while `s3://` stays with deltalake even then, so turning the flag on never moves an existing
    lake to another engine. Both names open the same objects: Delta logs hold relative paths, and both engines
    commit with the store's conditional PUT, so they may write one table at once.
    """
    requested = (engine or settings().engine).strip().lower()
    if requested not in ENGINES:
        raise InvalidArgumentError(
            "engine", f"engine={requested!r} is not one of {', '.join(ENGINES)} (argument or $LAKEHOUSE_ENGINE)"
        )
    if requested == "deltalake":
        _log.info("Delta engine deltalake (requested)")
        return DeltaRsEngine(spark)  # a callable `spark` is called when a DataFrame is first needed
    session = cast(SparkSession, spark) if is_session(spark) else cast(Callable[[], SparkSession], spark)()
    return _chosen(requested, session, root)


def _chosen(requested: str, spark: SparkSession, root: str | None) -> Engine:
    """ "auto" or "delta-spark" on a started session (see `choose_engine`)."""
    if root is not None and not spark_reaches(spark, root):
        scheme = root.split("://", 1)[0]
        if requested == "delta-spark":
            raise EngineUnavailableError("delta-spark", _unreachable_fix(spark, root, scheme))
        _log.info("Delta engine deltalake (requested %r; Spark has no file system for %s://)", requested, scheme)
        return DeltaRsEngine(spark)
    loaded = delta_classes_loaded(spark)
    if requested == "delta-spark" and not loaded:
        raise EngineUnavailableError(
            "delta-spark",
            "Delta Lake's JVM classes are not on this Spark session's classpath. Start Spark with the "
            "delta-spark JARs (set LAKEHOUSE_DELTA_JARS to their local paths, or use a cluster with Delta), "
            "or use engine='deltalake'.",
        )
    chosen: Engine = DeltaSparkEngine(spark) if loaded else DeltaRsEngine(spark)
    if loaded and root is not None and root.split("://", 1)[0] in _S3_SCHEMES:
        _warn_unless_put_if_absent(spark, root.split("://", 1)[0])
    _log.info(
        "Delta engine %s (requested %r; Delta's classes %sloaded)", chosen.name, requested, "" if loaded else "not "
    )
    return chosen


__all__ = ["ENGINES", "Engine", "EngineName", "MergeSpec", "TableState", "choose_engine"]
