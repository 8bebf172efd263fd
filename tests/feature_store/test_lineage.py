"""Lineage and discovery: get_table's training sets, runs and registered model versions; drop_table refused while
registered versions use a table; search_tables by name, feature, tag and description.

Models are recorded as `log_model` records them (`MetadataStore.record_model_uses`) on real MLflow runs, and
registered with real `create_model_version` calls through the lake's `lakehouse:///` registry (one test also on a
SQLite registry); one test goes end to end through `fs.log_model`. Expected values are the names, versions and
features each test wrote down itself.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import mlflow
import pytest
from feature_store_helpers import FEATURES_SCHEMA, ts
from mlflow.exceptions import MlflowException
from mlflow.tracking._model_registry import utils as registry_utils

from feature_store import FeatureLookup, FeatureStoreClient, errors
from feature_store._entities import ModelVersionUse, RunUse
from feature_store._metadata import MetadataStore, ModelUse

LABELS_SCHEMA = "customer_id long, label_ts timestamp, churn int"
LABEL_ROWS = [(1, ts(2), 0), (2, ts(4), 1)]


@pytest.fixture
def registry(fs, tmp_path, monkeypatch) -> str:
    """MLflow tracking and registry on the test's own lake. tests/conftest.py resets the tracking URI after each
    test; the registry URI, which some tests here set, is reset here (MLflow keeps it in a global and in
    MLFLOW_REGISTRY_URI)."""
    monkeypatch.chdir(tmp_path)  # nothing MLflow writes by default lands in the repository
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    uri = f"lakehouse://{fs.lakehouse.root}"
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture
def tables(fs, spark, customer_features) -> tuple[str, str]:
    """customer_features (f1, f2 by customer and time) and region_features (r1, r2 by region)."""
    fs.create_table(
        name="region_features",
        primary_keys=["region_id"],
        df=spark.createDataFrame([(10, 1.0, 2.0)], "region_id long, r1 double, r2 double"),
        description="region aggregates",
    )
    return customer_features, "region_features"


def new_run() -> str:
    """A real MLflow run, ended; its id."""
    with mlflow.start_run() as run:
        return run.info.run_id


def record_model(fs: FeatureStoreClient, run_id: str, uses: dict[str, tuple[str, ...]], training_set_id="ts-x"):
    """What log_model records for a model logged in `run_id` reading `uses` (table -> features as the model
    names them)."""
    MetadataStore(fs.lakehouse).record_model_uses(
        [
            ModelUse(
                id=uuid.uuid4().hex,
                table_name=table,
                features=features,
                training_set_id=training_set_id,
                run_id=run_id,
                model_uri=f"runs:/{run_id}/model",
                logged_at=datetime.now(UTC),
            )
            for table, features in uses.items()
        ]
    )


def register(name: str, run_id: str) -> int:
    """A new registered version of the run's model; its number."""
    client = mlflow.MlflowClient()
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    return int(client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version)


def version_refs(table) -> list[str]:
    assert table.model_versions is not None, table.registry_error
    return [v.ref for v in table.model_versions]


def test_get_table_lists_training_sets_with_the_features_each_used(fs, spark, tables):
    customers, regions = tables
    labels = spark.createDataFrame(LABEL_ROWS, LABELS_SCHEMA)
    both = fs.create_training_set(
        labels,
        [
            FeatureLookup(
                table_name=customers,
                lookup_key="customer_id",
                timestamp_lookup_key="label_ts",
                rename_outputs={"f2": "g2"},
            ),
            FeatureLookup(table_name=regions, lookup_key="customer_id", feature_names=["r1"]),
        ],
        "churn",
    )
    only_f1 = fs.create_training_set(
        labels,
        [FeatureLookup(table_name=customers, lookup_key="customer_id", timestamp_lookup_key="label_ts")],
        "churn",
        exclude_columns=["f2"],  # f2 is looked up, then left out: the training set does not use it
    )
    fs.create_training_set(labels, [FeatureLookup(table_name=regions, lookup_key="customer_id")], "churn")  # unsaved
    ids = [fs.save_training_set(both), fs.save_training_set(only_f1)]

    t = fs.get_table(customers)
    assert {u.training_set_id: (u.features, u.versions) for u in t.training_sets} == {
        ids[0]: (("f1", "f2"), (0,)),  # table column names, not the training set's renamed g2
        ids[1]: (("f1",), (0,)),
    }
    assert t.used_by == tuple(sorted(ids))
    assert t.runs == () and t.model_versions == ()  # no model logged: nothing asked of a registry
    r = fs.get_table(regions)
    assert [(u.training_set_id, u.features) for u in r.training_sets] == [(ids[0], ("r1",))]


def test_get_table_lists_runs_and_registered_versions_as_the_registry_holds_them_now(fs, tables, registry):
    customers, regions = tables
    registered_run, unregistered_run, other_table_run = new_run(), new_run(), new_run()
    record_model(fs, registered_run, {customers: ("f1", "g2"), regions: ("r1",)})
    record_model(fs, unregistered_run, {customers: ("f1",)})
    record_model(fs, other_table_run, {regions: ("r2",)})
    assert register("churn", registered_run) == 1
    register("other", other_table_run)

    t = fs.get_table(customers)
    assert [(r.run_id, r.model_uri, r.features) for r in t.runs] == [
        (registered_run, f"runs:/{registered_run}/model", ("f1", "g2")),
        (unregistered_run, f"runs:/{unregistered_run}/model", ("f1",)),
    ]
    assert t.model_versions == (ModelVersionUse("churn", 1, registered_run, ("f1", "g2")),)
    assert t.registry_uri == registry and t.registry_error is None

    # Registered again later, promoted and aliased: shown as now, without anything recorded in the feature store.
    client = mlflow.MlflowClient()
    assert register("churn", registered_run) == 2
    assert register("churn-shadow", unregistered_run) == 1
    client.transition_model_version_stage("churn", "2", "Production")
    client.set_registered_model_alias("churn", "champion", "2")
    t = fs.get_table(customers)
    assert version_refs(t) == ["churn/1", "churn/2", "churn-shadow/1"]
    v2 = t.model_versions[1]
    assert (v2.stage, v2.aliases, v2.model_uri) == ("Production", ("champion",), "models:/churn/2")

    client.delete_model_version("churn", "1")
    assert version_refs(fs.get_table(customers)) == ["churn/2", "churn-shadow/1"]
    assert version_refs(fs.get_table(regions)) == ["churn/2", "other/1"]


def test_drop_of_a_table_registered_versions_use_is_refused_and_deletes_nothing(fs, spark, tables, registry):
    customers, _ = tables
    run = new_run()
    record_model(fs, run, {customers: ("f1",)})
    register("churn", run)
    register("churn", run)
    before = fs.read_table(customers).collect()

    with pytest.raises(errors.FeatureTableInUseError) as refused:
        fs.drop_table(customers)
    assert (refused.value.table, refused.value.models) == (customers, ["churn/1", "churn/2"])
    assert "force=True" in str(refused.value)
    t = FeatureStoreClient(root=fs.lakehouse.root, spark=spark).get_table(customers)  # a fresh client: on disk
    assert t.tags == {"team": "risk"} and sorted(fs.read_table(customers).collect()) == sorted(before)

    mlflow.MlflowClient().delete_model_version("churn", "1")
    with pytest.raises(errors.FeatureTableInUseError) as refused:
        fs.drop_table(customers)
    assert refused.value.models == ["churn/2"]
    mlflow.MlflowClient().delete_model_version("churn", "2")
    fs.drop_table(customers)  # no version left
    assert customers not in [t.name for t in fs.list_tables()]


def test_force_drops_a_table_registered_versions_use(fs, tables, registry):
    customers, regions = tables
    run = new_run()
    record_model(fs, run, {customers: ("f1",)})
    register("churn", run)
    fs.drop_table(customers, force=True)
    assert [t.name for t in fs.list_tables()] == [regions]
    with pytest.raises(errors.FeatureTableNotFoundError):
        fs.get_table(customers)
    with pytest.raises(errors.ArgumentTypeError):
        fs.drop_table(regions, force="yes")
    assert [t.name for t in fs.list_tables()] == [regions]


def test_a_table_only_training_sets_or_unregistered_runs_read_can_be_dropped(fs, spark, tables, registry):
    """Only registered versions hold a table: a run nobody registered, or a saved training set, is an experiment,
    and dropping a table is how its owner retires it (the training set then fails to load, as documented)."""
    customers, regions = tables
    labels = spark.createDataFrame(LABEL_ROWS, LABELS_SCHEMA)
    lookup = FeatureLookup(table_name=regions, lookup_key="customer_id")
    fs.save_training_set(fs.create_training_set(labels, [lookup], "churn"))
    record_model(fs, new_run(), {customers: ("f1",)})
    fs.drop_table(regions)
    fs.drop_table(customers)
    assert fs.list_tables() == []


def test_a_registry_that_cannot_be_read_leaves_versions_unknown_and_refuses_an_unforced_drop(fs, tables, registry):
    customers, regions = tables
    run = new_run()
    record_model(fs, run, {customers: ("f1",)})
    mlflow.set_registry_uri("nosuch://registry")

    t = fs.get_table(customers)
    assert [r.run_id for r in t.runs] == [run]
    assert t.model_versions is None and t.registry_uri == "nosuch://registry"
    assert "nosuch://registry" in (t.registry_error or "")
    assert "registered model versions: unknown, the registry nosuch://registry could not be read" in t.lineage()
    assert fs.get_table(regions).model_versions == ()  # nothing logged on it: no registry asked

    with pytest.raises(MlflowException) as refused:
        fs.drop_table(customers)
    assert f"drop_table('{customers}')" in "".join(refused.value.__notes__)
    assert run in "".join(refused.value.__notes__)
    assert customers in [t.name for t in fs.list_tables()]
    fs.drop_table(regions)  # no model logged on it: the registry is not asked
    fs.drop_table(customers, force=True)
    assert fs.list_tables() == []


def test_versions_are_found_in_a_sqlite_registry_too(fs, tables, registry, tmp_path):
    customers, _ = tables
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = new_run()
    record_model(fs, run, {customers: ("f1",)})
    register("churn", run)
    assert version_refs(fs.get_table(customers)) == ["churn/1"]
    with pytest.raises(errors.FeatureTableInUseError):
        fs.drop_table(customers)


def test_list_and_search_report_uses_without_asking_the_registry(fs, tables, registry, monkeypatch):
    customers, regions = tables
    run = new_run()
    record_model(fs, run, {customers: ("f1",)})

    def no_registry(*args, **kwargs):
        raise AssertionError("list_tables / search_tables asked the MLflow registry")

    monkeypatch.setattr(mlflow, "MlflowClient", no_registry)
    listed = {t.name: t for t in fs.list_tables()}
    assert [r.run_id for r in listed[customers].runs] == [run]
    assert listed[customers].model_versions is None  # logged models, registry not asked: unknown
    assert listed[regions].model_versions == ()  # nothing logged: known to be none
    assert "registered model versions: unknown, not looked up" in listed[customers].lineage()
    assert [r.run_id for r in fs.search_tables("f1")[0].runs] == [run]


def test_lineage_renders_training_sets_runs_and_versions(fs, tables, registry):
    customers, _ = tables
    run = new_run()
    record_model(fs, run, {customers: ("f1", "g2")}, training_set_id="ts-1")
    register("churn", run)
    mlflow.MlflowClient().set_registered_model_alias("churn", "champion", "1")
    text = fs.get_table(customers).lineage()
    assert text.splitlines() == [
        f"feature table {customers} (version 0)",
        "  description: test features",
        "  keys: customer_id, ts",
        "  features: f1 double, f2 double",
        "  tags: team=risk",
        "  training sets (0)",
        "  runs (1):",
        f"    {run}  runs:/{run}/model  training set ts-1  features f1, g2",
        f"  registered model versions (1) in {registry}:",
        f"    churn/1  aliases champion  run {run}  features f1, g2",
    ]
    assert str(fs.get_table(customers)) == text


@pytest.fixture(scope="module")
def searched(spark, tmp_path_factory) -> FeatureStoreClient:
    """One lake for the search cases, which only read it: the `tables` fixture's two tables, built once."""
    fs = FeatureStoreClient(root=str(tmp_path_factory.mktemp("search") / "lake"), spark=spark)
    fs.create_table(
        name="customer_features",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=spark.createDataFrame([(1, ts(1), 1.0, 10.0)], FEATURES_SCHEMA),
        description="test features",
        tags={"team": "risk"},
    )
    fs.create_table(
        name="region_features",
        primary_keys=["region_id"],
        df=spark.createDataFrame([(10, 1.0, 2.0)], "region_id long, r1 double, r2 double"),
        description="region aggregates",
    )
    return fs


@pytest.mark.parametrize(
    ("text", "tags", "expected"),
    [
        ("REGION_feat", None, ["region_features"]),  # the name only
        ("r2", None, ["region_features"]),  # a feature name only
        ("aggregates", None, ["region_features"]),  # the description only
        ("f1", None, ["customer_features"]),
        ("features", None, ["customer_features", "region_features"]),
        (None, {"team": "risk"}, ["customer_features"]),  # a tag's value
        (None, {"team": None}, ["customer_features"]),  # a tag, any value
        (None, {"team": "retail"}, []),
        ("r1", {"team": "risk"}, []),  # both must hold
        ("nothing-like-it", None, []),
    ],
)
def test_search_tables_by_name_feature_description_and_tag(searched, text, tags, expected):
    assert [t.name for t in searched.search_tables(text, tags=tags)] == expected


def test_log_model_records_the_tables_its_model_reads(fs, spark, tables, registry):
    """End to end: fs.log_model records one use per table (the features as the model names them) and registers."""
    import mlflow.sklearn
    import sklearn
    from sklearn.linear_model import LogisticRegression

    customers, regions = tables
    labels = spark.createDataFrame(LABEL_ROWS, LABELS_SCHEMA)
    training_set = fs.create_training_set(
        labels,
        [
            FeatureLookup(
                table_name=customers,
                lookup_key="customer_id",
                timestamp_lookup_key="label_ts",
                rename_outputs={"f2": "g2"},
                default_values={"f1": 0.0, "f2": 0.0},
            ),
            FeatureLookup(
                table_name=regions, lookup_key="customer_id", feature_names=["r1"], default_values={"r1": 0.0}
            ),
        ],
        "churn",
        exclude_columns=["customer_id", "label_ts"],
    )
    pdf = training_set.load_df().toPandas()
    model = LogisticRegression().fit(pdf[["f1", "g2", "r1"]], pdf["churn"])
    info = fs.log_model(
        model,
        "model",
        flavor=mlflow.sklearn,
        training_set=training_set,
        registered_model_name="churn",
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    t = fs.get_table(customers)
    assert t.runs == (
        RunUse(info.run_id, f"runs:/{info.run_id}/model", training_set.id, ("f1", "g2"), t.runs[0].logged_at),
    )
    assert t.model_versions == (ModelVersionUse("churn", 1, info.run_id, ("f1", "g2")),)
    assert [(r.run_id, r.features) for r in fs.get_table(regions).runs] == [(info.run_id, ("r1",))]
    with pytest.raises(errors.FeatureTableInUseError) as refused:
        fs.drop_table(regions)
    assert refused.value.models == ["churn/1"]
