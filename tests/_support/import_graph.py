"""What a module imports, read from its source (imports inside functions included): for the layer and packaging tests."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lakehouse", "tracking", "feature_store", "jobs")


def imported_packages(source: str) -> set[str]:
    """The top-level names a module imports (absolute imports only; relative ones stay in the package)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def private_imports(source: str) -> set[str]:
    """The `package._module` paths a module imports from the project's packages (absolute imports only)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
            else []
        )
        for name in names:
            parts = name.split(".")
            if parts[0] in PACKAGES and any(p.startswith("_") for p in parts[1:]):
                found.add(name)
    return found


def modules(package: str) -> Iterator[tuple[Path, set[str]]]:
    """(path, imported top-level names) of every module of one of the project's packages."""
    paths = sorted((ROOT / package).rglob("*.py"))
    if not paths:  # a wrong ROOT must not make every check pass on nothing
        raise FileNotFoundError(f"no modules of package {package!r} under {ROOT}")
    for path in paths:
        yield path, imported_packages(path.read_text())
