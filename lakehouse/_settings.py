"""Every `LAKEHOUSE_*` environment setting, typed, documented and read in one place.

`settings()` reads the environment at each call (a test or a parent process may set a variable after import);
a value that cannot be parsed raises `InvalidSettingError` naming the variable and what it accepts. The README's
"Settings" table lists the same variables. `LAKEHOUSE_EVENT` is not a setting: it is how a registry trigger
hands its event to the job it starts (see `jobs`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidSettingError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """The lakehouse's settings; each field's default applies when its variable is unset or empty."""

    root: str | None = None
    """LAKEHOUSE_ROOT: the lake root a `Lakehouse()` / `FeatureStoreClient()` without `root=` uses."""
    engine: str = "auto"
    """LAKEHOUSE_ENGINE: "auto" (delta-spark where its classes load, else deltalake), "delta-spark", "deltalake"."""
    delta_jars: tuple[str, ...] = ()
    """LAKEHOUSE_DELTA_JARS: comma-separated local JAR paths for `local_spark()`, instead of the set-up cache."""
    delta_enabled: bool = True
    """LAKEHOUSE_DELTA: "off" starts `local_spark()` without Delta's JARs (the deltalake engine then serves)."""
    jars_home: Path = Path.home() / ".cache" / "lakehouse-ml" / "jars"
    """LAKEHOUSE_JARS_HOME: where `lakehouse-setup` caches Delta's JARs and the lakehouse JVM classes."""
    hadoop_aws: bool = False
    """LAKEHOUSE_HADOOP_AWS: "1" gives `local_spark()` Hadoop's s3a connector (hadoop-aws and the AWS SDK bundle,
    ~560 MB, obtained by `lakehouse-setup --s3a`) and the put-if-absent log store for `s3a://`, so delta-spark
    serves `s3a://` lakes."""
    spark_master: str = "local[*]"
    """LAKEHOUSE_SPARK_MASTER: the master of the session `local_spark()` builds."""
    spark_log_level: str = "ERROR"
    """LAKEHOUSE_SPARK_LOG_LEVEL: Spark's log level for that session."""
    tracking_fsync: bool = False
    """LAKEHOUSE_TRACKING_FSYNC: fsync each lean commit (survives power loss; ~2 ms a commit)."""
    registry_dispatch: bool = True
    """LAKEHOUSE_REGISTRY_DISPATCH: "0" stops a process from delivering registry events in the background."""
    dispatch_poll_seconds: float = 2.0
    """LAKEHOUSE_DISPATCH_POLL_SECONDS: how often the event dispatcher looks for work other processes left."""
    dispatch_exit_seconds: float = 5.0
    """LAKEHOUSE_DISPATCH_EXIT_SECONDS: how long a process delivers due events at exit."""
    webhook_backoff_seconds: float = 1.0
    """LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS: the factor of the webhook retry back-off (1 s, 2 s, 4 s, ...)."""
    webhook_secrets: str = "sealed"
    """LAKEHOUSE_WEBHOOK_SECRETS: "sealed" (webhook secrets encrypted at rest with the lake's key) or "clear"
    (the explicit opt-out: new secrets stored as given)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        d = cls()
        jars_home = _text(env, "LAKEHOUSE_JARS_HOME", "")
        return cls(
            root=_text(env, "LAKEHOUSE_ROOT", "") or None,
            engine=_text(env, "LAKEHOUSE_ENGINE", d.engine).lower(),
            delta_jars=tuple(j.strip() for j in (env.get("LAKEHOUSE_DELTA_JARS") or "").split(",") if j.strip()),
            delta_enabled=_flag(env, "LAKEHOUSE_DELTA", d.delta_enabled),
            jars_home=Path(jars_home) if jars_home else d.jars_home,
            hadoop_aws=_flag(env, "LAKEHOUSE_HADOOP_AWS", d.hadoop_aws),
            spark_master=_text(env, "LAKEHOUSE_SPARK_MASTER", d.spark_master),
            spark_log_level=_text(env, "LAKEHOUSE_SPARK_LOG_LEVEL", d.spark_log_level),
            tracking_fsync=_flag(env, "LAKEHOUSE_TRACKING_FSYNC", d.tracking_fsync),
            registry_dispatch=_flag(env, "LAKEHOUSE_REGISTRY_DISPATCH", d.registry_dispatch),
            dispatch_poll_seconds=_seconds(env, "LAKEHOUSE_DISPATCH_POLL_SECONDS", d.dispatch_poll_seconds),
            dispatch_exit_seconds=_seconds(env, "LAKEHOUSE_DISPATCH_EXIT_SECONDS", d.dispatch_exit_seconds),
            webhook_backoff_seconds=_seconds(env, "LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS", d.webhook_backoff_seconds),
            webhook_secrets=_choice(env, "LAKEHOUSE_WEBHOOK_SECRETS", d.webhook_secrets, ("sealed", "clear")),
        )


def _text(env: Mapping[str, str], var: str, default: str) -> str:
    return (env.get(var) or "").strip() or default


def _flag(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = (env.get(var) or "").strip()
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise InvalidSettingError(var, raw, f"one of {', '.join(_TRUE + _FALSE)}")


def _choice(env: Mapping[str, str], var: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(env, var, default).lower()
    if value not in allowed:
        raise InvalidSettingError(var, env.get(var, ""), f"one of {', '.join(allowed)}")
    return value


def _seconds(env: Mapping[str, str], var: str, default: float) -> float:
    raw = (env.get(var) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise InvalidSettingError(var, raw, "a finite number of seconds >= 0, e.g. 2.5")
    return value


VARIABLES = (
    "LAKEHOUSE_ROOT",
    "LAKEHOUSE_ENGINE",
    "LAKEHOUSE_DELTA_JARS",
    "LAKEHOUSE_DELTA",
    "LAKEHOUSE_JARS_HOME",
    "LAKEHOUSE_HADOOP_AWS",
    "LAKEHOUSE_SPARK_MASTER",
    "LAKEHOUSE_SPARK_LOG_LEVEL",
    "LAKEHOUSE_TRACKING_FSYNC",
    "LAKEHOUSE_REGISTRY_DISPATCH",
    "LAKEHOUSE_DISPATCH_POLL_SECONDS",
    "LAKEHOUSE_DISPATCH_EXIT_SECONDS",
    "LAKEHOUSE_WEBHOOK_BACKOFF_SECONDS",
    "LAKEHOUSE_WEBHOOK_SECRETS",
)


@functools.lru_cache(maxsize=8)
def _parsed(values: tuple[str | None, ...]) -> Settings:
    return Settings.from_env({k: v for k, v in zip(VARIABLES, values, strict=True) if v is not None})


def settings() -> Settings:
    """The settings as the environment holds them now (parsed once per distinct set of values)."""
    return _parsed(tuple(os.environ.get(v) for v in VARIABLES))


def tracking_fsync() -> bool:
    """`settings().tracking_fsync`, reading only its own variable: every lean commit asks (3 us, not 35)."""
    return _flag(os.environ, "LAKEHOUSE_TRACKING_FSYNC", Settings.tracking_fsync)
