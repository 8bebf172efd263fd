"""The tracking tables' layout for scale: cold metric history, `latest_metrics` with its watermark, migration.

Oracles: the points the test logged (latest per key computed here in Python, as MLflow's SQL store defines it),
MLflow's sqlite store for the same calls, and deltalake's reading of the tables (`file_uris()` + pyarrow.parquet).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
from deltalake import DeltaTable
from mlflow import MlflowClient
from mlflow.entities import Metric

from lakehouse import LeanTable
from tracking import TABLES, LakehouseTrackingStore
from tracking._latest import FOLD_EVERY


def _rows(path, version: int | None = None) -> list[dict]:
    dt = DeltaTable(str(path)) if version is None else DeltaTable(str(path), version=version)
    return [r for f in dt.file_uris() for r in pq.read_table(f).to_pylist()]


def _point(r: dict) -> tuple:
    return (r["run_id"], r["key"], r["value"], r["timestamp"], r["step"])


def _latest_oracle(points: list[dict]) -> dict[tuple[str, str], tuple]:
    best: dict[tuple[str, str], dict] = {}
    for p in points:
        k = (p["run_id"], p["key"])
        if k not in best or (p["step"], p["timestamp"], p["value"]) > (
            best[k]["step"],
            best[k]["timestamp"],
            best[k]["value"],
        ):
            best[k] = p
    return {k: (v["value"], v["timestamp"], v["step"]) for k, v in best.items()}


def _fill(uri: str, runs: int, seed: int = 1) -> tuple[list[str], list[dict]]:
    """Runs with out-of-order, repeated and interleaved points; returns the run ids (in creation order) and every
    distinct point logged."""
    rng = random.Random(seed)
    client = MlflowClient(uri)
    exp = client.create_experiment("scale")
    run_ids: list[str] = []
    points: dict[tuple, dict] = {}
    for _ in range(runs):
        rid = client.create_run(exp).info.run_id
        run_ids.append(rid)
        for _batch in range(3):
            batch = [
                Metric(rng.choice(["loss", "acc"]), float(rng.randint(0, 5)), rng.randint(1, 3), rng.randint(0, 4))
                for _ in range(6)
            ]
            client.log_batch(rid, metrics=batch)
            for m in batch:
                p = {"run_id": rid, "key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
                points[_point(p)] = p
    return run_ids, list(points.values())


def _metrics_of(client: MlflowClient, rid: str) -> tuple[set, dict]:
    latest = {(m.key, m.value, m.timestamp, m.step) for m in client.get_run(rid).data._metric_objs}
    history = {
        k: sorted((m.value, m.timestamp, m.step) for m in client.get_metric_history(rid, k)) for k in ("loss", "acc")
    }
    return latest, history


def _check_store_against(uri: str, points: list[dict]) -> None:
    client = MlflowClient(uri)
    latest = _latest_oracle(points)
    for rid in {p["run_id"] for p in points}:
        got_latest, got_history = _metrics_of(client, rid)
        assert got_latest == {(k[1], *v) for k, v in latest.items() if k[0] == rid}
        for key, hist in got_history.items():
            mine = [p for p in points if (p["run_id"], p["key"]) == (rid, key)]
            assert hist == sorted((p["value"], p["timestamp"], p["step"]) for p in mine)


def test_history_is_cold_and_reads_agree_with_the_points_and_sqlite(tmp_path, lake_uri, sqlite_uri):
    run_ids, points = _fill(lake_uri, 25)
    _check_store_against(lake_uri, points)
    store = LakehouseTrackingStore(lake_uri)
    history = store._t.tables["mlflow.metrics"]
    assert history.files and all(f.rows is None for f in history.files.values()), "no metric row held in memory"
    # the tables as deltalake reads them: every point once; one latest row per (run, key)
    lake = tmp_path / "lake" / "mlflow"
    assert sorted(map(_point, _rows(lake / "metrics"))) == sorted(map(_point, points))
    # latest_metrics is the latest of the history as of its watermark, which lags by fewer than FOLD_EVERY commits
    watermark = store._t.latest_metrics.watermark()
    assert 0 <= store._t.tables["mlflow.metrics"].version - watermark < FOLD_EVERY
    latest = {(r["run_id"], r["key"]): (r["value"], r["timestamp"], r["step"]) for r in _rows(lake / "latest_metrics")}
    assert latest == _latest_oracle(_rows(lake / "metrics", version=watermark))
    # the same calls on MLflow's sqlite store: the same latest values and histories, run by run
    sq_ids, _ = _fill(sqlite_uri, 25)
    lake_client, sq_client = MlflowClient(lake_uri), MlflowClient(sqlite_uri)
    for mine, theirs in zip(run_ids, sq_ids, strict=True):
        assert _metrics_of(lake_client, mine) == _metrics_of(sq_client, theirs)


_CRASH_AFTER_HISTORY = """
import os, signal, sys
from mlflow import MlflowClient
from tracking import _latest, _store_run_data
_store_run_data.FOLD_EVERY = 1  # this writer folds right after its history commit, and is killed right there
_latest.LatestMetrics.fold_in = lambda self: os.kill(os.getpid(), signal.SIGKILL)
MlflowClient(sys.argv[1]).log_metric(sys.argv[2], "loss", 42.0, timestamp=9, step=99)
"""


def test_a_kill_between_history_and_latest_commits_hides_nothing(tmp_path, lake_uri):
    client = MlflowClient(lake_uri)
    exp = client.create_experiment("e")
    rid = client.create_run(exp).info.run_id
    other = client.create_run(exp).info.run_id
    client.log_metric(rid, "loss", 1.0, timestamp=1, step=1)
    proc = subprocess.run([sys.executable, "-c", _CRASH_AFTER_HISTORY, lake_uri, rid], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    lake = tmp_path / "lake" / "mlflow"
    assert 42.0 not in [r["value"] for r in _rows(lake / "latest_metrics")], "the kill came before the fold"
    killed_at = DeltaTable(str(lake / "metrics")).version()

    fresh = MlflowClient(lake_uri)  # a new process's store: the unfolded history is part of what it shows
    assert {m.key: m.value for m in fresh.get_run(rid).data._metric_objs} == {"loss": 42.0}
    assert [m.value for m in fresh.get_metric_history(rid, "loss")] == [1.0, 42.0]

    for step in range(FOLD_EVERY):  # later writers fold what the killed one left, with their own points
        fresh.log_metric(other, "acc", 0.5, timestamp=1, step=step)
    store = LakehouseTrackingStore(lake_uri)
    watermark = store._t.latest_metrics.watermark()
    assert watermark >= killed_at, "the killed writer's commit is folded in"
    latest = {(r["run_id"], r["key"]): (r["value"], r["timestamp"], r["step"]) for r in _rows(lake / "latest_metrics")}
    assert latest == _latest_oracle(_rows(lake / "metrics", version=watermark))
    assert latest[(rid, "loss")] == (42.0, 9, 99)


def test_a_lake_of_the_previous_layout_upgrades_in_place_losing_nothing(tmp_path, lake_uri):
    run_ids, points = _fill(lake_uri, 12, seed=4)
    client = MlflowClient(lake_uri)
    for rid in run_ids:
        client.log_param(rid, "p", rid[:4])
    before_runs = sorted((r.info.run_id, r.info.status) for r in client.search_runs(["1"], max_results=100))
    lake = tmp_path / "lake" / "mlflow"
    # the previous layouts: no latest_metrics table; metric, run, param and tag files with a row count only (no
    # column statistics: the run tables were held whole in memory then)
    shutil.rmtree(lake / "latest_metrics")
    before = {}
    for family in ("metrics", "runs", "params", "tags"):
        name = f"mlflow.{family}"
        before[family] = old_rows = _rows(lake / family)
        shutil.rmtree(lake / family)
        schema, description = TABLES[name]
        old = LeanTable(path=str(lake / family), name=name, schema=schema, description=description)
        old.create_if_missing()
        old.refresh()
        for i in range(0, len(old_rows), 7):
            old.commit([old_rows[i : i + 7]])
        assert all("nullCount" not in (f.add.get("stats") or "") for f in old.files.values())

    store = LakehouseTrackingStore(lake_uri)  # opening the lake migrates it
    for family in ("metrics", "runs", "params", "tags"):
        table = store._t.tables[f"mlflow.{family}"]
        assert all("run_id" in (table.file_stats(rel) or {}).get("nullCount", {}) for rel in table.files), family
        key = lambda r: sorted((k, str(v)) for k, v in r.items())  # noqa: E731
        assert sorted(map(key, _rows(lake / family))) == sorted(map(key, before[family])), f"{family}: no row lost"
        ops = [h["operation"] for h in DeltaTable(str(lake / family)).history()]
        assert ops[0] == "OPTIMIZE" and ops.count("OPTIMIZE") == 1, family
    assert sorted(map(_point, _rows(lake / "metrics"))) == sorted(map(_point, points)), "no point lost or added"
    latest = {(r["run_id"], r["key"]): (r["value"], r["timestamp"], r["step"]) for r in _rows(lake / "latest_metrics")}
    assert latest == _latest_oracle(points)
    _check_store_against(lake_uri, points)
    assert sorted((r.info.run_id, r.info.status) for r in client.search_runs(["1"], max_results=100)) == before_runs

    versions = {n: DeltaTable(str(lake / n)).version() for n in ("metrics", "latest_metrics", "runs", "params", "tags")}
    LakehouseTrackingStore(lake_uri)  # a second open finds nothing to migrate
    assert {n: DeltaTable(str(lake / n)).version() for n in versions} == versions
    assert os.path.isdir(lake / "latest_metrics" / "_delta_log")
