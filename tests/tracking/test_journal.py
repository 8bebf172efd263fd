"""One commit per tracking call (`tracking._journal`): a `log_batch` of params, metrics and tags, a `create_run`
with its tags and a rename are each one journal commit, applied to the run tables after it.

Oracles: the calls' own inputs, MLflow's sqlite store for the same calls, deltalake's reading of the tables
(`file_uris()` + pyarrow.parquet, so no code of ours reads them back), and the Delta logs' commit counts.
A writer is killed (SIGKILL) right after its journal commit: nothing of the call is lost or half-visible.
"""

from __future__ import annotations

import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from tracking import LakehouseTrackingStore
from tracking._journal import JOURNAL, TRUNCATE_AT, WATERMARK

RUN_TABLES = ("runs", "params", "tags", "metrics")


def _rows(path) -> list[dict]:
    return [r for f in DeltaTable(str(path)).file_uris() for r in pq.read_table(f).to_pylist()]


def _versions(lake) -> dict[str, int]:
    return {name: DeltaTable(str(lake / name)).version() for name in (*RUN_TABLES, "journal")}


def _batch(i: int) -> tuple[list[Metric], list[Param], list[RunTag]]:
    metrics = [Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(5)]
    return metrics, [Param("lr", str(i)), Param("depth", "3")], [RunTag("team", f"t{i}")]


def _view(client: MlflowClient, run_id: str) -> tuple:
    run = client.get_run(run_id)
    history = [(m.value, m.timestamp, m.step) for m in client.get_metric_history(run_id, "loss")]
    return run.info.run_name, run.info.status, run.data.params, run.data.metrics, run.data.tags, history


def test_a_batch_over_three_tables_is_one_journal_commit_and_reads_as_sqlite(tmp_path, lake_uri, sqlite_uri):
    lake = tmp_path / "lake" / "mlflow"
    views = []
    for uri in (sqlite_uri, lake_uri):
        client = MlflowClient(uri)
        exp = client.create_experiment("e")
        rid = client.create_run(exp, tags={"a": "1"}, run_name="first").info.run_id
        if uri == lake_uri:
            before = _versions(lake)
        metrics, params, tags = _batch(1)
        client.log_batch(rid, metrics=metrics, params=params, tags=[*tags, RunTag("mlflow.runName", "renamed")])
        if uri == lake_uri:
            after = _versions(lake)
        client.log_batch(rid, params=[Param("lr", "1")])  # the same value again: accepted, nothing new
        with pytest.raises(MlflowException, match="Changing param values is not allowed"):
            client.log_batch(rid, metrics=[Metric("loss", 9.0, 9, 9)], params=[Param("lr", "2")])
        client.set_terminated(rid)
        views.append(_view(client, rid))
    assert views[1] == views[0], "the lake answers as MLflow's SQL store"
    # the journal took one commit; every run table written carries the journal version as its watermark
    assert after["journal"] == before["journal"] + 1
    for name in RUN_TABLES:
        txns = [a for a in _log_actions(lake / name, after[name]) if "txn" in a]
        assert txns and txns[0]["txn"]["appId"] == WATERMARK and txns[0]["txn"]["version"] == after["journal"]
    # the refused batch wrote nothing: no metric 9.0 anywhere, no second lr
    assert 9.0 not in [r["value"] for r in _rows(lake / "metrics")]
    assert sorted(r["value"] for r in _rows(lake / "params") if r["key"] == "lr") == ["1"]
    tags = {(r["key"], r["value"]) for r in _rows(lake / "tags")}
    assert ("mlflow.runName", "renamed") in tags and ("team", "t1") in tags and ("a", "1") in tags


def _log_actions(path, version: int) -> list[dict]:
    import json

    with open(path / "_delta_log" / f"{version:020d}.json") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_single_table_calls_stay_one_commit_without_the_journal(tmp_path, lake_uri):
    lake = tmp_path / "lake" / "mlflow"
    client = MlflowClient(lake_uri)
    rid = client.create_run(client.create_experiment("e")).info.run_id
    before = _versions(lake)
    client.log_metric(rid, "loss", 0.5, step=1)
    client.log_param(rid, "p", "v")
    client.set_tag(rid, "k", "v")
    after = _versions(lake)
    assert after["journal"] == before["journal"], "one table written: no journal commit"
    assert {n: after[n] - before[n] for n in ("metrics", "params", "tags")} == {"metrics": 1, "params": 1, "tags": 1}


_KILLED_AFTER_JOURNAL = """
import os, signal, sys
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from tracking import _journal
client = MlflowClient(sys.argv[1])
client.search_runs([sys.argv[4]])  # applies what an earlier killed writer left, before the kill is armed
# killed at the apply after its own journal commit
_journal.Journal.roll_forward = lambda self: os.kill(os.getpid(), signal.SIGKILL) if not self.rolling else None
if sys.argv[2] == "create":
    client.create_run(sys.argv[3], tags={"owner": "killed"}, run_name="ghost")
else:
    client.log_batch(
        sys.argv[3],
        metrics=[Metric("loss", 0.25, 5, s) for s in range(3)],
        params=[Param("killed", "yes")],
        tags=[RunTag("phase", "killed")],
    )
"""


def test_a_kill_after_the_journal_commit_loses_nothing_and_shows_no_part(tmp_path, lake_uri):
    lake = tmp_path / "lake" / "mlflow"
    client = MlflowClient(lake_uri)
    exp = client.create_experiment("e")
    rid = client.create_run(exp).info.run_id
    for what, arg in (("batch", rid), ("create", exp)):
        argv = [sys.executable, "-c", _KILLED_AFTER_JOURNAL, lake_uri, what, arg, exp]
        proc = subprocess.run(argv, capture_output=True)
        assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    # killed right after its journal commit: the run tables have none of the create yet, the journal has it; the
    # second process applied the first's batch before its own call
    assert [r["value"] for r in _rows(lake / "params") if r["key"] == "killed"] == ["yes"]
    assert not [r for r in _rows(lake / "runs") if r["name"] == "ghost"]
    assert {r["kind"] for r in _rows(lake / "journal")} >= {"param", "metric", "tag", "run"}
    assert any(r["kind"] == "run" and "ghost" in r["value"] for r in _rows(lake / "journal"))

    fresh = MlflowClient(lake_uri)  # a new process: its first read applies the journal, whole
    run = fresh.get_run(rid)
    assert run.data.params == {"killed": "yes"} and run.data.tags["phase"] == "killed"
    assert [(m.value, m.step) for m in fresh.get_metric_history(rid, "loss")] == [(0.25, 0), (0.25, 1), (0.25, 2)]
    ghost = fresh.search_runs([exp], "attributes.run_name = 'ghost'")
    assert len(ghost) == 1 and ghost[0].data.tags["owner"] == "killed"
    # and the run tables now hold it for every engine (read here by deltalake)
    assert [r["value"] for r in _rows(lake / "params") if r["key"] == "killed"] == ["yes"]
    assert sorted(r["step"] for r in _rows(lake / "metrics") if r["value"] == 0.25) == [0, 1, 2]
    assert [r["run_id"] for r in _rows(lake / "runs") if r["name"] == "ghost"] == [ghost[0].info.run_id]


def test_a_failed_journal_commit_writes_nothing(tmp_path, lake_uri, monkeypatch):
    lake = tmp_path / "lake" / "mlflow"
    store = LakehouseTrackingStore(lake_uri)
    exp = store.create_experiment("e")
    rid = store.create_run(exp, "u", 0, [], "r").info.run_id
    before = {name: sorted(map(str, _rows(lake / name))) for name in RUN_TABLES}
    journal = store._t.tables[JOURNAL]

    def refuse(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(journal, "commit", refuse)
    metrics, params, tags = _batch(2)
    with pytest.raises(OSError, match="disk full"):
        store.log_batch(rid, metrics, params, tags)
    assert {name: sorted(map(str, _rows(lake / name))) for name in RUN_TABLES} == before


def test_the_journal_is_truncated_once_applied(tmp_path, lake_uri):
    lake = tmp_path / "lake" / "mlflow"
    client = MlflowClient(lake_uri)
    exp = client.create_experiment("e")
    ids = [client.create_run(exp).info.run_id for _ in range(TRUNCATE_AT + 2)]
    for i, rid in enumerate(ids):
        client.log_batch(rid, *_batch(i))
    live = DeltaTable(str(lake / "journal")).file_uris()
    assert len(live) < TRUNCATE_AT, "applied journal files are removed"
    assert len(_rows(lake / "params")) == 2 * len(ids) and len(_rows(lake / "metrics")) == 5 * len(ids)
