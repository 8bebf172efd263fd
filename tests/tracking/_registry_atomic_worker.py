"""Subprocess of `test_registry_atomic`: a fork server whose children make one registry call and SIGKILL themselves.

`python tests/tracking/_registry_atomic_worker.py serve` imports the store once (no lake opened, no thread
started), then reads one JSON request a line from stdin: {"uri", "op", "die"}. For each it forks a child (a real
process), which opens the registry at `uri`, makes call `op` (`OPS`), and is killed (SIGKILL, by itself) at `die`:

    "before"   on entering the registry journal commit (or, for a one-table call, its commit): nothing committed
    <k>        right after the k-th commit the call makes to a registry table: 1 is the journal commit, 2.. the
               applies (in `RowJournal.apply_order`), the last one the last apply (before the events are published)
    "never"    not killed: the child exits 0 once the call returns

The server answers each call with one JSON line {"signal": <signal that ended the child or 0>, "code": <exit
code>}. The commits are counted by wrapping `DeltaTables.write_with`, through which every registry commit goes: the
kill points are the commit boundaries themselves, so every window is hit exactly, with no timing.

A request {"op": "read", "uri", "stop", "names", "expected"} forks a reader child and answers {"pid"} at once:
it polls the registry through the MLflow client until the stop file exists, each read one call, and writes
{"reads": n, "torn": [...]} next to it; a torn read is a model or its versions seen with part of its tags or
aliases (see `torn`). {"wait": pid} answers how that child ended.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersionTag
from mlflow.exceptions import MlflowException

from tracking._registry import LakehouseRegistryStore
from tracking._registry_tables import MODEL_TABLES, REGISTRY_JOURNAL
from tracking._tables import DeltaTables

COUNTED = {*MODEL_TABLES, REGISTRY_JOURNAL}

OPS = {
    "rename": lambda s: s.rename_registered_model("m", "n"),
    "delete": lambda s: s.delete_registered_model("m"),
    "create_version": lambda s: s.create_model_version(
        "m", "s3://bucket/m/6", tags=[ModelVersionTag("data", "v6"), ModelVersionTag("owner", "kill")]
    ),
    "transition": lambda s: s.transition_model_version_stage("m", 2, "Production", archive_existing_versions=True),
    "set_alias": lambda s: s.set_registered_model_alias("m", "champion", 5),
    "delete_alias": lambda s: s.delete_registered_model_alias("m", "champion"),
}
"""The calls under test, on the model `m` the test sets up (`test_registry_atomic.setup_model`)."""


def arm(die: str) -> None:
    """Kill this process with SIGKILL at `die` (see the module docstring)."""
    original = DeltaTables.write_with
    commits = 0

    def write_with(self, name, plan, refresh):
        nonlocal commits
        if die == "before" and name in COUNTED:  # the call's first commit: nothing was committed before it
            os.kill(os.getpid(), signal.SIGKILL)
        wrote = original(self, name, plan, refresh)
        if wrote and name in COUNTED:
            commits += 1
            if die.isdigit() and commits == int(die):
                os.kill(os.getpid(), signal.SIGKILL)
        return wrote

    DeltaTables.write_with = write_with  # type: ignore[method-assign]


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if "wait" in request:  # the end of a reader child forked before
            print(json.dumps(status(request["wait"])), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            try:
                if request["op"] == "read":
                    read(request["uri"], Path(request["stop"]), request["names"], request["expected"])
                else:
                    store = LakehouseRegistryStore(request["uri"])
                    arm(request["die"])
                    OPS[request["op"]](store)
            except BaseException as exc:  # noqa: BLE001 (a forked child must never return into the server loop)
                print(repr(exc), file=sys.stderr, flush=True)
                os._exit(3)
            os._exit(0)
        print(json.dumps({"pid": pid} if request["op"] == "read" else status(pid)), flush=True)


def status(pid: int) -> dict:
    """How child `pid` ended: the signal that killed it (0: none) and its exit code (None: killed)."""
    _, code = os.waitpid(pid, 0)
    return {
        "signal": os.WTERMSIG(code) if os.WIFSIGNALED(code) else 0,
        "code": os.WEXITSTATUS(code) if os.WIFEXITED(code) else None,
    }


def torn(model, versions: list, tags: dict, aliases: dict, version_tags: dict) -> str | None:
    """What is torn in one read of a model (`model`: a RegisteredModel or None) or of its versions (`versions`)."""
    if model is not None:
        got_tags = dict(model.tags)
        got_aliases = {a: int(v) for a, v in dict(model.aliases).items()}
        if got_tags != tags or got_aliases != aliases:
            return f"model {model.name}: tags {got_tags}, aliases {got_aliases}"
    if versions:
        got = {int(mv.version): dict(mv.tags) for mv in versions}
        if got != version_tags:
            return f"versions of {versions[0].name}: {got}"
    return None


def read(uri: str, stop: Path, names: list[str], spec: dict) -> None:
    """Read models `names` (and their versions) until `stop` exists; the count so far in `stop`.reads, the report
    in `stop`.report."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # no default store: no ./mlflow.db
    tags, aliases = spec["tags"], spec["aliases"]
    version_tags = {int(v): t for v, t in spec["version_tags"].items()}
    reads, seen, problems = 0, set(), []  # type: ignore[var-annotated]
    progress = stop.with_suffix(".reads")
    while not stop.exists():
        for name in names:
            try:
                model = client.get_registered_model(name)
            except MlflowException:  # the other name, at this moment
                model = None
            versions = client.search_model_versions(f"name = '{name}'")
            reads += 2
            if model is not None:
                seen.add(name)
            if problem := torn(model, versions, tags, aliases, version_tags):
                problems.append(problem)
        progress.write_text(str(reads))
    report = {"reads": reads, "seen": sorted(seen), "torn": problems[:10], "n_torn": len(problems)}
    stop.with_suffix(".report").write_text(json.dumps(report))


if __name__ == "__main__":
    serve()
