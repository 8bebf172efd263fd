"""One S3-compatible server (S3Proxy, see tests/_support/s3_server.py) for the object-store tests.

The test command starts it (obtaining its JAR through Maven on first use; `s3_server_process` in tests/conftest.py,
one per test process) and stops it at the end of the session. While this folder's tests run, the AWS variables the
SDKs, delta-rs and obstore read point at it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def s3(s3_server_process):
    with s3_server_process.exported():
        yield s3_server_process


@pytest.fixture
def s3_root(s3, request) -> str:
    """A fresh lake root in the bucket, named after the test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")
    return f"s3://{s3.bucket}/{name}"
