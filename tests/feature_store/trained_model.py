"""A feature-aware model trained on two feature tables and logged through real MLflow with a lakehouse:/// tracking
URI, shared by the model, serving and reproduction tests (one per module: logging costs seconds).

Its fixtures, `trained` (module-scoped: one model per test module that asks) and `tracking` (the MLflow tracking URI
of its lake, set for the test), are made visible to every module by tests/feature_store/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.sklearn
import pandas as pd
import pytest
import sklearn
from feature_store_helpers import FEATURES_SCHEMA, ts
from sklearn.linear_model import LinearRegression

from feature_store import FeatureLookup, FeatureStoreClient, TrainingSet

MODEL = "churn"
INPUTS = ["f1", "g2", "r1"]  # the training set's columns less the label: customer f1, f2 renamed g2, region r1
LABELS_SCHEMA = "request_id string, customer_id long, region long, label_ts timestamp, y double"
# customer 1 has rows at days 1, 3, 5; customer 2 at day 2; customer 3 none (defaults). Regions 10 and 20.
FEATURE_ROWS = [
    (1, ts(1), 1.0, 10.0),
    (1, ts(3), 3.0, 30.0),
    (1, ts(5), 5.0, None),
    (2, ts(2), 2.0, 20.0),
]
LABEL_ROWS = [
    ("a", 1, 10, ts(1), 1.0),
    ("b", 1, 10, ts(2), 1.4),
    ("c", 1, 20, ts(4), 3.9),
    ("d", 1, 20, ts(6), 5.2),
    ("e", 2, 10, ts(1), 0.1),
    ("f", 2, 20, ts(3), 2.7),
    ("g", 3, 10, ts(4), 0.3),
    ("h", 2, 30, ts(9), 2.0),
]
REGION_ROWS = [(10, 100.0), (20, 200.0)]


@dataclass(frozen=True)
class Trained:
    fs: FeatureStoreClient
    tracking_uri: str
    training_set: TrainingSet
    train: pd.DataFrame  # the training rows' features (load_df), indexed by request_id
    model: LinearRegression
    info: Any  # mlflow ModelInfo

    @property
    def runs_uri(self) -> str:
        return f"runs:/{self.info.run_id}/model"

    def log_model(self, *args: Any, **kwargs: Any) -> Any:
        return self.fs.log_model(*args, **kwargs)

    def score_batch(self, model_uri: str, df: Any, **kwargs: Any) -> Any:
        return score_batch(self.fs, model_uri, df, **kwargs)


def score_batch(fs: FeatureStoreClient, model_uri: str, df: Any, **kwargs: Any) -> Any:
    return fs.score_batch(model_uri, df, **kwargs)


def create_tables(fs: FeatureStoreClient, spark, customer_rows, region_rows) -> None:
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame(customer_rows, FEATURES_SCHEMA),
    )
    fs.create_table(
        name="region_features",
        primary_keys=["region_id"],
        df=spark.createDataFrame(region_rows, "region_id long, r1 double"),
    )


LOOKUPS = [
    FeatureLookup(
        table_name="customer_features",
        lookup_key="customer_id",
        timestamp_lookup_key="label_ts",
        rename_outputs={"f2": "g2"},
        default_values={"f1": -1.0, "f2": 0.0},
    ),
    FeatureLookup(table_name="region_features", lookup_key="region", default_values={"r1": 0.5}),
]


def _xy(pdf: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    assert list(pdf.columns) == ["y", *INPUTS]  # the training DataFrame: label, then the features in order
    return pdf[INPUTS], pdf["y"]


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("models") / "lake"
    fs = FeatureStoreClient(root=str(root), spark=spark)
    tracking_uri = f"lakehouse://{root}"
    mlflow.set_tracking_uri(tracking_uri)
    create_tables(fs, spark, FEATURE_ROWS, REGION_ROWS)
    labels = spark.createDataFrame(LABEL_ROWS, LABELS_SCHEMA)
    training_set = fs.create_training_set(
        labels, LOOKUPS, "y", exclude_columns=["request_id", "customer_id", "region", "label_ts"]
    )
    model = LinearRegression().fit(*_xy(training_set.load_df().toPandas()))
    # The same lookups at the same versions, keeping the label columns: each row's features by request_id.
    offline = fs.create_training_set(labels, LOOKUPS, "y")
    assert offline.versions == training_set.versions == {"customer_features": 0, "region_features": 0}
    train = offline.load_df().toPandas().set_index("request_id").sort_index()
    info = fs.log_model(
        model,
        "model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name=MODEL,
        # passed on to mlflow.sklearn.save_model; without them MLflow infers them in a subprocess (~10 s here)
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    client = mlflow.MlflowClient()
    client.transition_model_version_stage(MODEL, info.registered_model_version, "Production")
    client.set_registered_model_alias(MODEL, "champion", info.registered_model_version)
    return Trained(fs, tracking_uri, training_set, train, model, info)


@pytest.fixture
def tracking(trained, tmp_path, monkeypatch) -> str:
    """The test talks to the module's lake (tests/conftest.py resets MLflow's global state after each test)."""
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(trained.tracking_uri)
    return trained.tracking_uri
