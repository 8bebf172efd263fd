"""The processes of the reliability suites: writers that acknowledge every completed call, readers that look for
torn states, and the one-shot calls the crash suite kills.

python reliability_worker.py tracking-writer URI EXP WORKER RUNS STEPS ACKS
python reliability_worker.py tracking-reader URI EXP STOP OUT
python reliability_worker.py registry-writer URI MODEL WORKER VERSIONS ACKS
python reliability_worker.py batch-loop URI RUN_ID START ACKS      # log_batch k, k+1, ... until killed
python reliability_worker.py publish ROOT ACKS                     # one publish_table of feature table "cf"

An acknowledgement is one line appended to ACKS by a single unbuffered write(2) after the call returned: a
SIGKILL cannot lose a written line, and a line exists only for a call that completed. A call that raises is
written as an `error` line (its type, whether a retry would have fixed it, its message) and the process exits 1.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback

BATCH_STEPS = 5
"""Points of metric `acc` each run's log_batch carries (steps 0..4), with its params and tag: one call."""
TS = 1_700_000_000_000
"""Timestamp (ms) of step 0: every point's timestamp is TS + step, so values are known without the store."""
PARAMS = ("w", "i", "lr")


def acc(worker: int, index: int, step: int) -> float:
    return round(worker + index / 100 + step / 10_000, 6)


def loss(step: int) -> float:
    return 1.0 / (step + 1)


def lr(worker: int, index: int) -> str:
    return f"{0.001 * (worker + 1) * (index + 1):.6f}"


class Acks:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, *fields: object) -> None:
        os.write(self.fd, (" ".join(str(f) for f in fields) + "\n").encode())


def retryable(exc: BaseException) -> bool:
    """An error a retry would have fixed: a lost commit race or MLflow's TEMPORARILY_UNAVAILABLE."""
    text = f"{type(exc).__name__} {getattr(exc, 'error_code', '')} {exc}"
    return any(s in text for s in ("Conflict", "TEMPORARILY_UNAVAILABLE", "ConcurrentModification", "Concurrent"))


def guarded(acks: Acks, body) -> None:
    try:
        body()
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, then the process exits 1
        acks("error", type(exc).__name__, "retryable" if retryable(exc) else "final", json.dumps(str(exc)[:500]))
        traceback.print_exc()
        sys.exit(1)


# -- tracking ------------------------------------------------------------------------------------------------------
def tracking_writer(uri: str, exp: str, worker: int, runs: int, steps: int, ack_path: str) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    acks = Acks(ack_path)

    def body() -> None:
        client = MlflowClient(uri)
        for i in range(runs):
            name = f"w{worker}-r{i}"
            rid = client.create_run(exp, run_name=name, tags={"worker": str(worker)}).info.run_id
            acks("run", rid, name)
            client.log_batch(
                rid,
                metrics=[Metric("acc", acc(worker, i, s), TS + s, s) for s in range(BATCH_STEPS)],
                params=[Param("w", str(worker)), Param("i", str(i)), Param("lr", lr(worker, i))],
                tags=[RunTag("phase", "batch")],
            )
            acks("batch", rid)
            for s in range(steps):
                client.log_metric(rid, "loss", loss(s), timestamp=TS + s, step=s)
                acks("loss", rid, s)
            client.set_terminated(rid)
            acks("end", rid)
        acks("done")

    guarded(acks, body)


class Torn:
    """What a reader saw that no sequence of completed calls can produce (see check_run)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, what: str) -> None:
        if len(self.seen) < 50:
            self.seen.append(what)


def check_run(run, torn: Torn, steps: int) -> None:
    """One run as search_runs or get_run returned it, against what its writer's calls make possible.

    Torn: part of a log_batch (params without all of the batch's acc points or its tag, or the reverse); a
    finished run without its params or its last loss point; a param or latest value no call logged.
    """
    rid, params, metrics, tags = run.info.run_id, run.data.params, run.data.metrics, run.data.tags
    name = run.info.run_name
    batch_parts = {"params": bool(params), "acc": "acc" in metrics, "tag": tags.get("phase") == "batch"}
    if len(set(batch_parts.values())) != 1:
        torn(f"{rid} ({name}): part of its log_batch visible: {batch_parts}")
        return
    if params:
        if set(params) != set(PARAMS):
            torn(f"{rid} ({name}): params {sorted(params)}, logged together: {PARAMS}")
            return
        w, i = int(params["w"]), int(params["i"])
        if name != f"w{w}-r{i}" or params["lr"] != lr(w, i):
            torn(f"{rid} ({name}): params {params} were never logged for this run")
        if metrics["acc"] != acc(w, i, BATCH_STEPS - 1):
            torn(f"{rid} ({name}): latest acc {metrics['acc']}, the batch's last step is {acc(w, i, BATCH_STEPS - 1)}")
    if run.info.status == "FINISHED" and (not params or metrics.get("loss") != loss(steps - 1)):
        torn(f"{rid} ({name}): FINISHED without its data (params {params}, loss {metrics.get('loss')})")


def check_history(rid: str, key: str, history, torn: Torn, at_least: int) -> int:
    """A metric history read after a view that showed `at_least` points: steps 0..n-1, each once, n >= at_least."""
    steps = sorted(m.step for m in history)
    if steps != list(range(len(steps))):
        torn(f"{rid}: history of {key} has steps {steps[:20]}... (a gap or a duplicate)")
    elif len(steps) < at_least:
        torn(f"{rid}: history of {key} has {len(steps)} points after a read that showed {at_least}")
    for m in history:
        if key == "loss" and (m.value != loss(m.step) or m.timestamp != TS + m.step):
            torn(f"{rid}: loss point {m} was never logged")
    return len(steps)


def tracking_reader(uri: str, exp: str, stop: str, out: str, steps: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    torn = Torn()
    figures = {"searches": 0, "filtered_searches": 0, "runs_checked": 0, "get_runs": 0, "histories": 0}
    errors: list[str] = []
    retryable_errors = 0
    client = MlflowClient(uri)
    last_count = 0
    rng = random.Random(os.getpid())
    while not os.path.exists(stop):
        try:
            runs = client.search_runs([exp], "", ViewType.ACTIVE_ONLY, max_results=10_000)
            figures["searches"] += 1
            if len(runs) < last_count:
                torn(f"search_runs returned {len(runs)} runs after {last_count}")
            last_count = max(last_count, len(runs))
            for run in runs:
                check_run(run, torn, steps)
            figures["runs_checked"] += len(runs)
            w = rng.randrange(8)
            hits = client.search_runs(
                [exp], f"params.w = '{w}' and metrics.acc >= 0", ViewType.ACTIVE_ONLY, max_results=10_000
            )
            figures["filtered_searches"] += 1
            seen = {r.info.run_id for r in runs if r.data.params.get("w") == str(w)}
            for run in hits:
                check_run(run, torn, steps)
                if run.data.params.get("w") != str(w):
                    torn(f"params.w = '{w}' returned {run.info.run_id} with params {run.data.params}")
            if missing := seen - {r.info.run_id for r in hits}:
                torn(f"params.w = '{w}' missed {sorted(missing)}, which an earlier search showed with w={w}")
            for run in rng.sample(runs, min(3, len(runs))):
                rid = run.info.run_id
                got = client.get_run(rid)
                figures["get_runs"] += 1
                check_run(got, torn, steps)
                shown = round(1 / got.data.metrics["loss"]) if "loss" in got.data.metrics else 0
                check_history(rid, "loss", client.get_metric_history(rid, "loss"), torn, shown)
                n = check_history(rid, "acc", client.get_metric_history(rid, "acc"), torn, 0)
                if n not in (0, BATCH_STEPS) or (got.data.params and n != BATCH_STEPS):
                    torn(f"{rid}: acc history has {n} of its batch's {BATCH_STEPS} points")
                figures["histories"] += 2
        except Exception as exc:  # noqa: BLE001 - recorded, never hidden: the test fails on any
            retryable_errors += retryable(exc)
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            if len(errors) > 20:
                break
    with open(out, "w") as fh:
        json.dump({**figures, "torn": torn.seen, "errors": errors, "retryable_errors": retryable_errors}, fh)


# -- registry ------------------------------------------------------------------------------------------------------
def registry_writer(uri: str, model: str, worker: int, versions: int, ack_path: str) -> None:
    from mlflow import MlflowClient

    acks = Acks(ack_path)

    def body() -> None:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        for k in range(versions):
            source = f"s3://bucket/w{worker}/v{k}"
            v = int(client.create_model_version(model, source=source).version)
            acks("version", v, source)
            client.set_registered_model_alias(model, f"w{worker}", str(v))
            acks("alias-set", f"w{worker}", v)
            if k % 3 == 2:
                client.delete_registered_model_alias(model, f"w{worker}")
                acks("alias-deleted", f"w{worker}")
            client.set_registered_model_alias(model, "shared", str(v))
            acks("alias-set", "shared", v)
            stage = "Production" if k % 2 else "Staging"
            client.transition_model_version_stage(model, str(v), stage, archive_existing_versions=stage == "Production")
            acks("stage", v, stage)
        acks("done")

    guarded(acks, body)


# -- the calls the crash suite kills -------------------------------------------------------------------------------
def batch_loop(uri: str, run_id: str, start: int, ack_path: str) -> None:
    """log_batch k = start, start+1, ...: param p<k>, tag t<k>, metric m at step k; acknowledged one by one."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    acks = Acks(ack_path)

    def body() -> None:
        client = MlflowClient(uri)
        client.get_run(run_id)
        acks("ready")
        k = start
        while True:
            client.log_batch(
                run_id, metrics=[Metric("m", float(k), TS + k, k)], params=[Param(f"p{k}", str(k))],
                tags=[RunTag(f"t{k}", str(k))],
            )  # fmt: skip
            acks("batch", k)
            k += 1

    guarded(acks, body)


def publish(root: str, ack_path: str) -> None:
    from feature_store import FeatureStoreClient
    from lakehouse import Lakehouse

    acks = Acks(ack_path)

    def body() -> None:
        fs = FeatureStoreClient(lakehouse=Lakehouse(root, engine="deltalake"))
        acks("ready")
        result = fs.publish_table("cf")
        acks("published", result.to_version, result.publish_id)

    guarded(acks, body)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    started = time.time()
    if cmd == "tracking-writer":
        tracking_writer(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), args[5])
    elif cmd == "tracking-reader":
        tracking_reader(args[0], args[1], args[2], args[3], int(args[4]))
    elif cmd == "registry-writer":
        registry_writer(args[0], args[1], int(args[2]), int(args[3]), args[4])
    elif cmd == "batch-loop":
        batch_loop(args[0], args[1], int(args[2]), args[3])
    elif cmd == "publish":
        publish(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd!r}")
