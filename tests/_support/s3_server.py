"""A local S3-compatible server for tests and benchmarks: S3Proxy on 127.0.0.1 (filesystem backend).

Why S3Proxy (Apache-2.0, one self-contained JAR on Maven Central, `org.gaul:s3proxy`): its PutObject with
`If-None-Match: *` is atomic. It writes the body to a temporary file and publishes it with a hard link
(`link(2)` fails when the key exists, which becomes HTTP 412), so among writers racing for one key exactly one
wins. `tests/objectstore/test_s3_server.py` proves that with a race before anything relies on it. Checked and
refused: moto and Adobe S3Mock check for the key and then write without a lock (S3Mock let up to five racers
"win" one key), MinIO is AGPL, LocalStack's S3 does not start on Python 3.11. S3Proxy's `If-Match` is a
HEAD then a PUT (not atomic); nothing here relies on it. While a PUT is in flight its temporary file can show
in listings as `<key>-<uuid>`; Delta readers ignore such names.

The JAR is obtained with the machine's own Maven client as it is configured (no repository URL here), checked
against its SHA-256, and cached under `$LAKEHOUSE_JARS_HOME` (default ~/.cache/lakehouse-ml/jars).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

VERSION = "4.1.0"
ARTIFACT = f"org.gaul:s3proxy:{VERSION}:jar:jar-with-dependencies"
SHA256 = "a4d025969aaf796616ed4b1e2491d87d455ce84bb28cb9db086b2e6aaa68b48d"
JAVA_OPTS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k", "-Xmx512m"]
ACCESS_KEY, SECRET_KEY, REGION = "lakehouse-test", "lakehouse-test-secret", "us-east-1"


def obtain() -> Path:
    """The S3Proxy JAR, fetched through `mvn dependency:copy` on first use (about 55 MB, 10-20 s)."""
    home = Path(os.environ.get("LAKEHOUSE_JARS_HOME") or Path.home() / ".cache" / "lakehouse-ml" / "jars")
    folder = home / f"s3proxy-{VERSION}"
    jar = folder / f"s3proxy-{VERSION}-jar-with-dependencies.jar"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (jar.exists() and _sha256(jar) == SHA256):
            mvn = shutil.which("mvn")
            if mvn is None:
                raise RuntimeError("S3Proxy for the object-store tests needs Maven (`mvn`) on PATH")
            cmd = [mvn, "-B", "-q", "dependency:copy", f"-Dartifact={ARTIFACT}", f"-DoutputDirectory={folder}"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not jar.exists():
                raise RuntimeError(f"mvn could not obtain {ARTIFACT}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
            if _sha256(jar) != SHA256:
                jar.unlink()
                raise RuntimeError(f"{ARTIFACT}: SHA-256 mismatch (expected {SHA256})")
    return jar


@dataclass
class S3Server:
    endpoint: str
    bucket: str
    state_dir: Path
    process: subprocess.Popen = field(repr=False)

    def env(self) -> dict[str, str]:
        """The variables the AWS SDKs, delta-rs and obstore read to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    @contextlib.contextmanager
    def exported(self) -> Iterator[None]:
        """`env()` in os.environ (where obstore, delta-rs and boto3 read it), the old values put back after."""
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.state_dir / "s3proxy.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def start(state_dir: Path, bucket: str = "lakehouse", timeout: float = 90.0) -> S3Server:
    """Start S3Proxy on a free port of 127.0.0.1 with `bucket` created; return when it answers S3 requests."""
    jar = obtain()
    data = state_dir / "data"
    (data / bucket).mkdir(parents=True, exist_ok=True)  # the filesystem backend's bucket is a folder
    port = _free_port()
    props = state_dir / "s3proxy.properties"
    props.write_text(
        "\n".join(
            [
                f"s3proxy.endpoint=http://127.0.0.1:{port}",
                "s3proxy.authorization=aws-v2-or-v4",
                f"s3proxy.identity={ACCESS_KEY}",
                f"s3proxy.credential={SECRET_KEY}",
                "jclouds.provider=filesystem",
                f"jclouds.filesystem.basedir={data}",
            ]
        )
        + "\n"
    )
    with open(state_dir / "s3proxy.log", "wb") as log:
        process = subprocess.Popen(
            ["java", *JAVA_OPTS, "-jar", str(jar), "--properties", str(props)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = S3Server(f"http://127.0.0.1:{port}", bucket, state_dir, process)
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"S3Proxy exited with {process.returncode}:\n{server.log_tail()}")
        try:
            names = [b["Name"] for b in client.list_buckets()["Buckets"]]
        except Exception:  # noqa: BLE001 - not listening yet (connection refused / reset)
            names = None
        if names is not None and bucket in names:
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"S3Proxy did not answer within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
