"""Tracking tables written by the store are read by delta-spark exactly as the store showed them, at every version.

The store's view is recorded through MLflow's client after each call, with the Delta version of each table
at that moment (from the `_delta_log` listing); delta-spark then time-travels to a sample of those versions,
chosen around the store's automatic compactions and its checkpoint, and must return the same rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from delta.tables import DeltaTable
from interop_helpers import commit_info, latest_version, spark_rows
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from tracking import TABLES

RUNS = 30
STEPS = 3  # log_metric calls per run after its log_batch: 4 metric commits a run, >100 on the metrics table

COLUMNS = {
    "metrics": ("run_id", "key", "value", "timestamp", "step"),
    "runs": (
        "run_id",
        "experiment_id",
        "name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "lifecycle_stage",
        "artifact_uri",
    ),
    "params": ("run_id", "key", "value"),
    "tags": ("run_id", "key", "value"),
    "experiments": (
        "experiment_id",
        "name",
        "artifact_location",
        "lifecycle_stage",
        "creation_time",
        "last_update_time",
    ),
}


@dataclass(frozen=True)
class Snapshot:
    """The store's rows per table after one client call, and each table's Delta version at that moment."""

    call: str
    versions: dict[str, int]
    rows: dict[str, frozenset[tuple]]


def store_view(client: MlflowClient, experiment_ids: list[str]) -> dict[str, frozenset[tuple]]:
    """Every row the store shows, per table, in the column order of COLUMNS."""
    runs = client.search_runs(experiment_ids, run_view_type=ViewType.ALL, max_results=1000)
    metrics, params, tags, infos = set(), set(), set(), set()
    for run in runs:
        i = run.info
        infos.add(
            (
                i.run_id,
                i.experiment_id,
                i.run_name,
                i.user_id,
                i.status,
                i.start_time,
                i.end_time,
                i.lifecycle_stage,
                i.artifact_uri,
            )
        )
        params |= {(i.run_id, k, v) for k, v in run.data.params.items()}
        tags |= {(i.run_id, k, v) for k, v in run.data.tags.items()}
        for key in run.data.metrics:
            metrics |= {
                (i.run_id, m.key, m.value, m.timestamp, m.step) for m in client.get_metric_history(i.run_id, key)
            }
    experiments = {
        (e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time)
        for e in client.search_experiments(view_type=ViewType.ALL)
    }
    return {
        "metrics": frozenset(metrics),
        "runs": frozenset(infos),
        "params": frozenset(params),
        "tags": frozenset(tags),
        "experiments": frozenset(experiments),
    }


def fill_lake(client: MlflowClient, mlflow_dir: str) -> tuple[list[str], list[Snapshot]]:
    """Two experiments, RUNS runs with params, tags and metric histories; a snapshot after every metric write."""
    snapshots: list[Snapshot] = []
    exps = [client.create_experiment("interop-a"), client.create_experiment("interop-b")]

    def snap(call: str) -> None:
        versions = {t: latest_version(os.path.join(mlflow_dir, t)) for t in COLUMNS}
        snapshots.append(Snapshot(call, versions, store_view(client, exps)))

    snap("create_experiment")
    for i in range(RUNS):
        run_id = client.create_run(exps[i % 2], run_name=f"r{i}", tags={"seed": str(i)}).info.run_id
        ts = 1_700_000_000_000 + 1000 * i
        client.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0 / (i + 1), ts, 0), Metric("acc", i / RUNS, ts, 0)],
            params=[Param("lr", str(0.01 * i)), Param("depth", str(i % 5))],
            tags=[RunTag("phase", "train")],
        )
        snap(f"r{i} log_batch")
        for step in range(1, STEPS + 1):
            client.log_metric(run_id, "loss", 1.0 / (i + 1 + step), timestamp=ts + step, step=step)
            snap(f"r{i} log_metric step {step}")
        if i % 5 == 0:
            client.set_tag(run_id, "phase", "done")  # rewrites the tag's file: a remove and an add
        if i % 7 == 3:
            client.delete_tag(run_id, "seed")
        client.set_terminated(run_id, "FAILED" if i % 6 == 1 else "FINISHED")
        if i == 11:
            client.delete_run(run_id)
        snap(f"r{i} end")
    return exps, snapshots


def _first(snapshots: list[Snapshot], table: str, pred) -> Snapshot | None:
    return next((s for s in snapshots if pred(s.versions[table])), None)


def _last(snapshots: list[Snapshot], table: str, pred) -> Snapshot | None:
    return next((s for s in reversed(snapshots) if pred(s.versions[table])), None)


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[str, list[Snapshot]]:
    """A lake filled through MLflow's client (shared by this module's tests, which only read it)."""
    lake = tmp_path_factory.mktemp("interop") / "lake"
    mlflow_dir = str(lake / "mlflow")
    _, snapshots = fill_lake(MlflowClient(f"lakehouse://{lake}"), mlflow_dir)
    return mlflow_dir, snapshots


@pytest.mark.slow
def test_every_sampled_version_reads_as_the_store_showed_it(filled, delta_spark):
    mlflow_dir, snapshots = filled

    metrics_path = os.path.join(mlflow_dir, "metrics")
    latest = latest_version(metrics_path)
    assert latest > 100, f"the scenario made only {latest} commits on the metrics table; it must pass a checkpoint"
    compactions = [v for v in range(latest + 1) if commit_info(metrics_path, v).get("operation") == "OPTIMIZE"]
    checkpoints = sorted(
        int(n.split(".")[0])
        for n in os.listdir(os.path.join(metrics_path, "_delta_log"))
        if n.endswith(".checkpoint.parquet")
    )
    assert len(compactions) >= 2, f"expected several automatic compactions, found OPTIMIZE commits at {compactions}"
    assert 100 in checkpoints, f"expected the store's checkpoint at version 100, found checkpoints {checkpoints}"

    # The sample: first write, around the first compaction, around the checkpoint, the latest.
    # (Each delta-spark time travel costs seconds on a loaded machine: a sample, not every version.)
    c = compactions[0]
    picks = [
        _first(snapshots, "metrics", lambda v: v >= 1),
        _last(snapshots, "metrics", lambda v: v < c),
        _first(snapshots, "metrics", lambda v: v >= c),
        _last(snapshots, "metrics", lambda v: v < 100),
        _first(snapshots, "metrics", lambda v: v >= 100),
        snapshots[-1],
    ]
    sample = {s.versions["metrics"]: s for s in picks if s is not None}
    assert max(sample) >= 100, sorted(sample)
    mismatches = []
    for version, snap in sorted(sample.items()):
        listed = spark_rows(delta_spark, metrics_path, COLUMNS["metrics"], version)
        got = set(listed)
        if got != snap.rows["metrics"] or len(listed) != len(got):  # a set compare, and no row twice
            mismatches.append(
                f"metrics v{version} (after {snap.call}): only in delta-spark "
                f"{sorted(got - snap.rows['metrics'])[:5]}, only in the store "
                f"{sorted(snap.rows['metrics'] - got)[:5]}"
            )

    # The other tables at the latest version, and the two that see rewrites (status, tag overwrites) mid-way too.
    for table in ("runs", "params", "tags", "experiments"):
        path = os.path.join(mlflow_dir, table)
        sampled = (snapshots[len(snapshots) // 2], snapshots[-1]) if table in ("runs", "tags") else (snapshots[-1],)
        for snap in {s.versions[table]: s for s in sampled}.values():
            listed = spark_rows(delta_spark, path, COLUMNS[table], snap.versions[table])
            got = set(listed)
            if got != snap.rows[table] or len(listed) != len(got):
                mismatches.append(
                    f"{table} v{snap.versions[table]} (after {snap.call}): only in delta-spark "
                    f"{sorted(got - snap.rows[table])[:5]}, only in the store "
                    f"{sorted(snap.rows[table] - got)[:5]}"
                )
    assert not mismatches, "\n".join(mismatches)

    # The latest state is what a plain (non time-travel) read gives too, and it is not trivially empty.
    final = snapshots[-1].rows
    assert len(final["runs"]) == RUNS and len(final["metrics"]) == RUNS * (2 + STEPS)
    assert spark_rows(delta_spark, metrics_path, COLUMNS["metrics"]) == sorted(final["metrics"], key=repr)


@pytest.mark.slow
def test_delta_spark_history_works_on_every_tracking_table(filled, delta_spark):
    mlflow_dir, _ = filled
    names = [name.split(".", 1)[1] for name in TABLES]
    assert sorted(os.listdir(mlflow_dir)) == sorted(names)
    for name in names:
        path = os.path.join(mlflow_dir, name)
        history = DeltaTable.forPath(delta_spark, path).history().select("version", "operation").collect()
        expected = [(v, commit_info(path, v)["operation"]) for v in range(latest_version(path), -1, -1)]
        assert [(r.version, r.operation) for r in history] == expected, name
