"""The URI that names a lake to MLflow, and the scheme the plugin registers.

A lake on local disk is `lakehouse:///<absolute path>`; a lake on an object store is `lakehouse:` followed by
the store's URI, e.g. `lakehouse:s3://bucket/lake`.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from lakehouse import is_object_store

SCHEME = "lakehouse"


def lake_root_from_uri(store_uri: str) -> str:
    """`lakehouse:///abs/path` -> `/abs/path`; `lakehouse:s3://bucket/lake` -> `s3://bucket/lake`."""
    rest = store_uri[len(SCHEME) + 1 :] if store_uri.startswith(f"{SCHEME}:") else ""
    if is_object_store(rest) and urlparse(rest).netloc:
        return rest.rstrip("/")
    parsed = urlparse(store_uri)
    if parsed.scheme != SCHEME or parsed.netloc or not parsed.path.startswith("/"):
        raise MlflowException(
            f"Invalid lakehouse tracking URI {store_uri!r}: expected lakehouse:///<absolute path to the lake root> "
            "(e.g. lakehouse:///data/lake) or lakehouse:<object store URI> (e.g. lakehouse:s3://bucket/lake)",
            INVALID_PARAMETER_VALUE,
        )
    return os.path.normpath(parsed.path)


def lake_uri(root: str) -> str:
    """The tracking URI of the lake at `root` (the inverse of `lake_root_from_uri`)."""
    return f"{SCHEME}:{root}" if is_object_store(root) else f"{SCHEME}://{os.path.abspath(root)}"
