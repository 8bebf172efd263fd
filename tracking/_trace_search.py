"""`search_traces`: MLflow's trace filter grammar and order over the trace tables, with the SQL store's semantics.

The search reads the columns of `mlflow.traces` of the experiments asked for (one scan, by file statistics), and
only for the keys a filter or an order names: the tag or metadata rows of that key, the span columns a span filter
compares, the assessments a feedback filter names. It then filters, orders (nulls last, then `timestamp_ms DESC,
request_id ASC` as ties, as the SQL store orders) and builds `TraceInfo`s for the page only.

Filters (`SearchTraceUtils`'s grammar) compare as SQL does: a trace without the value compared is never a match
(even for `!=`), `LIKE` is case-sensitive, `RLIKE` is Python's `re.search` (MLflow's SQLite REGEXP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.tracking import SEARCH_MAX_RESULTS_THRESHOLD, SEARCH_TRACES_DEFAULT_MAX_RESULTS
from mlflow.store.tracking.utils.trace_analytics import (
    TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY,
    assessment_aggregate,
    compatibility_metadata_from_columns,
)
from mlflow.tracing.constant import TraceMetadataKey, TraceTagKey
from mlflow.utils.search_utils import SearchTraceUtils, SearchUtils
from mlflow.utils.validation import _resolve_experiment_ids_and_locations

from lakehouse import Row

from ._trace_rows import TRACE_COLUMNS, TRACE_TABLES, trace_info

if TYPE_CHECKING:
    from mlflow.entities import TraceInfo

    from ._store_state import StoreState

Predicate = Callable[[Row], bool]
ATTRIBUTE_COLUMNS = {"request_id": "trace_id"}
"""Search attribute names whose column here has another name."""


def _compare(comparator: str) -> Callable[[Any, Any], bool]:
    """SQL's comparison of a present value (the caller rules out NULL): LIKE case-sensitive, RLIKE a regex search."""
    if comparator == "RLIKE":
        return lambda lhs, pattern: re.search(pattern, str(lhs)) is not None
    return SearchUtils.get_comparison_func(comparator)


def _check_max_results(max_results: Any) -> None:
    if max_results is None or max_results < 1:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer",
            INVALID_PARAMETER_VALUE,
        )
    if max_results > SEARCH_MAX_RESULTS_THRESHOLD:
        raise MlflowException(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most "
            f"{SEARCH_MAX_RESULTS_THRESHOLD}",
            INVALID_PARAMETER_VALUE,
        )


class _Lookups:
    """The rows a search reads beyond the trace columns, each read once per search, only when a clause needs it."""

    def __init__(self, store: StoreState) -> None:
        self.store = store
        self._keyed: dict[tuple[str, str], dict[str, str]] = {}
        self._spans: dict[str, list[Row]] | None = None
        self._assessments: dict[str, list[Row]] | None = None
        self._links: dict[str, set[str]] | None = None

    def keyed(self, table: str, key: str) -> dict[str, str]:
        """trace id -> value of `key` in `mlflow.trace_tags` or `mlflow.trace_request_metadata`."""
        found = self._keyed.get((table, key))
        if found is None:
            found = {}
            for part in self.store._t.tables[table].iter_arrow(["trace_id", "key", "value"]):
                part = part.filter(pc.equal(part.column("key"), key))
                found.update(zip(part.column("trace_id").to_pylist(), part.column("value").to_pylist(), strict=True))
            self._keyed[(table, key)] = found
        return found

    def spans(self) -> dict[str, list[Row]]:
        if self._spans is None:
            self._spans = self._grouped("mlflow.spans", ["trace_id", "name", "span_type", "status", "content"])
        return self._spans

    def assessments(self) -> dict[str, list[Row]]:
        if self._assessments is None:
            columns = ["trace_id", "name", "assessment_type", "value", "valid"]
            self._assessments = self._grouped("mlflow.assessments", columns)
        return self._assessments

    def links(self) -> dict[str, set[str]]:
        """run id -> the trace ids linked to it."""
        if self._links is None:
            self._links = {}
            for r in self._rows("mlflow.trace_run_links", ["trace_id", "run_id"]):
                self._links.setdefault(r["run_id"], set()).add(r["trace_id"])
        return self._links

    def _rows(self, table: str, columns: list[str]) -> list[Row]:
        return [r for part in self.store._t.tables[table].iter_arrow(columns) for r in part.to_pylist()]

    def _grouped(self, table: str, columns: list[str]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        for r in self._rows(table, columns):
            out.setdefault(r["trace_id"], []).append(r)
        return out


def _present(value: Any, comparator: str, target: Any) -> bool:
    return value is not None and _compare(comparator)(value, target)


def _keyed_predicate(look: _Lookups, table: str, key: str, comparator: str, value: Any) -> Predicate:
    values = look.keyed(table, key)
    if comparator == "IS NULL":
        return lambda r: r["trace_id"] not in values
    if comparator == "IS NOT NULL":
        return lambda r: r["trace_id"] in values
    return lambda r: _present(values.get(r["trace_id"]), comparator, value)


def _column_predicate(column: str, comparator: str, value: Any) -> Predicate:
    if comparator == "IS NULL":
        return lambda r: r[column] is None
    if comparator == "IS NOT NULL":
        return lambda r: r[column] is not None
    return lambda r: _present(r[column], comparator, value)


def _attribute_predicate(key: str, comparator: str, value: Any) -> Predicate:
    if key in ("end_time_ms", "end_time"):
        return lambda r: _present(r["timestamp_ms"] + (r["execution_time_ms"] or 0), comparator, value)
    return _column_predicate(ATTRIBUTE_COLUMNS.get(key, key), comparator, value)


def _analytics_predicate(key: str, comparator: str, value: Any) -> Predicate:
    """Token usage or cost metadata, which the SQL store keeps as columns: compared as the JSON it reads back."""
    if comparator not in ("=", "!=", "IS NULL", "IS NOT NULL"):
        raise MlflowException.invalid_parameter_value(
            f"Comparator '{comparator}' is not supported for reserved metadata '{key}'. "
            "Only '=', '!=', 'IS NULL', and 'IS NOT NULL' are supported."
        )

    def lhs(r: Row) -> str | None:
        return compatibility_metadata_from_columns(_RowView(r)).get(key)

    if comparator == "IS NULL":
        return lambda r: lhs(r) is None
    if comparator == "IS NOT NULL":
        return lambda r: lhs(r) is not None
    return lambda r: _present(lhs(r), comparator, value)


class _RowView:
    """A trace row's columns as attributes (what `compatibility_metadata_from_columns` reads)."""

    def __init__(self, row: Row) -> None:
        self.__dict__.update(row)


def _span_predicate(look: _Lookups, key: str, comparator: str, value: Any) -> Predicate:
    if key.startswith("attributes."):
        name = SearchTraceUtils._trim_backticks(key[len("attributes.") :])
        if comparator == "RLIKE":
            body, prefix, suffix = value, '"\\\\".*', ""
            if body.startswith("^"):
                body, prefix = body[1:], '"\\\\"'
            if body.endswith("$"):
                body, suffix = body[:-1], '\\\\"'
            column, target = "content", f'"{name}": {prefix}{body}{suffix}'
        else:
            column, target = "content", f'%"{name}"{value}%'
    else:
        column, target = {"type": "span_type"}.get(key, key), value
    test = _compare(comparator)
    spans = look.spans()
    return lambda r: any(s[column] is not None and test(s[column], target) for s in spans.get(r["trace_id"], ()))


def _assessment_predicate(look: _Lookups, kind: str, name: str, comparator: str, value: Any) -> Predicate:
    grouped = look.assessments()

    def matching(r: Row) -> list[Row]:
        rows = grouped.get(r["trace_id"], ())
        return [a for a in rows if a["assessment_type"] == kind and a["name"] == name and a["valid"]]

    if comparator == "IS NULL":
        return lambda r: not matching(r)
    if comparator == "IS NOT NULL":
        return lambda r: bool(matching(r))
    if comparator in SearchTraceUtils.NUMERIC_ASSESSMENT_COMPARATORS:
        test = _compare(comparator)

        def numeric(a: Row) -> bool:
            aggregate, is_numeric = assessment_aggregate(json.loads(a["value"]))
            return is_numeric and aggregate is not None and test(aggregate, value)

        return lambda r: any(numeric(a) for a in matching(r))
    if comparator in ("=", "!="):
        targets = {value, json.dumps(value)}
        if comparator == "=":
            return lambda r: any(a["value"] in targets for a in matching(r))
        return lambda r: any(a["value"] is not None and a["value"] not in targets for a in matching(r))
    test = _compare(comparator)
    return lambda r: any(a["value"] is not None and test(a["value"], value) for a in matching(r))


def _issue_predicate(look: _Lookups, issue_id: str) -> Predicate:
    grouped = look.assessments()
    return lambda r: any(
        a["assessment_type"] == "issue" and a["name"] == issue_id for a in grouped.get(r["trace_id"], ())
    )


def _run_predicate(look: _Lookups, run_id: str) -> Predicate:
    """A run's traces: those it is the source run of, and those linked to it (`link_traces_to_run`)."""
    sources = look.keyed("mlflow.trace_request_metadata", TraceMetadataKey.SOURCE_RUN)
    linked = look.links().get(run_id, set())
    return lambda r: sources.get(r["trace_id"]) == run_id or r["trace_id"] in linked


def _predicates(look: _Lookups, filter_string: str | None) -> list[Predicate]:
    """One predicate per clause of `filter_string`, in the SQL store's order of checks (its errors included)."""
    if not filter_string:
        return []
    out: list[Predicate] = []
    for clause in SearchTraceUtils.parse_search_filter_for_search_traces(filter_string):
        kind, key, value = clause.get("type"), clause.get("key"), clause.get("value")
        comparator = clause.get("comparator").upper()
        if SearchTraceUtils.is_issue(kind, key, comparator):
            out.append(_issue_predicate(look, value))
        elif SearchTraceUtils.is_attribute(kind, key, comparator):
            out.append(_attribute_predicate(key, comparator, value))
        elif SearchTraceUtils.is_tag(kind, comparator) and key == TraceTagKey.TRACE_NAME:
            out.append(_column_predicate("trace_name", comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator) and key == TraceMetadataKey.TRACE_SESSION:
            out.append(_column_predicate("session_id", comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator) and key in TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY:
            out.append(_analytics_predicate(key, comparator, value))
        elif (
            SearchTraceUtils.is_request_metadata(kind, comparator)
            and key == TraceMetadataKey.SOURCE_RUN
            and comparator == "="
        ):
            out.append(_run_predicate(look, value))
        elif SearchTraceUtils.is_tag(kind, comparator):
            if key == TraceTagKey.LINKED_PROMPTS:
                _check_prompt_filter(comparator, value)
                out.append(lambda r: False)  # prompt links are not stored by this store (link_prompts_to_trace)
            else:
                out.append(_keyed_predicate(look, "mlflow.trace_tags", key, comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator):
            out.append(_keyed_predicate(look, "mlflow.trace_request_metadata", key, comparator, value))
        elif SearchTraceUtils.is_span(kind, key, comparator):
            out.append(_span_predicate(look, key, comparator, value))
        elif SearchTraceUtils.is_assessment(kind, key, comparator):
            out.append(_assessment_predicate(look, kind, key, comparator, value))
        else:
            raise MlflowException(f"Invalid search expression type '{kind}'", error_code=INVALID_PARAMETER_VALUE)
    return out


def _check_prompt_filter(comparator: str, value: str) -> None:
    if comparator != "=":
        raise MlflowException(
            f"Invalid comparator '{comparator}' for prompts filter. "
            "Only '=' is supported with format: prompt = \"name/version\"",
            error_code=INVALID_PARAMETER_VALUE,
        )
    if value.count("/") != 1:
        raise MlflowException(
            f"Invalid prompts filter value '{value}'. Expected format: prompt = \"name/version\"",
            error_code=INVALID_PARAMETER_VALUE,
        )


SortKey = tuple[Callable[[Row], Any], bool]


def _sort_keys(look: _Lookups, order_by: list[str]) -> list[SortKey]:
    """(value of a row, ascending) per order_by clause, then the default ties; the SQL store's errors."""
    keys: list[SortKey] = []
    seen: set[tuple[str, str]] = set()
    for clause in order_by:
        kind, key, ascending = SearchTraceUtils.parse_order_by_for_search_traces(clause)
        if SearchTraceUtils.is_request_metadata(kind, "=") and key in TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY:
            raise MlflowException.invalid_parameter_value(
                f"Ordering by reserved metadata '{key}' is not supported because it is represented by multiple columns."
            )
        value: Callable[[Row], Any]
        if SearchTraceUtils.is_attribute(kind, key, "="):
            value = _attribute_value(ATTRIBUTE_COLUMNS.get(key, key))
        elif SearchTraceUtils.is_tag(kind, "=") and key == TraceTagKey.TRACE_NAME:
            value = lambda r: r["trace_name"]  # noqa: E731
        elif SearchTraceUtils.is_request_metadata(kind, "=") and key == TraceMetadataKey.TRACE_SESSION:
            value = lambda r: r["session_id"]  # noqa: E731
        elif SearchTraceUtils.is_tag(kind, "=") or SearchTraceUtils.is_request_metadata(kind, "="):
            table = "mlflow.trace_tags" if SearchTraceUtils.is_tag(kind, "=") else "mlflow.trace_request_metadata"
            values = look.keyed(table, key)
            value = _keyed_value(values)
        else:
            raise MlflowException(f"Invalid identifier type '{kind}'", error_code=INVALID_PARAMETER_VALUE)
        if (kind, key) in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add((kind, key))
        keys.append((value, ascending))
    if ("attribute", "timestamp_ms") not in seen:
        keys.append((lambda r: r["timestamp_ms"], False))
    if ("attribute", "request_id") not in seen:
        keys.append((lambda r: r["trace_id"], True))
    return keys


def _keyed_value(values: dict[str, str]) -> Callable[[Row], Any]:
    return lambda r: values.get(r["trace_id"])


def _attribute_value(column: str) -> Callable[[Row], Any]:
    if column == "experiment_id":
        return lambda r: int(r["experiment_id"])  # an integer column in the SQL store: ordered as numbers
    return lambda r: r[column]


def _ordered(rows: list[Row], keys: list[SortKey]) -> list[Row]:
    """`rows` ordered by `keys` (the first most significant), nulls last in either direction: stable sorts from the
    least significant key up."""
    for value, ascending in reversed(keys):
        present = [r for r in rows if value(r) is not None]
        absent = [r for r in rows if value(r) is None]
        present.sort(key=value, reverse=not ascending)
        rows = present + absent
    return rows


def search_traces(
    store: StoreState,
    experiment_ids: list[str] | None = None,
    filter_string: str | None = None,
    max_results: int = SEARCH_TRACES_DEFAULT_MAX_RESULTS,
    order_by: list[str] | None = None,
    page_token: str | None = None,
    model_id: str | None = None,
    locations: list[str] | None = None,
) -> tuple[list[TraceInfo], str | None]:
    """`AbstractStore.search_traces`: one page of `TraceInfo`s and the next page's token (None on the last)."""
    locations = _resolve_experiment_ids_and_locations(experiment_ids, locations)
    _check_max_results(max_results)
    with store._lock:
        store._sync(TRACE_TABLES)
        look = _Lookups(store)
        keys = _sort_keys(look, order_by or [])
        predicates = _predicates(look, filter_string)
        table = store._t.tables["mlflow.traces"]
        if locations is not None:
            rows = table.arrow_where("experiment_id", [str(e) for e in locations], TRACE_COLUMNS).to_pylist()
        else:
            rows = [r for part in table.iter_arrow(TRACE_COLUMNS) for r in part.to_pylist()]
        offset = SearchTraceUtils.parse_start_offset_from_page_token(page_token)
        matched = [r for r in rows if all(p(r) for p in predicates)]
        page = _ordered(matched, keys)[offset : offset + max_results]
        infos = [trace_info(store, r) for r in page]
    token = SearchTraceUtils.create_page_token(offset + max_results) if len(infos) == max_results else None
    return infos, token
