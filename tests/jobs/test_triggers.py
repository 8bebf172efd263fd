"""Job triggers on a model-version tag (the `monitor` job's `monitoring.alert`), beside the stage and alias ones."""

from __future__ import annotations

import sys
import time

import mlflow
import pytest

import jobs
from jobs.errors import InvalidTriggerError


def _marker_command(path) -> list[str]:
    """A job that appends the version and the tag's value it was run for to `path`."""
    code = (
        "import json, os; e = json.loads(os.environ['LAKEHOUSE_EVENT']); "
        f"open({str(path)!r}, 'a').write(os.environ['MODEL_VERSION'] + '=' + e['payload']['value'] + '\\n')"
    )
    return [sys.executable, "-c", code]


def _wait_runs(lake, n: int) -> list[jobs.JobRun]:
    deadline = time.time() + 60
    while len(runs := jobs.list_runs(lake)) < n:
        assert time.time() < deadline, runs
        time.sleep(0.1)
    return runs


def test_a_tag_trigger_runs_when_the_tag_is_set_and_only_then(tmp_path):
    lake = tmp_path / "lake"
    client = mlflow.MlflowClient(f"lakehouse://{lake}")
    client.create_registered_model("churn")
    for i in (1, 2):
        client.create_model_version("churn", f"s3://b/{i}")
    any_value, only_red = tmp_path / "any.txt", tmp_path / "red.txt"
    on_alert = jobs.create_trigger(
        lake, name="retrain", model_name="churn", tag="monitoring.alert", command=_marker_command(any_value)
    )
    on_red = jobs.create_trigger(
        lake,
        name="page",
        model_name="churn",
        tag="monitoring.alert",
        tag_value="red",
        command=_marker_command(only_red),
    )
    assert (on_alert.tag, on_alert.tag_value, on_alert.stage, on_alert.alias) == ("monitoring.alert", None, None, None)
    assert jobs.list_triggers(lake) == [on_alert, on_red]

    client.set_model_version_tag("churn", "1", "owner", "ana")  # another key: no run
    client.set_registered_model_tag("churn", "monitoring.alert", "red")  # a model tag, not a version's: no run
    client.set_model_version_tag("churn", "1", "monitoring.alert", "amber")  # the any-value trigger only
    client.set_model_version_tag("churn", "2", "monitoring.alert", "red")  # both
    runs = _wait_runs(lake, 3)
    assert sorted((r.trigger_id, r.version, r.status) for r in runs) == sorted(
        [
            (on_alert.trigger_id, "1", "succeeded"),
            (on_alert.trigger_id, "2", "succeeded"),
            (on_red.trigger_id, "2", "succeeded"),
        ]
    )
    assert sorted(any_value.read_text().split()) == ["1=amber", "2=red"]
    assert only_red.read_text().split() == ["2=red"]
    jobs.delete_trigger(lake, on_red.trigger_id)
    assert jobs.list_triggers(lake) == [on_alert]


@pytest.mark.parametrize(
    ("change", "argument"),
    [
        ({"stage": "Staging", "tag": "monitoring.alert"}, "stage/alias/tag"),
        ({"alias": "champion", "tag": "monitoring.alert"}, "stage/alias/tag"),
        ({"tag": ""}, "tag"),
        ({"tag": "../x"}, "tag"),
        ({"tag": 3}, "tag"),
        ({"tag": "monitoring.alert", "tag_value": 3}, "tag_value"),
        ({"stage": "Staging", "tag_value": "red"}, "tag_value"),
    ],
)
def test_a_bad_tag_trigger_is_refused_and_nothing_written(tmp_path, change, argument):
    lake = tmp_path / "lake"
    args = {"name": "retrain", "model_name": "churn", "callable": "my_jobs:run", **change}
    with pytest.raises(InvalidTriggerError) as info:
        jobs.create_trigger(lake, **args)
    assert info.value.argument == argument
    assert jobs.list_triggers(lake) == []
