"""log_model / score_batch / load_feature_spec: feature-aware models on real MLflow with a lakehouse:/// tracking URI.

One model is trained and logged for the module (logging costs seconds); every test scores it. The oracle is
sklearn's own `predict` on the offline training DataFrame (`TrainingSet.load_df()`) or on hand-written feature rows.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from functools import partial

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts
from trained_model import (
    FEATURE_ROWS,
    INPUTS,
    LABEL_ROWS,
    LABELS_SCHEMA,
    LOOKUPS,
    MODEL,
    REGION_ROWS,
    score_batch,
)

from feature_store import FeatureStoreClient, errors
from feature_store import _models as models


@pytest.fixture(autouse=True)
def _in_the_models_lake(tracking) -> None:
    """Every test talks to the module's lake (`trained`, `tracking`: tests/feature_store/trained_model.py)."""


def oracle_features() -> pd.DataFrame:
    """Each label row's features by hand: the customer's latest row at or before the label time, the region's row;
    a missing row or a null value gives the lookup's default."""
    out = {}
    for request_id, customer, region, at, _ in LABEL_ROWS:
        seen = [r for r in FEATURE_ROWS if r[0] == customer and r[1] <= at]
        latest = max(seen, key=lambda r: r[1]) if seen else (None, None, None, None)
        f1 = -1.0 if latest[2] is None else latest[2]
        g2 = 0.0 if latest[3] is None else latest[3]
        out[request_id] = {"f1": f1, "g2": g2, "r1": dict(REGION_ROWS).get(region, 0.5)}
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


def test_the_training_features_are_the_hand_computed_ones(trained):
    """The oracle below (sklearn on load_df's features) stands on features checked by hand."""
    expected = oracle_features()
    assert trained.train[INPUTS].to_dict("index") == expected[INPUTS].to_dict("index")


def _keys(spark, rows=LABEL_ROWS):
    """The label rows without the label: what a scoring job has."""
    return spark.createDataFrame(rows, LABELS_SCHEMA).drop("y")


def _by_request(df) -> pd.DataFrame:
    return df.toPandas().set_index("request_id").sort_index()


@pytest.mark.parametrize("uri_kind", ["stage", "alias", "run", "logged_model"])
def test_score_batch_predicts_what_sklearn_predicts_on_the_training_features(trained, spark, uri_kind):
    uri = {
        "stage": f"models:/{MODEL}/Production",
        "alias": f"models:/{MODEL}@champion",
        "run": trained.runs_uri,
        "logged_model": trained.info.model_uri,
    }[uri_kind]
    scored = trained.score_batch(uri, _keys(spark))
    assert scored.columns == ["request_id", "customer_id", "region", "label_ts", *INPUTS, "prediction"]
    got = _by_request(scored)
    expected = trained.model.predict(trained.train[INPUTS])
    assert list(got.index) == list(trained.train.index)
    assert got["prediction"].tolist() == expected.tolist()  # the same float64s, not merely close
    pd.testing.assert_frame_equal(got[INPUTS], trained.train[INPUTS])


def test_predictions_run_on_the_executors(trained, spark):
    scored = trained.score_batch(trained.runs_uri, _keys(spark))
    plan = scored._jdf.queryExecution().executedPlan().toString()
    assert "ArrowEvalPython" in plan  # a pandas UDF in the plan: the model runs in the executors' Python workers


def test_score_batch_reads_the_latest_versions_point_in_time(trained, spark, tmp_path):
    """Another lake with the same tables, written after: the model reads their latest rows, as of each row's time."""
    fs = FeatureStoreClient(root=str(tmp_path / "other"), spark=spark)
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame([(1, ts(1), 1.0, 10.0), (2, ts(1), 2.0, 20.0)], FEATURES_SCHEMA),
    )
    fs.write_table("customer_features", spark.createDataFrame([(1, ts(7), 7.0, 70.0)], FEATURES_SCHEMA))
    assert fs.get_table("customer_features").latest_version == 1
    # r1 is given, so this lake needs no region_features table
    rows = [("x", 1, ts(6), 0.0), ("y", 1, ts(7), 1.0), ("z", 1, ts(8), 2.0), ("w", 2, ts(8), 3.0)]
    keys = spark.createDataFrame(rows, "request_id string, customer_id long, label_ts timestamp, r1 double")
    got = _by_request(score_batch(fs, trained.runs_uri, keys))
    # hand-written: day 6 still sees day 1's row, day 7 and after the row written later
    features = pd.DataFrame(
        {"f1": [7.0, 1.0, 7.0, 7.0], "g2": [70.0, 10.0, 70.0, 70.0], "r1": [3.0, 0.0, 1.0, 2.0]},
        index=["w", "x", "y", "z"],
    )
    features.loc["w", ["f1", "g2"]] = [2.0, 20.0]
    assert got["prediction"].tolist() == trained.model.predict(features).tolist()
    assert got[INPUTS].to_dict("list") == features.to_dict("list")


def test_a_feature_given_in_df_overrides_the_lookup(trained, spark):
    keys = _keys(spark).selectExpr("*", "cast(length(request_id) * 1000 as double) as g2")
    got = _by_request(trained.score_batch(trained.runs_uri, keys))
    assert (got["g2"] == 1000.0).all()
    features = trained.train[INPUTS].assign(g2=1000.0)
    assert got["prediction"].tolist() == trained.model.predict(features).tolist()
    pd.testing.assert_series_equal(got["f1"], trained.train["f1"])  # the rest still looked up


def test_features_all_given_need_no_lookup_keys(trained, spark):
    df = spark.createDataFrame([("p", 2.0, 3.0, 4.0)], "request_id string, f1 double, g2 double, r1 double")
    got = _by_request(trained.score_batch(f"models:/{MODEL}/1", df))
    expected = trained.model.predict(pd.DataFrame({"f1": [2.0], "g2": [3.0], "r1": [4.0]}))
    assert got["prediction"].tolist() == expected.tolist()


def test_the_spec_records_lookups_versions_renames_and_defaults(trained):
    spec = models.load_feature_spec(f"models:/{MODEL}@champion")
    assert spec.versions == {"customer_features": 0, "region_features": 0}
    assert spec.input_columns == tuple(INPUTS)
    assert spec.feature_columns == tuple(INPUTS)
    assert spec.label == ("y",)
    assert spec.training_set_id == trained.training_set.id
    assert spec.lakehouse_root == trained.fs.lakehouse.root
    customer, region = spec.lookups
    assert (customer.table_name, customer.lookup_key, customer.timestamp_lookup_key) == (
        "customer_features",
        ("customer_id",),
        "label_ts",
    )
    assert (customer.primary_keys, customer.timestamp_key) == (("customer_id",), "ts")
    assert (customer.features, customer.outputs) == (("f1", "f2"), ("f1", "g2"))
    assert customer.default_values == {"f1": -1.0, "g2": 0.0}
    assert (region.table_name, region.lookup_key, region.timestamp_key, region.outputs) == (
        "region_features",
        ("region",),
        None,
        ("r1",),
    )
    # the file itself, as another tool would read it
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"{trained.runs_uri}/artifacts/feature_spec.json")
    with open(local) as f:
        doc = json.load(f)
    assert doc["versions"] == {"customer_features": 0, "region_features": 0}
    assert doc["feature_columns"] == INPUTS
    assert [lk["rename_outputs"] for lk in doc["lookups"]] == [{"f2": "g2"}, {}]
    assert [lk["timestamp_key"] for lk in doc["lookups"]] == ["ts", None]


def test_the_model_carries_its_code_and_requires_only_what_pypi_has(trained):
    """lakehouse-ml is not on PyPI: its packages travel in the model (code_paths) and the requirements are its
    dependencies pinned to the installed versions, so `--env-manager virtualenv|uv` can build the environment."""
    local = mlflow.artifacts.download_artifacts(artifact_uri=trained.runs_uri)
    with open(os.path.join(local, "requirements.txt")) as f:
        requirements = f.read().split()
    assert not [r for r in requirements if r.startswith("lakehouse-ml")]
    pinned = {r.split("==")[0]: r.split("==")[1] for r in requirements if "==" in r}
    for dep in ("pyspark", "pyarrow", "mlflow", "redis", "scikit-learn"):
        assert pinned[dep] == importlib.metadata.version(dep), dep
    for package in ("feature_store", "lakehouse"):
        assert os.path.isfile(os.path.join(local, "code", package, "__init__.py")), package


def test_the_pyfunc_takes_the_features_as_columns(trained):
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/Production")
    frame = trained.train[list(reversed(INPUTS))].assign(extra="ignored")  # any order, extra columns
    assert model.predict(frame).tolist() == trained.model.predict(trained.train[INPUTS]).tolist()
    # r1 missing: it would be read online by its lookup key, which the input lacks too
    with pytest.raises(errors.MissingScoringColumnsError, match=r"\['region'\].*region_features.*the request") as err:
        model.predict(trained.train[["f1", "g2"]])
    assert err.value.missing == ["region"]


def test_log_model_logs_into_the_active_run_and_registers_only_when_asked(trained):
    with mlflow.start_run() as run:
        info = trained.log_model(
            trained.model,
            "again",
            flavor=mlflow.sklearn,
            training_set=trained.training_set,
            pip_requirements=["scikit-learn"],
        )
        assert mlflow.active_run().info.run_id == run.info.run_id  # still open: the caller's run
    assert info.run_id == run.info.run_id
    assert info.registered_model_version is None
    assert models.load_feature_spec(f"runs:/{run.info.run_id}/again").training_set_id == trained.training_set.id


def test_mlflow_serves_the_model_in_this_environment(trained, tmp_path):
    """`mlflow models predict/serve --env-manager local` loads the pyfunc here, through the lakehouse registry."""
    out = tmp_path / "predictions.json"
    mlflow.models.predict(
        f"models:/{MODEL}@champion", input_data=trained.train[INPUTS], env_manager="local", output_path=str(out)
    )
    assert json.loads(out.read_text())["predictions"] == trained.model.predict(trained.train[INPUTS]).tolist()


# -- bad input -------------------------------------------------------------------------------------------------


def test_a_model_uri_that_resolves_to_nothing_is_named(trained, spark):
    for uri in ("models:/no_such_model/1", f"models:/{MODEL}/Staging", f"models:/{MODEL}@nobody", "runs:/0123/model"):
        with pytest.raises(errors.ModelNotFoundError, match="not found through MLflow's tracking URI") as err:
            trained.score_batch(uri, _keys(spark))
        assert err.value.model_uri == uri
        assert isinstance(err.value, KeyError)
        with pytest.raises(errors.ModelNotFoundError):
            models.load_feature_spec(uri)


def test_a_model_not_logged_by_the_feature_store_is_refused(trained, spark):
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(trained.model, name="plain", pip_requirements=["scikit-learn"])
    uri = f"runs:/{run.info.run_id}/plain"
    with pytest.raises(errors.NotAFeatureStoreModelError, match=r"not logged with FeatureStoreClient\.log_model"):
        models.load_feature_spec(uri)
    with pytest.raises(errors.NotAFeatureStoreModelError) as err:
        trained.score_batch(uri, _keys(spark))
    assert "MLmodel" in err.value.files


def test_df_without_a_lookup_key_or_timestamp_is_refused(trained, spark):
    keys = _keys(spark)
    with pytest.raises(errors.MissingScoringColumnsError, match=r"\['customer_id'\].*customer_features") as err:
        trained.score_batch(trained.runs_uri, keys.drop("customer_id"))
    assert err.value.missing == ["customer_id"]
    with pytest.raises(errors.MissingScoringColumnsError, match=r"\['label_ts'\].*timestamp_lookup_key"):
        trained.score_batch(trained.runs_uri, keys.drop("label_ts"))
    with pytest.raises(errors.MissingScoringColumnsError, match=r"\['region'\].*region_features"):
        trained.score_batch(trained.runs_uri, keys.drop("region"))


def test_df_columns_of_the_wrong_type_are_refused(trained, spark):
    keys = _keys(spark)
    with pytest.raises(errors.ColumnTypeError, match="customer_id"):
        trained.score_batch(trained.runs_uri, keys.withColumn("customer_id", keys.customer_id.cast("string")))
    with pytest.raises(errors.ColumnTypeError, match="label_ts"):
        trained.score_batch(trained.runs_uri, keys.withColumn("label_ts", keys.label_ts.cast("string")))


def test_malformed_arguments_are_refused(trained, spark):
    keys = _keys(spark)
    with pytest.raises(errors.ArgumentTypeError, match="model_uri"):
        trained.score_batch(5, keys)
    with pytest.raises(errors.ArgumentTypeError, match="result_type"):
        trained.score_batch(trained.runs_uri, keys, result_type=5)
    with pytest.raises(errors.InvalidArgumentError, match="result_type"):
        trained.score_batch(trained.runs_uri, keys, result_type="no_such_type")
    with pytest.raises(errors.ArgumentTypeError, match="df"):
        trained.score_batch(trained.runs_uri, [1, 2])
    with pytest.raises(errors.InvalidArgumentError, match="prediction"):
        trained.score_batch(trained.runs_uri, keys.selectExpr("*", "1.0 as prediction"))
    log = partial(trained.log_model, trained.model, "m")
    with pytest.raises(errors.ArgumentTypeError, match="flavor"):
        log(flavor="sklearn", training_set=trained.training_set)
    with pytest.raises(errors.ArgumentTypeError, match="training_set"):
        log(flavor=mlflow.sklearn, training_set=keys)
    with pytest.raises(errors.ArgumentTypeError, match="artifact_path"):
        trained.log_model(trained.model, "", flavor=mlflow.sklearn, training_set=trained.training_set)
    assert mlflow.search_runs(search_all_experiments=True, filter_string="attributes.status = 'RUNNING'").empty


def test_a_models_online_features_equal_its_offline_features_at_the_latest_version(trained, spark):
    fs = trained.fs
    for table in ("customer_features", "region_features"):
        fs.publish_table(table)  # the default online store: a SQLite file in the lake
    keys = [{"customer_id": 1, "region": 10}, {"customer_id": 2, "region": 20}, {"customer_id": 3, "region": 30}]
    online = fs.get_online_features(f"models:/{MODEL}@champion", keys)
    # oracle: the offline point-in-time join of the same lookups, after every feature row
    late = spark.createDataFrame(
        [(k["customer_id"], k["region"], ts(28)) for k in keys], "customer_id long, region long, label_ts timestamp"
    )
    offline = fs.create_training_set(late, LOOKUPS, None).load_df().toPandas()
    cols = ["customer_id", "region", *INPUTS]
    assert online[cols].astype(object).where(online[cols].notna(), None).values.tolist() == (
        offline[cols].astype(object).where(offline[cols].notna(), None).values.tolist()
    )


def test_the_newer_client_logs_and_scores_with_databricks_signatures(trained, spark):
    from feature_store import FeatureEngineeringClient

    fe = FeatureEngineeringClient(lakehouse=trained.fs.lakehouse)
    df = spark.createDataFrame([(1, 10, ts(4))], "customer_id long, region long, label_ts timestamp")
    got = fe.score_batch(model_uri=f"models:/{MODEL}@champion", df=df).collect()[0]["prediction"]
    assert got == trained.fs.score_batch(f"models:/{MODEL}@champion", df).collect()[0]["prediction"]
    with pytest.raises(errors.InvalidArgumentError, match="training_set="):
        fe.log_model(model=trained.model, artifact_path="m", flavor=mlflow.sklearn)
