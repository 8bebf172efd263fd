"""The tracking store's trace reads: a trace's info, the trace with its spans (rebuilt from the stored span content,
root first, then by start time, as the SQL store returns them), many traces at once, and the column scan of
`mlflow.traces` that a deletion by time starts from.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from mlflow.entities import Trace, TraceData, TraceInfo
from mlflow.entities.span import LazySpan, Span
from mlflow.exceptions import MlflowException, MlflowTracingException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracing.constant import SpansLocation, TraceMetadataKey, TraceSizeStatsKey, TraceTagKey

from lakehouse import Row

from ._trace_rows import TRACE_TABLES, existing_trace_row, trace_info, trace_row

if TYPE_CHECKING:
    from ._store_state import StoreState


def trace_frame(store: StoreState, experiment_ids: list[str], columns: list[str]) -> list[Row]:
    """`columns` of the traces of `experiment_ids`: a scan of the files whose statistics may hold them, reading those
    columns only (never spans, tags or metadata)."""
    table = store._t.tables["mlflow.traces"]
    return table.arrow_where("experiment_id", experiment_ids, columns).to_pylist()


def get_trace_info(store: StoreState, trace_id: str) -> TraceInfo:
    with store._lock:
        store._sync(TRACE_TABLES)
        return trace_info(store, existing_trace_row(store, trace_id, "Trace with ID '{trace_id}' not found."))


def _spans(store: StoreState, info: TraceInfo, allow_partial: bool) -> list[Span] | None:
    """The trace's stored spans, or None when some are still missing (its size stats name more) and not
    `allow_partial`. Raises MlflowTracingException when its spans are not in this store."""
    if info.tags.get(TraceTagKey.SPANS_LOCATION) != SpansLocation.TRACKING_STORE.value:
        # Spans elsewhere (the artifact repository): the SQL store refuses, and the client reads them from there.
        raise MlflowTracingException("Trace data not stored in tracking store")
    rows = sorted(
        store._t.spans.rows(info.trace_id),
        key=lambda r: (0 if r["parent_span_id"] is None else 1, r["start_time_unix_nano"]),
    )
    stats = info.trace_metadata.get(TraceMetadataKey.SIZE_STATS)
    if not allow_partial and stats and len(rows) < json.loads(stats).get(TraceSizeStatsKey.NUM_SPANS, 0):
        return None
    spans: list[Span] = [LazySpan.from_stored_content(r["content"]) for r in rows]  # rebuilt when first read
    return spans


def get_trace(store: StoreState, trace_id: str, *, allow_partial: bool = False) -> Trace:
    """`AbstractStore.get_trace`. A trace whose spans are not all stored yet is RESOURCE_DOES_NOT_EXIST unless
    `allow_partial` (the SQL store retries three times over 3 s first; here the client's own retry does)."""
    with store._lock:
        store._sync(TRACE_TABLES)
        info = trace_info(store, existing_trace_row(store, trace_id, "Trace with ID {trace_id} is not found."))
        spans = _spans(store, info, allow_partial)
    if spans is None or (not spans and not allow_partial):
        raise MlflowException(
            message=f"Trace with ID {trace_id} is not fully exported yet, please try again later.",
            error_code=RESOURCE_DOES_NOT_EXIST,
        )
    return Trace(info=info, data=TraceData(spans=spans))


def _infos(store: StoreState, trace_ids: list[str], experiment_ids: list[str] | None) -> list[TraceInfo]:
    wanted = set(map(str, experiment_ids)) if experiment_ids is not None else None
    rows = (trace_row(store, i) for i in dict.fromkeys(trace_ids))
    return [trace_info(store, r) for r in rows if r is not None and (wanted is None or r["experiment_id"] in wanted)]


def batch_get_traces(
    store: StoreState, trace_ids: list[str], location: str | None = None, experiment_ids: list[str] | None = None
) -> list[Trace]:
    """The complete traces of `trace_ids` (missing or partly exported ones left out), in the order asked."""
    if not trace_ids:
        return []
    with store._lock:
        store._sync(TRACE_TABLES)
        traces = []
        for info in _infos(store, trace_ids, experiment_ids):
            spans = _spans(store, info, allow_partial=False)
            if spans:
                traces.append(Trace(info=info, data=TraceData(spans=spans)))
        return traces


def batch_get_trace_infos(
    store: StoreState, trace_ids: list[str], location: str | None = None, experiment_ids: list[str] | None = None
) -> list[TraceInfo]:
    if not trace_ids:
        return []
    with store._lock:
        store._sync(TRACE_TABLES)
        return _infos(store, trace_ids, experiment_ids)
