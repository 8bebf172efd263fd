"""A long-lived tracking store (an MLflow server worker) keeps its caches bounded, and what it evicts it reads again
the same."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag

from tracking import LakehouseTrackingStore, _store_runs


def test_the_run_cache_keeps_the_most_recently_used_runs_only(lake_uri, monkeypatch):
    monkeypatch.setattr(_store_runs, "RUN_CACHE_SIZE", 3)
    client = MlflowClient(lake_uri)
    exp = client.create_experiment("e")
    ids = []
    for i in range(6):
        rid = client.create_run(exp, run_name=f"r{i}").info.run_id
        client.log_metric(rid, "m", float(i), step=i)
        ids.append(rid)
    store = LakehouseTrackingStore(lake_uri)
    for rid in ids:
        store.get_run(rid)
    assert list(store._run_cache) == ids[-3:]
    store.get_run(ids[3])  # a hit moves the run to the most recent end
    assert list(store._run_cache) == [ids[4], ids[5], ids[3]]
    for i, rid in enumerate(ids):  # evicted runs are read again, the same
        run = store.get_run(rid)
        assert (run.info.run_name, run.data.metrics) == (f"r{i}", {"m": float(i)})
        assert len(store._run_cache) <= 3


def _view(run) -> tuple:
    return (
        run.info.status,
        run.info.lifecycle_stage,
        run.info.run_name,
        dict(run.data.tags),
        run.data.params,
        run.data.metrics,
    )


def test_cold_run_tables_hold_no_rows_and_caches_follow_other_writers(lake_uri, monkeypatch):
    """Run rows are read on demand through bounded caches; a store that cached runs sees another store's updates
    (to runs in compacted files and in fresh ones), as a store with no cache reads them."""
    from tracking import _index

    monkeypatch.setattr(_index, "CACHE_GROUPS", 8)
    writer = LakehouseTrackingStore(lake_uri)
    client = MlflowClient(lake_uri)
    exp = client.create_experiment("e")
    ids = []
    for i in range(70):  # more single-run files than COMPACT_AFTER_FILES: the early runs end up in merged files
        rid = client.create_run(exp, run_name=f"r{i}").info.run_id
        client.log_batch(rid, params=[Param("p", str(i))], tags=[RunTag("t", "a")])
        client.log_metric(rid, "m", float(i), step=1)
        ids.append(rid)
    reader = LakehouseTrackingStore(lake_uri)
    before = {rid: _view(reader.get_run(rid)) for rid in ids}
    for name in ("mlflow.runs", "mlflow.params", "mlflow.tags", "mlflow.latest_metrics"):
        table = reader._t.tables[name]
        assert not table.keep_rows and all(f.rows is None for f in table.files.values()), name
    assert len(reader._t.params._cache) <= 8 and len(reader._t.tags._cache) <= 8
    assert len(writer._t.tables["mlflow.runs"].files) < 70, "the run rows were compacted"

    changed = [ids[0], ids[1], ids[35], ids[-1]]
    for rid in changed:  # these four are in the reader's caches when the writer changes them
        reader.get_run(rid)
    writer.set_tag(changed[0], RunTag("t", "b"))
    writer.update_run_info(changed[1], RunStatus.FINISHED, 5, "renamed")
    writer.delete_run(changed[2])
    writer.log_metric(changed[3], Metric("m", 99.0, 2, 2))
    writer.log_param(changed[3], Param("q", "new"))

    fresh = LakehouseTrackingStore(lake_uri)
    for rid in changed + ids:
        assert _view(reader.get_run(rid)) == _view(fresh.get_run(rid))
        assert (_view(reader.get_run(rid)) == before[rid]) == (rid not in changed), rid
    assert reader.get_run(changed[0]).data.tags["t"] == "b"
    assert reader.get_run(changed[1]).info.run_name == "renamed"
    assert reader.get_run(changed[2]).info.lifecycle_stage == "deleted"
    assert reader.get_run(changed[3]).data.metrics["m"] == 99.0
    assert reader.get_run(changed[3]).data.params == {"p": "69", "q": "new"}
