"""The tracking store's traces (MLflow 3 tracing): trace infos, spans, tags, request metadata and assessments
in `mlflow.*` Delta tables. Filled in by issue 14; the methods listed in `_unsupported` answer until then."""

from __future__ import annotations


class TraceMethods:
    """Mixed in before `UnsupportedStoreMethods`: the trace operations this store implements."""
