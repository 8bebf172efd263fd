"""Immutable descriptions returned by the feature store: tables and training-set audits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class FeatureTable:
    """A feature table: its keys, features, documentation and where it stands.

    `used_by` lists the ids of saved training sets that read the table. `created_at` is UTC.
    """

    name: str
    path: str
    primary_keys: tuple[str, ...]
    timestamp_keys: tuple[str, ...]
    features: tuple[tuple[str, str], ...]  # (name, Spark type) of every non-key column
    description: str | None
    tags: dict[str, str] = field(hash=False)
    partition_columns: tuple[str, ...] = ()
    latest_version: int = 0
    created_at: datetime | None = None
    used_by: tuple[str, ...] = ()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.features)

    @property
    def keys(self) -> tuple[str, ...]:
        """Primary keys then timestamp keys: together unique in the table."""
        return self.primary_keys + self.timestamp_keys


@dataclass(frozen=True)
class LookupAudit:
    """Leakage and staleness facts of one lookup in a training set.

    `age_quantiles` maps 0.0/0.5/0.9/0.99/1.0 to label ts - matched feature ts over matched rows (None when
    nothing matched, or for a table without a timestamp key). `future_matches` counts matched rows whose
    feature is newer than the label: it is 0 unless the join is wrong, and is reported so a reviewer can
    see it checked.
    """

    table_name: str
    version: int
    outputs: tuple[str, ...]
    num_rows: int
    num_matched: int
    future_matches: int
    age_quantiles: dict[float, timedelta] | None = field(hash=False, default=None)

    @property
    def match_rate(self) -> float:
        return self.num_matched / self.num_rows if self.num_rows else 0.0


@dataclass(frozen=True)
class TrainingSetAudit:
    training_set_id: str
    num_rows: int
    lookups: tuple[LookupAudit, ...]
