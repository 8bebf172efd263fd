"""Saved training sets: a training set's labels kept as a Delta snapshot and its spec (lookups, pinned
versions, label, exclusions, as_of) kept in the metadata store, so that it can be loaded again by id and
`load_df()` returns the same rows whatever is written to the feature tables or the labels' source later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lakehouse import Lakehouse

from . import errors
from ._functions import ResolvedFunction
from ._metadata import MetadataStore
from ._training_set import ResolvedLookup, TrainingSet


def save(lake: Lakehouse, meta: MetadataStore, training_set: Any) -> str:
    """Persist `training_set` and return its id; saving one twice is a no-op."""
    if not isinstance(training_set, TrainingSet):
        raise errors.ArgumentTypeError("training_set", training_set, "a TrainingSet")
    if training_set.saved:
        return training_set.id
    labels_table = meta.new_labels_table()
    written = lake.create_table(
        labels_table, training_set._labels, description=f"labels of training set {training_set.id}"
    )
    spec = training_set.spec()
    spec["labels"] = {"table": labels_table, "version": written.version}
    try:
        meta.save_training_set(training_set.id, [lk.table_name for lk in training_set.lookups], spec)
    except BaseException:
        lake.drop_table(labels_table)  # labels no saved spec points at
        raise
    training_set.saved = True
    return training_set.id


def load(lake: Lakehouse, meta: MetadataStore, training_set_id: Any) -> TrainingSet:
    """The saved training set `training_set_id`: same labels, same lookups, same table versions."""
    if not isinstance(training_set_id, str) or not training_set_id:
        raise errors.ArgumentTypeError("training_set_id", training_set_id, "a training set id (a non-empty str)")
    saved = meta.training_sets()
    if training_set_id not in saved:
        raise errors.TrainingSetNotFoundError(training_set_id, sorted(saved))
    _, _, spec = saved[training_set_id]
    labels = lake.read(spec["labels"]["table"], version=spec["labels"]["version"])
    return TrainingSet(
        lake,
        labels,
        [ResolvedLookup.from_dict(d) for d in spec["lookups"]],
        training_set_id=training_set_id,
        label=tuple(spec["label"]),
        exclude_columns=tuple(spec["exclude_columns"]),
        as_of=datetime.fromisoformat(spec["as_of"]) if spec["as_of"] else None,
        created_at=datetime.fromisoformat(spec["created_at"]),
        saved=True,
        functions=[ResolvedFunction.from_dict(d) for d in spec.get("functions", [])],
    )


def ids(meta: MetadataStore) -> list[str]:
    """Ids of saved training sets, oldest first."""
    saved = meta.training_sets()
    return sorted(saved, key=lambda i: (saved[i][0] or datetime.min.replace(tzinfo=UTC), i))
