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

Behind a flag (`lakehouse-setup --s3a`, or `LAKEHOUSE_HADOOP_AWS=1`), `obtain_s3a()` adds Hadoop's `s3a` connector:
`org.apache.hadoop:hadoop-aws` at the version of the hadoop-client JARs pyspark ships (hadoop-aws must match
Hadoop exactly), which pulls the AWS SDK v2 `bundle` (~560 MB), and compiles the put-if-absent log store for
`s3a` (`lakehouse/_jvm/s3a/**.java`) against them. Those classes need the SDK, so they are a second unit that
the default build leaves out:

    $LAKEHOUSE_JARS_HOME/org.apache.hadoop_hadoop-aws-3.4.1/
        hadoop-aws-3.4.1.jar, bundle-2.24.6.jar, wildfly-openssl-1.1.3.Final.jar   the connector
        lakehouse-s3a-<source hash>.jar                                            our s3a log store
        manifest.json
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
from typing import Any

from filelock import FileLock

from ._settings import settings

log = logging.getLogger(__name__)

SCALA_VERSION = "2.13"
MANIFEST = "manifest.json"
JVM_SOURCES = Path(__file__).with_name("_jvm")
S3A_SOURCES = JVM_SOURCES / "s3a"
"""The s3a log store's sources: compiled only with the s3a connector's JARs (they need the AWS SDK)."""
LOG_STORE_CLASS = "io.lakehouseml.delta.PutIfAbsentLogStore"
CATALOG_CLASS = "io.lakehouseml.delta.LakeCatalog"
S3A_LOG_STORE_CLASS = "io.lakehouseml.delta.S3PutIfAbsentLogStore"


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


@dataclass(frozen=True)
class S3AJars:
    """Hadoop's s3a connector (`connector`: hadoop-aws, the AWS SDK bundle) and our s3a log store (`log_store`)."""

    coordinate: str
    connector: tuple[str, ...]
    log_store: str

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.connector, self.log_store)


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


def spark_jars_dir() -> Path:
    """The JARs pyspark ships (Spark, Hadoop's client, Scala, ...)."""
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _sources(unit: Path = JVM_SOURCES) -> list[Path]:
    """The `.java` files of one compilation unit: the default one leaves out the s3a sources."""
    found = sorted(unit.rglob("*.java"))
    return found if unit != JVM_SOURCES else [p for p in found if S3A_SOURCES not in p.parents]


def _sources_hash(unit: Path = JVM_SOURCES) -> str:
    h = hashlib.sha256()
    for src in _sources(unit):
        h.update(str(src.relative_to(unit)).encode())
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
    return bool(_sources())


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


def _fetch(coordinate: str, folder: Path) -> list[str]:
    """Resolve `coordinate` with Maven into `folder`: the runtime JARs pyspark does not already ship."""
    group, artifact, version = coordinate.split(":")
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lakehouse-ml</groupId><artifactId>jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""
    # The staging folder sits in `folder`, so each JAR is moved in by a rename, not copied (the SDK is 560 MB).
    with tempfile.TemporaryDirectory(prefix=".mvn-", dir=folder) as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(pom)
        out = work / "jars"
        _run(
            ["mvn", "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
            work,
            f"resolving {coordinate} with Maven",
        )
        provided = {_artifact_name(j) for j in os.listdir(spark_jars_dir()) if j.endswith(".jar")}
        kept = []
        for jar in sorted(os.listdir(out)):
            if _artifact_name(jar) in provided:
                continue  # pyspark ships its own (newer) copy; two copies on one classpath is a hazard
            os.replace(out / jar, folder / jar)
            kept.append(jar)
    if not any(j.startswith(artifact) for j in kept):
        raise JarSetupError(f"Maven resolved {coordinate} but no {artifact} JAR came back")
    return kept


def _build_jvm_classes(
    folder: Path,
    delta: list[str],
    *,
    unit: Path = JVM_SOURCES,
    prefix: str = "lakehouse-jvm",
    extra: tuple[str, ...] = (),
) -> str | None:
    """Compile one unit of our JVM sources into `folder/<prefix>-<source hash>.jar` against Delta's JARs (in
    `folder`), Spark's and `extra` (full paths); return its file name, or None when the unit has no sources."""
    sources = [str(p) for p in _sources(unit)]
    if not sources:
        return None
    target = folder / f"{prefix}-{_sources_hash(unit)}.jar"
    if target.exists():
        return target.name
    javac, jar = shutil.which("javac"), shutil.which("jar")
    if not javac or not jar:
        raise JarSetupError("javac and jar (a JDK 17) are needed to build lakehouse's JVM classes")
    classpath = os.pathsep.join([*(str(folder / d) for d in delta), *extra, str(spark_jars_dir() / "*")])
    with tempfile.TemporaryDirectory(prefix="lakehouse-javac-") as tmp:
        classes = Path(tmp) / "classes"
        _run([javac, "--release", "17", "-nowarn", "-cp", classpath, "-d", str(classes), *sources], folder, "javac")
        partial = folder / (target.name + ".tmp")
        _run([jar, "cf", str(partial), "-C", str(classes), "."], folder, "jar")
        os.replace(partial, target)
    for old in folder.glob(f"{prefix}-*.jar"):
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
    delta = _fetched(coordinate, folder, "delta", force)
    ours = _build_jvm_classes(folder, delta)
    _write_manifest(folder, {"coordinate": coordinate, "delta": delta, "lakehouse": ours})
    result = cached()
    if result is None:  # pragma: no cover - we just wrote it
        raise JarSetupError(f"the JAR cache at {folder} is incomplete after set-up")
    return result


def _fetched(coordinate: str, folder: Path, key: str, force: bool) -> list[str]:
    """The JAR names the folder's manifest lists under `key` when they are all there (and not `force`), else
    `coordinate` resolved with Maven into the folder now (the manifest is removed until rewritten)."""
    manifest_path = folder / MANIFEST
    try:
        names: list[str] = json.loads(manifest_path.read_text())[key]
        if not force and all((folder / n).exists() for n in names):
            return names
    except (OSError, ValueError, KeyError):
        pass
    manifest_path.unlink(missing_ok=True)
    log.info("resolving %s with Maven into %s", coordinate, folder)
    return _fetch(coordinate, folder)


def _write_manifest(folder: Path, content: dict[str, Any]) -> None:
    """Write the folder's manifest, last: a folder with a manifest is complete."""
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(content, indent=1))
    os.replace(tmp, folder / MANIFEST)


def hadoop_aws_coordinate() -> str:
    """`org.apache.hadoop:hadoop-aws:<v>` for the Hadoop pyspark ships (`hadoop-client-api-<v>.jar`): the s3a
    connector must be built for exactly that Hadoop, and its POM names the AWS SDK bundle that Hadoop was tested
    with (3.4.1 -> bundle 2.24.6)."""
    versions = sorted(
        m.group(1)
        for j in os.listdir(spark_jars_dir())
        if (m := re.fullmatch(r"hadoop-client-api-(\d[\w.]*)\.jar", j)) is not None
    )
    if len(versions) != 1:
        raise JarSetupError(f"expected one hadoop-client-api JAR in {spark_jars_dir()}, found {versions or 'none'}")
    return f"org.apache.hadoop:hadoop-aws:{versions[0]}"


def cached_s3a() -> S3AJars | None:
    """The s3a connector and our s3a log store for the installed pyspark, or None until `obtain_s3a()` ran."""
    coordinate = hadoop_aws_coordinate()
    folder = cache_dir(coordinate)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    connector = tuple(str(folder / name) for name in manifest.get("connector", []))
    ours = folder / f"lakehouse-s3a-{_sources_hash(S3A_SOURCES)}.jar"
    if not connector or not all(os.path.exists(p) for p in connector) or not ours.exists():
        return None
    return S3AJars(coordinate, connector, str(ours))


def obtain_s3a(*, force: bool = False) -> S3AJars:
    """Resolve hadoop-aws and the AWS SDK bundle with Maven and build our s3a log store (idempotent).

    Obtains Delta's JARs first (the log store is compiled against delta-storage). Costs one ~560 MB download
    into Maven's local repository plus a copy in the cache the first time; a second run only checks the cache.
    """
    delta = obtain()
    if not force:
        done = cached_s3a()
        if done is not None:
            return done
    coordinate = hadoop_aws_coordinate()
    folder = cache_dir(coordinate)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        done = cached_s3a()
        if done is not None and not force:
            return done  # another process finished while we waited
        connector = _fetched(coordinate, folder, "connector", force)
        ours = _build_jvm_classes(
            folder,
            [],
            unit=S3A_SOURCES,
            prefix="lakehouse-s3a",
            extra=(*delta.delta, *(str(folder / c) for c in connector)),
        )
        _write_manifest(folder, {"coordinate": coordinate, "connector": connector, "lakehouse": ours})
    result = cached_s3a()
    if result is None:  # pragma: no cover - we just wrote it
        raise JarSetupError(f"the s3a JAR cache at {folder} is incomplete after set-up")
    return result


def main(argv: list[str] | None = None) -> int:
    """`lakehouse-setup`: obtain Delta's JARs and build lakehouse's JVM classes for local Spark."""
    import argparse

    parser = argparse.ArgumentParser(prog="lakehouse-setup", description=main.__doc__)
    parser.add_argument("--force", action="store_true", help="resolve and build again even if cached")
    parser.add_argument("--print-path", action="store_true", help="print the JAR paths, comma-separated")
    parser.add_argument(
        "--s3a",
        action="store_true",
        help="also obtain Hadoop's s3a connector (hadoop-aws + the AWS SDK bundle, ~560 MB) and build the s3a "
        "log store, for delta-spark on s3a:// lakes with LAKEHOUSE_HADOOP_AWS=1 (implied when that variable is on)",
    )
    args = parser.parse_args(argv)
    try:
        jars = obtain(force=args.force)
        s3a = obtain_s3a(force=args.force) if args.s3a or settings().hadoop_aws else None
    except JarSetupError as exc:
        print(f"lakehouse-setup: {exc}", file=sys.stderr)
        return 1
    if args.print_path:
        print(",".join([*jars.all, *(s3a.all if s3a else ())]))
        return 0
    print(
        f"lakehouse-setup: {jars.coordinate}: {len(jars.delta)} Delta JARs and "
        f"{'lakehouse JVM classes' if jars.lakehouse else 'no lakehouse JVM classes'} in {cache_dir()}"
    )
    if s3a is not None:
        size = sum(os.path.getsize(p) for p in s3a.all) / 1e6
        print(
            f"lakehouse-setup: {s3a.coordinate}: {len(s3a.connector)} s3a connector JARs and the s3a log store "
            f"({size:.0f} MB) in {cache_dir(s3a.coordinate)}; LAKEHOUSE_HADOOP_AWS=1 puts them on local_spark()'s "
            "classpath"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
