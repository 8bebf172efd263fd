"""FeatureLookup: which features to join from which table, by which label columns (Databricks' signature)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from . import errors
from ._validation import finite, mapping, names, non_empty_str, str_map

_SCALARS = (bool, int, float, str)
_MAX_LOOKBACK = timedelta(microseconds=2**63 - 1)


class FeatureLookup:
    """Features of one feature table to join onto a training set's labels.

    Args:
        table_name: the feature table.
        lookup_key: label column(s) matched to the table's primary keys, in their order; names may differ.
        feature_names: features to bring (a name or a list); None brings every non-key column.
        timestamp_lookup_key: the label column holding the event time, required for a table with a
            timestamp key: the feature row used is the latest one at or before it (inclusive).
        lookback_window: only feature rows at most this much older than the label count; None = no limit.
        rename_outputs: {feature name: column name in the training set}.
        default_values: {feature name: value} used where the joined value is null (no match in time or
            lookback, or a null stored in the table). A JSON scalar (bool, int, float, str).

    Example:
        >>> FeatureLookup(table_name="customer_features", lookup_key="customer_id",
        ...               feature_names=["f1", "f2"], timestamp_lookup_key="label_ts",
        ...               lookback_window=timedelta(days=30), default_values={"f2": 0.0})
    """

    def __init__(
        self,
        table_name: str,
        lookup_key: str | Sequence[str],
        *,
        feature_names: str | Sequence[str] | None = None,
        timestamp_lookup_key: str | None = None,
        lookback_window: timedelta | None = None,
        rename_outputs: Mapping[str, str] | None = None,
        default_values: Mapping[str, Any] | None = None,
    ) -> None:
        self.table_name = non_empty_str(table_name, "table_name")
        self.lookup_key = names(lookup_key, "lookup_key", allow_empty=False)
        self.feature_names = None if feature_names is None else names(feature_names, "feature_names", allow_empty=False)
        if timestamp_lookup_key is not None:
            non_empty_str(timestamp_lookup_key, "timestamp_lookup_key")
        self.timestamp_lookup_key = timestamp_lookup_key
        if lookback_window is not None:
            if not isinstance(lookback_window, timedelta):
                raise errors.ArgumentTypeError("lookback_window", lookback_window, "a datetime.timedelta or None")
            if lookback_window > _MAX_LOOKBACK:
                raise errors.InvalidArgumentError(
                    "lookback_window",
                    lookback_window,
                    f"lookback_window is at most {_MAX_LOOKBACK} (microseconds in a 64-bit integer); pass None for "
                    "no limit",
                )
            if lookback_window < timedelta(0):
                raise errors.InvalidArgumentError(
                    "lookback_window", lookback_window, f"lookback_window must not be negative, got {lookback_window}"
                )
            if timestamp_lookup_key is None:
                raise errors.InvalidArgumentError(
                    "lookback_window",
                    lookback_window,
                    "lookback_window needs timestamp_lookup_key (the label time it looks back from)",
                )
        self.lookback_window = lookback_window
        self.rename_outputs = str_map(rename_outputs, "rename_outputs")
        defaults = mapping(default_values, "default_values")
        for k, v in defaults.items():
            if not isinstance(k, str):
                raise errors.ArgumentTypeError("default_values", default_values, "a mapping keyed by feature names")
            if v is not None and not isinstance(v, _SCALARS):
                raise errors.ArgumentTypeError(
                    f"default_values[{k!r}]", v, "a bool, int, float or str (it is saved with the training set)"
                )
            finite(v, f"default_values[{k!r}]")
        self.default_values = defaults

    def output_name(self, feature: str) -> str:
        return self.rename_outputs.get(feature, feature)

    def __repr__(self) -> str:
        parts = [f"table_name={self.table_name!r}", f"lookup_key={self.lookup_key!r}"]
        for attr in ("feature_names", "timestamp_lookup_key", "lookback_window"):
            if getattr(self, attr) is not None:
                parts.append(f"{attr}={getattr(self, attr)!r}")
        for attr in ("rename_outputs", "default_values"):
            if getattr(self, attr):
                parts.append(f"{attr}={getattr(self, attr)!r}")
        return f"FeatureLookup({', '.join(parts)})"
