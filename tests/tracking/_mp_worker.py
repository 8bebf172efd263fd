"""One writer process of the multi-process test: N runs with params and a per-step metric history."""

import sys

import mlflow

uri, experiment_id, worker, runs, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mlflow.set_tracking_uri(uri)
for i in range(runs):
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"w{worker}-r{i}"):
        mlflow.log_params({"worker": str(worker), "index": str(i), "lr": str(0.001 * i)})
        for step in range(steps):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("done", "yes")
