"""Traces between MLflow's entities and the trace tables' rows: a trace's rows as a `TraceInfo` (the trace name,
session, token usage and cost read back from their columns as MLflow's SQL store does), a span as a `mlflow.spans`
row, an assessment as a `mlflow.assessments` row and back.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from mlflow.entities import Assessment, TraceInfo, TraceLocation, TraceState
from mlflow.entities.span import Span
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.store.tracking.utils.trace_analytics import (
    PROMOTED_TRACE_METADATA_KEYS,
    compatibility_metadata_from_columns,
)
from mlflow.tracing.constant import TraceTagKey
from mlflow.tracing.otel.translation import translate_span_when_storing
from mlflow.tracing.utils import TraceJSONEncoder

from lakehouse import Row

from ._schema import TABLES

if TYPE_CHECKING:
    from ._store_state import StoreState

TRACE_TABLES = [
    "mlflow.experiments",
    "mlflow.traces",
    "mlflow.trace_tags",
    "mlflow.trace_request_metadata",
    "mlflow.spans",
    "mlflow.assessments",
    "mlflow.trace_run_links",
]
"""What a trace call refreshes: the experiments (a trace's location) and every trace table."""
TRACE_COLUMNS: list[str] = TABLES["mlflow.traces"][0].names
ASSESSMENT_COLUMNS: list[str] = TABLES["mlflow.assessments"][0].names


def trace_row(store: StoreState, trace_id: str) -> Row | None:
    hit = store._t.trace_by_id.get(trace_id, 0)
    return None if hit is None else hit.row


def existing_trace_row(store: StoreState, trace_id: str, message: str) -> Row:
    """The row of `trace_id`, or MlflowException(RESOURCE_DOES_NOT_EXIST) with `message` (formatted with it)."""
    row = trace_row(store, trace_id)
    if row is None:
        raise MlflowException(message.format(trace_id=trace_id), RESOURCE_DOES_NOT_EXIST)
    return row


def build_trace_info(row: Row, tags: list[Row], metadata: list[Row], assessments: list[Row]) -> TraceInfo:
    """MLflow's `TraceInfo` of a trace row and its tag, metadata and assessment rows (the SQL store's
    `_build_trace_infos_from_rows`: the name is a tag again, session/usage/cost are metadata again)."""
    tag_map = {r["key"]: r["value"] for r in tags if r["key"] != TraceTagKey.TRACE_NAME}
    if row["trace_name"] is not None:
        tag_map[TraceTagKey.TRACE_NAME] = row["trace_name"]
    meta = {r["key"]: r["value"] for r in metadata if r["key"] not in PROMOTED_TRACE_METADATA_KEYS}
    meta.update(compatibility_metadata_from_columns(SimpleNamespace(**row)))
    return TraceInfo(
        trace_id=row["trace_id"],
        trace_location=TraceLocation.from_experiment_id(str(row["experiment_id"])),
        request_time=row["timestamp_ms"],
        execution_duration=row["execution_time_ms"],
        state=TraceState(row["status"]),
        tags=tag_map,
        trace_metadata=meta,
        client_request_id=row["client_request_id"],
        request_preview=row["request_preview"],
        response_preview=row["response_preview"],
        assessments=[to_assessment(a) for a in sorted(assessments, key=_assessment_order)],
    )


def _assessment_order(row: Row) -> tuple[Any, ...]:
    return (row["created_timestamp"], row["assessment_id"])


def trace_info(store: StoreState, row: Row) -> TraceInfo:
    """`build_trace_info` of `row`, its child rows read by trace id."""
    t, trace_id = store._t, row["trace_id"]
    return build_trace_info(
        row, t.trace_tags.rows(trace_id), t.trace_metadata.rows(trace_id), t.assessments.rows(trace_id)
    )


def span_row(span: Span, experiment_id: str) -> Row:
    """The `mlflow.spans` row of `span`: its columns, and `content` as the SQL store stores it (the span's stored
    dictionary as JSON, non-ASCII kept, so `span.content LIKE` filters match what users type)."""
    stored = translate_span_when_storing(span)
    attributes = {k: _decoded(v) for k, v in (stored.get("attributes") or {}).items()}
    status = span.status
    return {
        "trace_id": span.trace_id,
        "experiment_id": experiment_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_id,
        "name": span.name,
        "span_type": span.span_type,
        "status": status.status_code.value if hasattr(status.status_code, "value") else str(status.status_code),
        "status_message": status.description or None,
        "start_time_unix_nano": span.start_time_ns,
        "end_time_unix_nano": span.end_time_ns,
        "attributes": json.dumps(attributes, cls=TraceJSONEncoder, ensure_ascii=False),
        "events": json.dumps(stored.get("events") or [], cls=TraceJSONEncoder, ensure_ascii=False),
        "content": json.dumps(stored, cls=TraceJSONEncoder, ensure_ascii=False),
    }


def _decoded(value: Any) -> Any:
    """A stored span attribute value (JSON text) as the value it encodes; text that is not JSON as itself."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def assessment_row(assessment: Assessment) -> Row:
    """The `mlflow.assessments` row of `assessment`, through MLflow's own SQL mapping (ids, defaults, JSON):
    `SqlAssessments.from_mlflow_entity` gives an assessment without an id one, as the SQL store does."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments  # lazily: it imports mlflow.genai (a cycle)

    sql = SqlAssessments.from_mlflow_entity(assessment)
    return {c: getattr(sql, c) for c in ASSESSMENT_COLUMNS}


def to_assessment(row: Row) -> Assessment:
    from mlflow.store.tracking.dbmodels.models import SqlAssessments

    return SqlAssessments(**{c: row[c] for c in ASSESSMENT_COLUMNS}).to_mlflow_entity()
