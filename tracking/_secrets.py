"""Webhook secrets at rest: sealed (Fernet) by default, with one key that every process of a lake uses.

The key, in order:

1. `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY` (MLflow's variable: a Fernet key, `Fernet.generate_key()`), when set;
2. otherwise the lake's key file `<lake>/.lakehouse/webhook-secret.key`, which the first process that seals a
   secret creates atomically: the key is written to a private temporary file (mode 0600, in a 0700 folder) and
   published by a hard link, which fails if the file exists, so of processes racing to create it one key wins
   and every process reads that one. A key file that others may read (any group/other permission bit) is
   refused: `chmod 600` it. Object-store lakes have no such file: set the variable.

Opting out is explicit: `LAKEHOUSE_WEBHOOK_SECRETS=clear` stores new secrets as given (MLflow's SQL store has no
opt-out). Opening tries the variable's key, then the key file's, so a lake sealed under its file keeps working once
the variable is set; sealed secrets stay readable after opting out.

Sealed values are `fernet:<token>`. Nothing here puts a secret into a message, a log line or a repr.
"""

from __future__ import annotations

import os
import secrets as _random
import stat
import threading
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from mlflow.environment_variables import MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_STATE

from lakehouse import is_object_store, settings

PREFIX = "fernet:"
KEY_DIR = ".lakehouse"
KEY_FILE = "webhook-secret.key"

_file_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def key_path(root: str) -> str:
    return os.path.join(root, KEY_DIR, KEY_FILE)


def opted_out() -> bool:
    """`LAKEHOUSE_WEBHOOK_SECRETS=clear`: store webhook secrets as given (the documented opt-out)."""
    return settings().webhook_secrets == "clear"


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)


def _env_key() -> bytes | None:
    raw = (MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY.get() or "").strip()
    if not raw:
        return None
    try:
        Fernet(raw.encode())
    except (ValueError, TypeError):
        raise MlflowException.invalid_parameter_value(
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes, 44 "
            "characters): generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`, or set LAKEHOUSE_WEBHOOK_SECRETS=clear to store webhook secrets "
            "unsealed."
        ) from None
    return raw.encode()


def _check_private(path: str) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise MlflowException(
            f"The webhook secret key file {path} has permissions {oct(mode)}: others may read it. Run "
            f"`chmod 600 {path}` (owner-only), or set MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY.",
            INVALID_STATE,
        )


def _read_key(path: str) -> bytes:
    _check_private(path)
    with open(path, "rb") as fh:
        key = fh.read().strip()
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise MlflowException(
            f"The webhook secret key file {path} does not hold a Fernet key (it is damaged). Restore it from a "
            "backup; without it the lake's sealed webhook secrets cannot be opened.",
            INVALID_STATE,
        ) from None
    return key


def _file_key(root: str, *, create: bool) -> bytes | None:
    """The lake's key file's key; with `create`, the first caller of any process creates it (one key wins)."""
    with _lock:
        if root in _file_keys:
            return _file_keys[root]
        if is_object_store(root):
            if create:
                raise MlflowException.invalid_parameter_value(
                    f"Webhook secrets are sealed at rest, and the lake {root} is on an object store, where no key "
                    "file is created: set MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY to a Fernet key (the same in every "
                    "process of the lake), or set LAKEHOUSE_WEBHOOK_SECRETS=clear to store secrets unsealed."
                )
            return None
        path = key_path(root)
        if not os.path.exists(path):
            if not create:
                return None
            folder = os.path.dirname(path)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            tmp = os.path.join(folder, f".{KEY_FILE}.{os.getpid()}.{_random.token_hex(6)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, Fernet.generate_key())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # put-if-absent: of racing processes, exactly one publishes its key
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        key = _read_key(path)
        _file_keys[root] = key
        return key


def seal(secret: str | None, root: str) -> str | None:
    """`fernet:<token>` of `secret` under the lake's key (see the module docstring); as given when opted out."""
    if secret is None or opted_out():
        return secret
    key = _env_key() or _file_key(root, create=True) or b""  # create=True returns a key or raises
    return PREFIX + Fernet(key).encrypt(secret.encode()).decode()


def open_(stored: str | None, root: str) -> str | None:
    """The secret a stored value holds (a value without the prefix was stored unsealed: as is)."""
    if stored is None or not is_sealed(stored):
        return stored
    keys = [k for k in (_env_key(), _file_key(root, create=False)) if k is not None]
    if not keys:
        raise MlflowException(
            f"A webhook secret in the lake {root} is sealed, but this process has no key: set "
            f"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY to the key it was sealed with (the lake's key file "
            f"{key_path(root)} is missing).",
            INVALID_STATE,
        )
    try:
        return MultiFernet([Fernet(k) for k in keys]).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise MlflowException(
            f"A webhook secret in the lake {root} was sealed with another key than this process has "
            f"(MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, then {key_path(root)}): set the variable to the key it was "
            "sealed with.",
            INVALID_STATE,
        ) from None


# -- the migration ----------------------------------------------------------------------------------------
WEBHOOKS = "mlflow.webhooks"
_migrated: set[str] = set()


def _files_holding_clear_secrets(root: str, table: str, column: str) -> list[str]:
    """Parquet files of the table's folder (live or removed) holding an unsealed secret; local lakes only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lakehouse import table_path

    folder = table_path(root, table)
    if is_object_store(root) or not os.path.isdir(folder):
        return []
    found = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".parquet") and entry.is_file():
            try:
                values = pq.read_table(entry.path, columns=[column]).column(column).to_pylist()
            except (OSError, pa.ArrowException):  # being written by another process: new files are sealed
                continue
            if any(v is not None and not is_sealed(v) for v in values):
                found.append(entry.path)
    return found


def seal_stored_secrets(tables: Any, lock: Any, *, once: bool = True) -> dict[str, int]:
    """Seal every webhook secret stored unsealed, then delete the removed files of `mlflow.webhooks` that still
    hold one in clear (a VACUUM of exactly those files: no live version refers to them).

    Runs once per lake and process (unless `once=False`) when its webhooks or its dispatcher are first used;
    idempotent and safe beside other processes doing the same. Does nothing when opted out. Versions of
    `mlflow.webhooks` that referred to the deleted files can no longer be read by time travel, which is the
    point. On an object store the rows are sealed but removed files are left to `lakehouse-jobs maintain`'s
    VACUUM. Returns {"sealed": rows rewritten, "vacuumed": files deleted}.
    """
    root = tables.root
    if (once and root in _migrated) or opted_out():
        return {"sealed": 0, "vacuumed": 0}
    from lakehouse import Change

    sealed = 0
    with lock:
        tables.refresh([WEBHOOKS])

        def plan() -> Change | None:
            nonlocal sealed
            rows = [hits[0].row for hits in tables.webhooks.groups.values()]
            clear = [r for r in rows if r["secret"] is not None and not is_sealed(r["secret"])]
            sealed = len(clear)
            if not clear:
                return None
            return tables.replace(
                WEBHOOKS,
                tables.webhooks,
                [(r["webhook_id"], 0) for r in clear],
                [{**r, "secret": seal(r["secret"], root)} for r in clear],
            )

        tables.write(WEBHOOKS, plan)
    vacuumed = 0
    found = _files_holding_clear_secrets(root, WEBHOOKS, "secret")
    if found:
        with lock:
            tables.refresh([WEBHOOKS])
            live = {os.path.basename(f) for f in tables.tables[WEBHOOKS].files}
        left = [p for p in found if os.path.basename(p) in live]
        if left:
            raise MlflowException(
                f"Sealing the webhook secrets of {root}: live file(s) of {WEBHOOKS} still hold a secret in clear "
                f"({', '.join(os.path.basename(p) for p in left)}), written by a process that stores them unsealed "
                f"({KEY_VAR_HINT}); upgrade or restart it, then open the registry again.",
                INVALID_STATE,
            )
        for path in found:
            try:
                os.remove(path)
                vacuumed += 1
            except FileNotFoundError:
                pass  # another process removed it
    _migrated.add(root)
    return {"sealed": sealed, "vacuumed": vacuumed}


KEY_VAR_HINT = "LAKEHOUSE_WEBHOOK_SECRETS=clear or an older lakehouse-ml"
