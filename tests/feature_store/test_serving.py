"""A feature-aware model served: called with keys only, it reads its features from the online store.

In process (`mlflow.pyfunc.load_model(...).predict`) and through a real `mlflow models serve` on 127.0.0.1, on
the embedded SQLite store and on a real redis-server. The oracle is `score_batch` on the same keys at a time
after every feature row (the offline point-in-time join at the latest version): the same predictions.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import urllib.error
import uuid

import mlflow
import pandas as pd
import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts
from model_server import model_server
from trained_model import MODEL

from feature_store import RedisOnlineStore, SqliteOnlineStore, errors

KEYS = [
    {"request_id": "a", "customer_id": 1, "region": 10},
    {"request_id": "b", "customer_id": 2, "region": 20},
    {"request_id": "c", "customer_id": 3, "region": 30},  # customer and region with no row: the defaults
]
STORE_ENV = (
    "LAKEHOUSE_SERVING_ROOT",
    "LAKEHOUSE_ONLINE_STORE",
    "LAKEHOUSE_ONLINE_SQLITE_PATH",
    "LAKEHOUSE_REDIS_HOST",
    "LAKEHOUSE_REDIS_PORT",
)


@pytest.fixture(autouse=True)
def _in_the_models_lake(tracking, monkeypatch) -> None:
    for var in STORE_ENV:
        monkeypatch.delenv(var, raising=False)


def _offline_predictions(trained, spark, keys=KEYS) -> list[float]:
    """score_batch on the keys at a time after every feature row: the latest offline values."""
    df = spark.createDataFrame(
        [(k["request_id"], k["customer_id"], k["region"], ts(28)) for k in keys],
        "request_id string, customer_id long, region long, label_ts timestamp",
    )
    scored = trained.fs.score_batch(f"models:/{MODEL}/Production", df).toPandas()
    return scored.set_index("request_id").loc[[k["request_id"] for k in keys], "prediction"].tolist()


@pytest.fixture(scope="module")
def published(trained):
    """Both tables published to the default store (SQLite in the lake)."""
    for table in ("customer_features", "region_features"):
        trained.fs.publish_table(table)
    return trained


def test_keys_only_input_reads_the_online_store_in_process(published, spark):
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    got = model.predict(pd.DataFrame(KEYS)).tolist()
    assert got == _offline_predictions(published, spark)
    # a feature given as a column is used as given (the others are still read online)
    given = pd.DataFrame(KEYS).assign(r1=[1000.0, 1000.0, 1000.0])
    expected = published.model.predict(
        pd.DataFrame({"f1": [5.0, 2.0, -1.0], "g2": [0.0, 20.0, 0.0], "r1": [1000.0] * 3})
    ).tolist()
    assert model.predict(given).tolist() == expected


def test_a_request_without_its_keys_is_refused_naming_them(published):
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    with pytest.raises(errors.MissingScoringColumnsError, match=r"\['customer_id'\].*customer_features") as err:
        model.predict(pd.DataFrame([{"region": 10}]))
    assert err.value.missing == ["customer_id"]


def test_the_lake_a_served_model_reads_is_its_own_unless_serving_root_says_otherwise(published, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_ROOT", str(tmp_path / "some-other-default-lake"))  # not the model's business
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    assert len(model.predict(pd.DataFrame(KEYS))) == 3
    monkeypatch.setenv("LAKEHOUSE_SERVING_ROOT", str(tmp_path / "empty-lake"))
    moved = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    with pytest.raises(errors.OnlineTableNotPublishedError, match="empty-lake"):
        moved.predict(pd.DataFrame(KEYS))


def test_the_served_model_answers_keys_only_requests(published, spark):
    """A real `mlflow models serve -m models:/<name>/Production --env-manager local` on 127.0.0.1."""
    expected = _offline_predictions(published, spark)
    with model_server(f"models:/{MODEL}/Production", {"MLFLOW_TRACKING_URI": published.tracking_uri}) as server:
        answer = server.invoke(KEYS)
        one = server.invoke(KEYS[:1])
        with pytest.raises(urllib.error.HTTPError) as bad:  # no customer_id: the server answers with an error
            server.invoke([{"region": 10}])
    assert answer["predictions"] == expected, server.log[-3000:]
    assert one["predictions"] == expected[:1]
    assert bad.value.code >= 400 and "customer_id" in bad.value.read().decode()


def test_check_consistency_finds_every_altered_row_and_reports_staleness(published, spark):
    fs = published.fs
    uri = f"models:/{MODEL}/Production"
    report = fs.check_consistency(uri)
    assert report.ok, str(report)
    assert {(t.table, t.keys_checked, t.stale) for t in report.tables} == {
        ("customer_features", 2, False),
        ("region_features", 2, False),
    }
    assert {t.features for t in report.tables} == {("f1", "f2"), ("r1",)}
    # something else writes to the store: customer 1 gets customer 2's row, region 20's row disappears
    path = SqliteOnlineStore().resolved_path(fs.lakehouse.root)
    with sqlite3.connect(path) as db:
        rows = dict(db.execute("SELECT key, value FROM fs_online_rows WHERE table_name = 'customer_features'"))
        one, two = sorted(rows)
        db.execute("UPDATE fs_online_rows SET value = ? WHERE key = ?", (rows[two], one))
        db.execute("DELETE FROM fs_online_rows WHERE table_name = 'region_features' AND key = '[20]'")
    report = fs.check_consistency(uri, sample=10)
    assert not report.ok
    found = {(m.table, m.key, m.feature, m.offline, m.online, m.online_row) for m in report.mismatches}
    assert found == {
        ("customer_features", (1,), "f1", 5.0, 2.0, True),  # customer 1's latest row is day 5: f1 5.0, f2 null
        ("customer_features", (1,), "f2", None, 20.0, True),
        ("region_features", (20,), "r1", 200.0, None, False),
    }
    assert "MISMATCH" in str(report)
    fs.publish_table("customer_features", mode="overwrite")
    fs.publish_table("region_features", mode="overwrite")
    assert fs.check_consistency(uri).ok
    with pytest.raises(errors.ArgumentTypeError, match="sample"):
        fs.check_consistency(uri, sample=0)


def test_a_model_serves_from_the_store_its_tables_were_last_published_to(published, spark, redis, monkeypatch):
    """Published to Redis after SQLite, then a merge published to Redis only: the model reads Redis (the newer
    values); $LAKEHOUSE_ONLINE_STORE=sqlite sends it back to SQLite (the older ones)."""
    fs = published.fs
    before = _offline_predictions(published, spark)
    store = RedisOnlineStore(port=redis.port, prefix=f"serve{uuid.uuid4().hex[:8]}")
    for table in ("customer_features", "region_features"):
        fs.publish_table(table, online_store=store)
    fs.write_table("customer_features", spark.createDataFrame([(2, ts(7), 7.0, 70.0)], FEATURES_SCHEMA), mode="merge")
    fs.publish_table("customer_features", online_store=store)
    after = _offline_predictions(published, spark)
    assert after[1] != before[1] and after[0] == before[0]  # customer 2 changed, and only it

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    assert model.predict(pd.DataFrame(KEYS)).tolist() == after
    monkeypatch.setenv("LAKEHOUSE_ONLINE_STORE", "sqlite")
    assert mlflow.pyfunc.load_model(f"models:/{MODEL}/Production").predict(pd.DataFrame(KEYS)).tolist() == before
    # the same through a served model
    monkeypatch.delenv("LAKEHOUSE_ONLINE_STORE")
    with model_server(f"models:/{MODEL}/Production", {"MLFLOW_TRACKING_URI": published.tracking_uri}) as server:
        assert server.invoke(KEYS)["predictions"] == after, server.log[-3000:]
    # SQLite still holds the older version: consistent with what it holds, and reported stale
    report = fs.check_consistency(f"models:/{MODEL}/Production", online_store=SqliteOnlineStore())
    assert report.ok and {t.table for t in report.tables if t.stale} == {"customer_features"}
    assert fs.check_consistency(f"models:/{MODEL}/Production").ok  # each table's last store: Redis, current
    fs.publish_table("customer_features", online_store=SqliteOnlineStore())  # leave both stores current


@pytest.mark.skipif(
    not os.environ.get("LAKEHOUSE_TEST_SERVE_ENV"),
    reason="builds the model's own environment from PyPI with uv (~1 GB, minutes): make test-serve-env",
)
def test_the_served_model_builds_its_own_environment(published, spark):
    """`mlflow models serve --env-manager uv`: a fresh environment from the model's requirements (lakehouse-ml's
    dependencies, pinned) with lakehouse-ml's code from the model itself, answering keys-only requests."""
    assert shutil.which("uv", path=os.path.dirname(sys.executable)), "make test-serve-env installs uv"
    fs = published.fs
    for table in ("customer_features", "region_features"):
        fs.publish_table(table, online_store=SqliteOnlineStore())
    expected = _offline_predictions(published, spark)
    env = {"MLFLOW_TRACKING_URI": published.tracking_uri, "LAKEHOUSE_ONLINE_STORE": "sqlite"}
    with model_server(f"models:/{MODEL}/Production", env, env_manager="uv", timeout=1800) as server:
        assert server.invoke(KEYS)["predictions"] == expected, server.log[-3000:]
