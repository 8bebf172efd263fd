"""Imports point one way: lakehouse <- tracking, feature_store <- jobs (<- notebooks, which may use all).

Every module of each package is parsed (imports inside functions included, so a "late import" cannot hide an
upward edge); a package may import only packages of a lower layer.
"""

from __future__ import annotations

import pytest
from import_graph import ROOT, imported_packages, modules, private_imports

LAYERS = {"lakehouse": 0, "tracking": 1, "feature_store": 1, "jobs": 2}


def wrong_way(package: str, source: str) -> list[str]:
    """The project packages `source` (a module of `package`) imports at its own layer or above."""
    return _upward(package, imported_packages(source))


def _upward(package: str, imported: set[str]) -> list[str]:
    return sorted(p for p in imported & LAYERS.keys() if p != package and LAYERS[p] >= LAYERS[package])


def test_the_checker_sees_late_and_sibling_imports():
    late = "def f():\n    from jobs._triggers import trigger_subscribers\n"
    assert wrong_way("tracking", late) == ["jobs"]
    assert wrong_way("feature_store", "import tracking._store as s\n") == ["tracking"]
    assert wrong_way("jobs", "from tracking import x\nfrom lakehouse import y\nfrom . import z\n") == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_no_import_points_up_or_sideways(package):
    bad = {}
    for path, imported in modules(package):
        edges = _upward(package, imported)
        if edges:
            bad[str(path.relative_to(ROOT))] = edges
    assert not bad, f"{package} (layer {LAYERS[package]}) imports a package of its layer or above: {bad}"


def test_the_checker_sees_private_imports():
    assert private_imports("from tracking._registry import Lake\nimport lakehouse._log as l\n") == {
        "tracking._registry",
        "lakehouse._log",
    }
    assert private_imports("from tracking import Lake\nfrom lakehouse import errors\nfrom ._x import y\n") == set()


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_other_packages_are_used_through_their_public_face(package):
    bad = {}
    for path, _ in modules(package):
        foreign = {m for m in private_imports(path.read_text()) if m.split(".")[0] != package}
        if foreign:
            bad[str(path.relative_to(ROOT))] = sorted(foreign)
    assert not bad, f"{package} imports private modules of another package (use its __init__): {bad}"
