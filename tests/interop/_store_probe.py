"""A cold tracking store in a fresh process: run the requested calls, print one JSON line of outcomes.

argv: <tracking uri> <JSON list of [op, args...]>; ops: ["history", run_id, key],
["log_metric", run_id, key, value, timestamp, step]. Each outcome is {"ok": true, "value": ...} or
{"ok": false, "type": <exception class>, "error_code": ..., "message": ...}; any exception is reported, so
the test (not this script) decides which are acceptable.
"""

import json
import sys

from mlflow import MlflowClient

uri, ops = sys.argv[1], json.loads(sys.argv[2])
client = MlflowClient(uri)
outcomes = []
for op, *args in ops:
    try:
        if op == "history":
            value = [[m.value, m.timestamp, m.step] for m in client.get_metric_history(*args)]
        elif op == "log_metric":
            run_id, key, v, ts, step = args
            client.log_metric(run_id, key, v, timestamp=ts, step=step)
            value = None
        else:
            raise ValueError(f"unknown op {op!r}")
        outcomes.append({"ok": True, "value": value})
    except Exception as exc:  # noqa: BLE001 - reported to the test, which names what is acceptable
        outcomes.append(
            {
                "ok": False,
                "type": type(exc).__name__,
                "error_code": getattr(exc, "error_code", None),
                "message": str(exc),
            }
        )
print(json.dumps(outcomes), flush=True)
