# Two entry points that work on a fresh machine with Python 3.11 and Java 17: `make demo`, `make test`.
# Both create (or reuse) .venv and install the project with its pinned dependencies first.
PY := $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: demo test test-fast test-s3a test-serve-env lint bench install jars services browser kernel

# pyproject.toml declares compatible ranges; constraints.txt pins the exact set the suite is tested with.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Delta's JARs for local Spark, resolved with this machine's Maven client and cached (~/.cache/lakehouse-ml),
# plus lakehouse's JVM classes compiled against them. Idempotent: a second run only checks the cache.
jars: $(VENV)/.installed
	$(VENV)/bin/lakehouse-setup

install: $(VENV)/.installed

# The services tests talk to for real: redis-server (the feature store's Redis online store), from Debian's
# packages when it is not installed (as root, or through sudo). The tests start and stop their own instance.
services:
	@command -v redis-server >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }
	@redis-server --version

# Debian's Chromium for the UI test (tests/ui: the MLflow UI on the lake in headless Chromium through Playwright,
# which launches /usr/bin/chromium: Playwright's own browser download is not used).
browser: $(VENV)/.installed
	@sh tests/ui/install_browser.sh $(PYTHON)

# The Jupyter kernel the notebooks name ("lakehouse-ml": this .venv), so they open in any Jupyter on the machine.
kernel: $(VENV)/.installed
	$(PYTHON) notebooks/register_kernel.py

demo: jars kernel
	$(PYTHON) notebooks/demo.py

# The gates: lint, format and types (ruff and mypy, configured in pyproject.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The standalone-cluster test (tests/cluster: a master and two workers, ~2 min on 2 cores) and the Spark Connect
# test (tests/connect: a Connect server, ~1 min) run here and in CI; a bare `pytest` skips them. Two pytest-xdist
# workers, a test module per worker at a time (most of the suite waits on processes, JVMs and the disk).
# `pytest --long` runs the long variants (soak, many kill -9 trials); see RELIABILITY.md.
test: jars lint services browser kernel
	LAKEHOUSE_TEST_CLUSTER=1 LAKEHOUSE_TEST_CONNECT=1 LAKEHOUSE_REQUIRE_BROWSER=1 $(PYTHON) -m pytest -q -n 2 --dist loadfile --durations=25

# delta-spark on s3a:// lakes, behind a flag: obtains hadoop-aws and the AWS SDK bundle (~560 MB, once) and builds the
# s3a put-if-absent log store, then runs the object-store tests against the local S3 server with the flag on.
test-s3a: $(VENV)/.installed
	$(VENV)/bin/lakehouse-setup --s3a
	LAKEHOUSE_HADOOP_AWS=1 $(PYTHON) -m pytest -q --durations=10 tests/objectstore

# A feature-aware model served in an environment MLflow builds for it (`mlflow models serve --env-manager uv`),
# behind a flag: uv installs the model's pinned requirements from PyPI (~1 GB, minutes) into a fresh environment.
test-serve-env: jars services
	$(PYTHON) -m pip install --quiet 'uv>=0.9,<1'
	LAKEHOUSE_TEST_SERVE_ENV=1 $(PYTHON) -m pytest -q tests/feature_store/test_serving.py -k own_environment

# The inner loop (about 3 minutes on 2 cores): the gates, then the lean Delta log, settings, the MLflow stores
# against sqlite, jobs, layers and packaging; no multi-process, server, notebook or Spark-heavy test.
test-fast: lint
	$(PYTHON) -m pytest -q -m "not slow" tests/test_layers.py tests/test_packaging.py tests/lakehouse/test_log.py \
		tests/lakehouse/test_settings.py tests/lakehouse/test_public_api.py tests/tracking tests/jobs \
		--deselect tests/tracking/test_analysis.py

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/lakehouse_vs_deltalake.py
