"""Races on an S3-compatible server: processes released together by a barrier, round after round.

`put_race` races raw conditional PUTs (`If-None-Match: *`, boto3) for one key per round: the server's own
atomicity. `commit_race` races our lean Delta commits (`LeanTable.commit`) for one version per round: our
commit path on the object store. Children are spawned (not forked from a process holding a JVM and threads),
and the functions they run live here so that a spawned child can import them.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    round: int
    process: int
    outcome: str  # "won", or what the loser got: "412", "CommitConflict: ...", another status or error
    body: bytes = b""


def put_race(env: dict[str, str], bucket: str, prefix: str, procs: int, rounds: int) -> list[Attempt]:
    """Every round, `procs` processes PUT `<prefix>/<round>` with If-None-Match: * at the same moment."""
    return _race(_put_racer, (env, bucket, prefix, rounds), procs)


def commit_race(env: dict[str, str], table_uri: str, procs: int, rounds: int) -> list[Attempt]:
    """Every round, `procs` processes commit one row at the same next version of the lean table `table_uri`."""
    return _race(_commit_racer, (env, table_uri, rounds), procs)


def winners_per_round(attempts: list[Attempt]) -> Counter[int]:
    return Counter(a.round for a in attempts if a.outcome == "won")


def _race(target, args: tuple, procs: int) -> list[Attempt]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    queue = ctx.Queue()
    children = [ctx.Process(target=target, args=(*args, i, barrier, queue)) for i in range(procs)]
    for c in children:
        c.start()
    out: list[Attempt] = []
    try:
        for _ in children:
            out.extend(queue.get(timeout=300))
    finally:
        for c in children:
            c.join(timeout=60)
            if c.is_alive():
                c.kill()
    if any(c.exitcode != 0 for c in children):
        raise RuntimeError(f"a racer failed: exit codes {[c.exitcode for c in children]}")
    return out


def _put_racer(env, bucket, prefix, rounds, index, barrier, queue) -> None:
    import os

    os.environ.update(env)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client("s3", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    client.list_buckets()  # connect before the first round
    out = []
    for r in range(rounds):
        body = f"process {index} round {r}".encode()
        barrier.wait()
        try:
            client.put_object(Bucket=bucket, Key=f"{prefix}/{r}", Body=body, IfNoneMatch="*")
            out.append(Attempt(r, index, "won", body))
        except ClientError as exc:
            out.append(Attempt(r, index, str(exc.response["ResponseMetadata"]["HTTPStatusCode"]), body))
    queue.put(out)


def _commit_racer(env, table_uri, rounds, index, barrier, queue) -> None:
    import os

    os.environ.update(env)
    import pyarrow as pa

    from lakehouse import LeanTable
    from lakehouse._log import CommitConflict

    table = LeanTable(path=table_uri, name="race", schema=pa.schema([("round", pa.int64()), ("process", pa.int64())]))
    out = []
    for r in range(rounds):
        table.refresh()
        barrier.wait()
        try:
            table.commit([[{"round": r, "process": index}]])
            out.append(Attempt(r, index, "won"))
        except CommitConflict as exc:
            out.append(Attempt(r, index, f"CommitConflict: {exc.__cause__}"))
        barrier.wait()  # every racer has committed or lost before anyone refreshes for the next round
    queue.put(out)
