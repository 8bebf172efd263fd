"""TrainingSet: labels plus resolved lookups pinned to Delta versions, so `load_df()` is reproducible."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from ._entities import LookupAudit, TrainingSetAudit
from ._functions import ResolvedFunction
from ._local import LocalLookup, feature_source, labels_size, local_join_threshold, row_width, run_local
from ._pit import JoinSpec, point_in_time_join
from .errors import ArgumentTypeError

if TYPE_CHECKING:
    from lakehouse import Lakehouse

SPEC_FORMAT = 1
_MATCHED = "__fs_matched_ts_{}"
_AGE = "__fs_age_us_{}"
_QUANTILES = (0.0, 0.5, 0.9, 0.99, 1.0)


@dataclass(frozen=True)
class ResolvedLookup:
    """A FeatureLookup checked against its table and pinned to the table version it reads."""

    table_name: str
    version: int
    lookup_key: tuple[str, ...]
    primary_keys: tuple[str, ...]
    timestamp_lookup_key: str | None
    timestamp_key: str | None
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    lookback_us: int | None
    default_values: dict[str, Any]  # by output name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResolvedLookup:
        return cls(**{**d, **{k: tuple(d[k]) for k in ("lookup_key", "primary_keys", "features", "outputs")}})

    def join_group(self) -> tuple:
        return (self.table_name, self.version, self.lookup_key, self.timestamp_lookup_key, self.lookback_us)


class TrainingSet:
    """Labels joined point-in-time with features from pinned table versions.

    Created by `FeatureStoreClient.create_training_set`; re-created from its id after
    `save_training_set`. `load_df()` reads exactly the recorded versions, so it returns the same rows after
    later writes to the feature tables. `versions` maps each table to the version read.
    """

    def __init__(
        self,
        lake: Lakehouse,
        labels: DataFrame,
        lookups: Sequence[ResolvedLookup],
        *,
        training_set_id: str,
        label: tuple[str, ...],
        exclude_columns: tuple[str, ...],
        as_of: datetime | None,
        created_at: datetime,
        saved: bool = False,
        functions: Sequence[ResolvedFunction] = (),
    ) -> None:
        self._lake = lake
        self._labels = labels
        self.lookups = tuple(lookups)
        self.id = training_set_id
        self.label = label
        self.exclude_columns = exclude_columns
        self.as_of = as_of
        self.created_at = created_at
        self.saved = saved
        self.functions = tuple(functions)

    def __repr__(self) -> str:
        return f"TrainingSet(id={self.id!r}, versions={self.versions!r}, as_of={self.as_of!r}, saved={self.saved})"

    @property
    def versions(self) -> dict[str, int]:
        return {lk.table_name: lk.version for lk in self.lookups}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(o for lk in self.lookups for o in lk.outputs if o not in self.exclude_columns)

    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description: lookups, versions, label, exclusions, as_of (no labels data)."""
        return {
            "format": SPEC_FORMAT,
            "id": self.id,
            "label": list(self.label),
            "exclude_columns": list(self.exclude_columns),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "created_at": self.created_at.isoformat(),
            "lookups": [lk.to_dict() for lk in self.lookups],
            "functions": [f.to_dict() for f in self.functions],
        }

    def spec_json(self) -> str:
        return json.dumps(self.spec(), sort_keys=True)

    def load_df(self, *, include_matched_timestamps: bool = False) -> DataFrame:
        """The training DataFrame: label columns (less `exclude_columns`) then every lookup's outputs.

        With `include_matched_timestamps`, a column `__fs_matched_ts_<i>` per lookup holds the timestamp of
        the feature row used (null if none).

        Where the labels and the feature rows they need are estimated to fit under
        `spark.lakehouse.featureStore.localJoinThreshold` (default 512 MiB, -1 = never), the join runs in the
        driver when this is called (labels collected with toArrow, the recorded versions' Parquet files read
        with pyarrow) and the DataFrame returned holds the result; otherwise it is a lazy Spark plan that
        co-partitions labels and feature rows by key. Both give the same rows.

        Raises:
            lakehouse.errors.VersionNotFoundError / DataFilesMissingError: a recorded version can no longer
            be read (the table was re-created, or VACUUM removed its files; the message names the retention).
        """
        if not isinstance(include_matched_timestamps, bool):
            raise ArgumentTypeError("include_matched_timestamps", include_matched_timestamps, "True or False")
        df = self._joined(include_matched_timestamps)
        return df.drop(*[c for c in df.columns if c.startswith("__fs_age_us_")])

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns `load_df()` returns, in its order, known without reading any rows: the labels' columns,
        then each join group's outputs (lookups sharing a table version, keys and time are joined once, in the
        order of their first lookup), less `exclude_columns`."""
        outputs = [o for members in self._groups() for i in members for o in self.lookups[i].outputs]
        computed = [f.output_name for f in self.functions]
        return tuple(c for c in [*self._labels.columns, *outputs, *computed] if c not in self.exclude_columns)

    def _groups(self) -> list[list[int]]:
        """Indices of the lookups joined together (same `join_group()`), groups in order of first appearance."""
        groups: dict[tuple, list[int]] = {}
        for i, lk in enumerate(self.lookups):
            groups.setdefault(lk.join_group(), []).append(i)
        return list(groups.values())

    def _joined(self, with_ts: bool) -> DataFrame:
        specs = []
        for members in self._groups():
            first = self.lookups[members[0]]
            matched = _MATCHED.format(members[0]) if with_ts and first.timestamp_key else None
            specs.append(
                (
                    members,
                    first,
                    JoinSpec(
                        label_keys=first.lookup_key,
                        feature_keys=first.primary_keys,
                        label_ts=first.timestamp_lookup_key,
                        feature_ts=first.timestamp_key,
                        features=tuple(f for i in members for f in self.lookups[i].features),
                        outputs=tuple(o for i in members for o in self.lookups[i].outputs),
                        lookback=None if first.lookback_us is None else timedelta(microseconds=first.lookback_us),
                        matched_ts_output=matched,
                        age_output=_AGE.format(members[0]) if matched else None,
                    ),
                )
            )
        local = self._local_plan(specs)
        if local is not None:
            df = run_local(self._labels.sparkSession, self._labels, local)
        else:
            df = self._labels
            for _, first, spec in specs:
                features = self._lake.read(first.table_name, version=first.version)
                source = feature_source(self._lake, first.table_name, first.version)  # None: the "cogroup" shape
                df = point_in_time_join(df, features, spec, source=source)
        for members, _, spec in specs:
            for i in members[1:]:
                if spec.matched_ts_output:
                    df = df.withColumn(_MATCHED.format(i), F.col(spec.matched_ts_output))
                    df = df.withColumn(_AGE.format(i), F.col(cast(str, spec.age_output)))  # set with matched_ts
        for lk in self.lookups:
            for out, value in lk.default_values.items():
                dtype = df.schema[out].dataType
                df = df.withColumn(out, F.coalesce(F.col(f"`{out}`"), F.lit(value).cast(dtype)))
        for fn in self.functions:  # after defaults: a function sees the values the model sees
            df = df.withColumn(fn.output_name, fn.spark_column())
        keep = [c for c in df.columns if c not in self.exclude_columns]
        return df.select([F.col(f"`{c}`") for c in keep])

    def _local_plan(self, specs: list[tuple[list[int], ResolvedLookup, JoinSpec]]) -> list[LocalLookup] | None:
        """The joins as a local plan when the labels and the feature rows they need fit under the threshold
        (`_local` explains the estimate), else None: the distributed join."""
        threshold = local_join_threshold(self._labels.sparkSession)
        if threshold < 0:
            return None
        label_bytes = labels_size(self._labels)
        if label_bytes is None or label_bytes > threshold:
            return None
        label_rows = label_bytes // max(row_width(self._labels.schema.fields), 1)
        total = label_bytes
        plan = []
        for _, first, spec in specs:
            source = feature_source(self._lake, first.table_name, first.version)
            if source is None:
                return None
            lk = LocalLookup(
                source,
                spec.label_keys,
                spec.feature_keys,
                spec.label_ts,
                spec.feature_ts,
                spec.features,
                spec.outputs,
                first.lookback_us,
                spec.matched_ts_output,
                spec.age_output,
            )
            total += source.estimated_bytes(lk.columns)
            total += label_rows * row_width([source.schema[f] for f in spec.features])
            if total > threshold:
                return None
            plan.append(lk)
        return plan

    def audit(self) -> TrainingSetAudit:
        """Match rate, and age of the features used (label ts - feature ts), per lookup; one Spark job each.

        A lookup on a table without a timestamp key reports matches only. Ages come from the join itself,
        in UTC microseconds with its rules (date = 00:00 UTC; timestamp_ntz = a UTC wall clock).
        """
        df = self._joined(True).cache()
        try:
            n = df.count()
            audits = []
            for i, lk in enumerate(self.lookups):
                ts_col = _MATCHED.format(i)
                if lk.timestamp_key is None:
                    first = lk.outputs[0] if lk.outputs else None
                    matched = df.where(F.col(f"`{first}`").isNotNull()).count() if first else 0
                    audits.append(LookupAudit(lk.table_name, lk.version, lk.outputs, n, matched, 0, None))
                    continue
                age = F.col(_AGE.format(i))
                row = cast(  # an aggregate without grouping always has its one row
                    Row,
                    df.agg(
                        F.count(ts_col).alias("m"),
                        F.sum((age < 0).cast("long")).alias("future"),
                        F.percentile_approx(age, list(_QUANTILES), 10_000).alias("q"),
                    ).first(),
                )
                q = None
                if row["m"]:
                    q = {p: timedelta(microseconds=int(v)) for p, v in zip(_QUANTILES, row["q"], strict=False)}
                audits.append(
                    LookupAudit(lk.table_name, lk.version, lk.outputs, n, int(row["m"]), int(row["future"] or 0), q)
                )
            return TrainingSetAudit(self.id, n, tuple(audits))
        finally:
            df.unpersist()
