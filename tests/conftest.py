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


_MLFLOW_STATE_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",
)


@pytest.fixture(autouse=True)
def reset_mlflow_state():
    """No test sees another's tracking or registry URI, active experiment or active run (MLflow keeps them in
    globals and in environment variables that `mlflow.set_experiment` and friends set). Removed, not restored, at
    both ends: a module fixture that ran `mlflow.set_experiment` must not leak into the next module's fixtures
    (monkeypatch would restore the leaked value; the order of modules differs under pytest-xdist)."""
    for var in _MLFLOW_STATE_VARIABLES:
        os.environ.pop(var, None)
    yield
    for var in _MLFLOW_STATE_VARIABLES:
        os.environ.pop(var, None)
    import sys

    if "mlflow" not in sys.modules:  # a test that never imported MLflow left nothing to reset
        return
    import mlflow
    from mlflow.tracking import _model_registry, _tracking_service, fluent

    while mlflow.active_run() is not None:
        mlflow.end_run()
    _tracking_service.utils._tracking_uri = None
    _model_registry.utils._registry_uri = None
    fluent._active_experiment_id = None
    fluent._last_active_run_id.set(None)


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
def s3_server_process(tmp_path_factory):
    """One S3-compatible server (S3Proxy, tests/_support/s3_server.py) per test process, started on first use: its
    endpoint never changes within a process, so stores cached by bucket stay valid (two servers one after the other
    left a cached store pointing at the stopped one). Fixtures export its variables for their scope (`exported`)."""
    import s3_server

    server = s3_server.start(tmp_path_factory.mktemp("s3proxy"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def spark():
    # One session serves ~600 tests that create thousands of small Delta tables: keep Delta's cache of table
    # logs small (default 10,000 logs held with their snapshots) and give the driver room, or the JVM ends the
    # run collecting garbage (a 38-minute run, its JVM busy between tests).
    session = local_spark(
        master="local[2]",
        shuffle_partitions=2,
        extra_conf={"spark.driver.memory": "2g", "spark.databricks.delta.delta.log.cacheSize": "64"},
    )
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
