"""The `lakehouse:///<absolute path>` URI that names a lake to MLflow, and the scheme the plugin registers."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

SCHEME = "lakehouse"


def lake_root_from_uri(store_uri: str) -> str:
    """`lakehouse:///abs/path` -> `/abs/path` (a local lake root)."""
    parsed = urlparse(store_uri)
    if parsed.scheme != SCHEME or parsed.netloc or not parsed.path.startswith("/"):
        raise MlflowException(
            f"Invalid lakehouse tracking URI {store_uri!r}: expected lakehouse:///<absolute path to the lake root>, "
            "e.g. lakehouse:///data/lake",
            INVALID_PARAMETER_VALUE,
        )
    return os.path.normpath(parsed.path)
