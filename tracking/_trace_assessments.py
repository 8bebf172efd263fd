"""Assessments of traces (feedback, expectations), as MLflow's SQL store keeps them: create (an override marks the
assessment it overrides invalid), get, update (name, value, rationale, merged metadata; source and span fixed),
delete (restoring the one it overrode); `TraceInfo.assessments` lists them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from mlflow.entities import Assessment, Expectation, Feedback
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.utils.time import get_current_time_millis

from lakehouse import Row

from ._trace_rows import TRACE_TABLES, assessment_row, to_assessment, trace_row
from ._trace_writes import upsert

if TYPE_CHECKING:
    from ._store_state import StoreState

TABLE = "mlflow.assessments"


def _row(store: StoreState, trace_id: str, assessment_id: str) -> Row:
    hit = store._t.assessments.get(trace_id, assessment_id)
    if hit is not None:
        return hit.row
    if trace_row(store, trace_id) is None:
        raise MlflowException(f"Trace with request_id '{trace_id}' not found", RESOURCE_DOES_NOT_EXIST)
    raise MlflowException(
        f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'", RESOURCE_DOES_NOT_EXIST
    )


def _put(store: StoreState, rows: list[Row]) -> None:
    for trace_id in dict.fromkeys(r["trace_id"] for r in rows):
        upsert(store, TABLE, store._t.assessments, trace_id, [r for r in rows if r["trace_id"] == trace_id])


def create_assessment(store: StoreState, assessment: Assessment) -> Assessment:
    with store._lock:
        store._sync(TRACE_TABLES)
        trace_id = assessment.trace_id
        if trace_id is None or trace_row(store, trace_id) is None:
            raise MlflowException(f"Trace with ID '{trace_id}' not found.", RESOURCE_DOES_NOT_EXIST)
        row = assessment_row(assessment)
        changed = [row]
        if row["overrides"]:
            hit = store._t.assessments.get(trace_id, row["overrides"])
            if hit is None:
                raise MlflowException(
                    f"Assessment with ID '{row['overrides']}' not found for trace '{trace_id}'",
                    RESOURCE_DOES_NOT_EXIST,
                )
            changed.append({**hit.row, "valid": False})
        _put(store, changed)
        return to_assessment(row)


def get_assessment(store: StoreState, trace_id: str, assessment_id: str) -> Assessment:
    with store._lock:
        store._sync(TRACE_TABLES)
        return to_assessment(_row(store, trace_id, assessment_id))


def update_assessment(
    store: StoreState,
    trace_id: str,
    assessment_id: str,
    name: str | None = None,
    expectation: Any = None,
    feedback: Any = None,
    rationale: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Assessment:
    """The SQL store's update, step for step: the same checks, entity and stored columns. `expectation` is an
    `ExpectationValue`, `feedback` a `FeedbackValue` (typed `Any` as `AbstractStore` declares them `str`)."""
    with store._lock:
        store._sync(TRACE_TABLES)
        row = _row(store, trace_id, assessment_id)
        existing = to_assessment(row)
        if expectation is not None and feedback is not None:
            raise MlflowException.invalid_parameter_value(
                "Cannot specify both `expectation` and `feedback` parameters."
            )
        if expectation is not None and not isinstance(existing, Expectation):
            raise MlflowException.invalid_parameter_value("Cannot update expectation value on a Feedback assessment.")
        if feedback is not None and not isinstance(existing, Feedback):
            raise MlflowException.invalid_parameter_value("Cannot update feedback value on an Expectation assessment.")
        merged = None
        if existing.metadata or metadata:
            merged = {**(existing.metadata or {}), **(metadata or {})}
        now = get_current_time_millis()
        common = {
            "name": name if name is not None else existing.name,
            "source": existing.source,
            "trace_id": trace_id,
            "metadata": merged,
            "span_id": existing.span_id,
            "create_time_ms": existing.create_time_ms,
            "last_update_time_ms": now,
        }
        updated: Assessment
        if isinstance(existing, Expectation):
            value = expectation.value if expectation is not None else existing.value
            updated = Expectation(value=value, **common)
            error_json = None
        else:
            old = cast(Feedback, existing)  # the SQL store takes anything not an expectation for feedback
            value = feedback.value if feedback is not None else old.value
            error = feedback.error if feedback is not None else old.error
            updated = Feedback(
                value=value,
                error=error,
                rationale=rationale if rationale is not None else existing.rationale,
                **common,
            )
            error_json = json.dumps(error.to_dictionary()) if error else None
        updated.assessment_id = existing.assessment_id
        updated.valid = existing.valid
        updated.overrides = existing.overrides
        updated.run_id = existing.run_id
        new_row = {
            **row,
            "name": updated.name,
            "value": json.dumps(value),
            "error": error_json,
            "last_updated_timestamp": now,
            "rationale": updated.rationale,
            "assessment_metadata": json.dumps(updated.metadata) if updated.metadata else None,
        }
        _put(store, [new_row])
        return updated


def delete_assessment(store: StoreState, trace_id: str, assessment_id: str) -> None:
    """Idempotent: a missing assessment is no error. The assessment it overrode becomes valid again."""
    with store._lock:
        store._sync(TRACE_TABLES)
        hit = store._t.assessments.get(trace_id, assessment_id)
        if hit is None:
            return
        overridden = hit.row["overrides"]
        if overridden:
            restored = [
                {**r, "valid": True}
                for rows in [store._t.assessments.rows(trace_id)]
                for r in rows
                if r["assessment_id"] == overridden
            ]
            _put(store, restored)
        store._t.write(TABLE, lambda: store._t.replace(TABLE, store._t.assessments, [(trace_id, assessment_id)], []))
