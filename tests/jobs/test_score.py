"""The `score` job and the `deploy_model` trigger: a feature-aware model (tests/feature_store/trained_model.py, logged
through real MLflow on the lake) scores windows of a keys table into a Delta table. Predictions are checked against
scikit-learn on features joined by hand; rows against the keys by request id."""

# ruff: noqa: F811 - the fixtures `trained` and `tracking` are imported from trained_model, then asked for by name

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import mlflow
import pandas as pd
import pytest
from feature_store_helpers import ts
from trained_model import FEATURE_ROWS, INPUTS, LABEL_ROWS, LABELS_SCHEMA, MODEL, REGION_ROWS, tracking, trained  # noqa: F401

from feature_store import SqliteOnlineStore
from jobs._score import OUTPUT_COLUMNS, deploy_model, score
from jobs.errors import InvalidJobArgumentError

pytestmark = pytest.mark.filterwarnings("ignore")


def oracle(request_ids) -> pd.DataFrame:
    """Each keys row's features by hand (the customer's latest row at or before label_ts, the region's row, a
    missing row or null value giving the lookup's default), then scikit-learn's prediction on them."""
    out = {}
    for request_id, customer, region, at, _ in LABEL_ROWS:
        if request_id not in request_ids:
            continue
        seen = [r for r in FEATURE_ROWS if r[0] == customer and r[1] <= at]
        latest = max(seen, key=lambda r: r[1]) if seen else (None, None, None, None)
        out[request_id] = {
            "f1": -1.0 if latest[2] is None else latest[2],
            "g2": 0.0 if latest[3] is None else latest[3],
            "r1": dict(REGION_ROWS).get(region, 0.5),
        }
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


def expected_predictions(model, request_ids) -> dict[str, float]:
    features = oracle(request_ids)
    return dict(zip(features.index, model.predict(features[INPUTS]), strict=True))


@pytest.fixture(scope="module")
def challenger(trained):
    """Version 2 of the model (the same artifact registered again) under the alias `challenger`; v1 stays
    Production and `champion`."""
    client = mlflow.MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    mv = client.create_model_version(MODEL, trained.info.model_uri, run_id=trained.info.run_id)
    client.set_registered_model_alias(MODEL, "challenger", mv.version)
    return int(mv.version)


@pytest.fixture
def keys(trained, spark, tracking) -> str:
    """A keys table of the label rows without the label, fresh per test."""
    name = f"keys.requests_{uuid.uuid4().hex[:6]}"
    trained.fs.lakehouse.create_table(name, spark.createDataFrame(LABEL_ROWS, LABELS_SCHEMA).drop("y"))
    return name


def output(trained, table: str) -> pd.DataFrame:
    df = trained.fs.lakehouse.read(table).selectExpr(
        "*", "unix_micros(window_start) as ws", "unix_micros(window_end) as we", "unix_micros(label_ts) as lt"
    )
    frame = df.drop("window_start", "window_end", "label_ts", "scored_at").toPandas().set_index("request_id")
    return frame.sort_index()


def files_under(root) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def micros(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


# -- score a window, score it again --------------------------------------------------------------------------------
def test_windows_are_scored_and_a_rescored_window_replaces_its_rows(trained, challenger, keys, spark):
    root, out_table = trained.fs.lakehouse.root, f"predictions.churn_{uuid.uuid4().hex[:6]}"
    lh = trained.fs.lakehouse
    common = {"keys_table": keys, "output_table": out_table, "timestamp_column": "label_ts", "spark": spark}

    first = score(root, model_name=MODEL, stage="production", start=ts(1), end="2026-01-04", **common)
    assert (first["model_version"], first["resolved_from"], first["created"]) == (1, "stage Production", True)
    assert (first["rows_scored"], first["rows_inserted"], first["keys_version"]) == (4, 4, 0)
    got = output(trained, out_table)
    assert sorted(got.index) == ["a", "b", "e", "f"]  # label_ts in [Jan 1, Jan 4)
    assert got["prediction"].to_dict() == pytest.approx(expected_predictions(trained.model, "abef"))
    pd.testing.assert_frame_equal(got[INPUTS], oracle("abef")[INPUTS], check_names=False)
    assert set(got["model_name"]) == {MODEL} and set(got["model_version"]) == {1}
    assert set(got["ws"]) == {micros(ts(1))} and set(got["we"]) == {micros(ts(4))}
    assert [c for c in lh.read(out_table).columns if c in OUTPUT_COLUMNS] == list(OUTPUT_COLUMNS)

    second = score(root, model_name=MODEL, alias="champion", start=ts(4), **common)  # [Jan 4, +inf)
    assert (second["model_version"], second["rows_scored"], second["rows_inserted"]) == (1, 4, 4)
    assert second["window"] == {"start": ts(4).isoformat(), "end": None, "timestamp_column": "label_ts"}

    # Window 1 again with the challenger: its four rows are replaced (v2), none added; window 2 is untouched.
    before_second_window = output(trained, out_table).loc[list("cdgh")]
    again = score(root, model_name=MODEL, alias="challenger", start=ts(1), end=ts(4), **common)
    assert (again["model_version"], again["rows_inserted"], again["rows_updated"], again["rows_deleted"]) == (
        challenger,
        0,
        4,
        0,
    )
    assert len(again["commits"]) == 1  # nothing stale: one MERGE commit
    got = output(trained, out_table)
    assert len(got) == 8 and got.index.is_unique
    assert got.loc[list("abef"), "model_version"].tolist() == [challenger] * 4
    pd.testing.assert_frame_equal(got.loc[list("cdgh")], before_second_window)
    assert got["prediction"].to_dict() == pytest.approx(expected_predictions(trained.model, "abcdefgh"))

    # Request b is deleted upstream: scoring window 1 again removes its row, in the same one commit (readers see the
    # old window or the new one), and no row outside the window is touched.
    lh.overwrite(keys, lh.read(keys).where("request_id != 'b'"))
    before = lh.latest_version(out_table)
    pruned = score(root, model_name=MODEL, version=1, start=ts(1), end=ts(4), **common)
    assert (pruned["keys_version"], pruned["rows_scored"], pruned["rows_deleted"]) == (1, 3, 1)
    assert pruned["commits"] == [before + 1] and pruned["output_version"] == lh.latest_version(out_table)
    got = output(trained, out_table)
    assert sorted(got.index) == list("acdefgh")
    assert got.loc[list("aef"), "model_version"].tolist() == [1, 1, 1]
    pd.testing.assert_frame_equal(got.loc[list("cdgh")], before_second_window)


# -- the deploy trigger: the whole keys table, then the feature tables published ----------------------------------
def test_deploy_model_scores_the_production_version_and_publishes_its_feature_tables(
    trained, keys, spark, monkeypatch, tmp_path
):
    lh = trained.fs.lakehouse
    out_table = f"predictions.deployed_{uuid.uuid4().hex[:6]}"
    client = mlflow.MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    client.set_registered_model_tag(MODEL, "deploy.keys_table", keys)
    client.set_registered_model_tag(MODEL, "deploy.output_table", out_table)
    online = tmp_path / "online.sqlite"
    monkeypatch.setenv("LAKEHOUSE_ONLINE_SQLITE_PATH", str(online))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
    try:
        event = {"event": "model_version_stage.transitioned", "name": MODEL, "version": "1"}
        skipped = deploy_model({**event, "payload": {"to_stage": "Staging"}})
        assert skipped["skipped"] == "stage Staging" and not lh.exists(out_table)

        figures = deploy_model({**event, "payload": {"to_stage": "Production"}})
    finally:
        client.delete_registered_model_tag(MODEL, "deploy.keys_table")
        client.delete_registered_model_tag(MODEL, "deploy.output_table")
    assert (figures["model_version"], figures["rows_scored"], figures["created"]) == (1, 8, True)
    got = output(trained, out_table)
    assert got["prediction"].to_dict() == pytest.approx(expected_predictions(trained.model, "abcdefgh"))
    assert got["ws"].isna().all() and got["we"].isna().all()  # the whole table: no window bound
    published = {p["table"]: p for p in figures["published"]}
    assert set(published) == {"customer_features", "region_features"}
    assert (published["customer_features"]["keys_written"], published["region_features"]["keys_written"]) == (2, 2)
    # the online store holds each key's latest row (customer 1: its Jan 5 row, f2 null there)
    found = trained.fs.get_online_features(
        f"models:/{MODEL}/1",
        pd.DataFrame({"customer_id": [1, 2], "region": [10, 20]}),
        online_store=SqliteOnlineStore(),
    )
    assert found[["f1", "g2", "r1"]].astype(float).values.tolist() == [[5.0, 0.0, 100.0], [2.0, 20.0, 200.0]]


# -- bad arguments: refused, nothing written --------------------------------------------------------------------------
GOOD = {"model_name": MODEL, "stage": "Production", "timestamp_column": "label_ts", "start": ts(1), "end": ts(4)}


@pytest.mark.parametrize(
    ("change", "argument", "says"),
    [
        ({"model_name": "no_such_model"}, "model_name", f"'{MODEL}'"),
        ({"stage": None, "alias": "nope"}, "alias", "'champion'"),
        ({"stage": "Archived"}, "stage", "versions and their stages"),
        ({"stage": "Prod"}, "stage", "Production"),
        ({"alias": "champion"}, "stage/alias/version", "exactly one"),
        ({"stage": None}, "stage/alias/version", "exactly one"),
        ({"stage": None, "version": 99}, "version", "a version of registered model"),
        ({"stage": None, "version": "two"}, "version", "version number"),
        ({"keys_table": "keys.nope"}, "keys_table", "a Delta table of the lake"),
        ({"output_table": "{keys}"}, "output_table", "other than keys_table"),
        ({"timestamp_column": None}, "start", "without timestamp_column"),
        ({"timestamp_column": "request_id"}, "timestamp_column", "of type string"),
        ({"start": ts(4)}, "end", "a time after start"),
        ({"end": "soon"}, "end", "ISO 8601"),
        ({"key_columns": ["customer_id"]}, "key_columns", "repeated"),
        ({"key_columns": ["nope"]}, "key_columns", "columns of"),
        ({"keys_table": "{no_customer}"}, "keys_table", "customer_id"),
        ({"output_table": "{keys}_other", "publish_online": "yes"}, "publish_online", "True or False"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(trained, keys, spark, change, argument, says):
    lh = trained.fs.lakehouse
    no_customer = f"{keys}_nocustomer"
    lh.create_table(no_customer, lh.read(keys).drop("customer_id"))
    arguments = {**GOOD, "keys_table": keys, "output_table": f"predictions.bad_{uuid.uuid4().hex[:6]}", **change}
    for k in ("keys_table", "output_table"):
        arguments[k] = arguments[k].format(keys=keys, no_customer=no_customer)
    before = files_under(lh.root)
    with pytest.raises(InvalidJobArgumentError) as caught:
        score(lh.root, spark=spark, **arguments)
    assert (caught.value.job, caught.value.argument) == ("score", argument)
    assert says in str(caught.value), str(caught.value)
    assert files_under(lh.root) == before


def test_an_output_table_of_another_shape_is_refused(trained, keys, spark):
    lh = trained.fs.lakehouse
    other = f"predictions.other_{uuid.uuid4().hex[:6]}"
    lh.create_table(other, spark.createDataFrame([(1, 0.5)], "customer_id long, prediction double"))
    before = files_under(lh.root)
    with pytest.raises(InvalidJobArgumentError, match="it lacks") as caught:
        score(lh.root, keys_table=keys, output_table=other, spark=spark, **GOOD)
    assert caught.value.argument == "output_table" and "request_id" in str(caught.value)
    assert files_under(lh.root) == before


# -- the deploy trigger for real: a registry transition runs the job in its own process ----------------------------
@pytest.mark.slow
def test_a_transition_to_production_runs_the_deploy_trigger_in_a_process_that_exits_0(
    trained, challenger, keys, monkeypatch, tmp_path
):
    """The small version of this is the in-process `deploy_model` test above. Kept last in the module: it moves the
    challenger to Production (and back)."""
    import time

    import jobs

    lh = trained.fs.lakehouse
    out_table = f"predictions.triggered_{uuid.uuid4().hex[:6]}"
    client = mlflow.MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    client.set_registered_model_tag(MODEL, "deploy.keys_table", keys)
    client.set_registered_model_tag(MODEL, "deploy.output_table", out_table)
    monkeypatch.setenv("LAKEHOUSE_ONLINE_SQLITE_PATH", str(tmp_path / "online.sqlite"))
    trigger = jobs.create_trigger(
        lh.root, name="deploy", model_name=MODEL, stage="Production", callable="jobs._score:deploy_model"
    )
    try:
        client.transition_model_version_stage(MODEL, str(challenger), "Production")
        deadline = time.monotonic() + 900
        runs: list = []
        while not runs and time.monotonic() < deadline:
            jobs.drain(lh.root, follow_seconds=1.0)  # delivers what is due, waits for the job
            runs = jobs.list_runs(lh.root, trigger.trigger_id)
    finally:
        jobs.delete_trigger(lh.root, trigger.trigger_id)
        client.transition_model_version_stage(MODEL, str(challenger), "None")
        client.delete_registered_model_tag(MODEL, "deploy.keys_table")
        client.delete_registered_model_tag(MODEL, "deploy.output_table")
    (run,) = runs
    assert (run.status, run.exit_code, run.version) == ("succeeded", 0, str(challenger)), run.output
    got = output(trained, out_table)
    assert sorted(got.index) == list("abcdefgh") and set(got["model_version"]) == {challenger}
    assert got["prediction"].to_dict() == pytest.approx(expected_predictions(trained.model, "abcdefgh"))
