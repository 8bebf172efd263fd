"""The environment for a test's worker process, whose Spark JVM lives for seconds."""

from __future__ import annotations

import os

# A worker's JVM runs for seconds on small tables: C1 alone compiles what it needs (C2's optimising
# compiles pay off only in long runs) and one GC thread suffices. Start-up plus one small job measured
# 28 s of CPU with the defaults and 17 s with these on 2 cores, and workers start two or three at a time.
SHORT_LIVED_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def worker_env(**extra: str) -> dict[str, str]:
    """os.environ plus `extra`, with the JVM options of a short-lived process (appended to any set)."""
    env = {**os.environ, **extra}
    env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} {SHORT_LIVED_JVM}".strip()
    return env
