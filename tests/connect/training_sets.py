"""The workload of the Spark Connect test: feature tables prepared on a classic session (`prepare`), then the
same training sets built by either kind of session (`build`), as sorted JSON-ready rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from feature_store import FeatureLookup, FeatureStoreClient

T0 = datetime(2026, 1, 1, tzinfo=UTC)
THRESHOLD_CONF = "spark.lakehouse.featureStore.localJoinThreshold"


def prepare(fs: FeatureStoreClient, spark: SparkSession) -> None:
    rows = [(c, T0 + timedelta(days=d), float(c * 100 + d), f"s{c}-{d}") for c in range(1, 21) for d in range(0, 30, 3)]
    features = spark.createDataFrame(rows, "customer_id long, ts timestamp, spend double, segment string")
    fs.create_table("shop.customer_features", ["customer_id"], features, timestamp_keys="ts")
    updates = spark.createDataFrame(
        [(3, T0 + timedelta(days=3), -1.0, "fixed"), (5, T0 + timedelta(days=31), 531.0, "late")], features.schema
    )
    fs.write_table("shop.customer_features", updates, mode="merge")
    countries = spark.createDataFrame(
        [(c, "DE" if c % 2 else "FR") for c in range(1, 21)], "customer_id long, country string"
    )
    fs.create_table("shop.customer_country", ["customer_id"], countries)


def build(fs: FeatureStoreClient, spark: SparkSession) -> dict[str, list[dict[str, Any]]]:
    labels = spark.createDataFrame(
        [(c, T0 + timedelta(days=d, hours=5), (c + d) % 2) for c in range(0, 22, 2) for d in (0, 4, 17, 40)],
        "customer_id long, label_ts timestamp, churn int",
    )
    lookups = [
        FeatureLookup("shop.customer_features", lookup_key="customer_id", timestamp_lookup_key="label_ts"),
        FeatureLookup(
            "shop.customer_features",
            lookup_key="customer_id",
            timestamp_lookup_key="label_ts",
            feature_names=["spend"],
            rename_outputs={"spend": "spend_7d"},
            lookback_window=timedelta(days=7),
        ),
        FeatureLookup("shop.customer_country", lookup_key="customer_id"),
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    for path, threshold in (("default", None), ("distributed", "-1")):
        if threshold is not None:
            spark.conf.set(THRESHOLD_CONF, threshold)
        try:
            df = fs.create_training_set(labels, lookups, label="churn").load_df()
            rows = [
                {k: (v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v) for k, v in r.asDict().items()}
                for r in df.collect()
            ]
        finally:
            if threshold is not None:
                spark.conf.unset(THRESHOLD_CONF)
        out[path] = sorted(rows, key=lambda r: (r["customer_id"], r["label_ts"]))
    return out
