"""A store process logging one metric point per call until told to stop; one acknowledgement line per call.

argv: <tracking uri> <run_id> <key> <stop file> <pause seconds between calls>. Point i is (value=i*0.5, timestamp=1_000_000+i, step=i);
after each successful `log_metric` it prints `ack <i>` (flushed). While `<stop file>.pause` exists it writes
nothing (printing `paused`, then `resumed`). It stops when the stop file exists and exits 0;
a failed call is printed as `error <type>: <message>` and ends the process with exit code 1.
"""

import os
import sys
import time

from mlflow import MlflowClient

uri, run_id, key, stop_file, pause = *sys.argv[1:5], float(sys.argv[5])
client = MlflowClient(uri)
pause_file = stop_file + ".pause"
i = 0
while not os.path.exists(stop_file):
    if os.path.exists(pause_file):  # the parent asked for a gap in the writes (see the test's DELETE)
        print("paused", flush=True)
        while os.path.exists(pause_file) and not os.path.exists(stop_file):
            time.sleep(0.02)
        print("resumed", flush=True)
        continue
    try:
        client.log_metric(run_id, key, i * 0.5, timestamp=1_000_000 + i, step=i)
    except Exception as exc:  # noqa: BLE001 - the parent test reports it
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
    print(f"ack {i}", flush=True)
    i += 1
    time.sleep(pause)  # paces the writer (not a barrier): the store compacts every ~40 commits
print("stopped", flush=True)
