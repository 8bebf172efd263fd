"""The clients' online-store calls: publish_table / get_online_features on the default SQLite store."""

import pytest

from feature_store import FeatureLookup, SqliteOnlineStore, errors


def test_publish_and_look_up_through_the_client(fs, customer_features, tmp_path):
    result = fs.publish_table(customer_features)  # default: a SQLite file in the lake
    assert (result.table, result.to_version, result.keys_written) == (customer_features, 0, 2)
    lookups = [FeatureLookup(table_name=customer_features, lookup_key="customer_id", rename_outputs={"f1": "x"})]
    got = fs.get_online_features(lookups, [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}])
    # the latest row per key (day 5 for customer 1, day 2 for customer 2); an unknown key gives nulls
    rows = [(r["x"], r["f2"]) for r in got.astype(object).where(got.notna(), None).to_dict("records")]
    assert rows == [(5.0, None), (2.0, 20.0), (None, None)]
    other = SqliteOnlineStore(path=str(tmp_path / "elsewhere.sqlite"))
    with pytest.raises(errors.OnlineTableNotPublishedError):
        fs.get_online_features(lookups, [{"customer_id": 1}], online_store=other)


def test_databricks_arguments_this_store_does_not_take_are_refused(fs, customer_features):
    with pytest.raises(errors.InvalidArgumentError, match="filter_condition"):
        fs.publish_table(customer_features, filter_condition="f1 > 1")
    with pytest.raises(errors.InvalidArgumentError, match="streaming"):
        fs.publish_table(customer_features, streaming=True)
    lookups = [FeatureLookup(table_name=customer_features, lookup_key="customer_id")]
    with pytest.raises(errors.OnlineTableNotPublishedError):  # nothing was published by the refused calls
        fs.get_online_features(lookups, [{"customer_id": 1}])
