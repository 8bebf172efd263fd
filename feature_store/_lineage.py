"""Lineage of feature tables: the saved training sets that read a table, the models logged on it with
`log_model`, and the registered versions of those models.

Training sets and logged models are in the metadata store (`_metadata`); registered versions are asked of the
MLflow registry each time (by run id, since an MLflow 3 version's `source` is a logged model's
'models:/m-...'), so a version registered after logging shows and a deleted one does not. The registry asked
is the active one (`mlflow.get_registry_uri()`): a process pointed at another registry does not see the
versions. A version counts when it exists, whatever its stage; it is matched by run, so a version registered
from another model of the same run counts too (the safe side for `drop_table`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from ._entities import ModelVersionUse, RunUse, TrainingSetUse
from ._metadata import MetadataStore, ModelUse

_RUN_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # MLflow's run ids; nothing that needs quoting in a filter
_RUNS_PER_SEARCH = 100  # run ids per `run_id IN (...)` filter, keeping each filter string short
UNREADABLE = (MlflowException, OSError)
"""What a registry that cannot be read raises (a bad URI, a server down, a file store that is not there)."""


@dataclass(frozen=True)
class Uses:
    """What the metadata store says reads one table: saved training sets and logged models (no MLflow call)."""

    training_sets: tuple[TrainingSetUse, ...]
    runs: tuple[RunUse, ...]


@dataclass(frozen=True)
class Registered:
    """The registered versions of some runs as `registry_uri` holds them, or None with the registry's error."""

    registry_uri: str
    versions: tuple[ModelVersionUse, ...] | None
    error: str | None = None


def uses_by_table(meta: MetadataStore) -> dict[str, Uses]:
    """Every table's uses from one read of the saved training sets and the model uses; a table nothing uses
    is absent."""
    saved = meta.training_sets()
    sets: dict[str, list[TrainingSetUse]] = {}
    for ts_id, (created_at, tables, spec) in sorted(saved.items(), key=lambda kv: (_instant(kv[1][0]), kv[0])):
        for table in tables:
            sets.setdefault(table, []).append(_training_set_use(ts_id, created_at, table, spec))
    runs: dict[str, list[RunUse]] = {}
    for u in meta.model_uses():
        runs.setdefault(u.table_name, []).append(_run_use(u))
    return {t: Uses(tuple(sets.get(t, ())), tuple(runs.get(t, ()))) for t in sets.keys() | runs.keys()}


def uses_of(meta: MetadataStore, table: str) -> Uses:
    """The saved training sets and logged models that read `table` (oldest first)."""
    return uses_by_table(meta).get(table, Uses((), ()))


def registered(runs: Iterable[RunUse]) -> Registered:
    """The registered versions (existing now) of `runs`, sorted by name and version; on a registry that cannot
    be read, `versions` is None and `error` says why. No registry call when `runs` is empty."""
    uri = mlflow.get_registry_uri()
    try:
        return Registered(uri, registered_versions(runs))
    except UNREADABLE as exc:
        return Registered(uri, None, _reason(exc))


def registered_versions(runs: Iterable[RunUse]) -> tuple[ModelVersionUse, ...]:
    """The registered versions (existing now) of `runs`, sorted by name and version, with each version's
    features (the union of its run's). One registry search per 100 runs and one `get_registered_model` per
    model name (for aliases); none when `runs` is empty.

    Raises:
        MlflowException / OSError: the registry cannot be read.
    """
    features: dict[str, list[str]] = {}
    for r in runs:
        seen = features.setdefault(r.run_id, [])
        seen += [f for f in r.features if f not in seen]
    ids = sorted(r for r in features if _RUN_ID.match(r))
    if not ids:
        return ()
    client = mlflow.MlflowClient()
    found: list[Any] = []
    for start in range(0, len(ids), _RUNS_PER_SEARCH):
        chunk = ids[start : start + _RUNS_PER_SEARCH]
        query = "run_id IN (" + ", ".join(f"'{r}'" for r in chunk) + ")"
        token = None
        while True:
            page = client.search_model_versions(query, page_token=token)
            found += page
            token = page.token
            if not token:
                break
    aliases: dict[tuple[str, str], list[str]] = {}
    for name in sorted({v.name for v in found}):
        for alias, version in client.get_registered_model(name).aliases.items():
            aliases.setdefault((name, str(version)), []).append(alias)
    out = [
        ModelVersionUse(
            name=v.name,
            version=int(v.version),
            run_id=v.run_id,
            features=tuple(features[v.run_id]),
            stage=v.current_stage if v.current_stage not in (None, "", "None") else None,
            aliases=tuple(sorted(aliases.get((v.name, str(v.version)), ()))),
        )
        for v in found
        if v.run_id in features  # the filter already says so; kept so a loose store cannot add strangers
    ]
    return tuple(sorted(out, key=lambda v: (v.name, v.version)))


def unreadable_note(table: str, runs: Iterable[RunUse]) -> str:
    """What `drop_table` adds to a registry error: why it asked, and the two ways on."""
    ids = ", ".join(sorted({r.run_id for r in runs}))
    return (
        f"drop_table({table!r}) asked the model registry {mlflow.get_registry_uri()} for versions of the runs that logged models "
        f"on the table ({ids}) and could not read it, so it cannot tell whether registered models use the table. "
        "Point MLflow at the registry those models are in (mlflow.set_registry_uri / MLFLOW_TRACKING_URI), or pass "
        "force=True to drop it anyway."
    )


# -- helpers ----------------------------------------------------------------------------------------------
def _training_set_use(ts_id: str, created_at: datetime | None, table: str, spec: dict[str, Any]) -> TrainingSetUse:
    """The table's features (table column names, excluded outputs left out) and versions the spec reads."""
    excluded = set(spec.get("exclude_columns") or ())
    features: list[str] = []
    versions: list[int] = []
    for lk in spec.get("lookups") or ():
        if lk.get("table_name") != table:
            continue
        if lk["version"] not in versions:
            versions.append(lk["version"])
        for f, o in zip(lk["features"], lk["outputs"], strict=True):
            if o not in excluded and f not in features:
                features.append(f)
    return TrainingSetUse(ts_id, tuple(features), tuple(sorted(versions)), created_at)


def _run_use(u: ModelUse) -> RunUse:
    return RunUse(u.run_id, u.model_uri, u.training_set_id, u.features, u.logged_at)


def _instant(value: datetime | None) -> datetime:
    return value or datetime.min.replace(tzinfo=UTC)


def _reason(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, MlflowException) else str(exc)
    return f"{type(exc).__name__}: {text.strip() or '(no message)'}"
