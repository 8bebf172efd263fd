"""The distribution as an environment installs it: ranges, a pinned tested set, typed packages, console scripts."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
from import_graph import PACKAGES, ROOT, modules

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_library_dependencies_are_ranges_and_the_tested_set_is_pinned():
    deps = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    exact = [d for d in deps if "==" in d]
    assert not exact, f"exact pins clash with a user's environment; use a range (constraints.txt pins): {exact}"
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name.lower().replace("_", "-")] = version
    assert not [d for d in deps if _name(d) not in pinned], "every declared dependency has its tested version"


def test_every_third_party_import_is_declared():
    declared = {_name(d) for d in PYPROJECT["project"]["dependencies"]}
    provides = {
        "pyspark": "pyspark",
        "delta": "delta-spark",
        "deltalake": "deltalake",
        "pyarrow": "pyarrow",
        "pandas": "pandas",
        "numpy": "numpy",
        "mlflow": "mlflow",
        "requests": "requests",
        "cryptography": "cryptography",
        "filelock": "filelock",
        "obstore": "obstore",
        "boto3": "boto3",
        "redis": "redis",
        "sqlalchemy": "sqlalchemy",
        "tqdm": "tqdm",
        "matplotlib": "matplotlib",
        "sklearn": "scikit-learn",
        "scipy": "scipy",
    }
    stdlib = set(sys.stdlib_module_names)
    missing = {}
    for package in PACKAGES:
        for path, imported in modules(package):
            for top in imported - stdlib - set(PACKAGES):
                if provides.get(top) not in declared:
                    missing.setdefault(top, str(path.relative_to(ROOT)))
    assert not missing, f"imported but not declared in pyproject.toml dependencies: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_are_typed_and_versioned(package):
    module = __import__(package)
    assert module.__version__ == distribution("lakehouse-ml").version
    assert (ROOT / package / "py.typed").exists()


def test_console_scripts_run():
    bin_dir = Path(sys.executable).parent
    out = subprocess.run([str(bin_dir / "lakehouse-jobs"), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "drain" in out.stdout and "lakehouse-jobs" in out.stdout
    assert PYPROJECT["project"]["scripts"] == {
        "lakehouse-setup": "lakehouse._jars:main",
        "lakehouse-jobs": "jobs.__main__:main",
    }
