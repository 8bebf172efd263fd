"""Subprocess of the registry event tests. Modes:

versions <uri> <model> <n>   register n versions of <model> (the model exists)
crash <uri> <model>          register one version, then die right after the registry commit
"""

import os
import sys

import mlflow

mode, uri, model = sys.argv[1], sys.argv[2], sys.argv[3]
client = mlflow.MlflowClient(uri)
if mode == "versions":
    for i in range(int(sys.argv[4])):
        client.create_model_version(model, f"s3://bucket/{os.getpid()}/{i}")
elif mode == "crash":
    from tracking._registry import LakehouseRegistryStore

    def die(self, events, table, version):
        os._exit(0)  # the registry commit (with its events) is published; the outbox copy never happens

    LakehouseRegistryStore._publish = die
    client.create_model_version(model, "s3://bucket/crash")
    raise SystemExit("not reached")
