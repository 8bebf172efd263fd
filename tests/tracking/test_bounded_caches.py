"""A long-lived tracking store (an MLflow server worker) keeps its caches bounded, and what it evicts it reads again
the same."""

from __future__ import annotations

from mlflow import MlflowClient

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
