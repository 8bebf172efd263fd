"""The `maintain` job (issue 15): OPTIMIZE + VACUUM over a lake's tables, idempotent, safe with live writers.

Oracles: the values the test (or a writer process) logged and saw acknowledged, and the tables' rows read by
delta-spark at a version from before maintain ran; never the store or maintain's own figures alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder
from mlflow import MlflowClient

from jobs._maintain import COLD_MAX_ROWS, _cold_options, _lean_table, maintain
from jobs.errors import InvalidJobArgumentError
from lakehouse import Lakehouse, find_tables
from tracking import LakehouseTrackingStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_TABLES = ("mlflow.metrics", "mlflow.params", "mlflow.tags")


def _versions(root: str) -> dict[str, int]:
    return {n: DeltaTable(os.path.join(root, *n.split("."))).version() for n in find_tables(root)}


def _rows(spark, root: str, name: str) -> list[tuple]:
    """The latest rows, read by delta-spark."""
    return sorted(tuple(r) for r in spark.read.format("delta").load(os.path.join(root, *name.split("."))).collect())


def _rows_at(root: str, name: str, version: int | None = None) -> list[tuple]:
    """The rows at `version` (default latest), read by delta-rs' own engine: a reader independent of the store's."""
    table = DeltaTable(os.path.join(root, *name.split(".")), version=version)
    out = pa.table(QueryBuilder().register("t", table).execute("select * from t").read_all())
    return sorted(tuple(r.values()) for r in out.to_pylist())


@pytest.fixture
def tracked(tmp_path):
    """A lake with 3 runs written call by call (one small commit each): (root, {run_id: logged values})."""
    root = str(tmp_path / "lake")
    client = MlflowClient(f"lakehouse://{root}")
    exp = client.create_experiment("maintain")
    logged = {}
    for r in range(3):
        run_id = client.create_run(exp).info.run_id
        losses = [round(1.0 / (s + 1) + r, 6) for s in range(25)]
        for step, loss in enumerate(losses):
            client.log_metric(run_id, "loss", loss, step=step)
        params = {f"p{i}": f"{r}-{i}" for i in range(6)}
        for k, v in params.items():
            client.log_param(run_id, k, v)
            client.set_tag(run_id, f"t{k}", v)
        logged[run_id] = (losses, params)
    return root, logged


def test_tracking_tables_are_compacted_clustered_and_keep_every_row(tracked, spark):
    root, logged = tracked
    before = _versions(root)
    result = maintain(f"lakehouse://{root}", vacuum=False)

    figures = result["tables"]
    for name in RUN_TABLES:
        f = figures[name]
        assert f["files_before"] >= 15 and f["files_after"] == 1, (name, f)
        assert f["optimize"]["files_removed"] == f["files_before"] and f["optimize"]["z_order_by"] == ["run_id"]
        # Readers see the same rows at the version before OPTIMIZE (time travel) and at the latest.
        assert _rows_at(root, name) == _rows_at(root, name, before[name])
    assert _rows(spark, root, "mlflow.metrics") == _rows_at(root, "mlflow.metrics", before["mlflow.metrics"])
    assert figures["mlflow.journal"]["optimize"]["skipped"].startswith("transient")
    assert result["totals"]["files_after"] < result["totals"]["files_before"]

    # The merged file is what the store's own compaction writes: sorted by run id, Bloom filter of its run ids.
    history = DeltaTable(os.path.join(root, "mlflow", "metrics"))
    (add,) = pa.table(history.get_add_actions(flatten=True)).to_pylist()
    log = os.path.join(root, "mlflow", "metrics", "_delta_log", f"{history.version():020d}.json")
    with open(log) as f:
        actions = [json.loads(line) for line in f]
    (new,) = [a["add"] for a in actions if "add" in a]
    assert new["dataChange"] is False and "lakehouse.bloom.run_id" in new["tags"]
    run_ids = pq.read_table(os.path.join(root, "mlflow", "metrics", add["path"])).column("run_id").to_pylist()
    assert run_ids == sorted(run_ids) and set(run_ids) == set(logged)

    # A fresh store (cold start from the checkpoint maintain wrote) answers with what was logged.
    store = LakehouseTrackingStore(f"lakehouse://{root}")
    for run_id, (losses, params) in logged.items():
        assert [m.value for m in store.get_metric_history(run_id, "loss")] == losses
        run = store.get_run(run_id)
        assert run.data.params == params
        assert {k: v for k, v in run.data.tags.items() if k.startswith("t")} == {f"t{k}": v for k, v in params.items()}
        assert run.data.metrics["loss"] == losses[-1]

    # Idempotent: a second run commits nothing anywhere.
    after = _versions(root)
    again = maintain(root, vacuum=False)
    assert again["totals"]["commits"] == 0 and _versions(root) == after


def test_cold_options_read_back_are_the_stores(tracked):
    """The clustering options maintain reads back from a table's files match the ones the store declares."""
    from tracking._schema import COLD_TABLES  # the store's own declaration, as the oracle

    root, _ = tracked
    checked = 0
    for name, declared in COLD_TABLES.items():
        table = _lean_table(root, name)
        if not table.files:
            continue  # nothing written (traces, inputs): nothing to infer, nothing to compact
        options = _cold_options(table)
        assert options is not None
        assert options["cluster_by"] == declared["cluster_by"]
        assert options["stats_columns"] == tuple(declared["stats_columns"])
        assert declared.get("max_merge_rows", 1_000_000) >= COLD_MAX_ROWS
        checked += 1
    assert checked >= 5


def test_unknown_table_is_refused_before_anything_is_written(tracked):
    root, _ = tracked
    before = _versions(root)
    with pytest.raises(InvalidJobArgumentError) as info:
        maintain(root, tables=["mlflow.metrics", "features.nope"], vacuum=False)
    assert info.value.argument == "tables"
    assert "features.nope" in str(info.value) and "mlflow.metrics" in info.value.expected
    assert _versions(root) == before


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"retention_hours": -1}, "retention_hours"),
        ({"retention_hours": float("nan")}, "retention_hours"),
        ({"optimize": "yes"}, "optimize"),
        ({"dry_run": None}, "dry_run"),
        ({"tables": [3]}, "tables"),
        ({"zorder": {"mlflow.metrics": ["step"]}, "vacuum": False}, "zorder"),
        ({"zorder": ["mlflow.metrics"]}, "zorder"),
    ],
)
def test_bad_arguments_are_refused(tracked, kwargs, argument):
    root, _ = tracked
    before = _versions(root)
    with pytest.raises(InvalidJobArgumentError) as info:
        maintain(root, **kwargs)
    assert info.value.argument == argument
    assert _versions(root) == before


def test_feature_table_is_compacted_z_ordered_and_vacuumed(tmp_path, spark):
    root = str(tmp_path / "lake")
    lh = Lakehouse(root, spark=spark, engine="deltalake")
    rows = [(i, f"c{i % 7}", float(i) / 3) for i in range(40)]
    lh.create_table(
        "features.customers",
        spark.createDataFrame(rows[:8], "id long, segment string, score double"),
        properties={"lakehouse.zorder.columns": "segment", "delta.deletedFileRetentionDuration": "interval 0 hours"},
    )
    for i in range(8, 40, 8):
        lh.append("features.customers", spark.createDataFrame(rows[i : i + 8], "id long, segment string, score double"))
    before = lh.latest_version("features.customers")
    files_before = set(lh.data_files("features.customers").files)

    # A retention below a table's own is refused (the feature table allows 0 hours; mlflow tables are absent).
    dry = maintain(root, tables=["features.customers"])  # optimize, then a dry-run VACUUM
    f = dry["tables"]["features.customers"]
    assert f["files_before"] == len(files_before) >= 5 and f["files_after"] == 1
    assert f["optimize"]["z_order_by"] == ["segment"]
    assert sorted(tuple(r) for r in lh.read("features.customers").collect()) == sorted(rows)
    assert _rows_at(root, "features.customers", before) == sorted(rows)
    # The dry run lists the compacted-away files (0 hours of retention) and deletes none.
    listed = {os.path.join(lh.table_path("features.customers"), p) for p in f["vacuum"]["paths"]}
    assert f["vacuum"]["dry_run"] and listed == files_before and all(os.path.exists(p) for p in listed)
    assert f["vacuum"]["bytes"] == sum(os.path.getsize(p) for p in listed) == f["bytes_before"]

    # No new Z-order of an unchanged table; the real VACUUM deletes exactly those files (Delta logs it as commits).
    real = maintain(root, tables=["features.customers"], dry_run=False)
    assert real["totals"]["commits"] == 0
    assert real["tables"]["features.customers"]["vacuum"]["files"] == len(files_before)
    assert not any(os.path.exists(p) for p in files_before)
    assert sorted(tuple(r) for r in lh.read("features.customers").collect()) == sorted(rows)
    # Delta's VACUUM removes the folders it emptied at its next run (no data bytes); from then on nothing changes.
    folders = maintain(root, tables=["features.customers"], dry_run=False)["tables"]["features.customers"]
    assert folders["commits"] == 0 and folders["vacuum"]["bytes"] == 0
    version = lh.latest_version("features.customers")
    again = maintain(root, tables=["features.customers"], dry_run=False)
    assert again["totals"]["commits"] == 0 and again["totals"]["vacuum_files"] == 0, again
    assert lh.latest_version("features.customers") == version


def test_retention_below_a_tables_own_is_refused(tmp_path, spark):
    root = str(tmp_path / "lake")
    lh = Lakehouse(root, spark=spark, engine="deltalake")
    lh.create_table("features.a", spark.createDataFrame([(1,)], "id long"))
    lh.create_table("features.b", spark.createDataFrame([(1,)], "id long"))
    lh.append("features.a", spark.createDataFrame([(2,)], "id long"))
    before = _versions(root)
    with pytest.raises(InvalidJobArgumentError) as info:
        maintain(root, retention_hours=1, dry_run=False)
    assert info.value.argument == "retention_hours" and "features.a" in str(info.value) and "168" in str(info.value)
    assert _versions(root) == before


WRITER = textwrap.dedent(
    """
    import os, sys
    from mlflow import MlflowClient
    uri, run_id, stop, acks = sys.argv[1:]
    client = MlflowClient(uri)
    step = 0
    with open(acks, "a") as out:
        while not os.path.exists(stop):
            client.log_metric(run_id, "m", step * 0.5, step=step)
            if step % 5 == 0:
                client.log_param(run_id, f"p{step}", str(step))
            out.write(f"{step}\\n")
            out.flush()
            step += 1
    """
)
MAINTAIN = (
    "import json, sys; from jobs._maintain import maintain; print(json.dumps(maintain(sys.argv[1], vacuum=False)))"
)


def _acked(path) -> list[int]:
    with open(path) as f:
        return [int(line) for line in f if line.endswith("\n")]


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_two_maintains_while_a_writer_logs_lose_and_duplicate_nothing(tmp_path, spark):
    root = str(tmp_path / "lake")
    uri = f"lakehouse://{root}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("live")).info.run_id
    stop, acks = tmp_path / "stop", tmp_path / "acks"
    acks.touch()
    env = {**os.environ, "PYTHONPATH": ROOT}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, uri, run_id, str(stop), str(acks)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: len(_acked(acks)) >= 120, 120, "the writer's first points")
        at_start = len(_acked(acks))
        maintainers = [
            subprocess.Popen(
                [sys.executable, "-c", MAINTAIN, root],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=300) for p in maintainers]
        for p, (_, err) in zip(maintainers, outputs, strict=True):
            assert p.returncode == 0, f"maintain exited {p.returncode}:\n{err[-3000:]}"
        at_end = len(_acked(acks))
        _wait_for(lambda: len(_acked(acks)) >= at_end + 20, 120, "points logged after maintain")
    finally:
        stop.touch()
        _, werr = writer.communicate(timeout=120)
    assert writer.returncode == 0, werr[-3000:]
    assert at_end > at_start, "the writer logged nothing while maintain ran"

    results = [json.loads(out) for out, _ in outputs]
    # The store compacts its own small files too (every ~40): which tables still had two small files when each
    # maintain looked depends on timing, so some table, not a given one, was compacted.
    optimized = [v for r in results for v in r["tables"]["mlflow.metrics"]["optimize"]["versions"]]
    assert any(f["commits"] for r in results for f in r["tables"].values()), "neither maintain compacted anything"

    acked = _acked(acks)
    assert acked == list(range(len(acked)))
    fresh = LakehouseTrackingStore(uri)
    history = fresh.get_metric_history(run_id, "m")
    assert sorted((m.step, m.value) for m in history) == [(s, s * 0.5) for s in acked]  # each point exactly once
    assert fresh.get_run(run_id).data.params == {f"p{s}": str(s) for s in acked if s % 5 == 0}
    metrics = _rows(spark, root, "mlflow.metrics")  # delta-spark reads what the two maintains left
    assert len(metrics) == len(acked) == len({(r[0], r[1], r[4]) for r in metrics})  # run, key, step once each
    # Every OPTIMIZE commit left the rows as they were just before it (time travel across it).
    for version in optimized:
        assert _rows_at(root, "mlflow.metrics", version) == _rows_at(root, "mlflow.metrics", version - 1)
