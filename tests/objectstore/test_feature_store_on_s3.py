"""The feature store on a lake in a bucket: metadata commits on the object store, merge writes, and the same
point-in-time training set from the driver-side path and the distributed path, checked against a pandas
`merge_asof` oracle."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_store_helpers import FEATURES_SCHEMA, LABELS_SCHEMA, ts

from feature_store import FeatureLookup, FeatureStoreClient
from feature_store._local import THRESHOLD_CONF


@pytest.fixture
def fs(spark, s3_root):
    return FeatureStoreClient(s3_root, spark=spark)


def test_merge_writes_and_point_in_time_training_sets_on_s3(spark, fs, s3_root):
    features = [(c, ts(d), float(c * 10 + d), float(d)) for c in (1, 2, 3) for d in (1, 3, 5)]
    fs.create_table(
        "shop.customers", ["customer_id"], spark.createDataFrame(features, FEATURES_SCHEMA), timestamp_keys="ts"
    )
    fs.write_table(
        "shop.customers",
        spark.createDataFrame([(2, ts(3), -1.0, -1.0), (3, ts(7), 37.0, 7.0)], FEATURES_SCHEMA),
        mode="merge",
    )
    assert fs.lakehouse.table_path("shop.customers").startswith(f"{s3_root}/")
    assert fs.get_table("shop.customers").primary_keys == ("customer_id",)
    assert FeatureStoreClient(s3_root, spark=spark).get_table("shop.customers").timestamp_keys == ("ts",)

    labels = [(1, ts(4), 0), (2, ts(3, 12), 1), (3, ts(8), 0), (3, ts(2), 1), (4, ts(9), 0)]
    labels_df = spark.createDataFrame(labels, LABELS_SCHEMA)
    lookups = [FeatureLookup("shop.customers", lookup_key="customer_id", timestamp_lookup_key="label_ts")]

    rows = {(f[0], f[1]): f for f in features}
    rows[(2, ts(3))] = (2, ts(3), -1.0, -1.0)
    rows[(3, ts(7))] = (3, ts(7), 37.0, 7.0)
    feat = pd.DataFrame(list(rows.values()), columns=["customer_id", "ts", "f1", "f2"]).sort_values("ts")
    lab = pd.DataFrame(labels, columns=["customer_id", "label_ts", "churn"]).sort_values("label_ts")
    oracle = pd.merge_asof(lab, feat, left_on="label_ts", right_on="ts", by="customer_id").drop(columns="ts")
    expected = sorted(oracle.astype(object).where(oracle.notna(), None).itertuples(index=False, name=None), key=repr)

    for threshold in ("512m", "-1"):  # the driver-side path, then the distributed one
        spark.conf.set(THRESHOLD_CONF, threshold)
        try:
            got = fs.create_training_set(labels_df, lookups, label="churn").load_df()
            cols = ["customer_id", "label_ts", "churn", "f1", "f2"]
            actual = sorted((tuple(r[c] for c in cols) for r in got.collect()), key=repr)
        finally:
            spark.conf.unset(THRESHOLD_CONF)
        assert [(a[0], a[2], a[3], a[4]) for a in actual] == [(e[0], e[2], e[3], e[4]) for e in expected], threshold
