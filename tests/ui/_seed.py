"""The lake the UI test looks at, logged through MLflow's public API only (run as a script, in its own process).

`python tests/ui/_seed.py <lakehouse:///... URI> <work dir>` logs: an experiment with two runs (params, a `loss`
metric over five steps, tags, an artifact file, a pandas dataset input each: `ui-train` on the first run, `ui-eval`
on the second), a trace of a decorated function inside the first run, a scikit-learn model logged by each run and
registered as versions 1 and 2 of one model, and an alias on version 2. It prints one JSON object on stdout: what it
logged (the values the browser test expects to see) and the ids MLflow gave them.

Its own process: MLflow keeps the tracking URI, the active experiment and the trace exporter in globals and
environment variables, which the test process must not inherit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EXPERIMENT = "ui-experiment"
MODEL = "ui-model"
ALIAS = "champion"
RUNS = ("ui-run-a", "ui-run-b")
DATASETS = ("ui-train", "ui-eval")
"""The dataset each run logs as its training input (the runs page's Datasets filter tells the runs apart by it)."""
PARAMS = ({"alpha": "0.25", "optimizer": "adam-ui"}, {"alpha": "0.5", "optimizer": "sgd-ui"})
TAGS = {"team": "ui-lakehouse", "stage": "explore-ui"}
LOSS = ([0.9, 0.7, 0.55, 0.42, 0.31], [0.95, 0.8, 0.66, 0.6, 0.52])
"""Each run's `loss` metric, one value per step 0..4 (the run page's chart draws these points)."""
ARTIFACT_DIR = "notes"
ARTIFACT_FILE = "readme-ui.txt"
ARTIFACT_TEXT = "seeded artifact for the UI test"
TRACE_NAME = "ui_traced_predict"
INNER_SPAN = "ui-inner-span"
TRACE_INPUT = 21


def seed(lake_uri: str, workdir: Path) -> dict[str, Any]:
    """Log the experiment, runs, trace and model versions to `lake_uri`; return what was logged, with its ids."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas
    from sklearn.linear_model import LinearRegression

    mlflow.set_tracking_uri(lake_uri)
    mlflow.set_registry_uri(lake_uri)
    experiment_id = mlflow.create_experiment(EXPERIMENT)
    mlflow.set_experiment(experiment_id=experiment_id)
    note = workdir / ARTIFACT_FILE
    note.write_text(ARTIFACT_TEXT)

    @mlflow.trace(name=TRACE_NAME)
    def predict(x: int) -> int:
        with mlflow.start_span(INNER_SPAN) as span:
            span.set_inputs({"x": x})
            span.set_outputs({"doubled": 2 * x})
        return 2 * x

    run_ids, versions, digests = [], [], []
    for i, run_name in enumerate(RUNS):
        frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.1, 5.9, 8.2 + i]})
        dataset = from_pandas(frame, name=DATASETS[i], targets="y")
        with mlflow.start_run(run_name=run_name) as run:
            mlflow.log_params(PARAMS[i])
            mlflow.set_tags(TAGS)
            for step, value in enumerate(LOSS[i]):
                mlflow.log_metric("loss", value, step=step)
            mlflow.log_input(dataset, context="training")
            mlflow.log_artifact(str(note), artifact_path=ARTIFACT_DIR)
            if i == 0:
                predict(TRACE_INPUT)
            model = LinearRegression().fit(frame[["x"]].to_numpy(), frame["y"].to_numpy())
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                input_example=np.array([[1.0]]),
                pip_requirements=["scikit-learn"],  # not inferred: inference imports the model in a subprocess
            )
        run_ids.append(run.info.run_id)
        versions.append(str(info.registered_model_version))
        digests.append(dataset.digest)
    mlflow.MlflowClient(lake_uri, lake_uri).set_registered_model_alias(MODEL, ALIAS, versions[-1])
    mlflow.flush_trace_async_logging()
    traces = mlflow.search_traces(locations=[experiment_id], return_type="list")
    if len(traces) != 1:
        raise RuntimeError(f"seeded one trace, the lake holds {len(traces)}")
    return {
        "experiment_id": experiment_id,
        "experiment": EXPERIMENT,
        "runs": list(RUNS),
        "run_ids": run_ids,
        "params": list(PARAMS),
        "tags": TAGS,
        "loss": list(LOSS),
        "datasets": list(DATASETS),
        "dataset_digests": digests,
        "artifact_dir": ARTIFACT_DIR,
        "artifact_file": ARTIFACT_FILE,
        "artifact_text": ARTIFACT_TEXT,
        "trace_id": traces[0].info.trace_id,
        "trace_name": TRACE_NAME,
        "inner_span": INNER_SPAN,
        "trace_input": TRACE_INPUT,
        "trace_output": 2 * TRACE_INPUT,
        "model": MODEL,
        "model_versions": versions,
        "alias": ALIAS,
    }


if __name__ == "__main__":
    print(json.dumps(seed(sys.argv[1], Path(sys.argv[2]))))
