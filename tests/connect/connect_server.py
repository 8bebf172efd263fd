"""A Spark Connect server for the tests: the project's own local session (`local_spark()`: Delta's JARs, the lake
catalog, the put-if-absent log store) with Spark's Connect plugin serving it on 127.0.0.1:<port>.

    python connect_server.py <port>      # prints "ready" once the gRPC port accepts; stops when stdin closes
"""

from __future__ import annotations

import socket
import sys
import time

from lakehouse import local_spark


def main(port: int) -> None:
    spark = local_spark(
        master="local[2]",
        shuffle_partitions=2,
        extra_conf={
            "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(port),
        },
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or ends)
    spark.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
