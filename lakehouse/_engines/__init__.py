"""Delta engines behind one contract, and the choice between them."""

from __future__ import annotations

import logging
from typing import Literal

from pyspark.sql import SparkSession

from .._session import delta_classes_loaded, spark_reaches
from .._settings import settings
from ..errors import EngineUnavailableError, InvalidArgumentError
from ._base import Engine, MergeSpec, TableState
from ._deltars import DeltaRsEngine
from ._deltaspark import DeltaSparkEngine

EngineName = Literal["auto", "deltalake", "delta-spark"]
_log = logging.getLogger(__name__)

ENGINES = ("auto", "deltalake", "delta-spark")


def choose_engine(spark: SparkSession, engine: str | None = None, root: str | None = None) -> Engine:
    """`engine` (or `$LAKEHOUSE_ENGINE`, default "auto"): delta-spark when Delta's classes are loaded, else deltalake.

    A lake `root` on an object store Spark has no file system for (no hadoop-aws for `s3://`) is served by
    deltalake, which reaches the store itself; asking for delta-spark there is refused with the fix.
    """
    requested = (engine or settings().engine).strip().lower()
    if requested not in ENGINES:
        raise InvalidArgumentError(
            "engine", f"engine={requested!r} is not one of {', '.join(ENGINES)} (argument or $LAKEHOUSE_ENGINE)"
        )
    if requested == "deltalake":
        _log.info("Delta engine deltalake (requested)")
        return DeltaRsEngine(spark)
    if root is not None and not spark_reaches(spark, root):
        scheme = root.split("://", 1)[0]
        if requested == "delta-spark":
            raise EngineUnavailableError(
                "delta-spark",
                f"this Spark session has no Hadoop file system for {scheme}:// (the lake root is {root}). For S3 "
                "start Spark with hadoop-aws (the s3a connector) and an s3a URI, or use engine='deltalake', which "
                "commits with the store's conditional PUT.",
            )
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
    _log.info(
        "Delta engine %s (requested %r; Delta's classes %sloaded)", chosen.name, requested, "" if loaded else "not "
    )
    return chosen


__all__ = ["ENGINES", "Engine", "EngineName", "MergeSpec", "TableState", "choose_engine"]
