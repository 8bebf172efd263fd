"""Table addressing: a dotted name under the lakehouse root, or an explicit path / URI."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import InvalidTableNameError

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME = re.compile(rf"^{_IDENT}(\.{_IDENT})*$")
MAX_PART_BYTES = 255
"""Each part of a dotted name is a folder under the root: the longest file name local file systems take."""


@dataclass(frozen=True)
class TableRef:
    name: str  # as shown to users: the dotted name, or the path for a table addressed by path
    path: str  # where the engines find it: an absolute local path or a URI


def is_uri(text: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def normalise_root(root: str | os.PathLike[str]) -> str:
    text = os.fspath(root)
    if text.startswith("file://"):
        text = text[len("file://") :] or "/"
    if is_uri(text):
        return text.rstrip("/")
    return os.path.abspath(os.path.expanduser(text))


def resolve(root: str, name: str | os.PathLike[str]) -> TableRef:
    """Map `"features.customers"` to `<root>/features/customers`; paths and URIs are taken as they are."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise InvalidTableNameError(name, f"expected a str, got {type(name).__name__}")
    if not name.strip():
        raise InvalidTableNameError(name, "the name is empty")
    if is_uri(name) or name.startswith(("/", "~")):
        path = normalise_root(name)
        return TableRef(name=path, path=path)
    if name.startswith(".") or os.sep in name or "/" in name:
        # Resolved against the process's working directory, a relative path would put the table outside the
        # lake and mean another table in a process started elsewhere.
        raise InvalidTableNameError(
            name, "a relative path is resolved against the working directory, not the lake root"
        )
    if not _NAME.match(name):
        raise InvalidTableNameError(name, "each dot-separated part must start with a letter or underscore")
    parts = name.split(".")
    long = [p for p in parts if len(p.encode()) > MAX_PART_BYTES]
    if long:
        raise InvalidTableNameError(
            name,
            f"a part is {len(long[0].encode())} bytes long; each part is a folder name, at most {MAX_PART_BYTES} bytes",
        )
    if is_uri(root):
        return TableRef(name=name, path="/".join([root, *parts]))
    path = os.path.join(root, *parts)
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        # A symbolic link inside the lake would let a name read, write or drop a folder outside it.
        raise InvalidTableNameError(
            name, f"{path} is a symbolic link to {real}, outside the lake root {root}; address such a table by its path"
        )
    return TableRef(name=name, path=path)


def table_path(root: str | os.PathLike[str], name: str) -> str:
    """Where table `name` of the lake at `root` lives: `<root>/<part>/<part>`, a local path or a URI.

    >>> table_path("s3://bucket/lake", "mlflow.runs")
    's3://bucket/lake/mlflow/runs'
    """
    return resolve(normalise_root(root), name).path


def name_for(root: str, path: str) -> str:
    """The dotted name of a table found at `path` under `root` (the path itself when it has no valid name)."""
    rel = path[len(root) :].strip("/").replace(os.sep, "/") if path.startswith(root) else path
    dotted = rel.replace("/", ".")
    return dotted if _NAME.match(dotted) else path


def find_tables(root: str | os.PathLike[str], *, include_private: bool = False) -> list[str]:
    """The dotted names of the Delta tables under `root` (folders holding a `_delta_log`), sorted; [] when `root`
    does not exist. Folders starting with `.` are skipped, and with `_` too unless `include_private` (e.g. the
    feature store's `_feature_store`). Reads only folder listings: no Spark, no log.

    >>> find_tables("/data/lake")
    ['features.customers', 'mlflow.experiments', ...]
    """
    import pyarrow.fs as pafs

    from ._storage import arrow_filesystem  # pyarrow's file systems: imported only when a listing is asked for

    base_root = normalise_root(root)
    fs, base = arrow_filesystem(base_root)
    found: list[str] = []
    pending = [base]
    while pending:
        folder = pending.pop()
        try:
            entries = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except OSError:
            continue
        subdirs = [e for e in entries if e.type == pafs.FileType.Directory]
        if any(e.base_name == "_delta_log" for e in subdirs):
            found.append(name_for(base, folder))
            continue  # a table's own folders are data, not tables
        hidden = (".", "_") if not include_private or folder != base else (".",)
        pending.extend(e.path for e in subdirs if not e.base_name.startswith(hidden) and e.base_name != "_delta_log")
    return sorted(n for n in found if n != base)
