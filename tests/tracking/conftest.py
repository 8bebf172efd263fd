"""Fixtures for the tracking store: a sqlite and a lakehouse tracking URI per test, and MLflow's global state reset."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def run_in_tmp_path(monkeypatch, tmp_path):
    """No tracking test writes ./mlruns here (MLflow's global state is reset for every test: tests/conftest.py)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sqlite_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


@pytest.fixture
def lake_uri(tmp_path) -> str:
    return f"lakehouse://{tmp_path}/lake"


@pytest.fixture
def backends(sqlite_uri, lake_uri, tmp_path) -> dict[str, str]:
    """The two tracking URIs a differential test drives with the same scenario (reference first)."""
    os.makedirs(tmp_path / "sqlite-artifacts", exist_ok=True)
    return {"sqlite": sqlite_uri, "lakehouse": lake_uri}
