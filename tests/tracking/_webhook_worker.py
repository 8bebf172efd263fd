"""Subprocess of the webhook delivery and secret tests. Modes:

produce <uri> <url> <n>        create a webhook on <url> (secret from $WORKER_SECRET), a model and n versions,
                               printing "acked <version>" after each; then run until stdin closes (its
                               dispatcher keeps retrying in the background meanwhile) and exit normally
seal <root> <go-file>          wait for <go-file>, then seal a secret with the lake's key and print the token
"""

import os
import sys
import time

mode = sys.argv[1]
if mode == "produce":
    import mlflow
    from mlflow.entities.webhook import WebhookEvent

    uri, url, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = mlflow.MlflowClient(uri)
    client.create_webhook(
        "down",
        url,
        secret=os.environ["WORKER_SECRET"],
        events=[WebhookEvent("registered_model", "created"), WebhookEvent("model_version", "created")],
    )
    client.create_registered_model("m")
    print("acked model", flush=True)
    for i in range(n):
        v = client.create_model_version("m", f"s3://bucket/{i}")
        print(f"acked {v.version}", flush=True)
    sys.stdin.read()
elif mode == "seal":
    from tracking import _secrets

    root, go = sys.argv[2], sys.argv[3]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    print(_secrets.seal("race", root), flush=True)
else:
    raise SystemExit(f"unknown mode {mode!r}")
