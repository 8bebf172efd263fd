"""Delta engines behind one contract, and the choice between them."""

from __future__ import annotations

from typing import Literal

from pyspark.sql import SparkSession

from .._session import delta_classes_loaded
from .._settings import settings
from ..errors import EngineUnavailableError
from ._base import Engine, MergeSpec, TableState
from ._deltars import DeltaRsEngine
from ._deltaspark import DeltaSparkEngine

EngineName = Literal["auto", "deltalake", "delta-spark"]
ENGINES = ("auto", "deltalake", "delta-spark")


def choose_engine(spark: SparkSession, engine: str | None = None) -> Engine:
    """`engine` (or `$LAKEHOUSE_ENGINE`, default "auto"): delta-spark when Delta's classes are loaded, else deltalake."""
    requested = (engine or settings().engine).strip().lower()
    if requested not in ENGINES:
        raise ValueError(f"engine={requested!r} is not one of {', '.join(ENGINES)} (argument or $LAKEHOUSE_ENGINE)")
    if requested == "deltalake":
        return DeltaRsEngine(spark)
    loaded = delta_classes_loaded(spark)
    if requested == "delta-spark" and not loaded:
        raise EngineUnavailableError(
            "delta-spark",
            "Delta Lake's JVM classes are not on this Spark session's classpath. Start Spark with the "
            "delta-spark JARs (set LAKEHOUSE_DELTA_JARS to their local paths, or use a cluster with Delta), "
            "or use engine='deltalake'.",
        )
    return DeltaSparkEngine(spark) if loaded else DeltaRsEngine(spark)


__all__ = ["ENGINES", "Engine", "EngineName", "MergeSpec", "TableState", "choose_engine"]
