"""FeatureSpec: what a model logged with `FeatureStoreClient.log_model` was trained on, kept beside it.

Databricks keeps `feature_spec.yaml` in the model; here it is `feature_spec.json`: the lookups (table, lookup
keys, timestamp keys, features, renames, defaults, lookback, and the Delta version each read), the model's input
columns in order, the label, the training set's id and `as_of`, the lakehouse root, and the training DataFrame's content hash. `score_batch` reads it to
join the same features from the tables' latest versions; the wrapped pyfunc reads it to pick its input columns.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import errors
from ._functions import ResolvedFunction
from ._lookup import FeatureLookup
from ._reproduce import ContentHash
from ._training_set import ResolvedLookup, TrainingSet

SPEC_FILE = "feature_spec.json"
FORMAT = 1
"""Bumped when a reader of an older format could misread the file; readers refuse a newer one."""


@dataclass(frozen=True)
class FeatureSpec:
    """The feature spec of a model: its lookups pinned to the versions trained on, and its input columns.

    `input_columns` are what the model is called with, in order: the training DataFrame's columns
    (`TrainingSet.load_df()`) less the label columns, so lookup keys the training set kept are inputs too
    (exclude them from the training set with `exclude_columns` to keep them out of the model).
    """

    lookups: tuple[ResolvedLookup, ...]
    input_columns: tuple[str, ...]
    label: tuple[str, ...]
    exclude_columns: tuple[str, ...]
    training_set_id: str
    as_of: datetime | None
    lakehouse_root: str
    content_hash: ContentHash | None = None
    """The training DataFrame's content hash (`_reproduce`), which `load_training_set(model_uri)` checks."""
    functions: tuple[ResolvedFunction, ...] = ()
    """The feature functions, with their source: computed after the lookups, in this order."""

    @classmethod
    def of(cls, training_set: TrainingSet, lakehouse_root: str, content_hash: ContentHash | None = None) -> FeatureSpec:
        """The spec of a model trained on `training_set`; reads no rows."""
        return cls(
            lookups=training_set.lookups,
            input_columns=tuple(c for c in training_set.columns if c not in training_set.label),
            label=training_set.label,
            exclude_columns=training_set.exclude_columns,
            training_set_id=training_set.id,
            as_of=training_set.as_of,
            lakehouse_root=lakehouse_root,
            content_hash=content_hash,
            functions=training_set.functions,
        )

    @property
    def versions(self) -> dict[str, int]:
        """The Delta version of each feature table the training set read."""
        return {lk.table_name: lk.version for lk in self.lookups}

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The looked-up columns the model takes, in input order."""
        looked_up = {o for lk in self.lookups for o in lk.outputs}
        return tuple(c for c in self.input_columns if c in looked_up)

    def to_json(self) -> str:
        lookups = []
        for lk in self.lookups:
            d = lk.to_dict()
            d["rename_outputs"] = {f: o for f, o in zip(lk.features, lk.outputs, strict=True) if f != o}
            lookups.append(d)
        doc = {
            "format": FORMAT,
            "lakehouse_root": self.lakehouse_root,
            "training_set_id": self.training_set_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "label": list(self.label),
            "exclude_columns": list(self.exclude_columns),
            "input_columns": list(self.input_columns),
            "feature_columns": list(self.feature_columns),
            "versions": self.versions,
            "lookups": lookups,
            "content_hash": self.content_hash.to_dict() if self.content_hash else None,
            "functions": [f.to_dict() for f in self.functions],
        }
        return json.dumps(doc, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, model_uri: str) -> FeatureSpec:
        """Parse `feature_spec.json` of `model_uri` (named in errors).

        Raises InvalidFeatureSpecError for a malformed file or a format newer than this library writes.
        """
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise errors.InvalidFeatureSpecError(model_uri, f"it is not JSON ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("format"), int):
            raise errors.InvalidFeatureSpecError(model_uri, "it has no integer 'format' field")
        if doc["format"] > FORMAT:
            raise errors.InvalidFeatureSpecError(
                model_uri, f"its format {doc['format']} is newer than this library's {FORMAT}; upgrade lakehouse-ml"
            )
        try:
            lookups = tuple(ResolvedLookup.from_dict(_lookup_fields(d)) for d in doc["lookups"])
            return cls(
                lookups=lookups,
                input_columns=tuple(doc["input_columns"]),
                label=tuple(doc["label"]),
                exclude_columns=tuple(doc["exclude_columns"]),
                training_set_id=doc["training_set_id"],
                as_of=datetime.fromisoformat(doc["as_of"]) if doc["as_of"] else None,
                lakehouse_root=doc["lakehouse_root"],
                content_hash=ContentHash.from_dict(doc["content_hash"]) if doc.get("content_hash") else None,
                functions=tuple(ResolvedFunction.from_dict(d) for d in doc.get("functions", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.InvalidFeatureSpecError(model_uri, f"a field is missing or malformed ({exc!r})") from None


def as_lookup(lk: ResolvedLookup, pairs: Sequence[tuple[str, str]]) -> FeatureLookup:
    """`lk` as a FeatureLookup of the (feature, output name) `pairs` only, with their renames, defaults and
    lookback."""
    return FeatureLookup(
        table_name=lk.table_name,
        lookup_key=list(lk.lookup_key),
        feature_names=[f for f, _ in pairs],
        timestamp_lookup_key=lk.timestamp_lookup_key,
        lookback_window=None if lk.lookback_us is None else timedelta(microseconds=lk.lookback_us),
        rename_outputs={f: o for f, o in pairs if f != o},
        default_values={f: lk.default_values[o] for f, o in pairs if o in lk.default_values},
    )


def lookups_to_run(
    spec: FeatureSpec, provided: Collection[str], model_uri: str, source: str, online: bool
) -> tuple[list[FeatureLookup], list[str], list[ResolvedFunction]]:
    """What brings the model's inputs `provided` lacks: the lookups (a feature given as a column overrides its
    lookup, as Databricks does), the output names they bring, and the feature functions to compute after them
    (a function's output given as a column is not computed). `source` names the input in errors ("df", "the
    request"); `online` lookups need no timestamp lookup key (the store holds the latest row per key).

    Raises MissingScoringColumnsError for a missing lookup key, or an input nothing brings.
    """
    provided = set(provided)
    need = set(spec.input_columns)
    functions: list[ResolvedFunction] = []
    for fn in reversed(spec.functions):  # a function may take an earlier one's output
        if fn.output_name in need and fn.output_name not in provided:
            functions.insert(0, fn)
            need |= set(fn.inputs)
    lookups: list[FeatureLookup] = []
    brought: list[str] = []
    for lk in spec.lookups:
        pairs = [(f, o) for f, o in zip(lk.features, lk.outputs, strict=True) if o in need and o not in provided]
        if not pairs:
            continue  # every feature given (or none used by the model): no lookup, no keys needed
        ts = [lk.timestamp_lookup_key] if lk.timestamp_lookup_key and not online else []
        missing = [c for c in [*lk.lookup_key, *ts] if c not in provided]
        if missing:
            keys = f"lookup_key {list(lk.lookup_key)}" + (f", timestamp_lookup_key {ts[0]!r}" if ts else "")
            raise errors.MissingScoringColumnsError(
                model_uri,
                missing,
                sorted(provided),
                f"to look up {[o for _, o in pairs]} in feature table {lk.table_name!r} ({keys}); add them to "
                f"{source}, or give each of those features as a column of {source} (then it is not looked up)",
            )
        lookups.append(as_lookup(lk, pairs))
        brought += [o for _, o in pairs]
    made = {o for lk in spec.lookups for o in lk.outputs} | {fn.output_name for fn in spec.functions}
    order = [*spec.input_columns, *sorted(need - set(spec.input_columns))]
    absent = [c for c in order if c in need and c not in made and c not in provided]
    if absent:
        raise errors.MissingScoringColumnsError(
            model_uri,
            absent,
            sorted(provided),
            f"as inputs: the model was trained on them as columns of the training set's labels DataFrame (no "
            f"feature table or function makes them); add them to {source}, or train without them "
            "(create_training_set(exclude_columns=...))",
        )
    return lookups, brought, functions


def _lookup_fields(d: dict[str, Any]) -> dict[str, Any]:
    """A lookup's JSON less the fields written for readers only (renames are also in features/outputs)."""
    return {k: v for k, v in d.items() if k != "rename_outputs"}
