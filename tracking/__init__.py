"""tracking: MLflow tracking on Delta tables (the `lakehouse:///` tracking URI scheme).

    >>> import mlflow
    >>> mlflow.set_tracking_uri("lakehouse:///data/lake")   # runs land in <lake>/mlflow/runs, ... as Delta tables
    >>> with mlflow.start_run():
    ...     mlflow.log_param("alpha", 0.5)
    ...     mlflow.log_metric("rmse", 0.27, step=1)

The tables (`TABLES`) are readable by name with the `lakehouse` layer, e.g.
`Lakehouse(root).read("mlflow.runs", version=3)`.
"""



def factory(store_uri: str, artifact_uri: str | None = None):
    """The `mlflow.tracking_store` entry point: MLflow calls it with the `lakehouse:///...` URI.

    Defined before any import on purpose: importing mlflow (below) loads its store entry points, which
    resolve `tracking:factory` while this package is still initialising.
    """
    from ._store import LakehouseTrackingStore

    return LakehouseTrackingStore(store_uri, artifact_uri)


from ._schema import TABLES  # noqa: E402
from ._store import SCHEME, LakehouseTrackingStore  # noqa: E402

__all__ = ["LakehouseTrackingStore", "SCHEME", "TABLES", "factory"]
