"""The tracking store's trace writes, as MLflow's SQL store makes them: `start_trace` (the trace info the exporter
sends when the root span ends), `log_spans` (each batch of finished spans, which creates the trace if it does not
exist yet and folds the spans into it: time range, state, previews, token usage, cost, session, user, tags), trace
tags, deletion, and links to runs.

Each call commits table by table (spans, then the trace row, then its tags and metadata), one commit per table it
changes; a reader between two of them sees the spans before the trace's summary of them, as a reader of the SQL
store between two `log_spans` calls would.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from mlflow.entities import TraceInfo, TraceState
from mlflow.entities.span import Span
from mlflow.entities.span_status import SpanStatusCode
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST
from mlflow.store.tracking import MAX_TRACE_LINKS_PER_REQUEST
from mlflow.store.tracking.utils.trace_analytics import (
    COST_COLUMN_BY_KEY,
    PROMOTED_TRACE_METADATA_KEYS,
    TOKEN_COLUMN_BY_KEY,
    analytics_columns_from_metadata,
    finite_float_or_none,
    token_count_or_none,
    validate_session_id,
    validate_trace_name,
)
from mlflow.tracing.constant import (
    GenAiSemconvKey,
    SpanAttributeKey,
    SpansLocation,
    TraceMetadataKey,
    TraceTagKey,
)
from mlflow.tracing.utils import (
    SpanAggregationNode,
    aggregate_cost_from_span_nodes,
    aggregate_usage_from_span_nodes,
    try_json_loads,
)
from mlflow.tracing.utils.truncation import _get_truncated_preview
from mlflow.utils.mlflow_tags import MLFLOW_ARTIFACT_LOCATION
from mlflow.utils.uri import append_to_uri_path
from mlflow.utils.validation import _parse_experiment_id, _validate_trace_tag

from lakehouse import Change, Row

from ._index import ColdIndex
from ._store_experiments import ARTIFACTS_FOLDER, check_experiment_active, experiment_row
from ._trace_reads import trace_frame
from ._trace_rows import TRACE_TABLES, assessment_row, existing_trace_row, span_row, trace_row
from ._trace_rows import trace_info as read_trace_info

if TYPE_CHECKING:
    from ._store_state import StoreState

TRACES_FOLDER = "traces"
"""A trace's artifacts live at `<experiment artifact location>/traces/<trace id>/artifacts`, as in the SQL store."""


# -- keyed rows of one trace -----------------------------------------------------------------------------------
def upsert(store: StoreState, name: str, index: ColdIndex, trace_id: str, rows: list[Row]) -> None:
    """Replace (or add) `rows` of table `name`, keyed in `index` under `trace_id`, in one commit; none: no commit."""
    if not rows:
        return
    keys = [index.key(r) for r in rows]
    store._t.write(name, lambda: store._t.replace(name, index, [(trace_id, k) for k in keys], rows))


def remove(store: StoreState, name: str, index: ColdIndex, addresses: list[tuple[Hashable, Hashable]]) -> None:
    if addresses:
        store._t.write(name, lambda: store._t.replace(name, index, addresses, []))


def _tag_rows(trace_id: str, tags: dict[str, str]) -> list[Row]:
    return [{"trace_id": trace_id, "key": k, "value": v} for k, v in tags.items()]


def _put_trace(store: StoreState, row: Row) -> None:
    upsert(store, "mlflow.traces", store._t.trace_by_id, row["trace_id"], [row])


def _artifact_location(experiment: Row, trace_id: str) -> str:
    return append_to_uri_path(experiment["artifact_location"], TRACES_FOLDER, trace_id, ARTIFACTS_FOLDER)


def _new_trace_row(trace_id: str, experiment_id: str) -> Row:
    return {"trace_id": trace_id, "experiment_id": experiment_id} | dict.fromkeys(
        [
            "timestamp_ms",
            "execution_time_ms",
            "status",
            "client_request_id",
            "request_preview",
            "response_preview",
            "trace_name",
            "session_id",
            *TOKEN_COLUMN_BY_KEY.values(),
            *COST_COLUMN_BY_KEY.values(),
        ]
    )


# -- start_trace -------------------------------------------------------------------------------------------------
def start_trace(store: StoreState, trace_info: TraceInfo) -> TraceInfo:
    """`AbstractStore.start_trace`: record `trace_info`, merged into the trace `log_spans` may have created."""
    info = trace_info
    trace_name = validate_trace_name(info.tags.get(TraceTagKey.TRACE_NAME))
    with store._lock:
        store._sync(TRACE_TABLES)
        experiment = experiment_row(store, info.experiment_id)
        check_experiment_active(experiment)
        trace_id = info.trace_id
        metadata = dict(info.trace_metadata.items())
        analytics = analytics_columns_from_metadata(metadata)
        for key in PROMOTED_TRACE_METADATA_KEYS:
            metadata.pop(key, None)
        metadata[TraceMetadataKey.TRACE_INFO_FINALIZED] = "true"
        tags = {k: v for k, v in info.tags.items() if k != TraceTagKey.TRACE_NAME}
        tags[MLFLOW_ARTIFACT_LOCATION] = _artifact_location(experiment, trace_id)

        existing = trace_row(store, trace_id)
        row = dict(existing) if existing is not None else _new_trace_row(trace_id, experiment["experiment_id"])
        row.update(
            experiment_id=str(info.experiment_id),
            timestamp_ms=info.request_time,
            execution_time_ms=info.execution_duration,
            status=info.state.value,
            client_request_id=info.client_request_id,
            **analytics,
        )
        if existing is None or TraceTagKey.TRACE_NAME in info.tags:
            row["trace_name"] = trace_name
        if existing is None or info.request_preview is not None:
            row["request_preview"] = info.request_preview
        if existing is None or info.response_preview is not None:
            row["response_preview"] = info.response_preview

        assessments = []
        for a in info.assessments:
            assessment = assessment_row(a)
            assessment["trace_id"] = trace_id  # the exporter may leave it out: backfilled, as the SQL store does
            assessments.append(assessment)

        t = store._t
        _put_trace(store, row)
        upsert(store, "mlflow.trace_tags", t.trace_tags, trace_id, _tag_rows(trace_id, tags))
        upsert(store, "mlflow.trace_request_metadata", t.trace_metadata, trace_id, _tag_rows(trace_id, metadata))
        upsert(store, "mlflow.assessments", t.assessments, trace_id, assessments)
        return read_trace_info(store, existing_trace_row(store, trace_id, "Trace with ID '{trace_id}' not found."))


# -- log_spans ---------------------------------------------------------------------------------------------------
def _aggregation_node(span_id: str, parent_id: str | None, attributes: dict[str, Any], key: str) -> SpanAggregationNode:
    """A span's node for MLflow's tree-aware usage/cost aggregation (its attribute may be a dict or JSON text)."""
    value = attributes.get(key)
    if isinstance(value, str):
        value = try_json_loads(value)
    return SpanAggregationNode(span_id=span_id, parent_id=parent_id, data=value if isinstance(value, dict) else None)


def _json_string(value: Any) -> Any:
    """A span attribute's stored JSON text as the string it encodes (anything else unchanged)."""
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value
    return parsed if isinstance(parsed, str) else value


def _root_status(spans: list[Span]) -> str | None:
    for span in spans:
        if span.parent_id is None:
            return TraceState.ERROR.value if span.status.status_code == SpanStatusCode.ERROR else TraceState.OK.value
    return None


def _root_tags(attributes: dict[str, Any]) -> dict[str, str]:
    """The user's trace tags an OTLP export carries as `mlflow.traceTag.<key>` attributes of the root span."""
    tags: dict[str, str] = {}
    prefix = SpanAttributeKey.TRACE_TAG_PREFIX
    for attr_key, attr_value in attributes.items():
        if attr_key.startswith(prefix):
            try:
                key, value = _validate_trace_tag(attr_key[len(prefix) :], str(_json_string(attr_value)))
            except MlflowException:
                continue
            tags[key] = (validate_trace_name(value) or value) if key == TraceTagKey.TRACE_NAME else value
    return tags


def _resource_tags(spans: list[Span]) -> dict[str, str]:
    """OTel resource attributes (e.g. service.name) as trace tags, minus the SDK's and MLflow's own keys."""
    resource = next((r for s in spans if (r := getattr(s._span, "resource", None)) is not None and r.attributes), None)
    tags: dict[str, str] = {}
    if resource is None:
        return tags
    for key, value in resource.attributes.items():
        if key.startswith(("telemetry.sdk.", "mlflow.")):
            continue
        try:
            key, text = _validate_trace_tag(key, value if isinstance(value, str) else json.dumps(value))
        except MlflowException:
            continue
        tags[key] = text
    return tags


def log_spans(store: StoreState, location: str, spans: list[Span], tracking_uri: Any = None) -> list[Span]:
    """`AbstractStore.log_spans`: store `spans` (of any traces) in experiment `location`, as the SQL store does."""
    if not spans:
        return []
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    with store._lock:
        store._sync(TRACE_TABLES)
        experiment: Row | None = None
        for trace_id, trace_spans in by_trace.items():
            existing = trace_row(store, trace_id)
            if existing is None and experiment is None:
                experiment = experiment_row(store, location)
            _log_trace_spans(store, trace_id, trace_spans, existing, experiment)
    return spans


def _log_trace_spans(
    store: StoreState, trace_id: str, spans: list[Span], existing: Row | None, experiment: Row | None
) -> None:
    t = store._t
    min_start_ms = min(s.start_time_ns for s in spans) // 1_000_000
    end_times = [s.end_time_ns for s in spans if s.end_time_ns is not None]
    max_end_ms = max(end_times) // 1_000_000 if end_times else None
    root_status = _root_status(spans)
    created = existing is None
    if existing is None:
        assert experiment is not None  # log_spans reads it for every new trace
        row = _new_trace_row(trace_id, experiment["experiment_id"])
        row.update(
            timestamp_ms=min_start_ms,
            execution_time_ms=(max_end_ms - min_start_ms) if max_end_ms else None,
            status=root_status or TraceState.IN_PROGRESS.value,
        )
        tags = {MLFLOW_ARTIFACT_LOCATION: _artifact_location(experiment, trace_id)}
    else:
        row = dict(existing)
        tags = {}
    new_rows = [span_row(s, row["experiment_id"]) for s in spans]
    upsert(store, "mlflow.spans", t.spans, trace_id, new_rows)

    metadata = {r["key"]: r["value"] for r in t.trace_metadata.rows(trace_id)}
    finalized = TraceMetadataKey.TRACE_INFO_FINALIZED in metadata
    before = dict(row)
    if not created and not finalized:
        start = min(row["timestamp_ms"], min_start_ms)
        if max_end_ms is not None:
            old_end = row["timestamp_ms"] + row["execution_time_ms"] if row["execution_time_ms"] is not None else None
            row["execution_time_ms"] = (old_end if old_end is not None and old_end > max_end_ms else max_end_ms) - start
        row["timestamp_ms"] = start
    if row["status"] in (TraceState.IN_PROGRESS.value, TraceState.STATE_UNSPECIFIED.value) and root_status:
        row["status"] = root_status

    session_id = user_id = None
    root_tags: dict[str, str] = {}
    for span in spans:
        attributes = span.to_dict().get("attributes") or {}
        if session_id is None and (
            sid := attributes.get(SpanAttributeKey.SESSION_ID) or attributes.get(GenAiSemconvKey.CONVERSATION_ID)
        ):
            session_id = validate_session_id(_json_string(sid))
        if user_id is None and (uid := attributes.get("user.id")):
            user_id = _json_string(uid)
        if span.parent_id is None:
            _fill_previews(row, attributes)
            root_tags = _root_tags(attributes)
    if TraceTagKey.TRACE_NAME in root_tags:
        row["trace_name"] = root_tags[TraceTagKey.TRACE_NAME]
    _fold_usage_and_cost(store, row, trace_id, new_rows, finalized)
    if session_id and row["session_id"] is None:
        row["session_id"] = session_id
    if row != before or created:
        _put_trace(store, row)

    if user_id and TraceMetadataKey.TRACE_USER not in metadata:
        upsert(
            store,
            "mlflow.trace_request_metadata",
            t.trace_metadata,
            trace_id,
            _tag_rows(trace_id, {TraceMetadataKey.TRACE_USER: user_id}),
        )
    tags[TraceTagKey.SPANS_LOCATION] = SpansLocation.TRACKING_STORE.value
    tags.update(_resource_tags(spans))
    tags.update({k: v for k, v in root_tags.items() if k != TraceTagKey.TRACE_NAME})
    stored = {r["key"]: r["value"] for r in t.trace_tags.rows(trace_id)}
    changed = {k: v for k, v in tags.items() if stored.get(k) != v}
    upsert(store, "mlflow.trace_tags", t.trace_tags, trace_id, _tag_rows(trace_id, changed))


def _fill_previews(row: Row, attributes: dict[str, Any]) -> None:
    """The request/response previews of a trace without them, from its root span's inputs and outputs."""
    try:
        if row["request_preview"] is None and (inputs := attributes.get(SpanAttributeKey.INPUTS)):
            row["request_preview"] = _get_truncated_preview(inputs, role="user")
        if row["response_preview"] is None and (outputs := attributes.get(SpanAttributeKey.OUTPUTS)):
            row["response_preview"] = _get_truncated_preview(outputs, role="assistant")
    except Exception:  # noqa: BLE001 - a preview is best effort, as in the SQL store
        pass


def _fold_usage_and_cost(store: StoreState, row: Row, trace_id: str, new_rows: list[Row], finalized: bool) -> None:
    """Token usage and cost over the trace's whole span tree (stored spans and this batch), unless `start_trace`
    already recorded them (authoritative), as the SQL store recomputes them."""
    for attr, columns, convert, aggregate in (
        (SpanAttributeKey.CHAT_USAGE, TOKEN_COLUMN_BY_KEY, token_count_or_none, aggregate_usage_from_span_nodes),
        (SpanAttributeKey.LLM_COST, COST_COLUMN_BY_KEY, finite_float_or_none, aggregate_cost_from_span_nodes),
    ):
        if not any(attr in json.loads(r["content"]).get("attributes", {}) for r in new_rows):
            continue
        if finalized and any(row[c] is not None for c in columns.values()):
            continue
        nodes = []
        for span in store._t.spans.rows(trace_id):
            attributes = json.loads(span["content"]).get("attributes") or {}
            nodes.append(_aggregation_node(span["span_id"], span["parent_span_id"], attributes, attr))
        total = aggregate(nodes) or {}
        for key, column in columns.items():
            value = convert(total.get(key))
            if value is not None:
                row[column] = value


# -- tags ----------------------------------------------------------------------------------------------------------
def set_trace_tag(store: StoreState, trace_id: str, key: str, value: str) -> None:
    key, value = _validate_trace_tag(key, value)
    if key == TraceTagKey.TRACE_NAME:
        value = validate_trace_name(value) or value
    with store._lock:
        store._sync(TRACE_TABLES)
        row = trace_row(store, trace_id)
        if row is None:  # the SQL store's foreign key violation: BAD_REQUEST
            raise MlflowException(f"Cannot set tag {key!r} on trace {trace_id!r}: no trace has that ID.", BAD_REQUEST)
        if key == TraceTagKey.TRACE_NAME:
            _put_trace(store, {**row, "trace_name": value})
        else:
            upsert(store, "mlflow.trace_tags", store._t.trace_tags, trace_id, _tag_rows(trace_id, {key: value}))


def delete_trace_tag(store: StoreState, trace_id: str, key: str) -> None:
    with store._lock:
        store._sync(TRACE_TABLES)
        missing = MlflowException(
            f"No trace tag with key '{key}' for trace with ID '{trace_id}'", RESOURCE_DOES_NOT_EXIST
        )
        if key == TraceTagKey.TRACE_NAME:
            row = trace_row(store, trace_id)
            if row is None or row["trace_name"] is None:
                raise missing
            _put_trace(store, {**row, "trace_name": None})
            return
        store._t.delete("mlflow.trace_tags", store._t.trace_tags, trace_id, key, missing)


# -- deletion and links ------------------------------------------------------------------------------------------
def delete_traces_now(
    store: StoreState,
    experiment_id: str,
    max_timestamp_millis: int | None = None,
    max_traces: int | None = None,
    trace_ids: list[str] | None = None,
) -> int:
    """`AbstractStore._delete_traces` (the base's `delete_traces` checks the arguments): the traces of
    `experiment_id` at or before `max_timestamp_millis` (the oldest `max_traces` of them), or those of `trace_ids`,
    deleted with every row they own; returns how many."""
    exp_id = str(_parse_experiment_id(experiment_id))
    with store._lock:
        store._sync(TRACE_TABLES)
        rows = trace_frame(store, [exp_id], ["trace_id", "timestamp_ms"])
        if max_timestamp_millis is not None:
            rows = [r for r in rows if r["timestamp_ms"] <= max_timestamp_millis]
        if trace_ids:
            wanted = set(trace_ids)
            rows = [r for r in rows if r["trace_id"] in wanted]
        rows.sort(key=lambda r: (r["timestamp_ms"], r["trace_id"]))
        if max_traces is not None:
            rows = rows[:max_traces]
        ids = [r["trace_id"] for r in rows]
        if not ids:
            return 0
        t = store._t
        for name, index in (
            ("mlflow.spans", t.spans),
            ("mlflow.assessments", t.assessments),
            ("mlflow.trace_tags", t.trace_tags),
            ("mlflow.trace_request_metadata", t.trace_metadata),
            ("mlflow.trace_run_links", t.trace_runs),
        ):
            remove(store, name, index, [(i, index.key(r)) for i in ids for r in index.rows(i)])
        remove(store, "mlflow.traces", t.trace_by_id, [(i, 0) for i in ids])
        return len(ids)


def link_traces_to_run(store: StoreState, trace_ids: list[str], run_id: str) -> None:
    if not trace_ids:
        return
    if len(trace_ids) > MAX_TRACE_LINKS_PER_REQUEST:
        raise MlflowException(
            f"Cannot link more than {MAX_TRACE_LINKS_PER_REQUEST} traces to a run in "
            f"a single request. Provided {len(trace_ids)} traces.",
            error_code=INVALID_PARAMETER_VALUE,
        )
    with store._lock:  # the run is not checked: the SQL store's links (entity associations) have no foreign key
        store._sync(TRACE_TABLES)
        t = store._t
        rows = [
            {"trace_id": i, "run_id": run_id} for i in dict.fromkeys(trace_ids) if t.trace_runs.get(i, run_id) is None
        ]

        def plan() -> Change | None:
            return Change([rows]) if rows else None

        store._t.write("mlflow.trace_run_links", plan)
