"""One S3-compatible server (S3Proxy, see tests/_support/s3_server.py) for the object-store tests.

The test command starts it (obtaining its JAR through Maven on first use) and stops it after the last test of
this folder. While it runs, the AWS variables the SDKs, delta-rs and obstore read point at it.
"""

from __future__ import annotations

import pytest
import s3_server


@pytest.fixture(scope="package")
def s3(tmp_path_factory):
    server = s3_server.start(tmp_path_factory.mktemp("s3proxy"))
    try:
        with server.exported():
            yield server
    finally:
        server.stop()


@pytest.fixture
def s3_root(s3, request) -> str:
    """A fresh lake root in the bucket, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"s3://{s3.bucket}/{name}"
