"""The LAKEHOUSE_* settings: read in one module, typed, and refused with the variable's name when malformed."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from pathlib import Path

import pytest

from lakehouse import Settings, settings
from lakehouse.errors import InvalidSettingError

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_defaults_when_nothing_is_set():
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"LAKEHOUSE_ENGINE": "", "LAKEHOUSE_ROOT": "  "}) == Settings()


def test_each_variable_reaches_its_field():
    env = {
        "LAKEHOUSE_ROOT": "/data/lake",
        "LAKEHOUSE_ENGINE": "DeltaLake",
        "LAKEHOUSE_DELTA_JARS": "/a.jar, /b.jar,",
        "LAKEHOUSE_DELTA": "off",
        "LAKEHOUSE_JARS_HOME": "/opt/jars",
        "LAKEHOUSE_SPARK_MASTER": "local[2]",
        "LAKEHOUSE_SPARK_LOG_LEVEL": "WARN",
        "LAKEHOUSE_TRACKING_FSYNC": "yes",
        "LAKEHOUSE_REGISTRY_DISPATCH": "0",
        "LAKEHOUSE_DISPATCH_POLL_SECONDS": "0.25",
        "LAKEHOUSE_DISPATCH_EXIT_SECONDS": "0",
        "LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS": "1e-2",
        "LAKEHOUSE_WEBHOOK_SECRETS": "Clear",
    }
    assert Settings.from_env(env) == Settings(
        root="/data/lake",
        engine="deltalake",
        delta_jars=("/a.jar", "/b.jar"),
        delta_enabled=False,
        jars_home=Path("/opt/jars"),
        spark_master="local[2]",
        spark_log_level="WARN",
        tracking_fsync=True,
        registry_dispatch=False,
        dispatch_poll_seconds=0.25,
        dispatch_exit_seconds=0.0,
        webhook_backoff_seconds=0.01,
        webhook_secrets="clear",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LAKEHOUSE_TRACKING_FSYNC", "maybe"),
        ("LAKEHOUSE_DELTA", "disabled"),
        ("LAKEHOUSE_DISPATCH_POLL_SECONDS", "two"),
        ("LAKEHOUSE_DISPATCH_EXIT_SECONDS", "-1"),
        ("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "nan"),
        ("LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", "inf"),
        ("LAKEHOUSE_WEBHOOK_SECRETS", "none"),
    ],
)
def test_a_malformed_value_names_the_variable(variable, value):
    with pytest.raises(InvalidSettingError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable
    assert info.value.value == value
    assert variable in str(info.value)
    assert isinstance(info.value, ValueError)


def test_settings_reads_the_environment_at_each_call(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "local[3]")
    assert settings().spark_master == "local[3]"
    monkeypatch.delenv("LAKEHOUSE_SPARK_MASTER")
    assert settings().spark_master == Settings().spark_master


def test_every_field_is_documented_with_its_variable():
    source = (REPO / "lakehouse" / "_settings.py").read_text()
    readme = (REPO / "README.md").read_text()
    for field in dataclasses.fields(Settings):
        variable = "LAKEHOUSE_" + {"delta_enabled": "DELTA"}.get(field.name, field.name.upper())
        assert f'"{variable}"' in source, f"{field.name} is not read from ${variable}"
        assert f"`{variable}`" in readme, f"README's settings table does not list {variable}"


def test_no_other_module_reads_a_lakehouse_variable():
    # LAKEHOUSE_EVENT is the event a registry trigger hands to the job it starts, not a setting.
    reads = re.compile(r"(environ\.get|environ\[|getenv)\(?\s*[\"']LAKEHOUSE_(?!EVENT\b)")
    assert reads.search('os.environ.get("LAKEHOUSE_ROOT")') and reads.search("os.environ['LAKEHOUSE_ENGINE']")
    assert not reads.search('os.environ.get("LAKEHOUSE_EVENT", "{}")')
    offenders = [
        str(p.relative_to(REPO))
        for package in ("lakehouse", "tracking", "feature_store", "jobs")
        for p in (REPO / package).rglob("*.py")
        if p.name != "_settings.py" and reads.search(p.read_text())
    ]
    assert offenders == []


def test_variables_lists_every_setting():
    from lakehouse._settings import VARIABLES

    source = (REPO / "lakehouse" / "_settings.py").read_text()
    assert sorted(VARIABLES) == sorted(set(re.findall(r'"(LAKEHOUSE_[A-Z_]+)"', source)))


def test_the_commit_path_accessor_agrees_with_settings(monkeypatch):
    from lakehouse._settings import tracking_fsync

    for value, expected in [(None, False), ("1", True), ("off", False), (" TRUE ", True)]:
        if value is None:
            monkeypatch.delenv("LAKEHOUSE_TRACKING_FSYNC", raising=False)
        else:
            monkeypatch.setenv("LAKEHOUSE_TRACKING_FSYNC", value)
        assert tracking_fsync() is expected is settings().tracking_fsync
    monkeypatch.setenv("LAKEHOUSE_TRACKING_FSYNC", "sometimes")
    with pytest.raises(InvalidSettingError):
        tracking_fsync()
