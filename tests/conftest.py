"""Shared fixtures: one SparkSession per test run, a fresh lake per test, both Delta engines.

The whole suite runs under a non-UTC local time zone so that any use of the machine's local time
(naive datetimes read as local, Python-side timestamp conversion) shows up as a failure.
"""

from __future__ import annotations

import os
import time

os.environ["TZ"] = "America/New_York"
time.tzset()

import pytest  # noqa: E402

from lakehouse import Lakehouse, delta_classes_loaded, local_spark  # noqa: E402

ENGINES = ["deltalake", "delta-spark"]


def pytest_addoption(parser):
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the long variants (many repeated-process trials) instead of their small versions",
    )


@pytest.fixture(scope="session")
def trials(request):
    """trials(small, long): how many repetitions a repeated-trial test makes; `long` under `pytest --long`."""
    long_run = request.config.getoption("--long")

    def count(small: int, long: int) -> int:
        return long if long_run else small

    return count


@pytest.fixture(scope="session")
def spark():
    session = local_spark(master="local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(params=ENGINES)
def engine(request, spark) -> str:
    """Each contract test runs once per Delta engine. delta-spark is never skipped: a session without Delta's
    classes is a set-up failure (`make test` runs `lakehouse-setup` first), not a reason to test less."""
    if request.param == "delta-spark" and not delta_classes_loaded(spark):
        pytest.fail(
            "delta-spark engine: Delta Lake's JARs are not on the Spark classpath. Run `.venv/bin/lakehouse-setup` "
            "(needs Maven and a JDK) or set LAKEHOUSE_DELTA_JARS to local delta-spark JARs."
        )
    return request.param


@pytest.fixture
def lake(tmp_path, spark, engine) -> Lakehouse:
    """A Lakehouse on an empty root, for the engine under test."""
    return Lakehouse(tmp_path / "lake", spark=spark, engine=engine)


@pytest.fixture
def rs_lake(tmp_path, spark) -> Lakehouse:
    """A Lakehouse on the embedded deltalake engine (for behaviour specific to it)."""
    return Lakehouse(tmp_path / "lake", spark=spark, engine="deltalake")
