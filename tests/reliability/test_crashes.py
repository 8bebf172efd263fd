"""Crashes: `kill -9` of a tracking writer (log_batch), of `lakehouse-jobs maintain` and of the online store's
`publish_table`, at moments spread over the danger windows, `trials(3, 50)` times each.

The moments cycle through: "data" (the instant a new Parquet file appears in the table the call writes first:
the data file is written, its commit is not), "commit" (the instant a new `_delta_log/<v>.json` appears: the
commit is published, the call has not returned, so nothing is acknowledged), "apply" (for log_batch: a commit of
`mlflow.params`, one of the applies after the journal commit) and "random" (a random delay after the process
said it was ready, from a seeded generator). A process that finished before its kill counts as "exited".

Oracles: acknowledgements written before each kill (the worker's ack file; the test's own calls for the data the
killed maintain and publish work on), deltalake + pyarrow reads of the tables, and values derived from the
call's index (log_batch k logs param p<k>, tag t<k> and metric m at step k, all = k).

After each kill: every table under the lake opens and its latest version reads whole; every acknowledged write
is there, once; a call in flight is all there or not at all; the next writer proceeds.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections import Counter

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from reliability_helpers import (
    JOBS,
    Watch,
    acks,
    env,
    errors_in,
    jobs,
    kill_when,
    rows,
    spawn,
    stop,
    tables_under,
    tail,
    wait_for,
)

from tracking import LakehouseTrackingStore

SEED = 16


def _ready(proc: subprocess.Popen, ack_path: str, what: str, *, batches: int = 0) -> None:
    """Wait until the worker said it is ready (and acknowledged `batches` log_batch calls)."""

    def ok() -> bool:
        lines = acks(ack_path)
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode} before it was ready: {errors_in(lines)}")
        return ["ready"] in lines and sum(1 for line in lines if line[0] == "batch") >= batches

    wait_for(ok, timeout=600, what=f"{what} to be ready")


def _every_table_reads_whole(root: str) -> int:
    """Open every Delta table under `root` and read every file of its latest version; return the tables read."""
    found = tables_under(root)
    for table in found:
        rows(table)
    return len(found)


# -- a tracking writer ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_a_tracking_writer_mid_log_batch(tmp_path, trials, figures):
    n = trials(3, 50)
    lake = tmp_path / "lake"
    uri = f"lakehouse://{lake}"
    client = MlflowClient(uri)
    exp = client.create_experiment("crash")
    rid = client.create_run(exp).info.run_id
    journal, params = str(lake / "mlflow" / "journal"), str(lake / "mlflow" / "params")
    rng = random.Random(SEED)
    moments = ("data", "commit", "apply", "random")
    acked: set[int] = set()
    outcomes: Counter = Counter()
    partial, lost, duplicates, next_k = 0, 0, 0, 0
    whole_unacked: set[int] = set()  # calls killed before their acknowledgement, found whole
    for t in range(n):
        moment = moments[t % len(moments)]
        ack_path = str(tmp_path / f"acks{t}")
        proc = spawn("batch-loop", uri, rid, str(next_k), ack_path, log=str(tmp_path / f"log{t}"))
        try:
            _ready(proc, ack_path, "the log_batch writer", batches=rng.randint(1, 3))
            fired = {
                "data": Watch([journal], "data").fired,
                "commit": Watch([journal], "commit").fired,
                "apply": Watch([params], "commit").fired,
                "random": None,
            }[moment]
            killed = kill_when(proc, fired, delay=rng.uniform(0, 0.3))
        finally:
            stop(proc)
        lines = acks(ack_path)
        assert not errors_in(lines), f"trial {t}: {errors_in(lines)}\n{tail(str(tmp_path / f'log{t}'))}"
        outcomes[moment if killed else "exited"] += 1
        acked |= {int(line[1]) for line in lines if line[0] == "batch"}

        tables = _every_table_reads_whole(str(lake))
        run = LakehouseTrackingStore(uri).get_run(rid)  # a cold store: its first read applies the journal
        history = LakehouseTrackingStore(uri).get_metric_history(rid, "m")
        p = {int(k[1:]) for k in run.data.params}
        g = {int(k[1:]) for k in run.data.tags if k.startswith("t")}
        steps = Counter(m.step for m in history)
        h = set(steps)
        # all or nothing per call; everything acknowledged
        partial += len((p | g | h) - (p & g & h))
        lost += len(acked - (p & g & h))
        duplicates += sum(c - 1 for c in steps.values() if c > 1)
        whole_unacked |= (p & g & h) - acked
        # and the tables as deltalake reads them (after the cold store applied the journal): each row once
        param_rows = Counter(r["key"] for r in rows(params) if r["run_id"] == rid)
        point_rows = Counter(r["step"] for r in rows(str(lake / "mlflow" / "metrics")) if r["run_id"] == rid)
        duplicates += sum(c - 1 for c in (*param_rows.values(), *point_rows.values()) if c > 1)
        assert set(param_rows) == {f"p{k}" for k in p} and set(point_rows) == h, f"trial {t}"
        assert all(run.data.params[f"p{k}"] == str(k) for k in p), f"trial {t}: a param no call logged"
        assert all(m.value == float(m.step) for m in history), f"trial {t}: a point no call logged"
        assert partial == lost == duplicates == 0, f"trial {t} ({moment}): {partial=} {lost=} {duplicates=}"
        next_k = max(p | acked | {next_k - 1}) + 1
    # the next writer proceeds
    client.log_batch(rid, metrics=[Metric("m", 1e6, 1, 10**6)], params=[Param("last", "1")], tags=[RunTag("t", "1")])
    assert LakehouseTrackingStore(uri).get_run(rid).data.params["last"] == "1"
    figures.update(
        trials=n,
        moments=dict(outcomes),
        tables_checked_per_trial=tables,
        batches_acked=len(acked),
        killed_calls_found_whole=len(whole_unacked),
        rows_checked=3 * len(acked),
        rows_lost=lost,
        partial_calls=partial,
        duplicates=duplicates,
    )


# -- maintain ------------------------------------------------------------------------------------------------------
def _table_contents(root: str) -> dict[str, Counter]:
    """Each table's rows (as sorted item tuples) under `root`, except the job history maintain appends to."""
    return {
        os.path.relpath(t, root): Counter(tuple(sorted(r.items())) for r in rows(t))
        for t in tables_under(root)
        if not t.endswith("job_history")
    }


@pytest.mark.slow
def test_kill_maintain_mid_optimize(tmp_path, trials, figures):
    n = trials(2, 50)  # each trial starts a maintain process (no JVM since bdcc26f)
    lake = tmp_path / "lake"
    uri = f"lakehouse://{lake}"
    client = MlflowClient(uri)
    exp = client.create_experiment("crash")
    rng = random.Random(SEED)
    moments = ("data", "commit", "random")
    outcomes: Counter = Counter()
    checked, lost, extra = 0, 0, 0
    for t in range(n):
        # small files to compact: every call here is one commit, acknowledged by its return
        rid = client.create_run(exp).info.run_id
        for s in range(30):
            client.log_metric(rid, "loss", 1.0 / (s + 1), step=s)
        client.log_batch(rid, params=[Param("trial", str(t))], tags=[RunTag("k", "v")])
        LakehouseTrackingStore(uri).get_run(rid)  # journal applied: the tables hold every acknowledged row
        before = _table_contents(str(lake))
        watched = [tb for tb in tables_under(str(lake / "mlflow")) if not tb.endswith("job_history")]
        moment = moments[t % len(moments)]
        fired = {"data": Watch(watched, "data").fired, "commit": Watch(watched, "commit").fired, "random": None}
        proc = subprocess.Popen(
            [*JOBS, "maintain", str(lake), "--no-dry-run"],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"maintain{t}", "w"),  # noqa: SIM115 - the child owns it
            env=env(),
        )
        try:
            # the random moment: anywhere from the start of the process (imports, Spark) to past its work
            killed = kill_when(proc, fired[moment], delay=rng.uniform(0.5, 15))
        finally:
            stop(proc)
        outcomes[moment if killed else "exited"] += 1
        if not killed:
            assert proc.returncode == 0, tail(str(tmp_path / f"maintain{t}"))
        after = _table_contents(str(lake))
        checked += sum(sum(c.values()) for c in before.values())
        lost += sum(sum((before[k] - after.get(k, Counter())).values()) for k in before)
        extra += sum(sum((after[k] - before.get(k, Counter())).values()) for k in after)
        assert after == before, f"trial {t} ({moment}): a killed maintain changed the rows of a table"
        run = LakehouseTrackingStore(uri).get_run(rid)
        assert run.data.params == {"trial": str(t)} and run.data.metrics["loss"] == 1.0 / 30
        # the next writer proceeds
        client.log_metric(rid, "after", 1.0)
    LakehouseTrackingStore(uri).get_run(rid)
    before = _table_contents(str(lake))
    final = jobs("maintain", str(lake), "--no-dry-run")
    assert final.returncode == 0, final.stderr[-3000:]
    assert _table_contents(str(lake)) == before, "a whole maintain run changes no row either"
    runs = client.search_runs([exp], max_results=1000)
    assert len(runs) == n and all(r.data.metrics["after"] == 1.0 for r in runs)
    figures.update(trials=n, moments=dict(outcomes), rows_checked=checked, rows_lost=lost, rows_added=extra)


# -- publish_table -------------------------------------------------------------------------------------------------
KEYS = 300


def _online(fs, ids: list[int]) -> dict[int, float]:
    from feature_store import FeatureLookup

    got = fs.get_online_features([FeatureLookup(table_name="cf", lookup_key="id")], pd.DataFrame({"id": ids}))
    return {int(i): float(v) for i, v in zip(got["id"], got["f1"], strict=True) if pd.notna(v)}


def _table_at(path: str, version: int) -> dict[int, float]:
    return {int(r["id"]): float(r["f1"]) for r in rows(path, version=version)}


@pytest.mark.slow
def test_kill_publish_table_mid_publish(tmp_path, trials, figures, spark):
    from feature_store import FeatureStoreClient
    from feature_store._online_stores import SqliteOnlineStore
    from lakehouse import Lakehouse

    n = trials(3, 50)  # each trial starts a publishing process (no JVM since bdcc26f): ~8 s on 2 cores
    root = str(tmp_path / "lake")
    fs = FeatureStoreClient(lakehouse=Lakehouse(root, spark=spark, engine="deltalake"))
    fs.create_table(
        name="cf", primary_keys=["id"], df=pd.DataFrame({"id": range(KEYS), "f1": [float(i) for i in range(KEYS)]})
    )
    path = os.path.join(root, "cf")
    store_dir = os.path.join(root, "_feature_store")
    sqlite = os.path.join(store_dir, "online.sqlite")
    fs.publish_table("cf")
    published = 0
    rng = random.Random(SEED)
    moments = ("data", "commit", "random")
    outcomes: Counter = Counter()
    checked, mismatches = 0, 0
    for t in range(n):
        # an acknowledged write: 50 keys changed, 5 new ones
        ids = rng.sample(range(KEYS + 5 * t), 50) + list(range(KEYS + 5 * t, KEYS + 5 * (t + 1)))
        fs.write_table("cf", pd.DataFrame({"id": ids, "f1": [1000.0 * (t + 1) + i for i in ids]}), mode="merge")
        version = max(int(f[:20]) for f in os.listdir(os.path.join(path, "_delta_log")) if f.endswith(".json"))
        ack_path = str(tmp_path / f"acks{t}")
        proc = spawn("publish", root, ack_path, log=str(tmp_path / f"log{t}"))
        moment = moments[t % len(moments)]
        try:
            _ready(proc, ack_path, "the publisher")
            mtime = os.stat(sqlite).st_mtime_ns
            fired = {
                # the online store's file written (the rows), the publish not yet recorded in the lake
                "data": lambda m=mtime: (
                    os.stat(sqlite).st_mtime_ns != m or any(os.path.exists(sqlite + s) for s in ("-journal", "-wal"))
                ),
                # the publish recorded in _feature_store.online_publishes, the call not returned
                "commit": Watch([os.path.join(store_dir, "online_publishes")], "commit").fired,
                "random": None,
            }[moment]
            killed = kill_when(proc, fired, delay=rng.uniform(0, 1.0))
        finally:
            stop(proc)
        lines = acks(ack_path)
        assert not errors_in(lines), f"trial {t}: {errors_in(lines)}\n{tail(str(tmp_path / f'log{t}'))}"
        outcomes[moment if killed else "exited"] += 1
        _every_table_reads_whole(root)
        with SqliteOnlineStore().connect(root) as backend:
            marker = backend.marker("cf")
        held = marker.version if marker is not None else None
        acked = [line for line in lines if line[0] == "published"]
        assert held in (published, version), f"trial {t}: the store holds version {held}"
        if acked:
            assert held == version == int(acked[0][1])
        # the online rows are exactly the version the store says it holds: never a mix of two
        everything = list(range(KEYS + 5 * (t + 1)))
        online, oracle = _online(fs, everything), _table_at(path, held)
        mismatches += sum(1 for k in everything if online.get(k) != oracle.get(k))
        checked += len(everything)
        assert online == oracle, f"trial {t} ({moment}): online != version {held}"
        # the next publisher proceeds, and the store then holds the latest version
        fs.publish_table("cf")
        assert _online(fs, everything) == _table_at(path, version)
        published = version
    figures.update(trials=n, moments=dict(outcomes), online_keys_checked=checked, keys_not_as_published=mismatches)
