"""jobs: the lake's batch jobs (maintain, features, score, monitor, validate: `lakehouse-jobs`), registry triggers
and webhooks.

    >>> import jobs
    >>> jobs.create_trigger("/data/lake", name="validate", model_name="churn", stage="Staging",
    ...                     callable="my_jobs.validate:run")        # runs when a churn version enters Staging
    >>> jobs.list_runs("/data/lake")                             # recorded runs (the Delta table mlflow.job_runs)

Triggers fire from the registry's event dispatcher (a background thread of any process that writes to the
registry) and from `python -m jobs drain <lake>` (cron, or `--follow` as a service).
"""

from lakehouse import __version__ as __version__  # one version for the distribution's four packages

from . import errors
from ._features import features
from ._maintain import maintain
from ._monitor import monitor
from ._runner import JobHistory, history
from ._score import deploy_model, score
from ._triggers import JobRun, Trigger, create_trigger, delete_trigger, drain, list_runs, list_triggers
from ._validate import validate, validate_model
from ._webhooks_client import HttpUrlSpec, JobSpec, RegistryWebhook, RegistryWebhooksClient, TestWebhookResponse
from .errors import FeatureWindowError, ModelValidationError


def cli(argv: list[str] | None = None) -> int:
    """`lakehouse-jobs <argv>` in this process (its Spark session reused), returning the exit code the command would
    exit with; what it prints goes to this process's stdout and stderr."""
    from .__main__ import main

    return main(argv)


__all__ = [
    "FeatureWindowError",
    "HttpUrlSpec",
    "JobHistory",
    "JobRun",
    "JobSpec",
    "ModelValidationError",
    "RegistryWebhook",
    "RegistryWebhooksClient",
    "TestWebhookResponse",
    "Trigger",
    "cli",
    "create_trigger",
    "delete_trigger",
    "deploy_model",
    "drain",
    "errors",
    "features",
    "history",
    "list_runs",
    "list_triggers",
    "maintain",
    "monitor",
    "score",
    "validate",
    "validate_model",
]
