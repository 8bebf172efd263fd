"""Fixtures for the feature store: a client on a fresh lake per test, and helpers to build typed rows."""

from __future__ import annotations

import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts

from feature_store import FeatureStoreClient


@pytest.fixture
def fs(tmp_path, spark) -> FeatureStoreClient:
    return FeatureStoreClient(root=str(tmp_path / "lake"), spark=spark)



@pytest.fixture
def customer_features(fs, spark):
    rows = [
        (1, ts(1), 1.0, 10.0),
        (1, ts(3), 3.0, 30.0),
        (1, ts(5), 5.0, None),
        (2, ts(2), 2.0, 20.0),
    ]
    fs.create_table(name="customer_features", primary_keys=["customer_id"], timestamp_keys=["ts"],
                    df=spark.createDataFrame(rows, FEATURES_SCHEMA), description="test features",
                    tags={"team": "risk"})
    return "customer_features"
