"""FeatureEngineeringClient: Databricks' current client's signatures over the same tables as FeatureStoreClient."""

import inspect

import pytest
from feature_store_helpers import FEATURES_SCHEMA, LABELS_SCHEMA, ts

from feature_store import FeatureEngineeringClient, FeatureLookup, errors

ROWS = [(1, ts(1), 1.0, 10.0), (1, ts(3), 3.0, 30.0), (2, ts(2), 2.0, 20.0)]


@pytest.fixture
def fe(tmp_path, spark) -> FeatureEngineeringClient:
    return FeatureEngineeringClient(root=str(tmp_path / "lake"), spark=spark)


def test_databricks_code_runs_with_only_the_import_changed(fe, spark):
    # as in Databricks' docs: the timeseries column is one of the primary keys, every argument by keyword
    table = fe.create_table(
        name="ml.recsys.customer_features",
        primary_keys=["customer_id", "ts"],
        timeseries_columns="ts",
        df=spark.createDataFrame(ROWS, FEATURES_SCHEMA),
        description="daily aggregates",
    )
    assert (table.primary_keys, table.timestamp_keys) == (("customer_id",), ("ts",))
    version = fe.write_table(
        name="ml.recsys.customer_features", df=spark.createDataFrame([(2, ts(2), 2.5, 25.0)], FEATURES_SCHEMA)
    )
    assert version == 1
    got = sorted((r.customer_id, r.f1, r.f2) for r in fe.read_table(name="ml.recsys.customer_features").collect())
    assert got == [(1, 1.0, 10.0), (1, 3.0, 30.0), (2, 2.5, 25.0)]  # merged by (key, ts)
    assert fe.read_table(name="ml.recsys.customer_features", version=0).count() == 3
    fe.set_feature_table_tag(name="ml.recsys.customer_features", key="team", value="recs")
    assert fe.get_table(name="ml.recsys.customer_features").tags == {"team": "recs"}
    fe.delete_feature_table_tag(name="ml.recsys.customer_features", key="team")
    assert fe.get_table(name="ml.recsys.customer_features").tags == {}

    labels = spark.createDataFrame([(1, ts(4), 1), (2, ts(1), 0)], LABELS_SCHEMA)
    training = fe.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                table_name="ml.recsys.customer_features", lookup_key="customer_id", timestamp_lookup_key="label_ts"
            )
        ],
        label="churn",
    )
    rows = {r["customer_id"]: (r["f1"], r["f2"]) for r in training.load_df().collect()}
    assert rows == {1: (3.0, 30.0), 2: (None, None)}  # point in time: day 3 for a day-4 label, nothing before day 2
    # the same table through the older client
    assert fe.fs_client.get_table("ml.recsys.customer_features").latest_version == 1
    fe.drop_table(name="ml.recsys.customer_features")
    assert fe.fs_client.list_tables() == []


def test_the_older_client_also_takes_the_timestamp_key_among_the_primary_keys(fe, spark):
    fs = fe.fs_client
    t = fs.create_table(
        "both", ["customer_id", "ts"], spark.createDataFrame(ROWS, FEATURES_SCHEMA), timestamp_keys="ts"
    )
    assert (t.primary_keys, t.timestamp_keys) == (("customer_id",), ("ts",))
    with pytest.raises(errors.InvalidArgumentError, match="besides the timestamp key"):
        fs.create_table("only_ts", ["ts"], spark.createDataFrame(ROWS, FEATURES_SCHEMA), timestamp_keys="ts")
    assert [x.name for x in fs.list_tables()] == ["both"]


def test_databricks_rules_are_refused_with_what_to_do(fe, spark):
    df = spark.createDataFrame(ROWS, FEATURES_SCHEMA)
    with pytest.raises(errors.InvalidArgumentError, match="timeseries columns must be primary keys"):
        fe.create_table(name="t", primary_keys="customer_id", timeseries_columns="ts", df=df)
    with pytest.raises(errors.InvalidArgumentError, match="not an argument"):
        fe.create_table(name="t", primary_keys=["customer_id", "ts"], timeseries_columns="ts", df=df, bogus=1)
    assert fe.fs_client.list_tables() == [], "nothing written"
    fe.create_table(name="t", primary_keys=["customer_id", "ts"], timestamp_keys="ts", df=df)  # Databricks' alias
    with pytest.raises(errors.InvalidArgumentError, match="only 'merge'"):
        fe.write_table(name="t", df=df, mode="overwrite")
    assert fe.get_table(name="t").latest_version == 0, "nothing written"
    with pytest.raises(errors.InvalidArgumentError, match=r"mlflow\.set_registry_uri"):
        FeatureEngineeringClient(root="/tmp/x", model_registry_uri="databricks-uc")


def test_every_method_is_keyword_only_as_in_databricks():
    for name in ("create_table", "write_table", "read_table", "get_table", "drop_table", "create_training_set"):
        params = list(inspect.signature(getattr(FeatureEngineeringClient, name)).parameters.values())[1:]
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), name
