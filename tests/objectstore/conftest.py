"""One S3-compatible server (S3Proxy, see tests/_support/s3_server.py) for the object-store tests.

The test command starts it (obtaining its JAR through Maven on first use) and stops it after the last test of
this folder. While it runs, the AWS variables the SDKs, delta-rs and obstore read point at it.
"""

from __future__ import annotations

import os

import pytest
import s3_server


@pytest.fixture(scope="package")
def s3(tmp_path_factory):
    server = s3_server.start(tmp_path_factory.mktemp("s3proxy"))
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


@pytest.fixture
def s3_root(s3, request) -> str:
    """A fresh lake root in the bucket, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"s3://{s3.bucket}/{name}"
