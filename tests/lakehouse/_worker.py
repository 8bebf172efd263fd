"""A separate process that uses the lakehouse, for the multi-process and exit-code tests.

python _worker.py append ROOT WORKER_ID N_COMMITS ROWS   # N appends of distinct ids
python _worker.py optimize ROOT START_FILE               # say START_FILE.ready-<pid>, wait for START_FILE, OPTIMIZE
python _worker.py merge ROOT WORKER_ID N_MERGES ROWS     # N upserts of this worker's own keys
python _worker.py read ROOT                              # read table t (latest and version 0)
python _worker.py write ROOT                             # append to table t
"""

import os
import sys
import time

from lakehouse import Lakehouse, local_spark


def main(argv: list[str]) -> None:
    mode, root = argv[0], argv[1]
    spark = local_spark(master="local[1]", shuffle_partitions=1)
    lh = Lakehouse(root, spark=spark, engine="deltalake")
    if mode == "append":
        worker, commits, rows = int(argv[2]), int(argv[3]), int(argv[4])
        for c in range(commits):
            start = (worker * commits + c) * rows
            lh.append("t", spark.range(start, start + rows))
    elif mode == "optimize":
        open(argv[2] + f".ready-{os.getpid()}", "w").close()  # Spark is up: the test starts both at once
        while not os.path.exists(argv[2]):
            time.sleep(0.01)
        res = lh.optimize("t")
        print(f"version={res.version} added={res.num_files_added} removed={res.num_files_removed}")
    elif mode == "merge":
        worker, merges, rows = int(argv[2]), int(argv[3]), int(argv[4])
        for m in range(merges):
            keys = spark.range(worker * rows, (worker + 1) * rows)
            lh.merge("t", keys.selectExpr("id", f"{m} as round"), on="id")
    elif mode == "read":
        assert lh.read("t").count() >= lh.read("t", version=0).count() > 0
        lh.history("t")
    elif mode == "write":
        lh.append("t", spark.range(5))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
