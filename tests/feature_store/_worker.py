"""A separate process that builds and loads a training set through the feature store's local join path.

python _worker.py ROOT            # creates the feature table on first use, then load_df() and exit
"""

import sys

from feature_store import FeatureLookup, FeatureStoreClient
from lakehouse import local_spark


def main(root: str) -> None:
    spark = local_spark(master="local[1]", shuffle_partitions=1)
    fs = FeatureStoreClient(root=root, spark=spark)
    feats = spark.sql("select id % 50 as k, timestamp_seconds(id * 60) as ts, rand(1) as f from range(2000)")
    if "feats" not in [t.name for t in fs.list_tables()]:
        fs.create_table(name="feats", primary_keys=["k"], timestamp_keys=["ts"], df=feats)
    labels = spark.sql("select id % 50 as k, timestamp_seconds(id * 97) as label_ts, id % 2 as y from range(500)")
    # a DataFrame over range() has a plan size estimate (8 kB), so the local (in-driver Arrow) path is taken
    ts = fs.create_training_set(
        df=labels,
        label="y",
        feature_lookups=[
            FeatureLookup(table_name="feats", feature_names=["f"], lookup_key="k", timestamp_lookup_key="label_ts")
        ],
    )
    assert ts.load_df().count() == 500
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
