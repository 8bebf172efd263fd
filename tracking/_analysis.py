"""Tracking data as Spark DataFrames, now or as of an earlier point, for analysis with Spark SQL.

Each tracking table is a Delta table; "as of" picks, in every table, the latest version committed at or
before one instant, so the tables are read as one consistent snapshot of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse import Lakehouse, to_utc
from lakehouse.errors import TimestampOutOfRangeError

from ._uri import SCHEME, lake_root_from_uri

Where = str | Lakehouse


def _lakehouse(where: Where) -> Lakehouse:
    if isinstance(where, Lakehouse):
        return where
    if isinstance(where, str):
        root = lake_root_from_uri(where) if where.startswith(f"{SCHEME}:") else where
        return Lakehouse(root)
    raise TypeError(f"expected a Lakehouse, a lake root or a {SCHEME}:/// URI, got {type(where).__name__}")


class _Snapshot:
    """Reads tracking tables as of one instant (or the latest state when there is none)."""

    def __init__(
        self, lh: Lakehouse, version: int | None, timestamp: datetime | str | None, *, table: str = "mlflow.runs"
    ) -> None:
        if version is not None and timestamp is not None:
            raise ValueError(f"pass either version= (of {table}) or timestamp=, not both")
        self.lh = lh
        self.at: datetime | None = None
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int):
                raise TypeError(f"version must be an int (a version of {table}), got {version!r}")
            self.lh.read(table, version=version)  # VersionNotFoundError names the available range
            hist = self.lh.history(table)
            self.at = next(h.timestamp for h in hist if h.version == version)
        elif timestamp is not None:
            self.at = to_utc(timestamp)

    def read(self, name: str) -> DataFrame:
        if self.at is None:
            return self.lh.read(name)
        try:
            version = self.lh.version_at(name, self.at, allow_after_last=True)
        except TimestampOutOfRangeError:  # the table did not exist yet: nothing was in it
            return self.lh.spark.createDataFrame([], self.lh.schema(name))
        return self.lh.read(name, version=version)


def _ms(col: str) -> F.Column:
    return F.timestamp_millis(F.col(col))


def _keys(frames: dict[str, DataFrame]) -> dict[str, list[str]]:
    """The distinct `key`s of each (run_id, key, value) frame, found in one Spark job for all of them (a job
    per frame cost ~2 s each on a laptop, most of a small `runs()` call)."""
    parts = [df.select(F.lit(kind).alias("kind"), "key") for kind, df in frames.items()]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    found: dict[str, list[str]] = {kind: [] for kind in frames}
    for r in union.distinct().collect():
        found[r.kind].append(r.key)
    return {kind: sorted(keys) for kind, keys in found.items()}


def _pivot(df: DataFrame, prefix: str, keys: list[str]) -> DataFrame:
    """(run_id, key, value) rows -> one row per run with a `<prefix>.<key>` column per key."""
    if not keys:
        return df.select("run_id").distinct()
    values: list[bool | float | int | str] = list(keys)  # pivot's type admits any literal
    wide = df.groupBy("run_id").pivot("key", values).agg(F.first("value"))
    return wide.select("run_id", *[F.col(f"`{k}`").alias(f"{prefix}.{k}") for k in keys])


def runs(
    where: Where,
    *,
    experiment_ids: Sequence[str] | None = None,
    experiment_names: Sequence[str] | None = None,
    version: int | None = None,
    timestamp: datetime | str | None = None,
    include_deleted: bool = False,
) -> DataFrame:
    """One row per run with its params, latest metrics and tags as columns, as `mlflow.search_runs` shows
    them (`params.<key>`, `metrics.<key>`, `tags.<key>`), optionally as of an earlier point.

    `where` is a Lakehouse, a lake root, or a `lakehouse:///` tracking URI. `version` is a version of the
    `mlflow.runs` table (every other table is read as of that commit's time); `timestamp` reads every
    table as of that instant (naive = UTC). The latest metric value is MLflow's: greatest step, then
    timestamp, then value. Deleted runs are left out unless `include_deleted`.

    Example:
        >>> runs("lakehouse:///data/lake", experiment_names=["churn"], timestamp="2026-03-01").show()
    """
    snap = _Snapshot(_lakehouse(where), version, timestamp)
    experiments = snap.read("mlflow.experiments").select("experiment_id", F.col("name").alias("experiment_name"))
    r = snap.read("mlflow.runs").join(experiments, "experiment_id", "left")
    if experiment_ids is not None:
        r = r.where(F.col("experiment_id").isin([str(e) for e in experiment_ids]))
    if experiment_names is not None:
        r = r.where(F.col("experiment_name").isin(list(experiment_names)))
    if not include_deleted:
        r = r.where(F.col("lifecycle_stage") == "active")
    r = r.select(
        "run_id",
        "experiment_id",
        "experiment_name",
        F.col("name").alias("run_name"),
        "status",
        "user_id",
        _ms("start_time").alias("start_time"),
        _ms("end_time").alias("end_time"),
        "lifecycle_stage",
        "artifact_uri",
    )
    ids = r.select("run_id")
    params = snap.read("mlflow.params").join(ids, "run_id", "left_semi")
    tags = snap.read("mlflow.tags").join(ids, "run_id", "left_semi")
    latest = (
        snap.read("mlflow.metrics")
        .join(ids, "run_id", "left_semi")
        .groupBy("run_id", "key")
        .agg(F.max(F.struct("step", "timestamp", "value")).alias("m"))
        .select("run_id", "key", F.col("m.value").alias("value"))
    )
    frames = {"metrics": latest, "params": params, "tags": tags}
    keys = _keys(frames)
    out = r
    for prefix, df in frames.items():
        out = out.join(_pivot(df, prefix, keys[prefix]), "run_id", "left")
    return out.orderBy(F.col("start_time").desc(), "run_id")


def metric_history(
    where: Where,
    *,
    run_ids: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    version: int | None = None,
    timestamp: datetime | str | None = None,
) -> DataFrame:
    """Every logged metric point (run_id, key, value, step, timestamp as a UTC timestamp), optionally as of an
    earlier point (same `version` / `timestamp` rules as `runs`)."""
    snap = _Snapshot(_lakehouse(where), version, timestamp)
    m = snap.read("mlflow.metrics")
    if run_ids is not None:
        m = m.where(F.col("run_id").isin(list(run_ids)))
    if keys is not None:
        m = m.where(F.col("key").isin(list(keys)))
    return m.select("run_id", "key", "value", "step", _ms("timestamp").alias("timestamp")).orderBy(
        "run_id", "key", "step", "timestamp"
    )


def model_versions(
    where: Where,
    *,
    name: str | None = None,
    version: int | None = None,
    timestamp: datetime | str | None = None,
    include_deleted: bool = False,
) -> DataFrame:
    """Registered model versions with their stage, aliases and tags, optionally as of an earlier point.

    "Which version of churn was in Production on 1 March?" is
    `model_versions(uri, name="churn", timestamp="2026-03-01").where("current_stage = 'Production'")`.
    `version` is a version of the `mlflow.model_versions` table (the other registry tables are read as of
    that commit's time); `timestamp` reads every table as of that instant (naive = UTC).
    """
    snap = _Snapshot(_lakehouse(where), version, timestamp, table="mlflow.model_versions")
    mv = snap.read("mlflow.model_versions")
    if name is not None:
        mv = mv.where(F.col("name") == name)
    if not include_deleted:
        mv = mv.where(F.col("current_stage") != "Deleted_Internal")
    aliases = (
        snap.read("mlflow.registered_model_aliases")
        .groupBy("name", "version")
        .agg(F.sort_array(F.collect_list("alias")).alias("aliases"))
    )
    tags = (
        snap.read("mlflow.model_version_tags")
        .groupBy("name", "version")
        .agg(F.map_from_entries(F.collect_list(F.struct("key", "value"))).alias("tags"))
    )
    out = (
        mv.join(aliases, ["name", "version"], "left")
        .join(tags, ["name", "version"], "left")
        .select(
            "name",
            "version",
            "current_stage",
            F.coalesce("aliases", F.array().cast("array<string>")).alias("aliases"),
            "status",
            "run_id",
            "source",
            "description",
            "user_id",
            _ms("creation_time").alias("creation_time"),
            _ms("last_updated_time").alias("last_updated_time"),
            "tags",
        )
    )
    return out.orderBy("name", F.col("version").desc())


__all__ = ["metric_history", "model_versions", "runs"]
