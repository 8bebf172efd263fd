"""The jobs API with bad arguments: one error family (jobs.errors), the argument named, nothing written."""

from __future__ import annotations

import pytest

import jobs
from jobs.errors import InvalidTriggerError, JobsError, ModelValidationError, TriggerNotFoundError

GOOD = {"name": "validate", "model_name": "churn", "stage": "Staging", "callable": "my_jobs:run"}


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"model_name": "  "}, "model_name"),
        ({"stage": None}, "stage/alias/tag"),
        ({"alias": "champion"}, "stage/alias/tag"),
        ({"stage": "Prod"}, "stage"),
        ({"stage": None, "alias": ""}, "alias"),
        ({"callable": None}, "callable/command"),
        ({"command": ["python", "job.py"]}, "callable/command"),
        ({"callable": "my_jobs.run"}, "callable"),
        ({"callable": "my_jobs:"}, "callable"),
        ({"callable": None, "command": "python job.py"}, "command"),
        ({"callable": None, "command": []}, "command"),
        ({"callable": None, "command": ["python", 3]}, "command"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"timeout_seconds": 2.5}, "timeout_seconds"),
    ],
)
def test_create_trigger_refuses_and_writes_nothing(tmp_path, change, argument):
    lake = tmp_path / "lake"
    with pytest.raises(InvalidTriggerError) as info:
        jobs.create_trigger(lake, **{**GOOD, **change})
    assert info.value.argument == argument
    assert isinstance(info.value, JobsError) and isinstance(info.value, ValueError)
    assert argument.split("/")[0] in str(info.value)
    assert jobs.list_triggers(lake) == []


def test_a_good_trigger_is_written_and_an_unknown_one_named(tmp_path):
    lake = tmp_path / "lake"
    made = jobs.create_trigger(lake, **{**GOOD, "stage": "staging"})
    assert made.stage == "Staging"
    assert jobs.list_triggers(lake) == [made]
    with pytest.raises(TriggerNotFoundError) as info:
        jobs.delete_trigger(lake, "nope")
    assert info.value.trigger_id == "nope" and info.value.live == (made.trigger_id,)
    assert made.trigger_id in str(info.value) and isinstance(info.value, KeyError)
    jobs.delete_trigger(lake, made.trigger_id)
    assert jobs.list_triggers(lake) == []


def test_validate_model_without_a_version_is_a_validation_error():
    with pytest.raises(ModelValidationError) as info:
        jobs.validate_model({})
    assert isinstance(info.value, JobsError) and "names no model version" in str(info.value)
