"""The `score` job (issue 15): batch inference of a registered feature-store model over a window of a keys table,
its predictions merged into a Delta table; and `deploy_model`, the registry trigger that runs it (and publishes
the model's feature tables online) when a version enters Production.

What is written. Every row of the keys table in the window (`timestamp_column` in [start, end), UTC) is scored
with `FeatureStoreClient.score_batch("models:/<name>/<version>", keys)`: the stage or alias is resolved to a
version number first, so the version recorded is the version that scored. The output row is the keys row, the
features looked up, `prediction`, then `model_name`, `model_version`, `window_start`, `window_end` (null when
unbounded), `scored_at` and `keys_version` (the keys table's Delta version read). A row's identity is its values
in `key_columns` (default: every column of the keys table), which must be unique and non-null in the window.

Replacing a window, atomically. A window is replaced by one MERGE commit by `key_columns`: the window's new rows
are upserted (a row scored again is updated in place, never duplicated), and the rows the output held in the window
whose keys are no longer in the keys table (a key deleted upstream) are deleted by Delta's "when not matched by
source" clause limited to the window (`timestamp_column` in [start, end)). A reader sees the old window or the new
one, never a mix. Without a window bound (no `timestamp_column`, or neither `start` nor `end`) the whole table is the
window. The first run creates the table (one commit). A new model version whose features differ
adds their columns (schema evolution); rows scored before keep null there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import operator
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import mlflow
from mlflow.entities.model_registry.model_version_stages import ALL_STAGES, get_canonical_stage
from mlflow.exceptions import MlflowException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from feature_store import FeatureStoreClient, SqliteOnlineStore
from feature_store import errors as fs_errors
from lakehouse import Lakehouse
from tracking import STAGE_TRANSITIONED, lake_root_from_uri, lake_uri

from ._features import _instant, _names
from ._progress import track
from ._runner import lake_root
from .errors import InvalidJobArgumentError

__all__ = ["OUTPUT_COLUMNS", "deploy_model", "score"]

_log = logging.getLogger(__name__)

JOB = "score"
PREDICTION = "prediction"
OUTPUT_COLUMNS = ("model_name", "model_version", "window_start", "window_end", "scored_at", "keys_version")
"""Columns the job adds after `prediction`; a keys table may not have them (nor `prediction`)."""
PRODUCTION = "Production"


@dataclasses.dataclass(frozen=True)
class _Model:
    """A registered version resolved from a stage, an alias or a number; `uri` is what scores."""

    name: str
    version: int
    run_id: str | None
    resolved_from: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def score(
    lake: str,
    *,
    model_name: str,
    keys_table: str,
    output_table: str,
    stage: str | None = None,
    alias: str | None = None,
    version: int | str | None = None,
    timestamp_column: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    key_columns: Sequence[str] | str | None = None,
    publish_online: bool = False,
    online_store: Any = None,
    spark: Any = None,
) -> dict[str, Any]:
    """Score the keys of a window with a registered model version and replace the window's rows of `output_table`.

    Exactly one of `stage` ("Production", case-insensitive), `alias` ("champion") or `version` picks the model
    version (the stage's newest version). `start`/`end` bound the window on `timestamp_column` (a timestamp or date
    column of the keys table; UTC; naive means UTC; either bound may be left open) and need it. Idempotent: scoring
    a window again replaces its rows (see the module docstring for the commits and what is atomic).
    `publish_online` then publishes every feature table the model reads to `online_store` (default: the lake's
    SQLite store).

    Args:
        lake: the lake root or its `lakehouse:///` URI (the registry, the feature tables and both tables are there).
        keys_table, output_table: Delta tables of the lake by name; the output is created on first use.
        key_columns: what identifies an output row (default: every column of the keys table).
        spark: the SparkSession to use (default: the process's local session).

    Returns:
        model_name, model_version, model_uri, resolved_from, keys_table, keys_version, output_table, window
        (start, end), rows_scored, rows_inserted, rows_updated, rows_deleted, output_version, commits, created,
        published (one dict per feature table published: table, store, from/to version, keys written/deleted).

    Raises:
        InvalidJobArgumentError: an unknown model, stage, alias, version or table; a bad window; key columns that
            are missing, null or repeated in the window; a keys table the model cannot score (nothing written).

    Example:
        >>> score("/data/lake", model_name="churn", stage="Production", keys_table="raw.customers_daily",
        ...       output_table="predictions.churn", timestamp_column="ts", start="2026-01-01", end="2026-01-02")
    """
    for argument, value in (("model_name", model_name), ("keys_table", keys_table), ("output_table", output_table)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidJobArgumentError(JOB, argument, value, "a non-empty string")
    if keys_table == output_table:
        raise InvalidJobArgumentError(JOB, "output_table", output_table, "a table other than keys_table")
    if not isinstance(publish_online, bool):
        raise InvalidJobArgumentError(JOB, "publish_online", publish_online, "True or False")
    lo, hi = _window(timestamp_column, start, end)
    keys_wanted = _names(key_columns, "key_columns", JOB)
    root = lake_root(lake, JOB)
    uri = lake_uri(root)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    model = _resolve(client, uri, model_name, stage, alias, version)

    fs = FeatureStoreClient(root, spark=spark)
    lh = fs.lakehouse
    keys_version, window_df, keys = _read_keys(lh, keys_table, timestamp_column, lo, hi, keys_wanted)
    output_exists = lh.exists(output_table)
    if output_exists:
        _check_output(lh, output_table, keys, timestamp_column if (lo or hi) else None)
    _check_unique(window_df, keys)

    with _registry_at(uri):
        try:
            scored = fs.score_batch(model.uri, window_df)
        except (fs_errors.ModelNotFoundError, fs_errors.NotAFeatureStoreModelError) as e:
            raise InvalidJobArgumentError(JOB, "model_name", model_name, f"a feature-store model ({e})") from None
        except (fs_errors.MissingScoringColumnsError, fs_errors.ColumnTypeError) as e:
            raise InvalidJobArgumentError(
                JOB, "keys_table", keys_table, f"a table holding what {model.uri} needs to score ({e})"
            ) from None
        now = datetime.now(UTC)
        out = scored.select(
            "*",
            F.lit(model.name).alias("model_name"),
            F.lit(model.version).cast("long").alias("model_version"),
            F.lit(lo).cast("timestamp").alias("window_start"),
            F.lit(hi).cast("timestamp").alias("window_end"),
            F.lit(now).cast("timestamp").alias("scored_at"),
            F.lit(keys_version).cast("long").alias("keys_version"),
        )
        # Predicted once, here: the merge reads its source more than once, and the count must be of the same rows.
        out = out.localCheckpoint(eager=True)
    rows = out.count()
    _log.info("%s scored %s row(s) of %s@v%s in %s", model.uri, rows, keys_table, keys_version, _describe(lo, hi))

    figures: dict[str, Any] = {
        "model_name": model.name,
        "model_version": model.version,
        "model_uri": model.uri,
        "resolved_from": model.resolved_from,
        "keys_table": keys_table,
        "keys_version": keys_version,
        "output_table": output_table,
        "window": {"start": _iso(lo), "end": _iso(hi), "timestamp_column": timestamp_column},
        "rows_scored": rows,
        "rows_inserted": 0,
        "rows_updated": 0,
        "rows_deleted": 0,
        "commits": [],
        "created": not output_exists,
        "published": [],
    }
    steps = ["write"] + (["publish"] if publish_online else [])
    for step in track(steps, total=len(steps), description=f"score {model.uri}"):
        if step == "write":
            _replace_window(lh, output_table, out, keys, timestamp_column, lo, hi, output_exists, figures)
        else:
            figures["published"] = _publish(fs, model, online_store)
    figures["output_version"] = figures["commits"][-1] if figures["commits"] else lh.latest_version(output_table)
    return figures


# -- arguments ----------------------------------------------------------------------------------------------------
def _window(timestamp_column: Any, start: Any, end: Any) -> tuple[datetime | None, datetime | None]:
    if timestamp_column is not None and (not isinstance(timestamp_column, str) or not timestamp_column.strip()):
        raise InvalidJobArgumentError(JOB, "timestamp_column", timestamp_column, "a column name of the keys table")
    if timestamp_column is None and (start is not None or end is not None):
        which = "start" if start is not None else "end"
        raise InvalidJobArgumentError(
            JOB, which, start if start is not None else end, "no bound without timestamp_column (the column it bounds)"
        )
    lo = None if start is None else _instant(start, "start", JOB)
    hi = None if end is None else _instant(end, "end", JOB)
    if lo is not None and hi is not None and lo >= hi:
        raise InvalidJobArgumentError(JOB, "end", end, f"a time after start ({lo.isoformat()})")
    return lo, hi


def _resolve(client: mlflow.MlflowClient, uri: str, name: str, stage: Any, alias: Any, version: Any) -> _Model:
    """The version `stage`, `alias` or `version` names (exactly one of them), checked against the registry."""
    given = [(k, v) for k, v in (("stage", stage), ("alias", alias), ("version", version)) if v is not None]
    if len(given) != 1:
        raise InvalidJobArgumentError(
            JOB, "stage/alias/version", dict(given), "exactly one of stage= (e.g. 'Production'), alias= or version="
        )
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models(max_results=100))
        raise InvalidJobArgumentError(JOB, "model_name", name, f"a registered model of {uri}: {names}") from None
    if stage is not None:
        try:
            canonical = get_canonical_stage(stage)
        except MlflowException:
            raise InvalidJobArgumentError(JOB, "stage", stage, f"one of {', '.join(ALL_STAGES)}") from None
        versions = client.search_model_versions(f"name='{name}'")
        held = sorted((int(v.version) for v in versions if v.current_stage == canonical), reverse=True)
        if not held:
            stages = {v.version: v.current_stage for v in versions}
            raise InvalidJobArgumentError(
                JOB, "stage", stage, f"a stage holding a version of {name} (versions and their stages: {stages})"
            )
        number, how, asked = held[0], f"stage {canonical}", ("stage", stage)
    elif alias is not None:
        aliases = dict(registered.aliases or {})
        if not isinstance(alias, str) or alias not in aliases:
            raise InvalidJobArgumentError(JOB, "alias", alias, f"an alias of {name}: {sorted(aliases)}")
        number, how, asked = int(aliases[alias]), f"alias {alias}", ("alias", alias)
    else:
        text = str(version).strip()
        if isinstance(version, bool) or not text.isdigit() or int(text) < 1:
            raise InvalidJobArgumentError(JOB, "version", version, "a version number such as 3")
        number, how, asked = int(text), "version", ("version", version)
    try:
        mv = client.get_model_version(name, str(number))
    except MlflowException:
        raise InvalidJobArgumentError(JOB, asked[0], asked[1], f"a version of registered model {name}") from None
    return _Model(name, number, mv.run_id, how)


def _read_keys(
    lh: Lakehouse,
    keys_table: str,
    timestamp_column: str | None,
    lo: datetime | None,
    hi: datetime | None,
    wanted: list[str] | None,
) -> tuple[int, DataFrame, list[str]]:
    """(the keys table's version read, the window's rows, the key columns)."""
    if not lh.exists(keys_table):
        raise InvalidJobArgumentError(
            JOB, "keys_table", keys_table, f"a Delta table of the lake: {[t.name for t in lh.list_tables()]}"
        )
    version = lh.latest_version(keys_table)
    df = lh.read(keys_table, version=version)
    reserved = [c for c in (PREDICTION, *OUTPUT_COLUMNS) if c in df.columns]
    if reserved:
        raise InvalidJobArgumentError(
            JOB, "keys_table", keys_table, f"a table without the columns the job adds ({reserved} are there)"
        )
    if timestamp_column is not None:
        field = next((f for f in df.schema.fields if f.name == timestamp_column), None)
        if field is None or not isinstance(field.dataType, (T.TimestampType, T.TimestampNTZType, T.DateType)):
            found = "missing" if field is None else f"of type {field.dataType.simpleString()}"
            raise InvalidJobArgumentError(
                JOB,
                "timestamp_column",
                timestamp_column,
                f"a timestamp or date column of {keys_table} (it is {found}; columns: {df.columns})",
            )
        when = F.col(f"`{timestamp_column}`").cast("timestamp")
        if lo is not None:
            df = df.where(when >= F.lit(lo))
        if hi is not None:
            df = df.where(when < F.lit(hi))
    keys = wanted if wanted is not None else list(df.columns)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise InvalidJobArgumentError(JOB, "key_columns", wanted, f"columns of {keys_table}: {df.columns}")
    return version, df, keys


def _check_output(lh: Lakehouse, output_table: str, keys: list[str], timestamp_column: str | None) -> None:
    have = lh.schema(output_table).names
    missing = [c for c in [*keys, *([timestamp_column] if timestamp_column else []), "model_version"] if c not in have]
    if missing:
        raise InvalidJobArgumentError(
            JOB,
            "output_table",
            output_table,
            f"a table this job writes (it lacks {missing}; its columns: {have}); name a new table to create one",
        )


def _check_unique(df: DataFrame, keys: list[str]) -> None:
    """Refuse null or repeated key values: MERGE could neither match nor pick a row for them."""
    cols = [F.col(f"`{k}`") for k in keys]
    bad = (
        df.groupBy(*cols)
        .count()
        .where(functools.reduce(operator.or_, [c.isNull() for c in cols], F.col("count") > 1))
        .limit(1)
        .collect()
    )
    if bad:
        example = {k: bad[0][k] for k in keys}
        what = "repeated" if bad[0]["count"] > 1 else "null"
        raise InvalidJobArgumentError(
            JOB,
            "key_columns",
            keys,
            f"columns unique and non-null in the window's keys (e.g. {example} is {what}); name the columns that "
            "identify a row with key_columns=",
        )


# -- writing ------------------------------------------------------------------------------------------------------
def _replace_window(
    lh: Lakehouse,
    table: str,
    out: DataFrame,
    keys: list[str],
    timestamp_column: str | None,
    lo: datetime | None,
    hi: datetime | None,
    exists: bool,
    figures: dict[str, Any],
) -> None:
    if not exists:
        created = lh.create_table(table, out, description="predictions written by lakehouse-jobs score")
        figures["rows_inserted"] = created.num_rows
        figures["commits"].append(created.version)
        return
    bounded = timestamp_column if lo is not None or hi is not None else None
    # One commit: the window's rows are upserted and, of the rows already in the window, those the keys no longer
    # hold are deleted ("delete when not matched by source", limited to the window). Unbounded: the whole table.
    merged = lh.merge(
        table,
        out,
        on=keys,
        schema_evolution=True,
        when_not_matched_by_source="delete",
        not_matched_by_source_condition=None if bounded is None else _window_predicate(bounded, lo, hi),
    )
    figures["commits"].append(merged.version)
    figures["rows_inserted"] += merged.num_target_rows_inserted
    figures["rows_updated"] += merged.num_target_rows_updated
    figures["rows_deleted"] += merged.num_target_rows_deleted
    if merged.num_target_rows_deleted:
        _log.info(
            "%s: %s row(s) of the window no longer in the keys table deleted", table, merged.num_target_rows_deleted
        )


def _window_predicate(column: str, lo: datetime | None, hi: datetime | None) -> str:
    """The window [lo, hi) over the output table's `column` (alias `t`), in SQL both Delta engines parse."""
    when = f"CAST(t.`{column.replace('`', '``')}` AS TIMESTAMP)"
    bounds = [
        f"{when} {op} TIMESTAMP '{at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'"
        for op, at in ((">=", lo), ("<", hi))
        if at is not None
    ]
    return " AND ".join(bounds)


def _publish(fs: FeatureStoreClient, model: _Model, online_store: Any) -> list[dict[str, Any]]:
    """Publish every feature table the model's run read (the feature store's lineage) to the online store."""
    tables = sorted(t.name for t in fs.list_tables() if any(r.run_id == model.run_id for r in t.runs))
    if not tables:
        _log.warning("%s reads no feature table of this lake: nothing to publish", model.uri)
    store = SqliteOnlineStore() if online_store is None else online_store
    out = []
    for name in tables:
        result = fs.publish_table(name, store)
        _log.info(
            "published %s to %s: version %s, %s key(s)", name, result.store, result.to_version, result.keys_written
        )
        out.append(dataclasses.asdict(result))
    return out


@contextlib.contextmanager
def _registry_at(uri: str) -> Iterator[None]:
    """MLflow's global tracking and registry URIs set to the lake's while the feature store resolves `models:/`."""
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _describe(lo: datetime | None, hi: datetime | None) -> str:
    return "the whole table" if lo is None and hi is None else f"[{_iso(lo) or '-inf'}, {_iso(hi) or '+inf'})"


# -- the registry trigger -------------------------------------------------------------------------------------------
DEPLOY_SETTINGS = ("keys_table", "output_table", "timestamp_column", "key_columns", "publish_online")
"""What `deploy_model` reads from the registered model's tag `deploy.<setting>` or else `$DEPLOY_<SETTING>`."""


def deploy_model(event: dict[str, Any]) -> dict[str, Any]:
    """The deploy job of a registry trigger: score the keys table with the version that entered Production, and
    publish the feature tables it reads to the online store.

    Use it as `create_trigger(lake, name="deploy", model_name="churn", stage="Production",
    callable="jobs:deploy_model")` (an alias trigger works too). The lake is the event's (`MLFLOW_TRACKING_URI`,
    which the trigger sets to it). Settings come from the registered model's tags `deploy.keys_table`,
    `deploy.output_table`, `deploy.timestamp_column`, `deploy.key_columns` (comma-separated),
    `deploy.publish_online` ("true"/"false", default "true"), each falling back to `$DEPLOY_KEYS_TABLE`, ... when
    the tag is not set. The whole keys table is scored (its rows in `output_table` replaced in one commit);
    without `keys_table` and `output_table` the job only publishes. An event moving a version to another stage
    is skipped (returned as such).

    Raises InvalidJobArgumentError (no model version in the event, no lake, nothing to do, a bad setting) and
    whatever `score` raises; the trigger records the job as failed.
    """
    payload = event.get("payload") or {}
    if isinstance(payload, str):
        payload = json.loads(payload)
    name = event.get("name") or os.environ.get("MODEL_NAME")
    version = event.get("version") or os.environ.get("MODEL_VERSION")
    if not name or not version:
        raise InvalidJobArgumentError("deploy", "event", event, "an event naming a model version (name, version)")
    to_stage = payload.get("to_stage") or os.environ.get("MODEL_STAGE")
    if event.get("event") == STAGE_TRANSITIONED and to_stage != PRODUCTION:
        _log.info("deploy: %s v%s moved to %s, not %s: nothing to do", name, version, to_stage, PRODUCTION)
        return {"model_name": name, "model_version": int(version), "skipped": f"stage {to_stage}"}
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    try:
        root = lake_root_from_uri(uri)
    except MlflowException:
        raise InvalidJobArgumentError(
            "deploy", "MLFLOW_TRACKING_URI", uri, "the lakehouse:/// URI of the event's lake (a trigger sets it)"
        ) from None
    tags = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name).tags
    s = {k: tags.get(f"deploy.{k}") or os.environ.get(f"DEPLOY_{k.upper()}") for k in DEPLOY_SETTINGS}
    publish = (s["publish_online"] or "true").strip().lower()
    if publish not in ("true", "false"):
        raise InvalidJobArgumentError("deploy", "deploy.publish_online", s["publish_online"], "'true' or 'false'")
    if bool(s["keys_table"]) != bool(s["output_table"]) or (not s["keys_table"] and publish == "false"):
        raise InvalidJobArgumentError(
            "deploy",
            "deploy.keys_table/deploy.output_table",
            (s["keys_table"], s["output_table"]),
            f"both set (tags of registered model {name} or $DEPLOY_KEYS_TABLE / $DEPLOY_OUTPUT_TABLE), or neither "
            "with deploy.publish_online true",
        )
    if s["keys_table"] and s["output_table"]:
        figures = score(
            root,
            model_name=name,
            version=int(version),
            keys_table=s["keys_table"],
            output_table=s["output_table"],
            timestamp_column=s["timestamp_column"],
            key_columns=[c.strip() for c in s["key_columns"].split(",")] if s["key_columns"] else None,
            publish_online=publish == "true",
        )
    else:
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        model = _resolve(client, uri, name, None, None, int(version))
        figures = {"model_name": name, "model_version": model.version, "model_uri": model.uri}
        figures["published"] = _publish(FeatureStoreClient(root), model, None)
    _log.info("deployed %s v%s", name, version)
    return figures
