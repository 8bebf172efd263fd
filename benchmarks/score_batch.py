"""score_batch benchmark: fs.score_batch against the training-set join plus a plain spark_udf prediction.

    python benchmarks/score_batch.py            # 1M key rows, 2 point-in-time lookups (1M and 10k feature rows)
    python benchmarks/score_batch.py --quick    # 50k key rows, the same shape, and the results compared

Data: `bench.customers` (--rows feature rows over --rows/10 customers, timestamp key `ts`, features c1..c3
double) and `bench.regions` (10k feature rows over 1,000 regions, timestamp key `ts`, features r1, r2), both
written once. The keys DataFrame: --rows rows of (customer_id, region_id, label_ts), random, written to Parquet
once and read back. Both lookups are point-in-time on `label_ts`, with default values 0.0. A LinearRegression is
trained on the training set of a 20k-row label sample and logged with fs.log_model (registered, MLflow tracking
URI lakehouse:///<temp dir>); the same sklearn model is also saved plainly with mlflow.sklearn.save_model.

Timed (one warm-up each, then --repeats runs alternating anchor / ours; medians), each fully materialised with
`.write.format("noop").mode("overwrite").save()`:
  ours   : fs.score_batch("models:/<name>/1", keys_df) (the call itself: model download, spark_udf, plan).
  anchor : fs.create_training_set(keys_df, same lookups, label=None).load_df(), then the keys, the features and
           mlflow.pyfunc.spark_udf(<the plain sklearn model dir>, env_manager="local") applied to the features
           (the spark_udf built inside the timed run too, as score_batch builds its own).
Target: ours / anchor <= 1.5x (medians); the ratio of the fastest runs is printed too, as the
least disturbed by other load on the machine. Everything lives in a temp directory deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import sklearn
from _machine import revision
from pyspark.sql import functions as F
from sklearn.linear_model import LinearRegression

from feature_store import FeatureLookup, FeatureStoreClient
from feature_store._local import THRESHOLD_CONF
from lakehouse import local_spark

T0 = 1_735_689_600  # 2025-01-01 UTC
SPAN = 365 * 86_400
CUST = ["c1", "c2", "c3"]
REG = ["r1", "r2"]
MODEL = "bench_score"
N_REGIONS = 1_000


def noop(df) -> None:
    df.write.format("noop").mode("overwrite").save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="key rows scored, and customer feature rows")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="50k rows, and ours checked equal to the anchor")
    args = ap.parse_args()
    if args.quick:
        args.rows = 50_000
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = tempfile.mkdtemp(prefix="scorebench-")
    try:
        spark = local_spark(master="local[2]")
        root = os.path.join(work, "lake")
        fs = FeatureStoreClient(root=root, spark=spark)
        mlflow.set_tracking_uri(f"lakehouse://{root}")
        n_cust = max(args.rows // 10, 1)

        # -- data ------------------------------------------------------------------------------------------------
        def ts_col(seed: int):
            return F.timestamp_seconds(F.lit(T0) + (F.rand(seed) * SPAN).cast("long"))

        cust = (
            spark.range(args.rows)
            .select(
                (F.col("id") % n_cust).alias("customer_id"),
                ts_col(1).alias("ts"),
                *[F.rand(10 + i).alias(f) for i, f in enumerate(CUST)],
            )
            .dropDuplicates(["customer_id", "ts"])
        )
        fs.create_table(name="bench.customers", primary_keys="customer_id", timestamp_keys="ts", df=cust)
        reg = (
            spark.range(10 * N_REGIONS)
            .select(
                (F.col("id") % N_REGIONS).alias("region_id"),
                ts_col(2).alias("ts"),
                *[F.rand(20 + i).alias(f) for i, f in enumerate(REG)],
            )
            .dropDuplicates(["region_id", "ts"])
        )
        fs.create_table(name="bench.regions", primary_keys="region_id", timestamp_keys="ts", df=reg)
        keys_path = os.path.join(work, "keys")
        spark.range(args.rows).select(
            (F.rand(3) * n_cust).cast("long").alias("customer_id"),
            (F.rand(4) * N_REGIONS).cast("long").alias("region_id"),
            ts_col(5).alias("label_ts"),
        ).write.mode("overwrite").parquet(keys_path)
        keys_df = spark.read.parquet(keys_path)
        lookups = [
            FeatureLookup(
                table_name="bench.customers",
                lookup_key="customer_id",
                timestamp_lookup_key="label_ts",
                feature_names=CUST,
                default_values=dict.fromkeys(CUST, 0.0),
            ),
            FeatureLookup(
                table_name="bench.regions",
                lookup_key="region_id",
                timestamp_lookup_key="label_ts",
                feature_names=REG,
                default_values=dict.fromkeys(REG, 0.0),
            ),
        ]
        inputs = [*CUST, *REG]

        # -- model -----------------------------------------------------------------------------------------------
        start = time.perf_counter()
        labels = keys_df.limit(20_000).withColumn("y", F.col("customer_id") % 7 + F.rand(6))
        train_set = fs.create_training_set(
            labels, lookups, "y", exclude_columns=["customer_id", "region_id", "label_ts"]
        )
        train = train_set.load_df().toPandas()
        model = LinearRegression().fit(train[inputs], train["y"])
        info = fs.log_model(
            model,
            "model",
            flavor=mlflow.sklearn,
            training_set=train_set,
            registered_model_name=MODEL,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # else MLflow infers them (~10 s)
        )
        raw_dir = os.path.join(work, "raw_model")
        mlflow.sklearn.save_model(model, raw_dir, pip_requirements=[f"scikit-learn=={sklearn.__version__}"])
        uri = f"models:/{MODEL}/{info.registered_model_version}"
        print(
            f"key rows={keys_df.count():,} customer feature rows={fs.read_table('bench.customers').count():,} "
            f"({n_cust:,} customers) region feature rows={fs.read_table('bench.regions').count():,} "
            f"({N_REGIONS:,} regions) spark=local[2] cores={os.cpu_count()} "
            f"shuffle.partitions={spark.conf.get('spark.sql.shuffle.partitions')} "
            f"{THRESHOLD_CONF}={spark.conf.get(THRESHOLD_CONF, 'default')} "
            f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())} {revision()}",
            flush=True,
        )
        print(f"  train on 20k labels + log_model        {time.perf_counter() - start:7.2f} s (for information)")

        def ours_df():
            return fs.score_batch(uri, keys_df)

        def anchor_df():
            joined = fs.create_training_set(keys_df, lookups, label=None).load_df()
            predict = mlflow.pyfunc.spark_udf(spark, raw_dir, result_type="double", env_manager="local")
            return joined.select(
                *keys_df.columns, *inputs, predict(F.struct(*[F.col(c) for c in inputs])).alias("prediction")
            )

        if args.quick:  # the same rows, the same predictions
            o, a = ours_df(), anchor_df()
            assert o.columns == a.columns, (o.columns, a.columns)
            diff = o.exceptAll(a).count() + a.exceptAll(o).count()
            print(f"  check: ours and anchor differ in {diff} rows", flush=True)
            assert diff == 0

        runs: dict[str, list[float]] = {"anchor": [], "ours": []}
        loads: dict[str, list[float]] = {"anchor": [], "ours": []}
        fns = {"anchor": anchor_df, "ours": ours_df}
        for i in range(args.repeats + 1):
            for name, fn in fns.items():
                start = time.perf_counter()
                noop(fn())
                took = time.perf_counter() - start
                if i:  # the first round is the warm-up
                    runs[name].append(took)
                    loads[name].append(os.getloadavg()[0])
        med = {name: statistics.median(r) for name, r in runs.items()}
        labels_of = {"anchor": "anchor: load_df + spark_udf", "ours": "ours: fs.score_batch"}
        for name, r in runs.items():
            print(
                f"  {labels_of[name]:30s} median {med[name]:7.2f} s   min {min(r):7.2f} s   runs "
                f"{' '.join(f'{x:.2f}' for x in r)}   load after each {' '.join(f'{x:.2f}' for x in loads[name])}",
                flush=True,
            )
        ratio = med["ours"] / med["anchor"]
        print(f"  score_batch / anchor: {ratio:.2f}x (target <= 1.5x): {'PASS' if ratio <= 1.5 else 'FAIL'}")
        print(f"  score_batch / anchor, fastest runs: {min(runs['ours']) / min(runs['anchor']):.2f}x (for information)")
        sys.stdout.flush()
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os._exit(0)  # skip interpreter teardown: native thread pools can abort at exit (see delta-engines notes)


if __name__ == "__main__":
    main()
