"""A registry call that writes several registry tables is all or nothing (issue 16): one registry journal commit.

Calls: rename and delete of a model (five tables), a new version with tags (versions, version tags, the model's
last_updated_time), a stage transition that archives (versions, model), and setting / deleting an alias (one
table, yet through the journal too: every registry call is, so none is overwritten by another's apply). A forked worker (`_registry_atomic_worker`, a real process) makes the call
and kills itself with SIGKILL at a commit boundary: before its first commit, right after the journal commit,
between two applies, after the last apply. Then this process opens the lake and the state must be the whole call
or none of it, through the store and through deltalake's plain reading of every registry table after the roll
forward; before the roll forward each table, read plainly, holds its part of the call wholly or not at all.

Oracles: the state before the call read by deltalake (`file_uris()` + pyarrow.parquet, no code of ours), and the
call's effect on it written out by hand (`expected`): renamed rows, dropped rows, one version and two tags more,
stages moved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.exceptions import MlflowException

from tracking._registry import LakehouseRegistryStore

WORKER = Path(__file__).with_name("_registry_atomic_worker.py")
ROOT = Path(__file__).parents[2]
TABLES = (
    "registered_models",
    "model_versions",
    "registered_model_tags",
    "model_version_tags",
    "registered_model_aliases",
)
KEYS = {
    "registered_models": ("name", "description"),
    "model_versions": ("name", "version", "current_stage", "source"),
    "registered_model_tags": ("name", "key", "value"),
    "model_version_tags": ("name", "version", "key", "value"),
    "registered_model_aliases": ("name", "alias", "version"),
}
"""The columns compared (times left out: a touch moves them)."""
COMMITS = {"rename": 6, "delete": 6, "create_version": 4, "transition": 3, "set_alias": 2, "delete_alias": 2}
"""The registry commits each call makes: the journal commit, then one apply per table it writes."""

State = dict[str, frozenset]


def _rows(path: Path) -> list[dict]:
    return [r for f in DeltaTable(str(path)).file_uris() for r in pq.read_table(f).to_pylist()]


def raw_state(lake: Path) -> State:
    """Every registry table as deltalake reads it, projected on `KEYS`."""
    return {t: frozenset(tuple(r[k] for k in KEYS[t]) for r in _rows(lake / t)) for t in TABLES}


def api_state(store: LakehouseRegistryStore) -> State:
    """The same projection, through the store's MLflow API (live versions only, as the API shows them)."""
    models = store.search_registered_models(max_results=1000)
    versions = store.search_model_versions(max_results=10000)
    return {
        "registered_models": frozenset((m.name, m.description) for m in models),
        "model_versions": frozenset((v.name, int(v.version), v.current_stage, v.source) for v in versions),
        "registered_model_tags": frozenset((m.name, k, val) for m in models for k, val in m.tags.items()),
        "model_version_tags": frozenset(
            (v.name, int(v.version), k, val) for v in versions for k, val in v.tags.items()
        ),
        "registered_model_aliases": frozenset((m.name, a, int(n)) for m in models for a, n in m.aliases.items()),
    }


def setup_model(store: LakehouseRegistryStore) -> None:
    """Model `m`: two tags, five versions with a tag each, version 1 in Production, 3 in Staging, two aliases;
    and a bystander model `other` that no call touches."""
    store.create_registered_model("m", [RegisteredModelTag("owner", "team"), RegisteredModelTag("tier", "1")], "d")
    store.create_registered_model("other", [RegisteredModelTag("owner", "else")], "o")
    for i in range(1, 6):
        store.create_model_version("m", f"s3://bucket/m/{i}", tags=[ModelVersionTag("data", f"v{i}")])
    store.create_model_version("other", "s3://bucket/other/1")
    store.transition_model_version_stage("m", 1, "Production", archive_existing_versions=False)
    store.transition_model_version_stage("m", 3, "Staging", archive_existing_versions=False)
    store.set_registered_model_alias("m", "champion", 3)
    store.set_registered_model_alias("m", "challenger", 4)


def expected(op: str, before: State) -> State:
    """The state after call `op`, from the state before it (the oracle)."""
    after = {t: set(rows) for t, rows in before.items()}
    of_m = lambda rows: {r for r in rows if r[0] == "m"}  # noqa: E731
    if op == "rename":
        for t in TABLES:
            moved = of_m(after[t])
            after[t] = (after[t] - moved) | {("n", *r[1:]) for r in moved}
    elif op == "delete":
        for t in TABLES:
            after[t] -= of_m(after[t])
    elif op == "create_version":
        after["model_versions"].add(("m", 6, "None", "s3://bucket/m/6"))
        after["model_version_tags"] |= {("m", 6, "data", "v6"), ("m", 6, "owner", "kill")}
    elif op == "transition":
        mv = after["model_versions"]
        after["model_versions"] = {
            ("m", 2, "Production", r[3])
            if r[:2] == ("m", 2)
            else (*r[:2], "Archived", r[3])
            if r[0] == "m" and r[2] == "Production"
            else r
            for r in mv
        }
    elif op == "set_alias":
        after["registered_model_aliases"] = {r for r in after["registered_model_aliases"] if r[:2] != ("m", "champion")}
        after["registered_model_aliases"].add(("m", "champion", 5))
    elif op == "delete_alias":
        after["registered_model_aliases"] = {r for r in after["registered_model_aliases"] if r[:2] != ("m", "champion")}
    return {t: frozenset(rows) for t, rows in after.items()}


@pytest.fixture(scope="module")
def forker():
    """The fork server (`_registry_atomic_worker serve`): one process, a child per call."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )

    def run(**request) -> dict:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield run
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=60)


def windows(op: str) -> list[tuple[str, list[str]]]:
    """The kill windows of call `op`: (window, the kill points it spreads its trials over)."""
    n = COMMITS[op]
    between = [("between applies", [str(k) for k in range(2, n)])] if n > 2 else []
    return [
        ("before the journal commit", ["before"]),
        ("right after the journal commit", ["1"]),
        *between,
        ("after the last apply", [str(n)]),
    ]


CASES = [(op, window, points) for op in COMMITS for window, points in windows(op)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A lake holding `setup_model`'s models, made once: each trial starts from a copy of it."""
    lake = tmp_path_factory.mktemp("template") / "lake"
    setup_model(LakehouseRegistryStore(f"lakehouse://{lake}"))
    return lake


@pytest.mark.parametrize(("op", "window", "points"), CASES, ids=[f"{op}-{w}" for op, w, _ in CASES])
def test_a_call_killed_in_a_window_is_whole_or_absent(tmp_path, forker, template, trials, op, window, points):
    for trial in range(trials(3, 50)):
        die = points[trial % len(points)]
        lake = tmp_path / f"t{trial}"
        shutil.copytree(template, lake)
        uri = f"lakehouse://{lake}"
        tables = lake / "mlflow"
        before = raw_state(tables)
        after = expected(op, before)
        assert after != before
        versions = {t: DeltaTable(str(tables / t)).version() for t in TABLES}

        outcome = forker(uri=uri, op=op, die=die)
        assert outcome == {"signal": 9, "code": None}, (op, die, outcome)

        # Before anyone rolls the journal forward: each table, read plainly, has all of its part of the call or none.
        raw = raw_state(tables)
        for t in TABLES:
            assert raw[t] in (before[t], after[t]), (op, die, t)
        if die == "before":
            assert raw == before
            assert {t: DeltaTable(str(tables / t)).version() for t in TABLES} == versions
        elif COMMITS[op] > 1 and die == "1":
            assert raw == before, "right after the journal commit nothing is applied yet"
            assert _rows(tables / "registry_journal"), "the call is in the registry journal"

        # Another process opens the lake: the whole call, or (killed before it committed) none of it.
        store = LakehouseRegistryStore(uri)
        want = before if die == "before" else after
        assert api_state(store) == want, (op, die)  # no version is soft-deleted here: the API lists them all
        assert raw_state(tables) == want, (op, die)  # deltalake's reading after the roll forward

        # and the next writer proceeds
        name = "n" if op == "rename" and die != "before" else "m"
        if op == "delete" and die != "before":
            store.create_registered_model("m")
        mv = store.create_model_version(name, "s3://bucket/next", tags=[ModelVersionTag("next", "yes")])
        assert store.get_model_version(name, mv.version).tags == {"next": "yes"}


def test_a_reader_polling_during_renames_never_sees_a_torn_model(tmp_path, forker):
    uri = f"lakehouse://{tmp_path / 'lake'}"
    store = LakehouseRegistryStore(uri)
    setup_model(store)
    spec = {
        "tags": {"owner": "team", "tier": "1"},
        "aliases": {"champion": 3, "challenger": 4},
        "version_tags": {str(i): {"data": f"v{i}"} for i in range(1, 6)},
    }
    stop = tmp_path / "stop"
    reader = forker(op="read", uri=uri, stop=str(stop), names=["m", "n"], expected=spec)["pid"]
    progress = stop.with_suffix(".reads")
    reads = lambda: int(progress.read_text() or 0) if progress.exists() else 0  # noqa: E731
    try:
        deadline = time.monotonic() + 120
        while reads() == 0:  # the reader's first round is done
            assert time.monotonic() < deadline, "the reader never read"
            time.sleep(0.05)
        # rename back and forth until the reader has made 40 more reads (10 rounds over both names) meanwhile
        start, renames, names = reads(), 0, ["m", "n"]
        while renames < 6 or reads() < start + 40:
            assert time.monotonic() < deadline, f"the reader made {reads() - start} reads in two minutes"
            store.rename_registered_model(names[renames % 2], names[(renames + 1) % 2])
            renames += 1
            if renames == 1:  # hold the first rename for a whole round of the reader's (4 reads), so it sees both
                held = reads()  # names however slowly it runs (a loaded run saw only 'm'); the renames after it race it
                while reads() < held + 8:
                    assert time.monotonic() < deadline, "the reader made no round after the first rename"
                    time.sleep(0.01)
    finally:
        stop.touch()
        ended = forker(wait=reader)
    assert ended == {"signal": 0, "code": 0}, ended
    report = json.loads(stop.with_suffix(".report").read_text())
    assert report["n_torn"] == 0, report["torn"]
    assert report["reads"] >= 40 and report["seen"] == ["m", "n"], report


REFUSED = [
    ("rename onto an existing name", lambda s: s.rename_registered_model("m", "other"), "already exists"),
    ("rename of a missing model", lambda s: s.rename_registered_model("ghost", "n"), "not found"),
    ("delete of a missing model", lambda s: s.delete_registered_model("ghost"), "not found"),
    ("version of a missing model", lambda s: s.create_model_version("ghost", "s3://x"), "not found"),
    (
        "transition of a missing version",
        lambda s: s.transition_model_version_stage("m", 9, "Production", archive_existing_versions=True),
        "not found",
    ),
    ("alias to a missing version", lambda s: s.set_registered_model_alias("m", "a", 9), "not found"),
    ("delete of a missing version", lambda s: s.delete_model_version("m", 9), "not found"),
]


def test_a_refused_call_writes_nothing(tmp_path):
    uri = f"lakehouse://{tmp_path / 'lake'}"
    tables = tmp_path / "lake" / "mlflow"
    store = LakehouseRegistryStore(uri)
    setup_model(store)
    every = [*TABLES, "registry_journal"]
    versions = {t: DeltaTable(str(tables / t)).version() for t in every}
    before = raw_state(tables)
    for what, call, message in REFUSED:
        with pytest.raises(MlflowException, match=message):
            call(store)
        assert {t: DeltaTable(str(tables / t)).version() for t in every} == versions, what
    assert raw_state(tables) == before


def test_a_multi_table_call_is_one_journal_commit_then_one_apply_per_table(tmp_path):
    uri = f"lakehouse://{tmp_path / 'lake'}"
    tables = tmp_path / "lake" / "mlflow"
    store = LakehouseRegistryStore(uri)
    setup_model(store)
    every = [*TABLES, "registry_journal"]
    versions = {t: DeltaTable(str(tables / t)).version() for t in every}
    store.rename_registered_model("m", "n")
    moved = {t: DeltaTable(str(tables / t)).version() - versions[t] for t in every}
    assert moved == dict.fromkeys(every, 1)
    # each apply carries the registry journal's watermark: the journal version it applied up to
    journal_version = DeltaTable(str(tables / "registry_journal")).version()
    for t in TABLES:
        txns = [
            json.loads(line)["txn"]
            for line in (tables / t / "_delta_log" / f"{versions[t] + 1:020d}.json").read_text().splitlines()
            if "txn" in json.loads(line)
        ]
        assert [(x["appId"], x["version"]) for x in txns] == [("lakehouse-ml:mlflow.registry_journal", journal_version)]


def _two_lakes(tmp_path) -> tuple[LakehouseRegistryStore, LakehouseRegistryStore]:
    """Stores A and B on one lake with a `Lake` each (their own snapshots, as two processes have)."""
    from tracking import _registry_tables

    uri = f"lakehouse://{tmp_path / 'lake'}"
    a = LakehouseRegistryStore(uri)
    setup_model(a)
    _registry_tables._LAKES.clear()
    b = LakehouseRegistryStore(uri)
    assert a._lake is not b._lake
    b.get_registered_model("m")  # B's snapshot is current before the race
    return a, b


def _race(monkeypatch, a, b, hook: str, a_call, b_call):
    """Run `b_call(b)` with `a_call(a)` forced inside B's plan (at B's first `hook` lookup, after B's refresh):
    A's journal commit lands between B's plan and B's commit, and A's process pauses before applying it (its
    dispatcher thread too) until B's call has returned. The interleaving is forced, not timed."""
    applied = a._t.journal.roll_forward
    real = getattr(b, hook)
    fired: list[bool] = []

    def lookup(*args):
        row = real(*args)
        if not fired:
            fired.append(True)
            monkeypatch.setattr(a._t.journal, "roll_forward", lambda: None)
            a_call(a)
        return row

    monkeypatch.setattr(b, hook, lookup)
    try:
        return b_call(b)
    finally:
        assert fired
        monkeypatch.setattr(a._t.journal, "roll_forward", applied)  # A resumes
        a.get_registered_model("m" if a._t.models.get("m", 0) else "n")  # A's apply (any refresh rolls forward)


def test_an_update_racing_a_transition_is_not_lost(tmp_path, monkeypatch):
    """B updates version 3's description while A's transition of it (archiving the others) is between its journal
    commit and its apply. Until every registry call went through the journal, A's apply put back the row A had
    planned: B's description was lost although B's call had returned."""
    a, b = _two_lakes(tmp_path)
    transition = lambda s: s.transition_model_version_stage("m", 3, "Production", archive_existing_versions=True)  # noqa: E731
    _race(monkeypatch, a, b, "_version_row", transition, lambda s: s.update_model_version("m", 3, "new words"))
    for store in (a, b):
        mv = store.get_model_version("m", 3)
        assert (mv.current_stage, mv.description) == ("Production", "new words")  # both calls
        assert store.get_model_version("m", 1).current_stage == "Archived"


def test_a_tag_racing_a_rename_is_refused_not_orphaned(tmp_path, monkeypatch):
    """B sets a tag on model m while A's rename of m to n is between its journal commit and its apply: A's call
    came first, so B's is refused (m no longer exists), as in MLflow's SQL store where the rename's transaction
    commits first. Until every registry call went through the journal, B's tag row was committed under m and left
    there, a tag of no model (read here by deltalake, not through the store)."""
    a, b = _two_lakes(tmp_path)
    tag = RegisteredModelTag("late", "x")
    with pytest.raises(MlflowException, match="not found"):
        _race(
            monkeypatch,
            a,
            b,
            "_model_row",
            lambda s: s.rename_registered_model("m", "n"),
            lambda s: s.set_registered_model_tag("m", tag),
        )
    tags = _rows(tmp_path / "lake" / "mlflow" / "registered_model_tags")
    assert not [t for t in tags if t["name"] == "m"]
    assert "late" not in {t["key"] for t in tags}
    assert set(b.get_registered_model("n").tags) == {"owner", "tier"}
