"""Four writer processes merge overlapping keys into one feature table while a fifth builds training sets.

Each writer (`_reliability_worker.py`, a Spark Connect client) makes `write_table` merges of 3-12 of 40 keys and
prints the version each returned; the test's oracle orders the acknowledged writes by those versions (the
table's commit order) and applies them, last write per key winning. Afterwards: every write is acknowledged
(no caller saw an error, retried conflicts included), each is exactly one commit and the versions are 1..N
with no gap, the table holds every expected row exactly once, and every training set the reader loaded equals
the oracle's table as of the version it pinned (no torn state). Run with every writer on delta-rs, and with
one writer's merges sent as Delta's `MERGE INTO` to the Spark session (delta-spark) while the others use delta-rs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _reliability_worker import KEYS, SCHEMA, TABLE, apply, connect_url, plan
from test_write_atomic import Worker

from feature_store import FeatureStoreClient

WRITERS = 4
SEED = 7


@pytest.fixture
def url(spark) -> str:
    return connect_url(spark)


@pytest.mark.parametrize("spark_writer", [False, True], ids=["deltalake", "deltalake+delta-spark"])
def test_four_writers_and_a_training_set_reader(tmp_path, spark, url, trials, spark_writer, request):
    if spark_writer and not request.config.getoption("--long"):
        pytest.skip("the variant with a delta-spark writer runs under --long (4-6 minutes on 2 cores)")
    root = str(tmp_path / "lake")
    fs = FeatureStoreClient(root, spark=spark)
    fs.create_table(name=TABLE, primary_keys=["k"], df=spark.createDataFrame([(0, -1.0, "init")], SCHEMA))
    writes = trials(3, 25)
    stop, out = tmp_path / "stop", tmp_path / "reads.jsonl"
    reader = Worker(["reader", url, root, str(stop), str(out)], tmp_path / "reader.log")
    writers = [
        Worker(
            ["writer", url, root, str(w), str(writes), str(SEED), "nopause"],
            tmp_path / f"writer{w}.log",
            engine="delta-spark" if spark_writer and w == 0 else "deltalake",
        )
        for w in range(WRITERS)
    ]
    acks: dict[int, tuple[int, int]] = {}  # version -> (writer, index)
    engines = []
    try:
        for w in writers:
            while (line := w.next()) is not None:
                if line[0] == "READY":
                    engines.append(line[1])
                if line[0] == "ACK":
                    version = int(line[3])
                    assert version not in acks, f"two writes acknowledged version {version}"
                    acks[version] = (int(line[1]), int(line[2]))
            assert w.proc.wait(timeout=60) == 0, w.log.read_text()[-3000:]
    finally:
        stop.touch()
        for w in writers:
            w.kill()
    assert reader.proc.wait(timeout=120) == 0, reader.log.read_text()[-3000:]
    assert sorted(engines) == sorted(["delta-spark"] * spark_writer + ["deltalake"] * (WRITERS - spark_writer))

    # every write acknowledged, each one commit, the commits 1..N in the order the oracle applies them
    assert len(acks) == WRITERS * writes
    assert sorted(acks) == list(range(1, WRITERS * writes + 1))
    state = {0: (-1.0, "init")}
    as_of = {0: dict(state)}
    for version in sorted(acks):
        state = apply(state, plan(*acks[version], SEED))
        as_of[version] = state
    rows = fs.read_table(TABLE).collect()
    assert len(rows) == len({r["k"] for r in rows}), "a key is in the table twice"
    assert {r["k"]: (r["f"], r["tag"]) for r in rows} == state
    assert fs.lakehouse.latest_version(TABLE) == WRITERS * writes

    # every training set equals the oracle's table as of the version it pinned
    reads = [json.loads(line) for line in out.read_text().splitlines()]
    assert reads, "the reader loaded no training set"
    for read in reads:
        expected = as_of[read["version"]]
        got = {int(k): None if v is None else (v[0], v[1]) for k, v in read["rows"].items()}
        assert read["n"] == KEYS
        assert got == {k: expected.get(k) for k in range(KEYS)}, f"torn read at version {read['version']}"
    pinned = {r["version"] for r in reads}
    print(f"{len(reads)} training sets over {len(pinned)} versions; engines {engines}")
    assert os.path.exists(Path(fs.get_table(TABLE).path))
