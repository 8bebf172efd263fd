"""Single values between MLflow's entities and the tracking tables' rows, as the tracking store checks and converts
them: integers that must fit in 64 bits (epoch milliseconds, metric steps and timestamps), a metric row as an MLflow
`Metric`, and the value a metric sorts by (NaN as MLflow's SQL store stores it).
"""

from __future__ import annotations

import math
from typing import Any

from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.utils.search_utils import SearchUtils
from mlflow.utils.validation import invalid_value

from lakehouse import Row


def whole_long(value: Any, path: str, detail: str) -> int:
    """`value` as a 64-bit integer (a float with no fractional part is taken), never silently truncated.

    Raises MlflowException(INVALID_PARAMETER_VALUE) in MLflow's "Invalid value ... supplied" wording."""
    whole = int(value) if isinstance(value, float) and value.is_integer() else value
    if not isinstance(whole, int) or not -(2**63) <= whole < 2**63:
        raise MlflowException(invalid_value(path, value, detail), INVALID_PARAMETER_VALUE)
    return whole


def epoch_millis(value: Any, argument: str) -> int | None:
    """`value` (None, or int64 milliseconds since the epoch; not a bool) or INVALID_PARAMETER_VALUE."""
    if value is None:
        return None
    detail = "it must be an integer number of milliseconds since the epoch that fits in 64 bits"
    if isinstance(value, bool):
        raise MlflowException(invalid_value(argument, value, detail), INVALID_PARAMETER_VALUE)
    return whole_long(value, argument, detail)


def metric_entity(row: Row, *, model: bool = False) -> Metric:
    """A run's metric carries key/value/timestamp/step only; a logged model's also its run and dataset."""
    if not model:
        return Metric(key=row["key"], value=row["value"], timestamp=row["timestamp"], step=row["step"])
    return Metric(
        key=row["key"],
        value=row["value"],
        timestamp=row["timestamp"],
        step=row["step"],
        run_id=row["run_id"],
        model_id=row["model_id"],
        dataset_name=row["dataset_name"],
        dataset_digest=row["dataset_digest"],
    )


def metric_sort_value(value: float | None) -> float:
    """The value a metric sorts by: NaN (or None) as 0.0, as the SQL store stores NaN (0 with an `is_nan` flag)."""
    return 0.0 if value is None or math.isnan(value) else value


def check_string(value: Any, argument: str, *, optional: bool = False) -> None:
    """Refuse a value that is not a string where MLflow stores one (a name, a tag or param key or value, an
    artifact location): MLflow's SQL store lets a list, a dict or bytes through to its database, and the lake
    would fail deep in Arrow. None is allowed when `optional`.

    Raises MlflowException(INVALID_PARAMETER_VALUE) naming the argument, the type received and the fix."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 100 else shown[:100] + "..."
        raise MlflowException(
            f"Invalid value {shown} for parameter '{argument}' supplied: it must be a string, got "
            f"{type(value).__name__}{'' if optional else ' (None is not allowed)' if value is None else ''}. "
            "Pass it as a str (e.g. str(value)).",
            INVALID_PARAMETER_VALUE,
        )


def check_page_offset(page_token: Any) -> None:
    """Refuse a page token whose offset no search of this store could have issued (negative, or beyond a 64-bit
    integer): MLflow's own parser takes any integer, so a forged negative offset would page from the end."""
    offset = SearchUtils.parse_start_offset_from_page_token(page_token)
    if not 0 <= offset < 2**63:
        raise MlflowException(
            f"Invalid page token: its offset {offset} is not one a search returns (0 to 2**63 - 1). Pass the "
            "next_page_token of the previous page of the same search, or no token for the first page.",
            INVALID_PARAMETER_VALUE,
        )


def check_unique_keys(items: Any, call: str) -> None:
    """Refuse tags given twice in one call (MLflow's SQL store fails on its database's key, reporting it
    wrongly for create_experiment): an entity holds one value per tag key. MlflowException(INVALID_PARAMETER_VALUE)."""
    keys = [item.key for item in items or []]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise MlflowException(
            f"Duplicate tag keys {duplicates} in {call}: one value per tag key is kept. Pass each key once.",
            INVALID_PARAMETER_VALUE,
        )
