"""Immutable descriptions returned by the feature store: tables, their lineage and training-set audits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class TrainingSetUse:
    """A saved training set that reads a feature table.

    `features` are the table's columns it takes (table names, before any rename; a feature whose output the
    training set excludes is not counted), `versions` the table versions it reads (one per lookup of the table
    at a distinct version, usually one). `created_at` is UTC.
    """

    training_set_id: str
    features: tuple[str, ...]
    versions: tuple[int, ...]
    created_at: datetime | None = None


@dataclass(frozen=True)
class RunUse:
    """A model logged with `log_model` that reads a feature table: the run and model URI it was logged as
    (`runs:/<run id>/<path>`), its training set, and the features it takes from the table, named as the model
    sees them (the training set's output names, after renames). Registered or not. `logged_at` is UTC."""

    run_id: str
    model_uri: str
    training_set_id: str
    features: tuple[str, ...]
    logged_at: datetime | None = None


@dataclass(frozen=True)
class ModelVersionUse:
    """A registered model version, existing now, of a run in `FeatureTable.runs`: its stage (None when it has
    none) and aliases, and the features it takes from the table (those of its run's models, as in `RunUse`)."""

    name: str
    version: int
    run_id: str
    features: tuple[str, ...]
    stage: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """'name/version', as `FeatureTableInUseError.models` names it."""
        return f"{self.name}/{self.version}"

    @property
    def model_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class FeatureTable:
    """A feature table: its keys, features, documentation, where it stands and what uses it.

    `used_by` lists the ids of saved training sets that read the table (`training_sets` says which features
    each takes). `runs` are the models logged with `log_model` on it; `model_versions` the registered versions
    of those runs as the MLflow registry (`registry_uri`) holds them now: a version registered after logging
    shows, a deleted one does not. `model_versions` is () when no model was logged on the table, and None when
    unknown: `list_tables`/`search_tables` do not ask the registry (only `get_table` does), or the registry could
    not be read (`registry_error` says why).
    `created_at` is UTC. `lineage()` renders all of it as text.
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
    training_sets: tuple[TrainingSetUse, ...] = ()
    runs: tuple[RunUse, ...] = ()
    model_versions: tuple[ModelVersionUse, ...] | None = None
    registry_uri: str | None = None
    registry_error: str | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.features)

    @property
    def keys(self) -> tuple[str, ...]:
        """Primary keys then timestamp keys: together unique in the table."""
        return self.primary_keys + self.timestamp_keys

    def lineage(self) -> str:
        """A multi-line text view of the table and what uses it (what `print(table)` shows).

        Example:
            >>> print(fs.get_table("customer_features").lineage())
            feature table customer_features (version 2)
              keys: customer_id, ts
              features: f1 double, f2 double
              training sets (1):
                3f2a...  features f1, f2  version 0
              runs (1):
                9c41...  runs:/9c41.../model  training set 3f2a...  features f1, g2
              registered model versions (1) in lakehouse:///lake:
                churn/1  stage Production  aliases champion  run 9c41...  features f1, g2
        """
        lines = [f"feature table {self.name} (version {self.latest_version})"]
        if self.description:
            lines.append(f"  description: {self.description}")
        lines.append(f"  keys: {_join(self.keys)}")
        lines.append(f"  features: {_join(f'{n} {t}' for n, t in self.features)}")
        if self.tags:
            lines.append(f"  tags: {_join(f'{k}={v}' for k, v in sorted(self.tags.items()))}")
        lines.append(f"  training sets ({len(self.training_sets)}){':' if self.training_sets else ''}")
        for t in self.training_sets:
            versions = ", ".join(str(v) for v in t.versions)
            word = "version" if len(t.versions) == 1 else "versions"
            lines.append(f"    {t.training_set_id}  features {_join(t.features)}  {word} {versions}")
        lines.append(f"  runs ({len(self.runs)}){':' if self.runs else ''}")
        for r in self.runs:
            lines.append(
                f"    {r.run_id}  {r.model_uri}  training set {r.training_set_id}  features {_join(r.features)}"
            )
        if self.model_versions is None:
            if self.registry_error is not None:
                why = f"the registry {self.registry_uri} could not be read: {self.registry_error}"
            else:
                why = "not looked up (get_table looks them up)"
            lines.append(f"  registered model versions: unknown, {why}")
        else:
            where = f" in {self.registry_uri}" if self.registry_uri else ""
            colon = ":" if self.model_versions else ""
            lines.append(f"  registered model versions ({len(self.model_versions)}){where}{colon}")
            for v in self.model_versions:
                stage = f"  stage {v.stage}" if v.stage else ""
                aliases = f"  aliases {_join(v.aliases)}" if v.aliases else ""
                lines.append(f"    {v.ref}{stage}{aliases}  run {v.run_id}  features {_join(v.features)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.lineage()


def _join(items: Iterable[str]) -> str:
    return ", ".join(items) or "(none)"


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
