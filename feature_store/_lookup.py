"""FeatureLookup: which features to join from which table, by which label columns (Databricks' signature)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

_SCALARS = (bool, int, float, str)


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
        if not isinstance(table_name, str) or not table_name:
            raise TypeError(f"table_name must be a non-empty str, got {table_name!r}")
        self.table_name = table_name
        self.lookup_key = _names(lookup_key, "lookup_key", allow_empty=False)
        self.feature_names = (
            None if feature_names is None else _names(feature_names, "feature_names", allow_empty=False)
        )
        if timestamp_lookup_key is not None and (not isinstance(timestamp_lookup_key, str) or not timestamp_lookup_key):
            raise TypeError(f"timestamp_lookup_key must be a column name or None, got {timestamp_lookup_key!r}")
        self.timestamp_lookup_key = timestamp_lookup_key
        if lookback_window is not None:
            if not isinstance(lookback_window, timedelta):
                raise TypeError(f"lookback_window must be a datetime.timedelta or None, got {lookback_window!r}")
            if lookback_window < timedelta(0):
                raise ValueError(f"lookback_window must not be negative, got {lookback_window}")
            if timestamp_lookup_key is None:
                raise ValueError("lookback_window needs timestamp_lookup_key (the label time it looks back from)")
        self.lookback_window = lookback_window
        self.rename_outputs = dict(_str_map(rename_outputs, "rename_outputs"))
        defaults = dict(default_values or {})
        for k, v in defaults.items():
            if not isinstance(k, str):
                raise TypeError(f"default_values keys must be feature names, got {k!r}")
            if v is not None and not isinstance(v, _SCALARS):
                raise TypeError(
                    f"default_values[{k!r}] must be a bool, int, float or str (it is saved with the training "
                    f"set), got {type(v).__name__} {v!r}"
                )
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


def _names(value: str | Sequence[str] | None, argument: str, *, allow_empty: bool) -> list[str]:
    """A column name or names as a list; None is no columns. Refuses empties and repeats."""
    if value is None:
        value = []
    out = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if out is None or not all(isinstance(v, str) and v for v in out):
        raise TypeError(f"{argument} must be a column name or a list of column names, got {value!r}")
    if not out and not allow_empty:
        raise ValueError(f"{argument} must name at least one column")
    if len(set(out)) != len(out):
        raise ValueError(f"{argument} names a column twice: {out}")
    return out


def _str_map(value: Mapping[str, str] | None, argument: str) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise TypeError(f"{argument} must map feature names to new column names (str -> str), got {value!r}")
    return value
