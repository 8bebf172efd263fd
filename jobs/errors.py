"""Typed errors raised by `jobs`, one family under `JobsError`, each carrying the facts it names::

JobsError
├── InvalidTriggerError    (also ValueError)    create_trigger arguments that cannot make a trigger
├── TriggerNotFoundError   (also KeyError)      no live trigger with that id
├── ModelValidationError   (also RuntimeError)  validate_model: the version cannot load or predict
├── InvalidJobArgumentError (also ValueError)   a job's argument that cannot run it (nothing was written)
├── LakeNotFoundError      (also FileNotFoundError) a job named a lake that does not exist (and no --create)
├── InvalidWebhookError    (also ValueError)    RegistryWebhooksClient arguments that cannot make a webhook
│   └── UnsupportedWebhookEventError            events with no equivalent on the lake (the supported ones named)
├── WebhookNotFoundError   (also KeyError)      no registry webhook with that id (the lake's ids named)
└── FeatureWindowError     (also RuntimeError)  a window of a `features` run failed (recorded; the next run resumes there)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "FeatureWindowError",
    "InvalidJobArgumentError",
    "InvalidTriggerError",
    "InvalidWebhookError",
    "JobsError",
    "LakeNotFoundError",
    "ModelValidationError",
    "TriggerNotFoundError",
    "UnsupportedWebhookEventError",
    "WebhookNotFoundError",
]


class JobsError(Exception):
    """Base class of every error raised by `jobs`."""


class InvalidTriggerError(JobsError, ValueError):
    def __init__(self, argument: str, value: object, expected: str) -> None:
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"create_trigger: {argument}={value!r} is not valid: {expected}. Nothing was written.")


class TriggerNotFoundError(JobsError, KeyError):
    def __init__(self, trigger_id: str, live: Sequence[str]) -> None:
        self.trigger_id = trigger_id
        self.live = tuple(live)
        super().__init__(f"no live trigger {trigger_id!r}; live triggers: {list(self.live)}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class ModelValidationError(JobsError, RuntimeError):
    """The model version could not be loaded or could not predict on its input example."""


class InvalidJobArgumentError(JobsError, ValueError):
    """A job's argument that cannot run it, refused before anything is written."""

    def __init__(self, job: str, argument: str, value: object, expected: str) -> None:
        self.job = job
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"{job}: {argument}={value!r} is not valid: {expected}. Nothing was written.")


class LakeNotFoundError(JobsError, FileNotFoundError):
    """The lake a job names does not exist; jobs never create one unless asked (`--create`)."""

    def __init__(self, lake: str, reason: str) -> None:
        self.lake = lake
        self.reason = reason
        super().__init__(
            f"no lake at {lake!r}: {reason}. Check the path, or pass --create (create=True) to make a new lake there."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidWebhookError(JobsError, ValueError):
    """A webhook argument that cannot make or change a webhook on the lake (nothing was written)."""

    def __init__(self, argument: str, value: object, expected: str) -> None:
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"registry webhooks: {argument}={value!r} is not valid: {expected}. Nothing was written.")


class UnsupportedWebhookEventError(InvalidWebhookError):
    """Events with no equivalent on the lake for this kind of webhook; `supported` lists those that have one."""

    def __init__(self, events: Sequence[str], supported: Sequence[str], kind: str, hint: str) -> None:
        self.events = tuple(events)
        self.supported = tuple(supported)
        super().__init__(
            "events", list(self.events), f"a {kind} webhook on a lake supports only {list(self.supported)}; {hint}"
        )


class WebhookNotFoundError(JobsError, KeyError):
    def __init__(self, webhook_id: str, live: Sequence[str]) -> None:
        self.webhook_id = webhook_id
        self.live = tuple(live)
        super().__init__(f"no registry webhook {webhook_id!r} on this lake; its webhooks: {list(self.live)}")

    def __str__(self) -> str:
        return str(self.args[0])


class FeatureWindowError(JobsError, RuntimeError):
    """A window of a `features` run failed; it is recorded as failed and the next run starts there."""

    def __init__(self, table: str, pipeline: str, window: object, completed: int, cause: str) -> None:
        self.table = table
        self.pipeline = pipeline
        self.window = window
        self.completed = completed
        self.cause = cause
        super().__init__(
            f"features: window {window} of {table} failed ({completed} window(s) before it completed in this run): "
            f"{cause}. It is recorded as failed in jobs.feature_windows; fix the pipeline {pipeline} and run the job "
            "again with the same range: it resumes at this window."
        )
