"""Fixtures for the feature store: a client on a fresh lake per test, and helpers to build typed rows."""

from __future__ import annotations

import pytest
import redis_server
from feature_store_helpers import FEATURES_SCHEMA, ts
from trained_model import tracking, trained  # noqa: F401  (fixtures: a feature-aware model logged through MLflow)

from feature_store import FeatureStoreClient
from feature_store._local import THRESHOLD_CONF


@pytest.fixture
def fs(tmp_path, spark) -> FeatureStoreClient:
    return FeatureStoreClient(root=str(tmp_path / "lake"), spark=spark)


@pytest.fixture(params=["local", "distributed"])
def join_path(request, spark, monkeypatch) -> str:
    """Runs a test once per point-in-time join path, each forced: "local" takes the in-driver path whatever
    Spark estimates for the labels (DataFrames built from Python rows have no size estimate), "distributed"
    sets the threshold to -1. Asserts that the path asked for is the one taken."""
    from feature_store import _training_set

    taken = []
    real_local, real_plan = _training_set.run_local, _training_set.point_in_time_join
    monkeypatch.setattr(_training_set, "run_local", lambda *a, **k: taken.append("local") or real_local(*a, **k))
    monkeypatch.setattr(
        _training_set, "point_in_time_join", lambda *a, **k: taken.append("distributed") or real_plan(*a, **k)
    )
    if request.param == "local":
        monkeypatch.setattr(_training_set, "labels_size", lambda df: 0)
        spark.conf.set(THRESHOLD_CONF, "1g")
    else:
        spark.conf.set(THRESHOLD_CONF, "-1")
    yield request.param
    spark.conf.unset(THRESHOLD_CONF)
    assert not taken or set(taken) == {request.param}, taken


@pytest.fixture
def customer_features(fs, spark):
    rows = [
        (1, ts(1), 1.0, 10.0),
        (1, ts(3), 3.0, 30.0),
        (1, ts(5), 5.0, None),
        (2, ts(2), 2.0, 20.0),
    ]
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame(rows, FEATURES_SCHEMA),
        description="test features",
        tags={"team": "risk"},
    )
    return "customer_features"


@pytest.fixture(scope="session")
def redis(tmp_path_factory):
    """A real redis-server for the run (`make test` installs it); fails, naming the fix, when it is missing."""
    try:
        server = redis_server.start(tmp_path_factory.mktemp("redis"))
    except redis_server.RedisServerMissing as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()
