"""Where the lean Delta log's files live: a local folder, or an object store named by a URI.

The Delta commit protocol asks one thing of storage beyond reading and writing files: creating a file only if it
does not exist yet, atomically (put-if-absent), so that exactly one writer wins each version. Here that is

* on a local disk: `O_EXCL` for data files and a hard link of a complete temporary file for commits (a reader
  never sees a half-written commit);
* on an object store (`s3://`, `s3a://`, `gs://`, `az://`, `abfss://`): one conditional PUT (`If-None-Match: *`
  on S3; a losing writer gets HTTP 412), through `obstore` (the Rust `object_store` crate that delta-rs commits
  with), never a local lock or link. A PUT is visible whole or not at all, so no temporary object is needed.

Credentials, region and endpoint of an object store come from the environment as the cloud SDKs read them
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...), the
same variables delta-rs and boto3 read. Paths are plain strings: an absolute local path or a URI.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import uuid
from typing import Any
from urllib.parse import urlparse

from ._settings import tracking_fsync

OBJECT_STORE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss")
"""URI schemes whose lean tables commit through the object store's conditional PUT."""


def is_object_store(path: str) -> bool:
    return urlparse(path).scheme in OBJECT_STORE_SCHEMES if "://" in path else False


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return "/".join([base.rstrip("/"), *parts])
    return os.path.join(base, *parts)


# -- reading ----------------------------------------------------------------------------------------------------
def read(path: str) -> bytes:
    """The whole file. Raises FileNotFoundError when it does not exist."""
    if not is_object_store(path):
        with open(path, "rb") as fh:
            return fh.read()
    store, key = _store(path)
    from obstore.exceptions import NotFoundError

    try:
        return bytes(_obstore().get(store, key).bytes())
    except (NotFoundError, FileNotFoundError):  # obstore raises the builtin for a 404
        raise FileNotFoundError(path) from None


def exists(path: str) -> bool:
    if not is_object_store(path):
        return os.path.exists(path)
    return mtime_ms(path) is not None


def listing(folder: str) -> dict[str, int]:
    """{file name: modification time in epoch ms} of the files directly in `folder` ({} when it does not exist).

    Object stores report `Last-Modified`, which is what Delta times an object store's commits by.
    """
    if not is_object_store(folder):
        out: dict[str, int] = {}
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        out[entry.name] = entry.stat().st_mtime_ns // 1_000_000
                    except FileNotFoundError:
                        continue
        except (FileNotFoundError, NotADirectoryError):
            return {}
        return out
    store, key = _store(folder)
    prefix = key.strip("/")
    result = _obstore().list_with_delimiter(store, prefix or None)
    cut = len(prefix) + 1 if prefix else 0
    return {str(meta["path"])[cut:]: int(meta["last_modified"].timestamp() * 1000) for meta in result["objects"]}


def mtime_ms(path: str) -> int | None:
    """The file's modification time (epoch ms), or None when it does not exist."""
    if not is_object_store(path):
        try:
            return os.stat(path).st_mtime_ns // 1_000_000
        except FileNotFoundError:
            return None
    store, key = _store(path)
    from obstore.exceptions import NotFoundError

    try:
        meta = _obstore().head(store, key)
    except (NotFoundError, FileNotFoundError):
        return None
    return int(meta["last_modified"].timestamp() * 1000)


# -- writing ----------------------------------------------------------------------------------------------------
def create_new(path: str, data: bytes) -> None:
    """Write a file that must not exist yet; FileExistsError when it does. A local file may be seen half-written
    while this runs (use it for files nothing reads before a commit names them)."""
    if not is_object_store(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            if tracking_fsync():
                os.fsync(fd)
        finally:
            os.close(fd)
        return
    _put_if_absent(path, data)


def publish(path: str, data: bytes) -> None:
    """Create `path` with `data` only if it does not exist, visible whole or not at all (a Delta commit).

    Raises FileExistsError when another writer created it first; nothing of this call is then left behind.
    """
    if not is_object_store(path):
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")
        create_new(tmp, data)
        try:
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
        return
    _put_if_absent(path, data)


def replace(path: str, data: bytes) -> None:
    """Write `path` whole, replacing what is there (checkpoints, `_last_checkpoint`); readers see old or new."""
    if not is_object_store(path):
        folder, name = os.path.split(path)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}-{name}")
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return
    store, key = _store(path)
    _obstore().put(store, key, data, mode="overwrite")


def delete_quietly(path: str) -> bool:
    """Delete the file; False when it was already gone (or could not be deleted)."""
    if not is_object_store(path):
        try:
            os.unlink(path)
        except OSError:
            return False
        return True
    store, key = _store(path)
    from obstore.exceptions import BaseError

    try:
        _obstore().delete(store, key)
    except BaseError:
        return False
    return True


def makedirs(folder: str) -> None:
    """Create a local folder (and its parents); object stores have no folders to create."""
    if not is_object_store(folder):
        os.makedirs(folder, exist_ok=True)


# -- object stores ----------------------------------------------------------------------------------------------
_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def arrow_filesystem(path: str) -> tuple[Any, str]:
    """pyarrow's file system for a local path or a URI, and the path within it. `s3a://` (Hadoop's name for S3,
    what Spark's connector reads) is the same bucket as `s3://`, which is the name pyarrow knows."""
    import pyarrow.fs as pafs

    if "://" not in path:
        return pafs.LocalFileSystem(), path.rstrip("/")
    if urlparse(path).scheme == "s3a":
        path = "s3" + path[len("s3a") :]
    fs, base = pafs.FileSystem.from_uri(path)
    return fs, str(base)


def _obstore() -> Any:
    import obstore

    return obstore


def _store(path: str) -> tuple[Any, str]:
    """(the store of the bucket / container, the object key) for a URI; one client per bucket per process."""
    parsed = urlparse(path)
    scheme = "s3" if parsed.scheme == "s3a" else parsed.scheme
    base = f"{scheme}://{parsed.netloc}"
    with _stores_lock:
        store = _stores.get(base)
        if store is None:
            from obstore.store import from_url

            store = _stores[base] = from_url(base)
    return store, parsed.path.lstrip("/")


def _put_if_absent(path: str, data: bytes) -> None:
    """One conditional PUT; another writer's object (HTTP 412, or 409 while its PUT is in flight) is
    FileExistsError."""
    store, key = _store(path)
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    try:
        _obstore().put(store, key, data, mode="create")
    except (AlreadyExistsError, PreconditionError) as exc:
        status = re.search(r"status code: (\d{3}[A-Za-z ]*)", str(exc))
        refusal = f"HTTP {status.group(1).strip()}" if status else type(exc).__name__
        raise FileExistsError(errno.EEXIST, f"another writer created it first ({refusal})", path) from None
