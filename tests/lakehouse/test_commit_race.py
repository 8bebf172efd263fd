"""Put-if-absent across engines: delta-spark, deltalake and the lean writer commit to one table at once.

delta-spark's default local log store checks that a commit file is absent and then renames onto it, which
excludes other writers only inside one JVM; lakehouse's sessions use a log store that creates the commit
file by an atomic hard link. The test holds every writer to its acknowledgements: each acknowledged commit
is in the table exactly once, and the log is one commit file per version, with no gap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from worker_env import worker_env

from lakehouse._log import LeanTable

WORKER = Path(__file__).with_name("_race_worker.py")
N = 12


def _start(kind: str, path: str, go: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), kind, path, str(N), go],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )


def _wait_ready(proc: subprocess.Popen[str]) -> list[str]:
    lines = []
    for line in proc.stdout:  # blocks until the worker has started (Spark's JVM included)
        lines.append(line.strip())
        if line.startswith("READY"):
            return lines
    raise AssertionError(f"worker ended before it was ready: {proc.stderr.read()[-3000:]}")


@pytest.mark.slow
def test_three_engines_race_and_every_acknowledged_commit_survives(tmp_path):
    path = str(tmp_path / "race")
    LeanTable(
        path=path, name="race", schema=pa.schema([("writer", pa.string()), ("seq", pa.int64())])
    ).create_if_missing()
    go = str(tmp_path / "go")
    procs = {kind: _start(kind, path, go) for kind in ("spark", "deltalake", "lean")}
    early = {kind: _wait_ready(p) for kind, p in procs.items()}
    Path(go).touch()  # all three start committing together
    acks: set[tuple[str, int]] = set()
    for kind, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{kind} writer failed: {err[-3000:]}"
        for line in early[kind] + out.splitlines():
            if line.startswith("ACK "):
                _, writer, seq = line.split()
                acks.add((writer, int(seq)))
    assert ("STORE io.lakehouseml.delta.PutIfAbsentLogStore") in early["spark"], early["spark"]
    assert len(acks) == 3 * N

    # Every acknowledged commit is in the table exactly once (read the files of the latest version directly).
    dt = DeltaTable(path)
    rows = []
    for uri in dt.file_uris():
        tbl = pq.read_table(uri)
        rows += list(zip(tbl.column("writer").to_pylist(), tbl.column("seq").to_pylist(), strict=True))
    assert sorted(rows) == sorted(acks)

    # One commit file per version, contiguous from 0, one commitInfo each; delta-spark's say so.
    log = Path(path) / "_delta_log"
    versions = sorted(int(p.name[:20]) for p in log.glob("*.json") if p.name[:20].isdigit())
    assert versions == list(range(versions[-1] + 1))
    assert dt.version() == versions[-1] == 3 * N  # v0 is the create
    engines = []
    for v in versions[1:]:
        actions = [json.loads(x) for x in (log / f"{v:020d}.json").read_text().splitlines() if x.strip()]
        infos = [a["commitInfo"] for a in actions if "commitInfo" in a]
        assert len(infos) == 1
        engines.append(infos[0].get("engineInfo") or infos[0].get("clientVersion"))
    assert sum(1 for e in engines if e and "Delta-Lake/" in e) == N
    assert not [p.name for p in log.iterdir() if ".tmp" in p.name]  # every writer cleaned up its temp file
