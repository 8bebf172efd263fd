"""The tracking store's traces (MLflow 3 tracing): trace infos, spans, tags, request metadata and assessments
in `mlflow.*` Delta tables, with MLflow's SQL store as the reference for every call (results, error codes and
messages). The operations live by family: writes (`_trace_writes`), reads (`_trace_reads`), search
(`_trace_search`), assessments (`_trace_assessments`), the Overview tab's metrics (`_trace_metrics`); rows and entities meet in `_trace_rows`.
"""

from __future__ import annotations

from mlflow.store.tracking.abstract_store import AbstractStore

from . import _trace_assessments as assessments
from . import _trace_metrics as metrics
from . import _trace_reads as reads
from . import _trace_search as search
from . import _trace_writes as writes


class TraceMethods:
    """Mixed in before `UnsupportedStoreMethods`: the trace operations this store implements."""

    start_trace = writes.start_trace
    log_spans = writes.log_spans
    log_spans_async = AbstractStore.log_spans_async  # MLflow's: `log_spans` in a worker thread
    set_trace_tag = writes.set_trace_tag
    delete_trace_tag = writes.delete_trace_tag
    delete_traces = AbstractStore.delete_traces  # MLflow's argument checks, then `_delete_traces`
    _delete_traces = writes.delete_traces_now
    link_traces_to_run = writes.link_traces_to_run

    get_trace_info = reads.get_trace_info
    get_trace = reads.get_trace
    batch_get_traces = reads.batch_get_traces
    batch_get_trace_infos = reads.batch_get_trace_infos

    search_traces = search.search_traces
    query_trace_metrics = metrics.query_trace_metrics

    create_assessment = assessments.create_assessment
    get_assessment = assessments.get_assessment
    update_assessment = assessments.update_assessment
    delete_assessment = assessments.delete_assessment
