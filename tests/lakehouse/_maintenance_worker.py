"""A process that runs one side of concurrent maintenance, round after round, for test_concurrent_maintenance.py.

python _maintenance_worker.py ROOT ENGINE ROLE BARRIER_DIR ROUNDS_JSON

ROUNDS_JSON is a list of {"table": name, "a": op, "b": op}; this worker runs the op of its ROLE ("a" or "b") in
each round. An op is "optimize", "vacuum" (retention 1 hour, deleting) or "append:<first id>:<commits>:<rows>".
Before each round the worker writes BARRIER_DIR/<round>.<role> and waits until the other role's file is there
too, so both sides start together (the JVM starts once, for every round). Prints one JSON line per round.
"""

import json
import os
import sys
import time

from lakehouse import Lakehouse, local_spark

DEADLINE = 300.0


def barrier(folder: str, round_no: int, role: str) -> None:
    open(os.path.join(folder, f"{round_no}.{role}"), "w").close()
    other = os.path.join(folder, f"{round_no}.{'b' if role == 'a' else 'a'}")
    deadline = time.monotonic() + DEADLINE
    while not os.path.exists(other):
        if time.monotonic() > deadline:
            raise SystemExit(f"round {round_no}: the other worker never arrived")
        time.sleep(0.002)


def run(lh: Lakehouse, spark, table: str, op: str) -> dict:
    if op == "optimize":
        res = lh.optimize(table)
        return {"version": res.version, "added": res.num_files_added, "removed": res.num_files_removed}
    if op == "vacuum":
        res = lh.vacuum(table, retention_hours=1, dry_run=False, enforce_retention_duration=False)
        return {"vacuumed": list(res.files)}
    kind, first, commits, rows = op.split(":")
    assert kind == "append", op
    for c in range(int(commits)):
        start = int(first) + c * int(rows)
        lh.append(table, spark.range(start, start + int(rows)))
    return {"appended": int(commits)}


def main(argv: list[str]) -> None:
    root, engine, role, folder, rounds = argv[0], argv[1], argv[2], argv[3], json.loads(argv[4])
    spark = local_spark(master="local[1]", shuffle_partitions=1)
    lh = Lakehouse(root, spark=spark, engine=engine)
    for i, r in enumerate(rounds):
        barrier(folder, i, role)
        out = run(lh, spark, r["table"], r[role])
        print(json.dumps({"round": i, "role": role, **out}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
