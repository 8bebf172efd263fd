"""End-to-end demo on the embedded default: local Spark with delta-spark, a local lake.

Run it with `make demo` (or `python notebooks/demo.py [LAKE_DIR]`). It walks through Delta time travel,
merge, OPTIMIZE and VACUUM; logs MLflow runs to Delta and reads them back with Spark, now and as of an
earlier version; traces a function with `@mlflow.trace` and reads its spans with Spark SQL; registers a model, validates it on Staging through a job trigger, promotes it and loads it
by stage and alias; builds a point-in-time training set that a later merge does not change; then logs a
feature-aware model with an on-demand feature, scores it by stage, publishes its features to the online store,
serves one keys-only request with `mlflow models serve`, checks online against offline and prints the lineage;
and ends as a scheduler would: `lakehouse-jobs maintain` over the lake, and `lakehouse-jobs monitor` of the
champion model over four months of labelled data (the last one drifted), which raises an alert and writes a PNG
chart and an HTML report. It prints what each step did. The lake goes to ./demo-lake unless a folder or
$LAKEHOUSE_ROOT is given; the demo's own tables are recreated on every run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from datetime import timedelta

import mlflow
import mlflow.sklearn
import numpy as np
from pyspark.sql import functions as F
from sklearn.linear_model import LogisticRegression

import jobs
import tracking
from feature_store import FeatureFunction, FeatureLookup, FeatureStoreClient
from lakehouse import Lakehouse, errors, local_spark

# The lifecycle uses registry stages, which MLflow 3 still serves but marks deprecated.
warnings.filterwarnings("ignore", message=".*Model registry stages will be removed.*")


def step(title: str) -> None:
    print(f"\n=== {title}")


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LAKEHOUSE_ROOT", "demo-lake")
    shutil.rmtree(os.path.join(root, "demo"), ignore_errors=True)
    spark = local_spark(master="local[2]", shuffle_partitions=4)
    lh = Lakehouse(root, spark=spark)
    print(f"{lh!r} on Spark {spark.version}")

    step("create a partitioned table (version 0)")
    customers = spark.createDataFrame(
        [(1, "Ada", "UK", 120.0), (2, "Linus", "FI", 80.0), (3, "Grace", "US", 200.0)],
        "customer_id long, name string, country string, balance double",
    )
    res = lh.create_table("demo.customers", customers, partition_by="country", description="demo customers")
    print(res)
    lh.read("demo.customers").orderBy("customer_id").show()

    step("append new customers (version 1)")
    time.sleep(0.01)
    print(lh.append("demo.customers", spark.createDataFrame([(4, "Barbara", "US", 10.0)], customers.schema)))

    step("schema enforcement: a balance of the wrong type is refused, nothing is written")
    try:
        lh.append(
            "demo.customers",
            spark.createDataFrame(
                [(5, "Ken", "US", "lots")], "customer_id long, name string, country string, balance string"
            ),
        )
    except errors.SchemaMismatchError as exc:
        print(f"SchemaMismatchError: {exc}")

    step("merge (upsert) by key (version 2): update Ada, insert Edsger")
    updates = spark.createDataFrame([(1, "Ada", "UK", 150.0), (6, "Edsger", "NL", 60.0)], customers.schema)
    print(lh.merge("demo.customers", updates, on="customer_id"))
    lh.read("demo.customers").orderBy("customer_id").show()

    step("merge refuses duplicate keys instead of picking an arbitrary winner")
    dupes = spark.createDataFrame([(2, "Linus", "FI", 1.0), (2, "Linus", "FI", 2.0)], customers.schema)
    try:
        lh.merge("demo.customers", dupes, on="customer_id")
    except errors.DuplicateKeyError as exc:
        print(f"DuplicateKeyError: {exc}")

    step("history")
    for h in lh.history("demo.customers"):
        print(f"  v{h.version}  {h.timestamp:%Y-%m-%d %H:%M:%S.%f}  {h.operation}")

    step("time travel: by version and by timestamp")
    v0_time = lh.history("demo.customers")[-1].timestamp
    print(
        f"version 0 has {lh.read('demo.customers', version=0).count()} rows; "
        f"as of {v0_time:%H:%M:%S.%f} UTC: {lh.read('demo.customers', timestamp=v0_time).count()} rows; "
        f"latest: {lh.read('demo.customers').count()} rows"
    )
    try:
        lh.read("demo.customers", version=99)
    except errors.VersionNotFoundError as exc:
        print(f"VersionNotFoundError: {exc}")
    try:
        lh.read("demo.customers", timestamp="2001-01-01")
    except errors.TimestampOutOfRangeError as exc:
        print(f"TimestampOutOfRangeError: {exc}")

    step("many small appends, then OPTIMIZE (compaction) and Z-order")
    lh.create_table(
        "demo.events",
        spark.range(0, 1000).select(
            F.col("id").alias("event_id"), (F.col("id") % 50).alias("customer_id"), (F.rand(1) * 100).alias("amount")
        ),
    )
    for i in range(1, 6):
        lh.append(
            "demo.events",
            spark.range(i * 1000, (i + 1) * 1000).select(
                F.col("id").alias("event_id"),
                (F.col("id") % 50).alias("customer_id"),
                (F.rand(i) * 100).alias("amount"),
            ),
        )
    print(lh.optimize("demo.events"))
    print("again (idempotent):", lh.optimize("demo.events"))
    print(lh.optimize("demo.events", z_order_by=["customer_id"]))

    step("VACUUM: a dry run by default, with the 7-day retention check")
    print(lh.vacuum("demo.events"))
    try:
        lh.vacuum("demo.events", retention_hours=0)
    except errors.RetentionPeriodTooShortError as exc:
        print(f"RetentionPeriodTooShortError: {exc}")
    gone = lh.vacuum("demo.events", retention_hours=0, enforce_retention_duration=False, dry_run=False)
    print(f"deleted {gone.num_files} unreferenced files; the table still has {lh.read('demo.events').count()} rows")

    step("restore the customers table to version 0")
    print(lh.restore("demo.customers", version=0))
    lh.read("demo.customers").orderBy("customer_id").show()

    tracking_demo(root)
    tracing_demo(root, spark)
    registry_demo(root)
    fs = feature_store_demo(root, spark)
    production_demo(fs, spark)

    step("tables under the root")
    for t in lh.list_tables():
        print(f"  {t.name:<40} v{t.version:<3} {t.description or ''}")
    jobs_demo(root, spark)
    spark.stop()


def lakehouse_jobs(argv: list[str]) -> tuple[int, str]:
    """`lakehouse-jobs <argv>` as cron would run it, in this process (its Spark session reused): exit code, stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = jobs.cli(argv)
    return code, buffer.getvalue()


def jobs_demo(root: str, spark) -> None:
    """The scheduled side, as cron or Airflow would run it: `lakehouse-jobs maintain` and `lakehouse-jobs monitor`."""
    lake = os.path.abspath(os.path.join(root, "demo", "tracking"))
    step("batch jobs: lakehouse-jobs maintain (OPTIMIZE + a VACUUM dry run) over the tracking lake")
    code, out = lakehouse_jobs(["maintain", lake])
    if code != 0:
        raise SystemExit(f"maintain exited {code}")
    figures = json.loads(out.splitlines()[-1])
    print(f"$ lakehouse-jobs maintain {lake}  -> exit 0")
    print(f"  {json.dumps(figures.get('totals', {}), sort_keys=True)}")

    step("batch jobs: lakehouse-jobs monitor: the champion over four months of labelled data, the last one drifted")
    rng = np.random.default_rng(1)
    rows = []
    for month in range(4):
        shift = 1.5 if month == 3 else 0.0  # the last month's customers look different: x0 moved
        x = rng.normal(size=(500, 3))
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)  # the rule the model learnt, on the true inputs ...
        x[:, 0] += shift  # ... which the model now sees shifted
        days = rng.integers(0, 28, size=500)
        for (a, b, c), label, day in zip(x.tolist(), y.tolist(), days.tolist(), strict=True):
            rows.append((a, b, c, label, f"2026-{month + 1:02d}-{day + 1:02d} 12:00:00"))
    labelled = spark.createDataFrame(rows, "x0 double, x1 double, x2 double, churned int, ts string").withColumn(
        "ts", F.to_timestamp("ts")
    )
    Lakehouse(lake, spark=spark).create_table("labels.churn", labelled, description="labelled churn outcomes")
    argv = ["monitor", lake, "--model", "demo-churn-model", "--alias", "champion", "--table", "labels.churn"]
    argv += ["--label", "churned", "--time", "ts", "--window", "month", "--baseline", "window:first"]
    code, out = lakehouse_jobs(argv)
    print(f"$ lakehouse-jobs {' '.join(argv)}  -> exit {code} (3 = alert)")
    if code not in (0, 3):
        raise SystemExit(f"monitor exited {code}")
    result = json.loads(out.splitlines()[-1])
    for w in result["windows"]:
        accuracy = w["metrics"].get("accuracy")
        drift = max(w["drift"].values()) if w["drift"] else 0.0
        print(
            f"  {w['window']}: {w['rows']} rows accuracy {accuracy:.3f} max drift {drift:.3f} alerts {len(w['alerts'])}"
        )
    print(f"alerts: {[(a['window'], a['metric']) for a in result['alerts']]}")
    print(f"the monitored version's tag monitoring.alert: {result['alert_tag'] is not None}")
    print(f"chart: {result['chart']}")
    print(f"report: {result['report']}")
    print(f"each window is a run of the MLflow experiment {result['experiment']} (the UI charts them over time)")


def tracking_demo(root: str) -> None:
    step("MLflow tracking on Delta: the only change is the tracking URI")
    uri = "lakehouse://" + os.path.abspath(os.path.join(root, "demo", "tracking"))
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("demo-churn")
    print(f"mlflow.set_tracking_uri({uri!r})")
    for alpha in (0.1, 0.5):
        with mlflow.start_run(run_name=f"alpha={alpha}"):
            mlflow.log_param("alpha", alpha)
            for step_ in range(3):
                mlflow.log_metric("rmse", 1.0 / (1 + alpha * (step_ + 1)), step=step_)
    earlier = Lakehouse(os.path.join(root, "demo", "tracking")).latest_version("mlflow.runs")
    with mlflow.start_run(run_name="alpha=2.0"):
        mlflow.log_param("alpha", 2.0)
        mlflow.log_metric("rmse", 0.2)
    best = mlflow.search_runs(order_by=["metrics.rmse ASC"], max_results=1)
    print(f"mlflow.search_runs: best run {best['tags.mlflow.runName'][0]} rmse={best['metrics.rmse'][0]:.3f}")
    cols = ["run_name", "status", "`params.alpha`", "`metrics.rmse`"]
    print("runs as a Spark DataFrame, now:")
    tracking.runs(uri, experiment_names=["demo-churn"]).select(*cols).show()
    print(f"... and as of version {earlier} of mlflow.runs (before the third run):")
    tracking.runs(uri, experiment_names=["demo-churn"], version=earlier).select(*cols).show()


def tracing_demo(root: str, spark) -> None:
    step("MLflow tracing on Delta: @mlflow.trace writes spans the UI shows and Spark SQL reads")
    lake = os.path.abspath(os.path.join(root, "demo", "tracking"))
    mlflow.set_experiment("demo-assistant")

    @mlflow.trace(span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span("retrieve", span_type="RETRIEVER") as span:
            span.set_inputs({"query": question})
            docs = ["Delta keeps every version", "VACUUM removes old files"]
            span.set_outputs({"documents": docs})
        with mlflow.start_span("generate", span_type="LLM") as span:
            span.set_attributes({"model": "rule-based", "temperature": 0.0})
            reply = f"{docs[0]}; {docs[1].lower()}."
            span.set_outputs({"text": reply})
        return reply

    print(f"answer(...) = {answer('How does time travel work?')!r}")
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    print(f"mlflow.get_trace: {trace.info.trace_id} {trace.info.state} spans {[s.name for s in trace.data.spans]}")
    found = mlflow.search_traces(filter_string="trace.status = 'OK'", return_type="list")
    print(f"mlflow.search_traces(\"trace.status = 'OK'\"): {len(found)} trace(s)")
    print("the spans in Spark SQL:")
    spark.sql(
        "SELECT name, span_type, status, (end_time_unix_nano - start_time_unix_nano) / 1e6 AS ms "
        f"FROM delta.`{lake}/mlflow/spans` WHERE trace_id = '{trace.info.trace_id}' ORDER BY start_time_unix_nano"
    ).show(truncate=False)


def registry_demo(root: str) -> None:
    step("model registry: register, validate on Staging through a job trigger, promote, load by stage and alias")
    lake = os.path.abspath(os.path.join(root, "demo", "tracking"))
    name = "demo-churn-model"
    trigger = jobs.create_trigger(
        lake, name="validate-on-staging", model_name=name, stage="Staging", callable="jobs:validate_model"
    )
    print(f"trigger: when a version of {name} moves to Staging, run {trigger.callable}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    with mlflow.start_run(run_name="logreg"):
        mlflow.sklearn.log_model(
            LogisticRegression().fit(x, y), name="model", input_example=x[:3], registered_model_name=name
        )
    client = mlflow.MlflowClient()
    version = client.get_latest_versions(name, stages=["None"])[0].version
    print(f"registered {name} version {version}")
    client.transition_model_version_stage(name, version, "Staging")
    deadline = time.time() + 120
    while not (runs := jobs.list_runs(lake, trigger.trigger_id)) and time.time() < deadline:
        time.sleep(0.2)
    if not runs:
        raise SystemExit("the validation job did not run within 120 s")
    print(f"validation job {runs[0].status}: {runs[0].output.strip().splitlines()[-1]}")
    if runs[0].status != "succeeded":
        raise SystemExit("validation failed; not promoting")
    client.transition_model_version_stage(name, version, "Production", archive_existing_versions=True)
    client.set_registered_model_alias(name, "champion", version)
    by_stage = [int(v) for v in mlflow.pyfunc.load_model(f"models:/{name}/Production").predict(x[:5])]
    by_alias = [int(v) for v in mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(x[:5])]
    print(f"models:/{name}/Production predicts {by_stage}; models:/{name}@champion agrees: {by_stage == by_alias}")
    print("the registry is Delta tables too; which version is in Production now:")
    tracking.model_versions("lakehouse://" + lake, name=name).select(
        "name", "version", "current_stage", "aliases"
    ).show()


def feature_store_demo(root: str, spark) -> FeatureStoreClient:
    step("feature store: two feature tables, merge writes, a point-in-time training set")
    fs = FeatureStoreClient(root=os.path.join(root, "demo", "features"), spark=spark)
    txns = spark.sql("""select * from values
        (1, timestamp'2026-01-01 00:00:00', 10.0D), (1, timestamp'2026-01-10 00:00:00', 30.0D),
        (2, timestamp'2026-01-05 00:00:00', 5.0D) as t(customer_id, ts, spend_7d)""")
    fs.create_table(
        name="customer_spend",
        primary_keys=["customer_id"],
        timestamp_keys=["ts"],
        df=txns,
        description="7-day spend per customer",
        tags={"team": "risk"},
    )
    profile = spark.sql("select * from values (1, 'gold'), (2, 'silver') as t(customer_id, tier)")
    fs.create_table(name="customer_profile", primary_keys=["customer_id"], df=profile)
    fs.write_table(
        name="customer_spend",
        df=spark.sql("select 2 as customer_id, timestamp'2026-01-12 00:00:00' as ts, 7.0D as spend_7d"),
        mode="merge",
    )
    labels = spark.sql("""select * from values
        (1, timestamp'2026-01-09 12:00:00', true), (1, timestamp'2026-01-10 00:00:00', false),
        (2, timestamp'2026-01-04 00:00:00', false), (2, timestamp'2026-01-20 00:00:00', true)
        as t(customer_id, label_ts, churn)""")
    ts = fs.create_training_set(
        df=labels,
        feature_lookups=[
            FeatureLookup(
                table_name="customer_spend",
                feature_names=["spend_7d"],
                lookup_key="customer_id",
                timestamp_lookup_key="label_ts",
                lookback_window=timedelta(days=30),
                default_values={"spend_7d": 0.0},
            ),
            FeatureLookup(table_name="customer_profile", feature_names=["tier"], lookup_key="customer_id"),
        ],
        label="churn",
    )
    before = ts.load_df().orderBy("customer_id", "label_ts")
    before.show()
    print("a late correction is merged into customer_spend after the training set was created ...")
    fs.write_table(
        name="customer_spend",
        df=spark.sql("select 1 as customer_id, timestamp'2026-01-01 00:00:00' as ts, 99.0D as spend_7d"),
        mode="merge",
    )
    after = ts.load_df().orderBy("customer_id", "label_ts")
    same = before.collect() == after.collect()
    print(f"... and load_df() still returns the same rows (it reads the recorded versions {ts.versions}): {same}")
    if not same:
        raise SystemExit("load_df() changed after a later merge")
    return fs


def basket_share(basket, spend):
    """An on-demand feature: the basket against the customer's 7-day spend (its source travels with the model)."""
    if basket is None or spend is None:
        return 0.0
    return basket / (spend + 1.0)


def production_demo(fs: FeatureStoreClient, spark) -> None:
    step("features into production: a feature-aware model, scored by stage, published, served, checked")
    mlflow.set_tracking_uri("lakehouse://" + os.path.abspath(fs.lakehouse.root))
    mlflow.set_experiment("demo-features")  # the feature lake's own experiment (the tracking demo's is elsewhere)
    fs.create_feature_function(name="basket_share", function=basket_share, return_type="double", replace=True)
    labels = spark.sql("""select * from values
        (1, timestamp'2026-01-02 00:00:00', 4.0D, 0), (1, timestamp'2026-01-11 00:00:00', 60.0D, 1),
        (2, timestamp'2026-01-06 00:00:00', 9.0D, 1), (2, timestamp'2026-01-13 00:00:00', 1.0D, 0),
        (3, timestamp'2026-01-08 00:00:00', 20.0D, 1), (1, timestamp'2026-01-12 00:00:00', 2.0D, 0)
        as t(customer_id, label_ts, basket, churn)""")
    lookups = [
        FeatureLookup(
            table_name="customer_spend",
            feature_names=["spend_7d"],
            lookup_key="customer_id",
            timestamp_lookup_key="label_ts",
            default_values={"spend_7d": 0.0},
        ),
        FeatureFunction(
            udf_name="basket_share", input_bindings={"basket": "basket", "spend": "spend_7d"}, output_name="share"
        ),
    ]
    ts = fs.create_training_set(
        df=labels, feature_lookups=lookups, label="churn", exclude_columns=["customer_id", "label_ts", "basket"]
    )
    train = ts.load_df().toPandas()
    model = LogisticRegression().fit(train[["spend_7d", "share"]], train["churn"])
    info = fs.log_model(
        model,
        "model",
        flavor=mlflow.sklearn,
        training_set=ts,
        registered_model_name="demo_churn_features",
        pip_requirements=["scikit-learn"],
    )
    client = mlflow.MlflowClient()
    client.transition_model_version_stage("demo_churn_features", info.registered_model_version, "Production")
    uri = "models:/demo_churn_features/Production"
    print(f"logged {info.model_uri} with its feature spec; version {info.registered_model_version} is in Production")

    keys = labels.drop("churn")  # what a scoring job has: keys, times and the request column
    scored = fs.score_batch(uri, keys).orderBy("customer_id", "label_ts")
    scored.show()
    offline = fs.create_training_set(labels, lookups, "churn").load_df().orderBy("customer_id", "label_ts")
    expected = model.predict(offline.toPandas()[["spend_7d", "share"]]).tolist()
    got = [int(r["prediction"]) for r in scored.collect()]
    print(f"score_batch by stage == predict on the training rows: {got == expected}")
    if got != expected:
        raise SystemExit("score_batch disagrees with the offline training rows")
    again = fs.load_training_set(uri)
    print(f"load_training_set({uri!r}) re-created the training rows, content hash checked: {again!r}")

    print(fs.publish_table("customer_spend"))  # the default online store: SQLite in the lake
    request = {"customer_id": 1, "basket": 12.0}
    with served(uri) as base:
        answer = post(f"{base}/invocations", {"dataframe_records": [request]})
    print(f"mlflow models serve answered {request} (keys only) with {answer['predictions']}")
    local = fs.get_online_features(uri, [request])
    print(f"the same features from Python: {local.to_dict('records')}")
    print(fs.check_consistency(uri, sample=100))
    step("lineage: who uses customer_spend")
    print(fs.get_table("customer_spend").lineage())


@contextlib.contextmanager
def served(model_uri: str, timeout: float = 180.0):
    """`mlflow models serve -m model_uri --env-manager local` on a free 127.0.0.1 port, until /ping answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bin_dir = os.path.dirname(sys.executable)
    server = subprocess.Popen(
        [
            os.path.join(bin_dir, "mlflow"),
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env={
            **os.environ,
            "PATH": os.pathsep.join([bin_dir, os.environ["PATH"]]),
            "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"mlflow models serve did not start (exit {server.poll()})")
            time.sleep(0.25)
        yield base
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return json.loads(resp.read())


if __name__ == "__main__":
    main()
