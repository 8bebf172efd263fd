"""Drive one scenario through the real MLflow client against each backend and normalise what comes back.

Ids and times that must differ between backends (run ids, client-side timestamps, artifact URIs) are
dropped or mapped to stable names; everything else, including error codes, must be equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Experiment, LoggedModel, Metric, Run
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import fluent

_VOLATILE_TAGS = {"mlflow.source.name", "mlflow.source.git.commit", "mlflow.user"}


class Recorder:
    """Collects `(label, normalised outcome)` pairs; run ids are replaced by run names."""

    def __init__(self, client: MlflowClient) -> None:
        self.items: list[tuple[str, Any]] = []
        self.client = client

    def run_name(self, run_id: str | None) -> str | None:
        return None if run_id is None else self.client.get_run(run_id).info.run_name

    def __call__(self, label: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except MlflowException as e:
            self.items.append((label, ("error", e.error_code)))
            return None
        self.items.append((label, ("ok", self.norm(value))))
        return value

    def norm(self, x: Any) -> Any:
        if isinstance(x, Run):
            return {
                "name": x.info.run_name,
                "experiment_id": x.info.experiment_id,
                "status": x.info.status,
                "lifecycle_stage": x.info.lifecycle_stage,
                "ended": x.info.end_time is not None,
                "metrics": {k: _num(v) for k, v in x.data.metrics.items()},
                "params": x.data.params,
                "tags": {k: v for k, v in x.data.tags.items() if k not in _VOLATILE_TAGS and k != "mlflow.parentRunId"},
                "parent": self.run_name(x.data.tags.get("mlflow.parentRunId")),
                "datasets": sorted(
                    (
                        d.dataset.name,
                        d.dataset.digest,
                        d.dataset.source_type,
                        d.dataset.source,
                        d.dataset.schema,
                        d.dataset.profile,
                        tuple(sorted((t.key, t.value) for t in d.tags)),
                    )
                    for d in x.inputs.dataset_inputs
                ),
                "model_inputs": len(x.inputs.model_inputs),
                "model_outputs": sorted(o.step for o in (x.outputs.model_outputs if x.outputs else [])),
            }
        if isinstance(x, Experiment):
            return {"id": x.experiment_id, "name": x.name, "stage": x.lifecycle_stage, "tags": x.tags}
        if isinstance(x, Metric):
            return (
                x.key,
                _num(x.value),
                x.step,
                x.timestamp if x.timestamp < 10**12 else "now",
                x.dataset_name,
                x.dataset_digest,
            )
        if isinstance(x, LoggedModel):
            return {
                "name": x.name,
                "status": str(x.status),
                "type": x.model_type,
                "tags": {k: v for k, v in x.tags.items() if k not in _VOLATILE_TAGS},
                "params": x.params,
                "metrics": sorted(self.norm(m) for m in x.metrics or []),
                "source_run": self.run_name(x.source_run_id),
            }
        if isinstance(x, PagedList):
            return {"items": [self.norm(i) for i in x], "more": x.token is not None}
        if isinstance(x, (list, tuple)):
            return [self.norm(i) for i in x]
        if isinstance(x, dict):
            return {k: self.norm(v) for k, v in x.items()}
        if isinstance(x, float):
            return _num(x)
        return x


def _num(v: float) -> Any:
    return "nan" if isinstance(v, float) and math.isnan(v) else v


def differential(
    backends: dict[str, str], scenario: Callable[[MlflowClient, Recorder], None], recorder: type[Recorder] = Recorder
) -> list:
    """Run `scenario` on every backend; assert the lakehouse outcome equals sqlite's, item by item."""
    results: dict[str, list] = {}
    for name, uri in backends.items():
        mlflow.set_tracking_uri(uri)
        client = MlflowClient(uri)
        rec = recorder(client)
        scenario(client, rec)
        while mlflow.active_run() is not None:
            mlflow.end_run()
        fluent._active_experiment_id = None
        results[name] = rec.items
    ref, got = results["sqlite"], results["lakehouse"]
    assert [label for label, _ in ref] == [label for label, _ in got]
    diffs = [
        f"{label}: sqlite gave {want!r}, lakehouse gave {have!r}"
        for (label, want), (_, have) in zip(ref, got, strict=False)
        if have != want
    ]
    assert not diffs, "\n".join(diffs)
    return got
