"""Registry search: filters, sort keys and paging of `search_registered_models` and `search_model_versions`.

The rules are MLflow's SQL store's: its filter grammar and per-clause matchers (`mlflow.utils.search_utils`),
its accepted attributes and comparators, its sort keys and tie-breakers, its offset page tokens, and prompts
left out unless the filter asks for them. LIKE is case-sensitive (as on PostgreSQL and MySQL, and in MLflow's
Python filters); SQLite's LIKE is not. Searches filter and sort light views of the rows (`_ModelView`,
`_VersionView`) and build entities only for the page they return.
"""

from __future__ import annotations

from typing import Any

from mlflow.entities.model_registry.model_version_stages import STAGE_DELETED_INTERNAL
from mlflow.entities.model_registry.prompt_version import IS_PROMPT_TAG_KEY
from mlflow.exceptions import MlflowException
from mlflow.prompt.registry_utils import has_prompt_tag
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.entities.paged_list import PagedList
from mlflow.store.model_registry import (
    SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
    SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
    SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
)
from mlflow.utils.search_utils import SearchModelUtils, SearchModelVersionUtils, SearchUtils

from lakehouse import Row

from ._registry_base import RegistryStoreBase
from ._registry_entities import to_model, to_version
from ._registry_tables import RegistryTables


class SearchMixin(RegistryStoreBase):
    """MLflow's registered-model and model-version searches."""

    def search_registered_models(
        self,
        filter_string=None,
        max_results=SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by=None,
        page_token=None,
    ):
        if max_results > SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        parsed = SearchModelUtils.parse_search_filter(filter_string)
        for f in parsed:
            _check_model_filter(f)
        sort_key = _registered_model_sort(order_by)
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._sync()
            models = [_ModelView(hits[0].row, self._t) for hits in self._t.models.groups.values()]
            if not _queries_prompts(parsed):
                models = [m for m in models if not has_prompt_tag(m._tags)]
            models = [m for m in models if _matches(SearchModelUtils._does_registered_model_match_clauses, m, parsed)]
            models.sort(key=sort_key)
            page = page_of(models, offset, max_results)
            return PagedList([to_model(self._t, m.row) for m in page], page.token)

    def search_model_versions(
        self, filter_string=None, max_results=SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT, order_by=None, page_token=None
    ):
        if not isinstance(max_results, int) or max_results < 1:
            raise MlflowException(
                f"Invalid value for max_results. It must be a positive integer, but got {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        if max_results > SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD:
            raise MlflowException(
                "Invalid value for request parameter max_results. It must be at most "
                f"{SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD}, but got value {max_results}",
                INVALID_PARAMETER_VALUE,
            )
        parsed = SearchModelVersionUtils.parse_search_filter(filter_string)
        for f in parsed:
            _check_version_filter(f)
        sort_key = _version_sort(order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"])
        offset = SearchUtils.parse_start_offset_from_page_token(page_token)
        with self._lock:
            self._sync()
            prompts = (
                set()
                if _queries_prompts(parsed)
                else {name for name in self._t.models.groups if self._is_prompt(str(name))}
            )
            # MLflow's matcher reads attributes and `tags`, which a view computes from the row on demand.
            versions = [
                _VersionView(r, self._t)
                for hits in self._t.versions.groups.values()
                for r, _ in hits.values()
                if r["current_stage"] != STAGE_DELETED_INTERNAL and r["name"] not in prompts
            ]
            if parsed:
                match = SearchModelVersionUtils._does_model_version_match_clauses
                versions = [v for v in versions if _matches(match, v, parsed)]
            versions.sort(key=sort_key)
            page = page_of(versions, offset, max_results)
            return PagedList([to_version(self._t, v.row) for v in page], page.token)


def page_of(items: list, offset: int, max_results: int) -> PagedList:
    """Items `offset` to `offset + max_results` of a sorted list, with the next page's offset token (or None)."""
    page = items[offset : offset + max_results]
    token = SearchUtils.create_page_token(offset + max_results) if len(items) > offset + max_results else None
    return PagedList(page, token)


# -- views: rows read as MLflow's matchers and sort keys read entities -------------------------------------
class _VersionView:
    """A model-version row seen as MLflow's version filter and `_version_sort` read a `ModelVersion`.

    Building a `ModelVersion` costs tens of microseconds (tags, and two environment lookups for its workspace),
    so a search over 1,000 versions builds only the page it returns. `tags` is read only by tag clauses.
    """

    __slots__ = ("_t", "row")

    def __init__(self, row: Row, tables: RegistryTables) -> None:
        self.row, self._t = row, tables

    name = property(lambda self: self.row["name"])
    version = property(lambda self: self.row["version"])
    source = property(lambda self: self.row["source"])
    run_id = property(lambda self: self.row["run_id"])
    current_stage = property(lambda self: self.row["current_stage"])
    creation_timestamp = property(lambda self: self.row["creation_time"])
    last_updated_timestamp = property(lambda self: self.row["last_updated_time"])

    @property
    def tags(self) -> dict[str, str]:
        return {t["key"]: t["value"] for t in self._t.version_tags.rows((self.row["name"], self.row["version"]))}


class _ModelView:
    """A registered-model row seen as MLflow's model filter and `_registered_model_sort` read a `RegisteredModel`
    (`_tags` holds every tag, the prompt marker included, as on the entity)."""

    __slots__ = ("_tags", "row")

    def __init__(self, row: Row, tables: RegistryTables) -> None:
        self.row = row
        self._tags = {t["key"]: t["value"] for t in tables.model_tags.rows(row["name"])}

    name = property(lambda self: self.row["name"])
    creation_timestamp = property(lambda self: self.row["creation_time"])
    last_updated_timestamp = property(lambda self: self.row["last_updated_time"])


# -- filters ---------------------------------------------------------------------------------------------
def _matches(match_clause, item: Any, parsed: list[dict[str, Any]]) -> bool:
    """Whether `item` satisfies every parsed clause, by MLflow's own per-clause matcher (what its `filter` runs
    after parsing the string a second time; mlflow is pinned, so this private hook is stable here)."""
    return all(match_clause(item, clause) for clause in parsed)


def _queries_prompts(parsed: list[dict[str, Any]]) -> bool:
    for f in parsed:
        if f["type"] == "tag" and f["key"] == IS_PROMPT_TAG_KEY:
            return (f["comparator"] == "=" and f["value"].lower() == "true") or (
                f["comparator"] == "!=" and f["value"].lower() == "false"
            )
    return False


def _check_model_filter(f: dict[str, Any]) -> None:
    if f["type"] == "attribute":
        if f["key"] != "name":
            raise MlflowException(f"Invalid attribute name: {f['key']}", error_code=INVALID_PARAMETER_VALUE)
        if f["comparator"] not in ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"):
            raise MlflowException(
                f"Invalid comparator for attribute: {f['comparator']}", error_code=INVALID_PARAMETER_VALUE
            )
    elif f["type"] == "tag":
        if f["comparator"] not in ("=", "!=", "LIKE", "ILIKE"):
            raise MlflowException.invalid_parameter_value(f"Invalid comparator for tag: {f['comparator']}")
    else:
        raise MlflowException(f"Invalid token type: {f['type']}", error_code=INVALID_PARAMETER_VALUE)


def _check_version_filter(f: dict[str, Any]) -> None:
    key, comparator, value = f["key"], f["comparator"], f["value"]
    if f["type"] == "attribute":
        if key not in SearchModelVersionUtils.VALID_SEARCH_ATTRIBUTE_KEYS:
            raise MlflowException(f"Invalid attribute name: {key}", error_code=INVALID_PARAMETER_VALUE)
        if key in SearchModelVersionUtils.NUMERIC_ATTRIBUTES:
            if comparator not in SearchModelVersionUtils.VALID_NUMERIC_ATTRIBUTE_COMPARATORS:
                raise MlflowException(
                    f"Invalid comparator for attribute {key}: {comparator}", error_code=INVALID_PARAMETER_VALUE
                )
            try:
                if isinstance(value, float):
                    raise ValueError(value)
                int(value)
            except (TypeError, ValueError):
                raise MlflowException.invalid_parameter_value(
                    f"Invalid value for numeric attribute '{key}': {value!r}"
                ) from None
        elif comparator not in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS or (
            comparator in ("IN", "NOT IN") and key not in ("run_id", "name")
        ):
            raise MlflowException(f"Invalid comparator for attribute: {comparator}", error_code=INVALID_PARAMETER_VALUE)
    elif f["type"] == "tag":
        if comparator not in ("=", "!=", "LIKE", "ILIKE"):
            raise MlflowException.invalid_parameter_value(f"Invalid comparator for tag: {comparator}")
    else:
        raise MlflowException(f"Invalid token type: {f['type']}", error_code=INVALID_PARAMETER_VALUE)


# -- sort keys -------------------------------------------------------------------------------------------
class _Desc:
    """Reverses the order of a value inside a sort key."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.v == self.v


def _sort_key(fields: list[tuple[Any, bool]]):
    return lambda x: tuple(f(x) if asc else _Desc(f(x)) for f, asc in fields)


def _registered_model_sort(order_by: list[str] | None):
    fields, seen = [], set()
    for clause in order_by or []:
        token, asc = SearchUtils.parse_order_by_for_search_registered_models(clause)
        if token == "name":
            col, getter = "name", (lambda m: m.name)
        elif token in SearchUtils.VALID_TIMESTAMP_ORDER_BY_KEYS:
            col, getter = "last_updated_time", (lambda m: m.last_updated_timestamp)
        else:
            raise MlflowException(
                f"Invalid order by key '{token}' specified.Valid keys are "
                f"'{SearchUtils.RECOMMENDED_ORDER_BY_KEYS_REGISTERED_MODELS}'",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if col in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(col)
        fields.append((getter, asc))
    if "name" not in seen:
        fields.append((lambda m: m.name, True))
    return _sort_key(fields)


_VERSION_FIELDS = {
    "name": lambda v: v.name,
    "version_number": lambda v: int(v.version),
    "creation_timestamp": lambda v: v.creation_timestamp,
    "last_updated_timestamp": lambda v: v.last_updated_timestamp,
}


def _version_sort(order_by: list[str]):
    fields, seen = [], set()
    for clause in order_by:
        _, key, asc = SearchModelVersionUtils.parse_order_by_for_search_model_versions(clause)
        if key not in SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS:
            raise MlflowException(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{SearchModelVersionUtils.VALID_ORDER_BY_ATTRIBUTE_KEYS}",
                error_code=INVALID_PARAMETER_VALUE,
            )
        if key in seen:
            raise MlflowException(f"`order_by` contains duplicate fields: {order_by}")
        seen.add(key)
        fields.append((_VERSION_FIELDS[key], asc))
    if "name" not in seen:
        fields.append((_VERSION_FIELDS["name"], True))
    if "version_number" not in seen:
        fields.append((_VERSION_FIELDS["version_number"], False))
    return _sort_key(fields)
