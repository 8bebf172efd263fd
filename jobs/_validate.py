"""A ready-made job for registry triggers: smoke-test a model version before it is promoted further."""

from __future__ import annotations

import os
from typing import Any

import mlflow

from .errors import ModelValidationError


def validate_model(event: dict[str, Any]) -> dict[str, Any]:
    """Load the event's model version with pyfunc and predict on the input example logged with it.

    Use it as a trigger callable: `create_trigger(lake, ..., stage="Staging", callable="jobs:validate_model")`.
    The job fails (non-zero exit, recorded in `mlflow.job_runs`) when the model does not load, has no
    input example, or predicts nothing.
    """
    name = event.get("name") or os.environ.get("MODEL_NAME")
    version = event.get("version") or os.environ.get("MODEL_VERSION")
    if not name or not version:
        raise ModelValidationError(f"the event names no model version (name={name!r}, version={version!r})")
    uri = f"models:/{name}/{version}"
    model = mlflow.pyfunc.load_model(uri)
    example = model.input_example
    if example is None:
        raise ModelValidationError(f"{uri} has no input example to validate with; log the model with input_example=...")
    predictions = model.predict(example)
    n = len(predictions)
    if n == 0:
        raise ModelValidationError(f"{uri} returned no predictions for its {len(example)}-row input example")
    print(f"validated {uri}: {n} predictions on its input example")
    return {"model": uri, "predictions": n}
