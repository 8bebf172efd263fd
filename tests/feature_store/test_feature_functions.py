"""FeatureFunction: a registered Python function computed from lookup outputs and request columns, the same in a
training set, in score_batch, online and in a served model, with its source carried by the model.

Oracles: the function's arithmetic by hand on the hand-known feature rows; sklearn's predict on the training
DataFrame; and a separate Python process that never imports this module scoring the model.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
import sklearn
from feature_store_helpers import FEATURES_SCHEMA, ts
from sklearn.linear_model import LinearRegression

from feature_store import FeatureFunction, FeatureLookup, FeatureStoreClient, errors

FEATURE_ROWS = [(1, ts(1), 1.0, 10.0), (1, ts(3), 4.0, None), (2, ts(2), 2.0, 20.0)]
LABELS = "request_id string, customer_id long, label_ts timestamp, amount double, y double"
LABEL_ROWS = [
    ("a", 1, ts(2), 3.0, 1.0),
    ("b", 1, ts(4), 8.0, 2.0),
    ("c", 2, ts(3), None, 0.5),
    ("d", 3, ts(3), 5.0, 0.0),  # no feature row: f1 is its default, 0.0
]


def spend_ratio(amount, spend):
    """amount per unit of spend; 0 when either is unknown (imports inside: its source must stand alone)."""
    import math

    if amount is None or spend is None:
        return 0
    return round(amount / math.sqrt(1.0 + spend * spend), 6)


def by_hand(amount, spend):
    return 0.0 if amount is None or spend is None else round(amount / math.sqrt(1.0 + spend * spend), 6)


LOOKUP = FeatureLookup(
    table_name="cf",
    lookup_key="customer_id",
    timestamp_lookup_key="label_ts",
    feature_names=["f1"],
    default_values={"f1": 0.0},
)
RATIO = FeatureFunction(udf_name="spend_ratio", input_bindings={"amount": "amount", "spend": "f1"}, output_name="ratio")


@dataclass
class Setup:
    fs: FeatureStoreClient
    tracking_uri: str
    train: pd.DataFrame
    model: LinearRegression
    uri: str


@pytest.fixture(scope="module")
def setup(spark, tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("functions") / "lake"
    fs = FeatureStoreClient(root=str(root), spark=spark)
    tracking_uri = f"lakehouse://{root}"
    mlflow.set_tracking_uri(tracking_uri)
    fs.create_table(
        name="cf",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame(FEATURE_ROWS, FEATURES_SCHEMA),
    )
    fs.create_feature_function(name="spend_ratio", function=spend_ratio, return_type="double")
    labels = spark.createDataFrame(LABEL_ROWS, LABELS)
    training_set = fs.create_training_set(
        labels, [LOOKUP, RATIO], "y", exclude_columns=["request_id", "customer_id", "label_ts", "amount"]
    )
    assert training_set.columns == ("y", "f1", "ratio")
    train = fs.create_training_set(labels, [LOOKUP, RATIO], "y").load_df().toPandas().set_index("request_id")
    fit = training_set.load_df().toPandas()
    model = LinearRegression().fit(fit[["f1", "ratio"]], fit["y"])
    info = fs.log_model(
        model,
        "model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name="ratio_model",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    fs.publish_table("cf")
    return Setup(fs, tracking_uri, train.sort_index(), model, f"runs:/{info.run_id}/model")


@pytest.fixture(autouse=True)
def _tracking(setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(setup.tracking_uri)


def test_the_training_set_computes_the_function_per_row(setup):
    # f1 per label row by hand: a -> day 1 (1.0), b -> day 3 (4.0), c -> day 2 (2.0), d -> default 0.0
    f1 = {"a": 1.0, "b": 4.0, "c": 2.0, "d": 0.0}
    amount = {r[0]: r[3] for r in LABEL_ROWS}
    assert setup.train["f1"].to_dict() == f1
    assert setup.train["ratio"].to_dict() == {k: by_hand(amount[k], f1[k]) for k in f1}
    assert setup.train["ratio"]["c"] == 0.0  # amount null: the function's own answer (an int, made a double)


def _scoring_input(spark, rows=LABEL_ROWS):
    return spark.createDataFrame(
        [r[:4] for r in rows], "request_id string, customer_id long, label_ts timestamp, amount double"
    )


def test_score_batch_computes_it_as_training_did(setup, spark):
    scored = setup.fs.score_batch(setup.uri, _scoring_input(spark)).toPandas().set_index("request_id").sort_index()
    assert scored["ratio"].tolist() == setup.train["ratio"].tolist()
    assert scored["prediction"].tolist() == setup.model.predict(setup.train[["f1", "ratio"]]).tolist()
    # a function output given as a column is used as given
    given = _scoring_input(spark).selectExpr("*", "cast(100.0 as double) as ratio")
    got = setup.fs.score_batch(setup.uri, given).toPandas()
    assert set(got["ratio"]) == {100.0}


def test_online_lookups_compute_it_from_the_request(setup):
    keys = [{"customer_id": 1, "amount": 8.0}, {"customer_id": 2, "amount": None}, {"customer_id": 3, "amount": 5.0}]
    online = setup.fs.get_online_features(setup.uri, keys)
    # online: the latest row per key (customer 1: day 3, f1 4.0); customer 3 has none: the default 0.0
    assert online["ratio"].tolist() == [by_hand(8.0, 4.0), 0.0, by_hand(5.0, 0.0)]


def test_a_process_that_never_imported_this_module_scores_and_serves_it(setup, tmp_path):
    """The function's source travels in the model: a fresh interpreter scores keys-only rows through the pyfunc."""
    script = tmp_path / "score.py"
    script.write_text(
        "import json, sys, mlflow, pandas as pd\n"
        "mlflow.set_tracking_uri(sys.argv[1])\n"
        "model = mlflow.pyfunc.load_model(sys.argv[2])\n"
        "rows = pd.DataFrame([{'customer_id': 1, 'amount': 8.0}, {'customer_id': 3, 'amount': 5.0}])\n"
        "print(json.dumps({'p': model.predict(rows).tolist(), 'mods': sorted(m for m in sys.modules if 'test_feature_functions' in m)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, str(script), setup.tracking_uri, setup.uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["mods"] == []
    expected = setup.model.predict(
        pd.DataFrame({"f1": [4.0, 0.0], "ratio": [by_hand(8.0, 4.0), by_hand(5.0, 0.0)]})
    ).tolist()
    assert got["p"] == expected


def test_functions_that_cannot_travel_are_refused(setup):
    fs = setup.fs

    def closure_maker():
        k = 2.0

        def scaled(x):
            return x * k

        return scaled

    cases = {
        "lambda": (lambda x: x, errors.InvalidFeatureFunctionError, "lambda"),
        "closure": (closure_maker(), errors.InvalidFeatureFunctionError, "closes over"),
        "module_name": (by_hand, errors.InvalidFeatureFunctionError, r"names of its module \['math'\]"),
        "builtin": (len, errors.ArgumentTypeError, "def"),
    }
    for name, (fn, error, match) in cases.items():
        with pytest.raises(error, match=match):
            fs.create_feature_function(name=name, function=fn, return_type="double")
    with pytest.raises(errors.InvalidArgumentError, match="return_type"):
        fs.create_feature_function(name="x", function=spend_ratio, return_type="timestamp")
    with pytest.raises(errors.InvalidArgumentError, match="replace=True"):
        fs.create_feature_function(name="spend_ratio", function=spend_ratio, return_type="double")
    assert fs.list_feature_functions() == ["spend_ratio"]


def test_feature_functions_that_do_not_fit_the_training_set_are_refused(setup, spark):
    fs = setup.fs
    labels = spark.createDataFrame(LABEL_ROWS, LABELS)
    with pytest.raises(errors.FeatureFunctionNotFoundError, match="spend_ratio"):
        fs.create_training_set(labels, [LOOKUP, FeatureFunction(udf_name="nope")], "y")
    with pytest.raises(errors.InvalidArgumentError, match=r"takes \['amount', 'spend'\]"):
        fs.create_training_set(
            labels, [LOOKUP, FeatureFunction(udf_name="spend_ratio", input_bindings={"x": "f1"})], "y"
        )
    with pytest.raises(errors.ColumnNotFoundError, match="no_such"):
        bad = FeatureFunction(udf_name="spend_ratio", input_bindings={"amount": "no_such", "spend": "f1"})
        fs.create_training_set(labels, [LOOKUP, bad], "y")
    with pytest.raises(errors.OutputNameConflictError, match="f1"):
        clash = FeatureFunction(
            udf_name="spend_ratio", input_bindings={"amount": "amount", "spend": "f1"}, output_name="f1"
        )
        fs.create_training_set(labels, [LOOKUP, clash], "y")
    with pytest.raises(errors.ArgumentTypeError, match="input_bindings"):
        FeatureFunction(udf_name="spend_ratio", input_bindings={"amount": 5})
