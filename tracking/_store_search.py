"""The tracking store's searches: experiments, runs and logged models, each read from the snapshot under the lock,
then filtered, ordered and paged outside it by MLflow's own search grammar (`mlflow.utils.search_utils`), with the
SQL store's defaults and `max_results` bounds.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from mlflow.entities import LifecycleStage, ViewType
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.tracking import SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT, SEARCH_MAX_RESULTS_THRESHOLD
from mlflow.utils.search_utils import (
    SearchExperimentsUtils,
    SearchLoggedModelsPaginationToken,
    SearchLoggedModelsUtils,
    SearchUtils,
)
from mlflow.utils.validation import _parse_experiment_id

from ._store_experiments import EXPERIMENT_TABLES, to_experiment
from ._store_logged_models import MODEL_TABLES, to_model
from ._store_runs import runs_in_bulk, to_run
from ._store_values import check_page_offset

BULK_FROM = 2000
"""A search with more candidates than this builds them in bulk (`_search_in_bulk`), not run by run."""
BULK_CHUNK = 2000
"""Runs built at a time by a bulk search."""

if TYPE_CHECKING:
    from ._store_state import StoreState


def check_max_results(max_results: Any) -> None:
    """A positive int of at most SEARCH_MAX_RESULTS_THRESHOLD, or MlflowException(INVALID_PARAMETER_VALUE)."""
    if not isinstance(max_results, int) or max_results < 1:
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


def paginate(items: list, page_token: Any, max_results: int) -> tuple[list, str | None]:
    """MLflow's `SearchUtils.paginate`, refusing a forged offset first (`check_page_offset`)."""
    check_page_offset(page_token)
    return SearchUtils.paginate(items, page_token, max_results)


def search_experiments(
    store: StoreState,
    view_type=ViewType.ACTIVE_ONLY,
    max_results=1000,
    filter_string=None,
    order_by=None,
    page_token=None,
):
    check_max_results(max_results)
    with store._lock:
        store._sync(EXPERIMENT_TABLES)
        stages = set(LifecycleStage.view_type_to_stages(view_type))
        experiments = [
            to_experiment(store, hit.row)
            for hits in store._t.experiment_by_id.groups.values()
            for hit in hits.values()
            if hit.row["lifecycle_stage"] in stages
        ]
    filtered = SearchExperimentsUtils.filter(experiments, filter_string)
    ordered = SearchExperimentsUtils.sort(filtered, order_by or ["creation_time DESC", "experiment_id ASC"])
    page, token = paginate(ordered, page_token, max_results)
    return PagedList(page, token)


def search_runs_page(
    store: StoreState, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
):
    """`AbstractStore._search_runs`: one page of runs and the next page's token (None on the last page)."""
    if max_results is not None:
        check_max_results(max_results)
    stages = set(LifecycleStage.view_type_to_stages(run_view_type))
    clauses = SearchUtils.parse_search_filter(filter_string) if filter_string else []  # raises MLflow's errors
    _check_comparators(clauses)
    equal_to = _equality_clauses(clauses)
    exact = _in_natural_order_by_equalities(clauses, equal_to, order_by)
    with store._lock:
        store._sync()
        exp_ids = [str(_parse_experiment_id(e)) for e in experiment_ids]
        candidates = _candidates(store, exp_ids, stages, equal_to)
        if exact:  # the candidates are the result: order and page them in Arrow, build the page's runs only
            ordered_ids = candidates.sort_by([("start_time", "descending"), ("run_id", "ascending")])["run_id"]
            page_ids, token = paginate(ordered_ids.to_pylist(), page_token, max_results)
            return [to_run(store, run_id) for run_id in page_ids], token
        ids = candidates["run_id"].to_pylist()
        if len(ids) > BULK_FROM:
            return _search_in_bulk(store, sorted(ids), filter_string, order_by, page_token, max_results)
        runs = [to_run(store, run_id) for run_id in ids]
    filtered = SearchUtils.filter(runs, filter_string)
    ordered = SearchUtils.sort(filtered, order_by)
    return paginate(ordered, page_token, max_results)


def search_logged_models(
    store: StoreState,
    experiment_ids,
    filter_string=None,
    datasets=None,
    max_results=None,
    order_by=None,
    page_token=None,
):
    """As the SQL store: its filter parser and order-by checks (their messages), its page token (the query and
    the offset, refused for another query), then MLflow's own `SearchLoggedModelsUtils` filter and sort."""
    if datasets and not all(d.get("dataset_name") for d in datasets):
        raise MlflowException("`dataset_name` in the `datasets` clause must be specified.", INVALID_PARAMETER_VALUE)
    offset = _model_page_offset(page_token, experiment_ids, filter_string, order_by)
    if filter_string:
        # imported here: it loads MLflow's SQL models, which cannot be imported while MLflow loads this plugin
        from mlflow.utils.search_logged_model_utils import parse_filter_string

        parse_filter_string(filter_string)  # raises the SQL store's errors for a malformed filter
    _check_model_order_by(order_by)
    max_results = max_results or SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT
    with store._lock:
        store._sync(MODEL_TABLES)
        models = [
            to_model(store, row, none_without_metrics=False)
            for e in experiment_ids
            for row in store._t.models_by_experiment.rows(str(e))
            if row["lifecycle_stage"] != LifecycleStage.DELETED
        ]
    filtered = SearchLoggedModelsUtils.filter_logged_models(models, filter_string, datasets)
    ordered = SearchLoggedModelsUtils.sort(filtered, order_by)
    page = ordered[offset : offset + max_results]
    for model in page:
        model.metrics = model.metrics or None  # None without metrics, as the SQL store answers (lists to filter)
    token = None
    if len(ordered) > offset + max_results:
        token = SearchLoggedModelsPaginationToken(
            offset=offset + max_results, experiment_ids=experiment_ids, filter_string=filter_string, order_by=order_by
        ).encode()
    return PagedList(page, token)


_MODEL_COLUMNS = {
    "model_id",
    "experiment_id",
    "name",
    "artifact_location",
    "creation_timestamp_ms",
    "last_updated_timestamp_ms",
    "status",
    "lifecycle_stage",
    "model_type",
    "source_run_id",
    "status_message",
}
"""The columns of the SQL store's logged-model table, which its `order_by` accepts (and their aliases below)."""
_MODEL_ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}


def _model_page_offset(page_token: Any, experiment_ids: Any, filter_string: Any, order_by: Any) -> int:
    if not page_token:
        return 0
    try:
        token = SearchLoggedModelsPaginationToken.decode(page_token)
    except (
        ValueError,
        TypeError,
        AttributeError,
    ) as exc:  # base64/UTF-8 garbage (binascii.Error is a ValueError): the SQL store lets it escape (an HTTP 500); a 400 here
        raise MlflowException(f"Invalid page token: {page_token}. {exc}", INVALID_PARAMETER_VALUE) from None
    token.validate(experiment_ids, filter_string, order_by)
    return token.offset


def _check_model_order_by(order_by: Any) -> None:
    for ob in order_by or []:
        field = ob.get("field_name") if isinstance(ob, dict) else None
        if not isinstance(field, str):
            continue  # MLflow's sort below names what is wrong
        if "." not in field:
            if _MODEL_ALIASES.get(field, field) not in _MODEL_COLUMNS:
                raise MlflowException(f"Invalid order by field name: {field}", INVALID_PARAMETER_VALUE)
        elif field.split(".", 1)[0] != "metrics":
            raise MlflowException(
                f"Invalid order by field name: {field}. Only metrics are supported.", INVALID_PARAMETER_VALUE
            )


def _check_comparators(clauses: list[dict]) -> None:
    """MLflow's INVALID_PARAMETER_VALUE for a comparator its kind of key does not take (`metrics.m LIKE 'x'`),
    raised before any run is read, as the SQL store does while building its query: with no run to match, MLflow's
    `SearchUtils.filter` would never look at the clause."""
    for c in clauses:
        kind, key, comparator = c.get("type"), SearchUtils.translate_key_alias(c.get("key")), c["comparator"].upper()
        _ = (
            SearchUtils.is_metric(kind, comparator)
            or SearchUtils.is_param(kind, comparator)
            or SearchUtils.is_tag(kind, comparator)
            or SearchUtils.is_string_attribute(kind, key, comparator)
            or SearchUtils.is_numeric_attribute(kind, key, comparator)
            or SearchUtils.is_dataset(kind, comparator)
        )


def _equality_clauses(clauses: list[dict]) -> list[tuple[str, str, str]]:
    """The parsed filter's `params.<key> = '<value>'` and `tags.<key> = '<value>'` clauses as (kind, key, value).

    MLflow's run filter is a conjunction, so a run failing one of these cannot match: such runs are left out
    before a `Run` is built for them. The whole filter is still applied by MLflow's own `SearchUtils.filter`.
    """
    return [
        (c["type"], c["key"], c["value"])
        for c in clauses
        if c.get("type") in ("parameter", "tag") and c.get("comparator") == "=" and isinstance(c.get("value"), str)
    ]


def _search_in_bulk(store: StoreState, ids: list[str], filter_string, order_by, page_token, max_results):
    """A page of a search over many candidates (`ids`, sorted): runs are built in bulk, BULK_CHUNK at a time, and
    filtered by MLflow's `SearchUtils.filter`; each match is kept only as what MLflow's `SearchUtils.sort` reads (its
    start time, run id and the order-by values), sorted by that very function, and the page's runs are built in
    full. Memory follows the chunk and the matches' sort keys, not the experiment's runs."""
    keys = [SearchUtils.parse_order_by_for_search_runs(c) for c in order_by or []]
    slim = []
    for start in range(0, len(ids), BULK_CHUNK):
        for run in SearchUtils.filter(runs_in_bulk(store, ids[start : start + BULK_CHUNK]), filter_string):
            slim.append(_sort_view(run, keys))
    ordered = SearchUtils.sort(slim, order_by)
    page, token = paginate(ordered, page_token, max_results)
    return [to_run(store, view.info.run_id) for view in page], token


def _sort_view(run, keys: list[tuple[str, str, bool]]) -> SimpleNamespace:
    """What `SearchUtils.sort` reads of `run` (`_get_value_for_sort`: `info.<attribute>`, `data.metrics/params/tags`
    `.get(key)`), and no more."""
    info = {"start_time": run.info.start_time, "run_id": run.info.run_id}
    data: dict[str, dict] = {"metrics": {}, "params": {}, "tags": {}}
    for key_type, key, _ in keys:
        key = SearchUtils.translate_key_alias(key)
        if key_type == "attribute":
            info[key] = getattr(run.info, key)
        elif key_type in ("metric", "parameter", "tag"):
            kind = {"metric": "metrics", "parameter": "params", "tag": "tags"}[key_type]
            value = getattr(run.data, kind).get(key)
            if value is not None:
                data[kind][key] = value
    return SimpleNamespace(info=SimpleNamespace(**info), data=SimpleNamespace(**data))


def _in_natural_order_by_equalities(clauses: list[dict], equal_to: list, order_by: list[str] | None) -> bool:
    """Whether the filter is only `params.k = 'v'` / `tags.k = 'v'` clauses (all in `equal_to`) and the order is
    MLflow's natural one (start time descending, then run id; `start_time DESC` keeps it), so that the equality
    candidates, in that order, are exactly the result: the MLflow UI's and `mlflow.search_runs()`'s default."""
    if len(clauses) != len(equal_to):
        return False
    for clause in order_by or []:
        key_type, key, ascending = SearchUtils.parse_order_by_for_search_runs(clause)
        if (key_type, key, ascending) != ("attribute", "start_time", False):
            return False
    return True


def _candidates(
    store: StoreState, exp_ids: list[str], stages: set[str], equal_to: list[tuple[str, str, str]]
) -> pa.Table:
    """The experiments' runs in `stages` that pass the filter's equality clauses (`run_id`, `start_time`), found by
    Arrow scans of the cold run tables (only the columns asked for): a `Run` is built for these only."""
    runs = store._t.tables["mlflow.runs"].arrow_where(
        "experiment_id", exp_ids, ["run_id", "start_time", "lifecycle_stage"]
    )
    runs = runs.filter(pc.is_in(runs["lifecycle_stage"], value_set=pa.array(sorted(stages), pa.string())))
    for kind, key, value in equal_to:
        hits = store._t.tables["mlflow.params" if kind == "parameter" else "mlflow.tags"].arrow_where(
            "key", [key], ["run_id", "value"]
        )
        matching = hits.filter(pc.equal(hits["value"], value))["run_id"].combine_chunks()
        runs = runs.filter(pc.is_in(runs["run_id"], value_set=matching))
    return runs.select(["run_id", "start_time"])
