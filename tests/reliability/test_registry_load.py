"""Registry under load: 2 processes register versions of one model and move aliases (their own alias set and
deleted, one alias both move) and stages (Staging, Production with archive_existing_versions) at the same time.

Oracles: the writers' acknowledgements (`reliability_worker.registry_writer`, one line per completed call) and
deltalake's reading of the registry tables and of the outbox (`mlflow.registry_events`).

Afterwards the versions are 1..N with no gap and no duplicate, each acknowledged version holds its source;
every alias is where the last acknowledged move of it put it (the shared alias: at one of the two writers' last
moves); at most one version is in Production and every version's stage is one its acknowledged transitions or
an archiving explain; and every acknowledged write's event is in the outbox, with a unique id per event.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from mlflow import MlflowClient
from reliability_helpers import acks, errors_in, rows, spawn, tail

WRITERS = 2
MODEL = "churn"


@pytest.mark.slow
def test_two_processes_register_versions_and_move_aliases(tmp_path, trials, figures):
    """2 writers x 6 versions (each: alias set, every third deleted, shared alias, stage); `--long`: 50 each."""
    per_writer = trials(6, 50)
    lake = tmp_path / "lake"
    uri = f"lakehouse://{lake}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL)
    procs = [
        spawn("registry-writer", uri, MODEL, str(w), str(per_writer), str(tmp_path / f"acks{w}"), log=str(tmp_path / f"w{w}"))
        for w in range(WRITERS)
    ]  # fmt: skip
    for p in procs:
        p.wait(timeout=1200)
    lines = {w: acks(str(tmp_path / f"acks{w}")) for w in range(WRITERS)}
    for w, p in enumerate(procs):
        assert p.returncode == 0 and lines[w][-1:] == [["done"]], (
            f"writer {w} exited {p.returncode}: {errors_in(lines[w])}\n{tail(str(tmp_path / f'w{w}'))}"
        )

    # versions 1..N, each once, each acknowledged one with its source
    acked_versions = {int(line[1]): line[2] for ls in lines.values() for line in ls if line[0] == "version"}
    listed = client.search_model_versions(f"name = '{MODEL}'", max_results=10_000)
    numbers = Counter(int(v.version) for v in listed)
    table_numbers = Counter(r["version"] for r in rows(str(lake / "mlflow" / "model_versions")) if r["name"] == MODEL)
    total = WRITERS * per_writer
    figures.update(
        writers=WRITERS,
        versions_acked=len(acked_versions),
        versions_listed=len(numbers),
        version_duplicates=sum(n - 1 for n in numbers.values() if n > 1)
        + sum(n - 1 for n in table_numbers.values() if n > 1),
        version_gaps=len(set(range(1, total + 1)) - set(numbers)),
    )
    assert sorted(numbers.elements()) == list(range(1, total + 1)), "versions 1..N, no gap, no duplicate"
    assert sorted(table_numbers.elements()) == list(range(1, total + 1)), "the table as deltalake reads it"
    assert sorted(acked_versions) == list(range(1, total + 1))
    for v in listed:
        assert v.source == acked_versions[int(v.version)], f"version {v.version}: source {v.source}"

    # aliases: each writer's own alias ends where its last acknowledged move put it; the shared one at a last move
    model = client.get_registered_model(MODEL)
    final = {a: int(v) for a, v in model.aliases.items()}
    expected: dict[str, int | None] = {}
    last_shared = set()
    for ls in lines.values():
        shared = [int(line[2]) for line in ls if line[0] == "alias-set" and line[1] == "shared"]
        last_shared.add(shared[-1])
        for line in ls:
            if line[0] == "alias-set" and line[1] != "shared":
                expected[line[1]] = int(line[2])
            elif line[0] == "alias-deleted":
                expected[line[1]] = None
    alias_moves = sum(1 for ls in lines.values() for line in ls if line[0].startswith("alias"))
    figures.update(alias_moves_acked=alias_moves, aliases_final=final)
    assert {a: v for a, v in expected.items() if v is not None} == {a: v for a, v in final.items() if a != "shared"}
    assert final["shared"] in last_shared, f"shared alias at {final['shared']}, last moves {last_shared}"

    # stages: one Production at most; a Staging version stays Staging; a Production one is Production or Archived
    stages = {int(v.version): v.current_stage for v in client.search_model_versions(f"name = '{MODEL}'")}
    acked_stage = {int(line[1]): line[2] for ls in lines.values() for line in ls if line[0] == "stage"}
    assert list(stages.values()).count("Production") == 1, stages
    for v, stage in acked_stage.items():
        allowed = {"Staging"} if stage == "Staging" else {"Production", "Archived"}
        assert stages[v] in allowed, f"version {v}: acknowledged {stage}, now {stages[v]}"

    # the outbox: every acknowledged write's event, each event id once (deliverable, deduplicable by id)
    outbox = rows(str(lake / "mlflow" / "registry_events"))
    ids = Counter(r["event_id"] for r in outbox)
    got = Counter()
    for r in outbox:
        payload = json.loads(r["payload"]) if r["payload"] else {}
        if r["event"] == "model_version.created":
            got[("version", int(r["version"]))] += 1
        elif r["event"] == "model_version_alias.created":
            got[("alias-set", payload["alias"], int(payload["version"]))] += 1
        elif r["event"] == "model_version_alias.deleted":
            got[("alias-deleted", payload["alias"])] += 1
        elif r["event"] == "model_version_stage.transitioned":
            got[("stage", int(payload["version"]), payload["to_stage"])] += 1
    want = Counter()
    for ls in lines.values():
        for line in ls:
            if line[0] == "version":
                want[("version", int(line[1]))] += 1
            elif line[0] == "alias-set":
                want[("alias-set", line[1], int(line[2]))] += 1
            elif line[0] == "alias-deleted":
                want[("alias-deleted", line[1])] += 1
            elif line[0] == "stage":
                want[("stage", int(line[1]), line[2])] += 1
    missing = want - got
    figures.update(
        writes_acked=sum(want.values()),
        outbox_events=len(outbox),
        outbox_duplicate_ids=sum(n - 1 for n in ids.values() if n > 1),
        events_missing=sum(missing.values()),
    )
    assert not missing, f"acknowledged writes without their event in the outbox: {sorted(missing)[:10]}"
    assert all(n == 1 for n in ids.values()), "each event once in the outbox"
