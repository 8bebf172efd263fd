"""Typed errors raised by `jobs`, one family under `JobsError`, each carrying the facts it names::

JobsError
├── InvalidTriggerError    (also ValueError)    create_trigger arguments that cannot make a trigger
├── TriggerNotFoundError   (also KeyError)      no live trigger with that id
├── ModelValidationError   (also RuntimeError)  validate_model: the version cannot load or predict
├── InvalidJobArgumentError (also ValueError)   a job's argument that cannot run it (nothing was written)
└── LakeNotFoundError      (also FileNotFoundError) a job named a lake that does not exist (and no --create)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "InvalidJobArgumentError",
    "InvalidTriggerError",
    "JobsError",
    "LakeNotFoundError",
    "ModelValidationError",
    "TriggerNotFoundError",
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
