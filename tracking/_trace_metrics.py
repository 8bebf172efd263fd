"""`query_trace_metrics` (the MLflow UI's experiment Overview charts): MLflow's own metric queries over the traces
of the experiments asked for.

The SQL store computes these metrics (counts, latency percentiles, token usage, costs, assessment values, by time
bucket and dimension) with one SQL query per call (`mlflow.store.tracking.utils.sql_trace_metrics_utils`). Rather
than a second implementation of that grammar, the traces of those experiments are copied into a private
in-memory SQLite database laid out as the SQL store's tables (its own SQLAlchemy models), and MLflow's query runs
there: the results are the SQL store's by construction. The cost is a copy of those experiments' trace rows per
call (what a chart over every trace reads anyway); the span rows are copied only for span views.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities.entity_type import EntityAssociationType
from mlflow.entities.trace_metrics import MetricAggregation, MetricViewType
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import MAX_RESULTS_QUERY_TRACE_METRICS
from mlflow.store.tracking.utils.trace_analytics import assessment_aggregate, bounded_model_dimension
from mlflow.tracing.constant import SpanAttributeKey
from mlflow.utils.validation import _parse_experiment_ids

from lakehouse import Row

from ._trace_rows import TRACE_TABLES
from ._trace_writes import _json_string

if TYPE_CHECKING:
    from ._store_state import StoreState


def _rows(store: StoreState, name: str, column: str, values: list[Any]) -> list[Row]:
    table = store._t.tables[name]
    return table.arrow_where(column, values, table.schema.names, cache=False).to_pylist()


def _span_columns(row: Row) -> Row:
    """A `mlflow.spans` row as the SQL store's `spans` row: cost and model columns from the stored attributes."""
    attributes = json.loads(row["content"]).get("attributes") or {}
    cost: dict[str, Any] = {}
    if raw := attributes.get(SpanAttributeKey.LLM_COST):
        try:
            cost = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            cost = {}
    cost = cost if isinstance(cost, dict) else {}
    return {
        "trace_id": row["trace_id"],
        "experiment_id": int(row["experiment_id"]),
        "span_id": row["span_id"],
        "parent_span_id": row["parent_span_id"],
        "name": row["name"],
        "type": row["span_type"],
        "status": row["status"],
        "start_time_unix_nano": row["start_time_unix_nano"],
        "end_time_unix_nano": row["end_time_unix_nano"],
        "content": row["content"],
        "input_cost": cost.get("input_cost"),
        "output_cost": cost.get("output_cost"),
        "total_cost": cost.get("total_cost"),
        "model_name": bounded_model_dimension(_json_string(attributes.get(SpanAttributeKey.MODEL))),
        "model_provider": bounded_model_dimension(_json_string(attributes.get(SpanAttributeKey.MODEL_PROVIDER))),
    }


def _sqlite_copy(
    store: StoreState, experiment_ids: list[int], *, spans: bool, children: bool, assessments: bool
) -> Any:
    """An in-memory SQLite engine holding the traces of `experiment_ids` in the SQL store's tables: their spans when
    `spans`, their tags, metadata and run links when `children` (what filters read), assessments when
    `assessments`."""
    import sqlalchemy as sa
    from mlflow.store.db.utils import create_sqlalchemy_engine
    from mlflow.store.tracking.dbmodels.models import (
        SqlAssessments,
        SqlEntityAssociation,
        SqlSpan,
        SqlTraceInfo,
        SqlTraceMetadata,
        SqlTraceTag,
    )

    # MLflow's own SQLite engine: its REGEXP (RLIKE) and PERCENTILE functions; LIKE made case-sensitive as its
    # sessions make it.
    engine = create_sqlalchemy_engine("sqlite://")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA case_sensitive_like = true;")

    models = [SqlTraceInfo, SqlTraceTag, SqlTraceMetadata, SqlSpan, SqlAssessments, SqlEntityAssociation]
    with engine.begin() as conn:  # the tables only: some of the models' indexes exist in MLflow's migrations only
        for model in models:
            conn.execute(sa.schema.CreateTable(model.__table__))  # type: ignore[attr-defined]

    traces_table = store._t.tables["mlflow.traces"]
    traces = traces_table.arrow_where("experiment_id", [str(e) for e in experiment_ids], traces_table.schema.names)
    ids = traces.column("trace_id").to_pylist()
    traces = traces.set_column(
        traces.schema.get_field_index("experiment_id"),
        "experiment_id",
        pc.cast(traces.column("experiment_id"), pa.int64()),
    ).rename_columns(["request_id" if c == "trace_id" else c for c in traces.column_names])
    experiments = traces.column("experiment_id").to_pylist()
    when = dict(zip(ids, zip(experiments, traces.column("timestamp_ms").to_pylist(), strict=True), strict=True))
    with engine.begin() as conn:
        if ids:
            # The bulk of the copy: one executemany of plain tuples (SQLAlchemy's per-row dicts cost 10x).
            columns = traces.column_names
            raw = conn.connection.driver_connection
            raw.executemany(
                f"INSERT INTO trace_info ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                zip(*(traces.column(c).to_pylist() for c in columns), strict=True),
            )
        keyed = ((SqlTraceTag, "mlflow.trace_tags"), (SqlTraceMetadata, "mlflow.trace_request_metadata"))
        for model, name in keyed if children else ():
            rows = [
                {"request_id": r["trace_id"], "key": r["key"], "value": r["value"]}
                for r in _rows(store, name, "trace_id", ids)
            ]
            if rows:
                conn.execute(sa.insert(model.__table__), rows)
        span_rows = [_span_columns(r) for r in _rows(store, "mlflow.spans", "trace_id", ids)] if spans else []
        if span_rows:
            conn.execute(sa.insert(SqlSpan.__table__), span_rows)
        assessment_rows = []
        for r in _rows(store, "mlflow.assessments", "trace_id", ids) if assessments else ():
            aggregate, numeric = assessment_aggregate(json.loads(r["value"]))
            experiment, timestamp = when[r["trace_id"]]
            assessment_rows.append(
                {
                    **r,
                    "experiment_id": experiment,
                    "trace_timestamp_ms": timestamp,
                    "aggregate_value": aggregate,
                    "is_numeric_value": numeric,
                }
            )
        if assessment_rows:
            conn.execute(sa.insert(SqlAssessments.__table__), assessment_rows)
        links = [
            {
                "association_id": f"{r['trace_id']}:{r['run_id']}",
                "source_type": EntityAssociationType.TRACE,
                "source_id": r["trace_id"],
                "destination_type": EntityAssociationType.RUN,
                "destination_id": r["run_id"],
            }
            for r in (_rows(store, "mlflow.trace_run_links", "trace_id", ids) if children else ())
        ]
        if links:
            conn.execute(sa.insert(SqlEntityAssociation.__table__), links)
    return engine


def query_trace_metrics(
    store: StoreState,
    experiment_ids: list[str],
    view_type: MetricViewType,
    metric_name: str,
    aggregations: list[MetricAggregation],
    dimensions: list[str] | None = None,
    filters: list[str] | None = None,
    time_interval_seconds: int | None = None,
    start_time_ms: int | None = None,
    end_time_ms: int | None = None,
    max_results: int = MAX_RESULTS_QUERY_TRACE_METRICS,
    page_token: str | None = None,
) -> PagedList:
    """`AbstractStore.query_trace_metrics`: the SQL store's checks, then its query over a copy of the traces (one
    page: the SQL store does not page either)."""
    from mlflow.store.tracking.dbmodels.models import SqlAssessments, SqlTraceInfo
    from mlflow.store.tracking.utils.sql_trace_metrics_utils import (
        query_metrics,
        validate_query_trace_metrics_params,
    )
    from sqlalchemy.orm import Session

    validate_query_trace_metrics_params(view_type, metric_name, aggregations, dimensions)
    if time_interval_seconds and (start_time_ms is None or end_time_ms is None):
        raise MlflowException.invalid_parameter_value(
            "start_time_ms and end_time_ms are required if time_interval_seconds is set"
        )
    ids = _parse_experiment_ids(list(experiment_ids))
    with store._lock:
        store._sync(TRACE_TABLES)
        engine = _sqlite_copy(
            store,
            ids,
            spans=view_type == MetricViewType.SPANS,
            children=bool(filters),
            assessments=bool(filters) or view_type == MetricViewType.ASSESSMENTS,
        )
    try:
        with Session(engine) as session:
            model = SqlAssessments if view_type == MetricViewType.ASSESSMENTS else SqlTraceInfo
            points = query_metrics(
                view_type=view_type,
                db_type="sqlite",
                query=session.query(model).filter(model.experiment_id.in_(ids)),
                metric_name=metric_name,
                aggregations=aggregations,
                dimensions=dimensions,
                filters=filters,
                time_interval_seconds=time_interval_seconds,
                max_results=max_results,
                time_ranges_ms=[(start_time_ms, end_time_ms)],
                accessible_experiment_ids=ids,
            )
    finally:
        engine.dispose()
    return PagedList(points, None)
