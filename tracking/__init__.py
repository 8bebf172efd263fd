"""tracking: MLflow tracking and model registry on Delta tables (the `lakehouse:///` URI scheme).

    >>> import mlflow
    >>> mlflow.set_tracking_uri("lakehouse:///data/lake")   # runs land in <lake>/mlflow/runs, ... as Delta tables
    >>> with mlflow.start_run():
    ...     mlflow.log_param("alpha", 0.5)
    ...     mlflow.log_metric("rmse", 0.27, step=1)

The registry (`LakehouseRegistryStore`, the same URI as registry URI) keeps registered models, versions,
tags, aliases and webhooks in `<lake>/mlflow/...` too, and delivers registry events to webhooks and `jobs`
triggers. The tables (`TABLES`) are readable by name with the `lakehouse` layer, e.g.
`Lakehouse(root).read("mlflow.runs", version=3)`.
"""


def factory(store_uri: str, artifact_uri: str | None = None):
    """The `mlflow.tracking_store` entry point: MLflow calls it with the `lakehouse:///...` URI.

    Defined before any import on purpose: importing mlflow (below) loads its store entry points, which
    resolve `tracking:factory` while this package is still initialising.
    """
    from ._store import LakehouseTrackingStore

    return LakehouseTrackingStore(store_uri, artifact_uri)


def registry_factory(store_uri: str, tracking_uri: str | None = None):
    """The `mlflow.model_registry_store` entry point: MLflow calls it with the `lakehouse:///...` registry URI."""
    from ._registry import LakehouseRegistryStore

    return LakehouseRegistryStore(store_uri, tracking_uri)


from lakehouse import __version__ as __version__  # noqa: E402 - one version for the distribution's four packages

from ._events import STAGE_TRANSITIONED, Subscriber  # noqa: E402
from ._registry import JOB_HISTORY, JOB_RUNS, TRIGGER_TAGS, TRIGGERS, Lake, LakehouseRegistryStore, open_lake  # noqa: E402
from ._registry_versions import VALIDATION_PASSED, VALIDATION_REQUIRED_TAG, VALIDATION_STATUS_TAG  # noqa: E402
from ._schema import TABLES  # noqa: E402
from ._secrets import redact_url  # noqa: E402
from ._store import LakehouseTrackingStore  # noqa: E402
from ._uri import SCHEME, lake_root_from_uri, lake_uri  # noqa: E402
from ._webhooks import Outcome  # noqa: E402


def __getattr__(name: str):
    # The Spark analysis API imports pyspark; load it on first use so the store (and `mlflow server`) don't.
    if name in ("metric_history", "model_versions", "runs"):
        from . import _analysis

        return getattr(_analysis, name)
    raise AttributeError(f"module 'tracking' has no attribute {name!r}")


__all__ = [
    "JOB_HISTORY",
    "JOB_RUNS",
    "Lake",
    "LakehouseRegistryStore",
    "LakehouseTrackingStore",
    "Outcome",
    "SCHEME",
    "STAGE_TRANSITIONED",
    "Subscriber",
    "TABLES",
    "TRIGGERS",
    "TRIGGER_TAGS",
    "VALIDATION_PASSED",
    "VALIDATION_REQUIRED_TAG",
    "VALIDATION_STATUS_TAG",
    "factory",
    "lake_root_from_uri",
    "lake_uri",
    "metric_history",
    "model_versions",
    "open_lake",
    "redact_url",
    "registry_factory",
    "runs",
]
