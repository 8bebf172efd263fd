"""Delta Lake's JARs for a local Spark session: which ones, where they are cached, how they are obtained.

The coordinate is derived from the installed `pyspark` and `delta-spark` wheels exactly as delta-spark's own
`configure_spark_with_delta_pip` derives it (`io.delta:delta-spark_<spark major.minor>_2.13:<delta version>`),
so upgrading either wheel can never leave a mismatched JAR on the classpath: a new pair is a new cache entry.

`obtain()` (run by `make install` through `lakehouse-setup`, or on first use by `local_spark()` when Maven is on
PATH) resolves that coordinate with the machine's own Maven client as it is configured (its settings.xml,
mirrors and proxies; no repository URL is named here), copies the runtime dependencies that pyspark does not
already ship (a second copy of jackson, parquet or hadoop next to Spark's own is a classpath hazard), and
compiles the project's JVM classes (`lakehouse/_jvm/**.java`: the put-if-absent log store and the lake
catalog) with `javac` against them. Everything lands in one folder per coordinate:

    $LAKEHOUSE_JARS_HOME (default ~/.cache/lakehouse-ml/jars)/io.delta_delta-spark_4.0_2.13-4.4.0/
        delta-spark_4.0_2.13-4.4.0.jar, delta-storage-4.4.0.jar, ...   Delta and its non-Spark dependencies
        lakehouse-jvm-<source hash>.jar                                our classes, rebuilt when sources change
        manifest.json                                                  written last: the folder is complete

Without Maven, `local_spark()` falls back to Spark's own package resolution (`spark.jars.packages`, what
`configure_spark_with_delta_pip` does), which gives Delta but not our JVM classes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from filelock import FileLock

from ._settings import settings

log = logging.getLogger(__name__)

SCALA_VERSION = "2.13"
MANIFEST = "manifest.json"
JVM_SOURCES = Path(__file__).with_name("_jvm")
LOG_STORE_CLASS = "io.lakehouseml.delta.PutIfAbsentLogStore"
CATALOG_CLASS = "io.lakehouseml.delta.LakeCatalog"


class JarSetupError(RuntimeError):
    """Delta's JARs could not be obtained or our JVM classes could not be built; the message says why."""


@dataclass(frozen=True)
class DeltaJars:
    """The JARs a session needs: Delta's (`delta`) and ours (`lakehouse`, None when not built)."""

    coordinate: str
    delta: tuple[str, ...]
    lakehouse: str | None

    @property
    def all(self) -> tuple[str, ...]:
        return self.delta + ((self.lakehouse,) if self.lakehouse else ())


def delta_coordinate() -> str:
    """The Maven coordinate matching the installed pyspark and delta-spark wheels."""
    try:
        delta_version = metadata.version("delta-spark")
    except metadata.PackageNotFoundError as exc:  # pragma: no cover - a declared dependency
        raise JarSetupError("the delta-spark package is not installed: pip install delta-spark") from exc
    import pyspark

    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{major_minor}_{SCALA_VERSION}:{delta_version}"


def jars_home() -> Path:
    return settings().jars_home


def cache_dir(coordinate: str | None = None) -> Path:
    coordinate = coordinate or delta_coordinate()
    group, artifact, version = coordinate.split(":")
    return jars_home() / f"{group}_{artifact}-{version}"


def _spark_jars_dir() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _sources_hash() -> str:
    h = hashlib.sha256()
    for src in sorted(JVM_SOURCES.rglob("*.java")):
        h.update(str(src.relative_to(JVM_SOURCES)).encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def cached() -> DeltaJars | None:
    """The cached JARs for the installed wheels, or None when `obtain()` has not completed for them."""
    coordinate = delta_coordinate()
    folder = cache_dir(coordinate)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    delta = tuple(str(folder / name) for name in manifest.get("delta", []))
    if not delta or not all(os.path.exists(p) for p in delta):
        return None
    ours = folder / f"lakehouse-jvm-{_sources_hash()}.jar" if has_jvm_sources() else None
    return DeltaJars(coordinate, delta, str(ours) if ours is not None and ours.exists() else None)


def complete() -> DeltaJars | None:
    """The cached JARs when nothing is left to do: Delta's, plus ours whenever there are sources to build."""
    have = cached()
    return have if have is not None and (have.lakehouse or not has_jvm_sources()) else None


def has_jvm_sources() -> bool:
    return any(JVM_SOURCES.rglob("*.java"))


def can_obtain() -> bool:
    """True when this machine has the Maven client `obtain()` uses."""
    return shutil.which("mvn") is not None


def _artifact_name(jar: str) -> str:
    """`jackson-core-2.13.5.jar` -> `jackson-core`; `delta-spark_4.0_2.13-4.4.0.jar` -> `delta-spark_4.0_2.13`."""
    return re.sub(r"-\d[\w.]*(-\d+)?\.jar$", "", jar)


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise JarSetupError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def _fetch_delta(coordinate: str, folder: Path) -> list[str]:
    group, artifact, version = coordinate.split(":")
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lakehouse-ml</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""
    with tempfile.TemporaryDirectory(prefix="lakehouse-mvn-") as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(pom)
        out = work / "jars"
        _run(
            ["mvn", "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
            work,
            f"resolving {coordinate} with Maven",
        )
        provided = {_artifact_name(j) for j in os.listdir(_spark_jars_dir()) if j.endswith(".jar")}
        kept = []
        for jar in sorted(os.listdir(out)):
            if _artifact_name(jar) in provided:
                continue  # pyspark ships its own (newer) copy; two copies on one classpath is a hazard
            shutil.copy2(out / jar, folder / jar)
            kept.append(jar)
    if not any(j.startswith(artifact) for j in kept):
        raise JarSetupError(f"Maven resolved {coordinate} but no {artifact} JAR came back")
    return kept


def _build_jvm_classes(folder: Path, delta: list[str]) -> str | None:
    sources = sorted(str(p) for p in JVM_SOURCES.rglob("*.java"))
    if not sources:
        return None
    target = folder / f"lakehouse-jvm-{_sources_hash()}.jar"
    if target.exists():
        return target.name
    javac, jar = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar:
        raise JarSetupError("javac and jar (a JDK 17) are needed to build lakehouse's JVM classes")
    classpath = os.pathsep.join([*(str(folder / d) for d in delta), str(_spark_jars_dir() / "*")])
    with tempfile.TemporaryDirectory(prefix="lakehouse-javac-") as tmp:
        classes = Path(tmp) / "classes"
        _run([javac, "--release", "17", "-nowarn", "-cp", classpath, "-d", str(classes), *sources], folder, "javac")
        partial = folder / (target.name + ".tmp")
        _run([jar, "cf", str(partial), "-C", str(classes), "."], folder, "jar")
        os.replace(partial, target)
    for old in folder.glob("lakehouse-jvm-*.jar"):
        if old != target:
            old.unlink(missing_ok=True)
    return target.name


def obtain(*, force: bool = False) -> DeltaJars:
    """Resolve, cache and build the JARs for the installed wheels (idempotent; fast when already done)."""
    coordinate = delta_coordinate()
    if not force:
        done = complete()
        if done is not None:
            return done
    folder = cache_dir(coordinate)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # several processes may start on a fresh machine at once
        return _obtain_locked(coordinate, folder, force)


def _obtain_locked(coordinate: str, folder: Path, force: bool) -> DeltaJars:
    done = complete()
    if not force and done is not None:
        return done  # another process finished while we waited
    manifest_path = folder / MANIFEST
    try:
        delta = json.loads(manifest_path.read_text())["delta"]
        if force or not all((folder / d).exists() for d in delta):
            raise ValueError("refetch")
    except (OSError, ValueError, KeyError):
        manifest_path.unlink(missing_ok=True)
        log.info("resolving %s with Maven into %s", coordinate, folder)
        delta = _fetch_delta(coordinate, folder)
    ours = _build_jvm_classes(folder, delta)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"coordinate": coordinate, "delta": delta, "lakehouse": ours}, indent=1))
    os.replace(tmp, manifest_path)  # last: a folder with a manifest is complete
    result = cached()
    if result is None:  # pragma: no cover - we just wrote it
        raise JarSetupError(f"the JAR cache at {folder} is incomplete after set-up")
    return result


def main(argv: list[str] | None = None) -> int:
    """`lakehouse-setup`: obtain Delta's JARs and build lakehouse's JVM classes for local Spark."""
    import argparse

    parser = argparse.ArgumentParser(prog="lakehouse-setup", description=main.__doc__)
    parser.add_argument("--force", action="store_true", help="resolve and build again even if cached")
    parser.add_argument("--print-path", action="store_true", help="print the JAR paths, comma-separated")
    args = parser.parse_args(argv)
    try:
        jars = obtain(force=args.force)
    except JarSetupError as exc:
        print(f"lakehouse-setup: {exc}", file=sys.stderr)
        return 1
    if args.print_path:
        print(",".join(jars.all))
    else:
        print(
            f"lakehouse-setup: {jars.coordinate}: {len(jars.delta)} Delta JARs and "
            f"{'lakehouse JVM classes' if jars.lakehouse else 'no lakehouse JVM classes'} in {cache_dir()}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
