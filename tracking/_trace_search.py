"""`search_traces`: MLflow's trace filter grammar and order over the trace tables, with the SQL store's semantics.

The trace tables are read through their covering indexes (`LeanTable.covering`: every live row, kept beside the
table in mapped Arrow files, exact for the snapshot), as a SQL store reads its indexes. Ordered by a number column
(the default `timestamp DESC`), the clauses are tested only on candidates, the traces first in that order (a slice
of the traces' index, whose base is sorted by time; `_first_rows`), as a SQL store walks its timestamp index;
`tags.k = 'v'` and `request_metadata.k = 'v'` find the traces holding the pair as one run of the order (key, value)
the index keeps; the page (ordered nulls last, then `timestamp_ms DESC, request_id ASC` as ties, as the SQL store
orders) gets its tags, metadata and assessments by trace id from the indexes' hash order. Spans are read from their
files (a span's `content` is the whole span, never copied beside the table).

Filters (`SearchTraceUtils`'s grammar) compare as SQL does: a trace without the value compared is never a match
(even for `!=`), `LIKE` is case-sensitive, `RLIKE` is Python's `re.search` (MLflow's SQLite REGEXP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.tracking import SEARCH_TRACES_DEFAULT_MAX_RESULTS
from mlflow.store.tracking.utils.trace_analytics import (
    TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY,
    assessment_aggregate,
    compatibility_metadata_from_columns,
)
from mlflow.tracing.constant import TraceMetadataKey, TraceTagKey
from mlflow.utils.search_utils import SearchTraceUtils, SearchUtils
from mlflow.utils.validation import _resolve_experiment_ids_and_locations

from lakehouse import Row

from ._store_search import check_max_results
from ._trace_rows import TRACE_COLUMNS, TRACE_TABLES, build_trace_info

if TYPE_CHECKING:
    from mlflow.entities import TraceInfo

    from lakehouse import Covering

    from ._store_state import StoreState

Predicate = Callable[[Row], bool]


class Mask(NamedTuple):
    """A filter clause over trace rows: the `columns` it reads, and `test` of a frame holding them, a boolean array,
    True where the trace matches. `per_trace` clauses (they look up other tables by trace id or run Python per
    trace) are tested on the candidates of a page only, the others on every trace of the experiments."""

    columns: tuple[str, ...]
    test: Callable[[pa.Table], pa.Array]
    per_trace: bool = False


PREVIEW_COLUMNS = ["request_preview", "response_preview"]
FRAME_COLUMNS = [c for c in TRACE_COLUMNS if c not in PREVIEW_COLUMNS]
"""The trace columns without the previews (what the token usage and cost clauses read)."""
FIRST_CANDIDATES = 1024
CANDIDATES_PER_TRACE = 16
"""The first candidates of a page: this many rows per trace asked for, at least `FIRST_CANDIDATES`."""
CANDIDATE_GROWTH = 8
"""The candidates grow by this factor while too few of them match the per-trace filters."""
ATTRIBUTE_COLUMNS = {"request_id": "trace_id"}
"""Search attribute names whose column here has another name."""


def _compare(comparator: str) -> Callable[[Any, Any], bool]:
    """SQL's comparison of a present value (the caller rules out NULL): LIKE case-sensitive, RLIKE a regex search."""
    if comparator == "RLIKE":
        return lambda lhs, pattern: re.search(pattern, str(lhs)) is not None
    return SearchUtils.get_comparison_func(comparator)


class _Lookups:
    """The rows a search reads beyond the trace columns, each read once per search, only when a clause needs it."""

    def __init__(self, store: StoreState) -> None:
        self.store = store
        self._keyed: dict[tuple[str, str], pa.Table] = {}
        self._spans: dict[str, dict[str, list[Row]]] = {}
        self._assessments: dict[str, list[Row]] | None = None
        self._links: dict[str, set[str]] | None = None
        self._fetched: dict[str, tuple[pa.Array, pa.Table]] = {}

    def keyed(self, table: str, key: str) -> pa.Table:
        """The (trace_id, value) rows of `key` in `mlflow.trace_tags` or `mlflow.trace_request_metadata`."""
        found = self._keyed.get((table, key))
        if found is None:
            rows = self.store._t.tables[table].covering().table()
            found = self._keyed[(table, key)] = rows.filter(pc.equal(rows.column("key"), key)).drop_columns(["key"])
        return found

    def keyed_of(self, table: str, key: str, trace_ids: pa.ChunkedArray) -> pa.Table:
        """`keyed` of the traces `trace_ids` only."""
        rows = self.rows_of(table, trace_ids.combine_chunks())
        return rows.filter(pc.equal(rows.column("key"), key)).drop_columns(["key"])

    def rows_of(self, table: str, trace_ids: pa.Array) -> pa.Table:
        """The rows of `table` of the traces `trace_ids`: found by the covering index's hash order (not a scan), or
        taken from the rows found before for traces including them all (a page's, among its candidates')."""
        held = self._fetched.get(table)
        if held is not None and pc.all(pc.is_in(trace_ids, value_set=held[0])).as_py():
            return held[1].filter(pc.is_in(held[1].column("trace_id"), value_set=trace_ids))
        rows = self.store._t.tables[table].covering().where(trace_ids)
        self._fetched[table] = (trace_ids, rows)
        return rows

    def keyed_dict(self, table: str, key: str) -> dict[str, str]:
        found = self.keyed(table, key)
        return dict(zip(found.column("trace_id").to_pylist(), found.column("value").to_pylist(), strict=True))

    def spans(self, column: str) -> dict[str, list[Row]]:
        """trace id -> its spans' `column` (only that column is read: `content` holds the whole span)."""
        found = self._spans.get(column)
        if found is None:
            found = self._spans[column] = self._grouped("mlflow.spans", ["trace_id", column])
        return found

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
        t = self.store._t.tables[table]
        if not t.keep_covering:  # the spans: a span's `content` is the whole span, never kept beside the table
            return [r for part in t.iter_arrow(columns) for r in part.to_pylist()]
        return t.covering().table().select(columns).to_pylist()

    def _grouped(self, table: str, columns: list[str]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        for r in self._rows(table, columns):
            out.setdefault(r["trace_id"], []).append(r)
        return out


def _present(value: Any, comparator: str, target: Any) -> bool:
    return value is not None and _compare(comparator)(value, target)


def _arrow_compare(column: pa.ChunkedArray | pa.Array, comparator: str, value: Any) -> pa.Array:
    """SQL's `column <comparator> value` over an Arrow column, NULL as no match; Python's comparison row by row
    where Arrow has no kernel for the types (a number compared with text)."""
    try:
        if comparator in ("IN", "NOT IN"):
            found = pc.is_in(column, value_set=pa.array(value, column.type))
            mask = found if comparator == "IN" else pc.and_(pc.invert(found), pc.is_valid(column))
        elif comparator in ("LIKE", "ILIKE"):
            mask = pc.match_like(column, value, ignore_case=comparator == "ILIKE")
        elif comparator == "RLIKE":
            raise pa.ArrowNotImplementedError("regular expressions: Python's re, as MLflow's SQLite REGEXP")
        else:
            kernel = {"=": pc.equal, "!=": pc.not_equal, ">": pc.greater, ">=": pc.greater_equal}.get(comparator)
            kernel = kernel or {"<": pc.less, "<=": pc.less_equal}[comparator]
            mask = kernel(column, value)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        mask = pa.array([_present(v, comparator, value) for v in column.to_pylist()], pa.bool_())
    return pc.fill_null(mask, False)


def _ids_mask(frame: pa.Table, ids: pa.Array | pa.ChunkedArray, *, negate: bool = False) -> pa.Array:
    """Whether each trace of `frame` is one of `ids` (or is not, when `negate`)."""
    value_set = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    found = pc.is_in(frame.column("trace_id"), value_set=value_set.cast(pa.string()))
    return pc.invert(found) if negate else found


def _keyed_mask(look: _Lookups, table: str, key: str, comparator: str, value: Any) -> Mask:
    def test(f: pa.Table) -> pa.Array:
        if comparator == "=" and isinstance(value, str):  # the traces holding (key, value): a run of the kept order
            covering = look.store._t.tables[table].covering()
            return pa.array(covering.having(f.column("trace_id").combine_chunks(), {"key": key, "value": value}))
        keyed = look.keyed_of(table, key, f.column("trace_id"))
        if comparator in ("IS NULL", "IS NOT NULL"):
            return _ids_mask(f, keyed.column("trace_id"), negate=comparator == "IS NULL")
        return _ids_mask(f, keyed.column("trace_id").filter(_arrow_compare(keyed.column("value"), comparator, value)))

    return Mask(("trace_id",), test, per_trace=True)


def _column_mask(column: str, comparator: str, value: Any) -> Mask:
    if comparator == "IS NULL":
        return Mask((column,), lambda f: pc.is_null(f.column(column)))
    if comparator == "IS NOT NULL":
        return Mask((column,), lambda f: pc.is_valid(f.column(column)))
    return Mask((column,), lambda f: _arrow_compare(f.column(column), comparator, value))


def _attribute_mask(key: str, comparator: str, value: Any) -> Mask:
    if key in ("end_time_ms", "end_time"):
        return Mask(
            ("timestamp_ms", "execution_time_ms"),
            lambda f: _arrow_compare(
                pc.add(f.column("timestamp_ms"), pc.fill_null(f.column("execution_time_ms"), 0)), comparator, value
            ),
        )
    return _column_mask(ATTRIBUTE_COLUMNS.get(key, key), comparator, value)


def _rows_mask(predicate: Predicate, columns: list[str]) -> Mask:
    """A clause that needs Python per trace (span, assessment and run clauses): `predicate` over `columns`."""
    test = lambda f: pa.array([predicate(r) for r in f.select(columns).to_pylist()], pa.bool_())  # noqa: E731
    return Mask(tuple(columns), test, per_trace=True)


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
    spans = look.spans(column)
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
    sources = look.keyed_dict("mlflow.trace_request_metadata", TraceMetadataKey.SOURCE_RUN)
    linked = look.links().get(run_id, set())
    return lambda r: sources.get(r["trace_id"]) == run_id or r["trace_id"] in linked


def _masks(look: _Lookups, filter_string: str | None) -> list[Mask]:
    """One mask per clause of `filter_string`, in the SQL store's order of checks (its errors included)."""
    if not filter_string:
        return []
    out: list[Mask] = []
    by_id = ["trace_id"]
    for clause in SearchTraceUtils.parse_search_filter_for_search_traces(filter_string):
        kind, key, value = clause.get("type"), clause.get("key"), clause.get("value")
        comparator = clause.get("comparator").upper()
        if SearchTraceUtils.is_issue(kind, key, comparator):
            out.append(_rows_mask(_issue_predicate(look, value), by_id))
        elif SearchTraceUtils.is_attribute(kind, key, comparator):
            out.append(_attribute_mask(key, comparator, value))
        elif SearchTraceUtils.is_tag(kind, comparator) and key == TraceTagKey.TRACE_NAME:
            out.append(_column_mask("trace_name", comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator) and key == TraceMetadataKey.TRACE_SESSION:
            out.append(_column_mask("session_id", comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator) and key in TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY:
            out.append(_rows_mask(_analytics_predicate(key, comparator, value), FRAME_COLUMNS))
        elif (
            SearchTraceUtils.is_request_metadata(kind, comparator)
            and key == TraceMetadataKey.SOURCE_RUN
            and comparator == "="
        ):
            out.append(_rows_mask(_run_predicate(look, value), by_id))
        elif SearchTraceUtils.is_tag(kind, comparator):
            if key == TraceTagKey.LINKED_PROMPTS:
                _check_prompt_filter(comparator, value)
                # prompt links are not stored by this store (link_prompts_to_trace)
                out.append(Mask(("trace_id",), lambda f: pa.array([False] * f.num_rows, pa.bool_())))
            else:
                out.append(_keyed_mask(look, "mlflow.trace_tags", key, comparator, value))
        elif SearchTraceUtils.is_request_metadata(kind, comparator):
            out.append(_keyed_mask(look, "mlflow.trace_request_metadata", key, comparator, value))
        elif SearchTraceUtils.is_span(kind, key, comparator):
            out.append(_rows_mask(_span_predicate(look, key, comparator, value), by_id))
        elif SearchTraceUtils.is_assessment(kind, key, comparator):
            out.append(_rows_mask(_assessment_predicate(look, kind, key, comparator, value), by_id))
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


class SortKey(NamedTuple):
    """An order clause: the trace `columns` it reads, its `values` over a frame holding them (an Arrow array), and
    whether `ascending`."""

    columns: tuple[str, ...]
    values: Callable[[pa.Table], Any]
    ascending: bool


def _sort_keys(look: _Lookups, order_by: list[str]) -> list[SortKey]:
    """(values, ascending) per order_by clause, then the default ties; the SQL store's errors."""
    keys: list[SortKey] = []
    seen: set[tuple[str, str]] = set()
    for clause in order_by:
        kind, key, ascending = SearchTraceUtils.parse_order_by_for_search_traces(clause)
        if SearchTraceUtils.is_request_metadata(kind, "=") and key in TRACE_ANALYTICS_COLUMNS_BY_METADATA_KEY:
            raise MlflowException.invalid_parameter_value(
                f"Ordering by reserved metadata '{key}' is not supported because it is represented by multiple columns."
            )
        values: tuple[tuple[str, ...], Callable[[pa.Table], Any]]
        if SearchTraceUtils.is_attribute(kind, key, "="):
            values = _attribute_values(ATTRIBUTE_COLUMNS.get(key, key))
        elif SearchTraceUtils.is_tag(kind, "=") and key == TraceTagKey.TRACE_NAME:
            values = _attribute_values("trace_name")
        elif SearchTraceUtils.is_request_metadata(kind, "=") and key == TraceMetadataKey.TRACE_SESSION:
            values = _attribute_values("session_id")
        elif SearchTraceUtils.is_tag(kind, "=") or SearchTraceUtils.is_request_metadata(kind, "="):
            table = "mlflow.trace_tags" if SearchTraceUtils.is_tag(kind, "=") else "mlflow.trace_request_metadata"
            values = _keyed_values(look.keyed(table, key))
        else:
            raise MlflowException(f"Invalid identifier type '{kind}'", error_code=INVALID_PARAMETER_VALUE)
        if (kind, key) in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add((kind, key))
        keys.append(SortKey(*values, ascending))
    if ("attribute", "timestamp_ms") not in seen:
        keys.append(SortKey(*_attribute_values("timestamp_ms"), False))
    if ("attribute", "request_id") not in seen:
        keys.append(SortKey(*_attribute_values("trace_id"), True))
    return keys


def _keyed_values(keyed: pa.Table) -> tuple[tuple[str, ...], Callable[[pa.Table], Any]]:
    """A tag's or metadata key's value per trace of the frame (null without one)."""
    ids = keyed.column("trace_id").combine_chunks()
    return ("trace_id",), lambda f: pc.take(keyed.column("value"), pc.index_in(f.column("trace_id"), value_set=ids))


def _attribute_values(column: str) -> tuple[tuple[str, ...], Callable[[pa.Table], Any]]:
    if column == "experiment_id":  # an integer column in the SQL store: ordered as numbers
        return (column,), lambda f: pc.cast(f.column("experiment_id"), pa.int64())
    return (column,), lambda f: f.column(column)


def _order(frame: pa.Table, keys: list[SortKey]) -> pa.Array:
    """The row order of `frame` by `keys` (the first most significant), nulls last whichever the direction: the SQL
    store's `CASE WHEN value IS NULL THEN 1 ELSE 0 END` before every clause."""
    columns: dict[str, Any] = {}
    sort_keys = []
    for i, (_, values, ascending) in enumerate(keys):
        column = values(frame)
        columns[f"n{i}"] = pc.is_null(column)
        columns[f"v{i}"] = column
        sort_keys += [(f"n{i}", "ascending"), (f"v{i}", "ascending" if ascending else "descending")]
    return pc.sort_indices(pa.table(columns), sort_keys=sort_keys)


def _location_mask(locations: list[str] | None) -> Mask | None:
    """Which trace rows are in the experiments `locations` (None: all are)."""
    if locations is None:
        return None
    if len(locations) == 1:
        return _column_mask("experiment_id", "=", str(locations[0]))
    return _column_mask("experiment_id", "IN", [str(e) for e in locations])


def _first_rows(covering: Covering, masks: list[Mask], keys: list[SortKey], count: int) -> np.ndarray:
    """The row numbers in `covering.rows()` of the first `count` live traces (fewer on the last page) that every
    mask matches, in the order of `keys`.

    When the first order key is a number column without nulls (the default `timestamp_ms`), the masks are tested on
    candidates only: first the rows whose value is among the first `k` of all (`Covering.first`: a slice of the
    order the base keeps, ties at the k-th included, so no row outside ranks before one inside), as a SQL store
    walks its timestamp index. When too few of them match (a small experiment in a large lake, a rare status), the
    vectorised masks are tested on every row and the candidates are the first `k` of the rows they keep, `k` growing
    until enough match or every kept row is a candidate. Either way the answer is the sort of every matching row cut
    at `count`, while a page of the newest traces under a tag filter looks at a few thousand traces, not 100,000s.
    Otherwise (another first key) every live row is tested, the vectorised masks first, and sorted.
    """
    read = [c for mask in masks for c in mask.columns] + [c for key in keys for c in key.columns]
    columns = list(dict.fromkeys(["trace_id", *read]))
    first = _number_column(covering, keys[0])
    k = max(CANDIDATES_PER_TRACE * count, FIRST_CANDIDATES)
    if first is not None:
        rows = covering.first(first, k, descending=not keys[0].ascending)
        found = _matching(covering.take(rows, columns), rows, masks, keys, count)
        if len(found) >= count or k >= sum(s.rows.num_rows for s in covering.segments()):
            return found
    traces, live = covering.rows()
    keep = live
    for mask in masks:
        if not mask.per_trace:
            matched = mask.test(traces)
            keep = matched if keep is None else pc.and_(keep, matched)
    rows = np.arange(traces.num_rows) if keep is None else np.flatnonzero(keep.to_numpy(zero_copy_only=False))
    per_trace = [mask for mask in masks if mask.per_trace]
    if first is None:
        frame = traces.select(columns)
        return _matching(frame if keep is None else frame.filter(keep), rows, per_trace, keys, count)
    values = traces.column(first).to_numpy()[rows]
    while True:
        candidates = rows
        if k < len(rows):
            kth = np.partition(values, k - 1)[k - 1] if keys[0].ascending else np.partition(values, len(values) - k)[-k]
            candidates = rows[values <= kth if keys[0].ascending else values >= kth]
        found = _matching(covering.take(candidates, columns), candidates, per_trace, keys, count)
        if len(found) >= count or len(candidates) == len(rows):
            return found
        k *= CANDIDATE_GROWTH


def _matching(frame: pa.Table, rows: np.ndarray, masks: list[Mask], keys: list[SortKey], count: int) -> np.ndarray:
    """The first `count` of `rows` (`frame` holds their columns) that every mask matches (the vectorised ones
    first), in the order of `keys`."""
    for mask in sorted(masks, key=lambda m: m.per_trace):
        if not frame.num_rows:
            return rows
        matched = mask.test(frame)
        frame, rows = frame.filter(matched), rows[matched.to_numpy(zero_copy_only=False)]
    return rows[_order(frame, keys)[:count].to_numpy()] if len(rows) else rows


def _number_column(covering: Covering, key: SortKey) -> str | None:
    """The column of order key `key` when it is an integer column without nulls."""
    if len(key.columns) != 1 or key.columns[0] == "trace_id":
        return None
    column = key.columns[0]
    if not pa.types.is_integer(covering.schema.field(column).type):
        return None
    return None if any(s.rows.column(column).null_count for s in covering.segments()) else column


def _page_infos(look: _Lookups, page: pa.Table) -> list[TraceInfo]:
    """The `TraceInfo`s of a page of trace rows (in order), with their tags, metadata and assessments."""
    ids = page.column("trace_id").combine_chunks()

    def grouped(name: str) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        for r in look.rows_of(name, ids).to_pylist():
            out.setdefault(r["trace_id"], []).append(r)
        return out

    tags, metadata = grouped("mlflow.trace_tags"), grouped("mlflow.trace_request_metadata")
    assessments = grouped("mlflow.assessments")
    return [
        build_trace_info(
            r, tags.get(r["trace_id"], []), metadata.get(r["trace_id"], []), assessments.get(r["trace_id"], [])
        )
        for r in page.to_pylist()
    ]


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
    check_max_results(max_results)
    with store._lock:
        store._sync(TRACE_TABLES)
        look = _Lookups(store)
        keys = _sort_keys(look, order_by or [])
        masks = _masks(look, filter_string)
        covering = store._t.tables["mlflow.traces"].covering()
        offset = SearchTraceUtils.parse_start_offset_from_page_token(page_token)
        located = _location_mask(locations)
        rows = _first_rows(covering, [located, *masks] if located else masks, keys, offset + max_results)
        page = covering.take(rows[offset:])
        infos = _page_infos(look, page) if page.num_rows else []
    token = SearchTraceUtils.create_page_token(offset + max_results) if len(infos) == max_results else None
    return infos, token
