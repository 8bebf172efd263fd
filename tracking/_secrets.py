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

Credentials inside a webhook URL are secrets too. A URL "carries credentials" when it has a userinfo part
(`https://user:pass@host/...`, `https://token@host/...`) or a query (or fragment) parameter whose name is a
credential's (`CREDENTIAL_PARAMETERS`, or a name ending in one of `CREDENTIAL_SUFFIXES`: `token`, `access_token`,
`api_key`, `key`, `sig`, `code` as Azure Functions use, `X-Amz-Signature`, ...). Such a URL is sealed whole in
`mlflow.webhooks.url` (same key, same opt-out) and opened where the `Webhook` entity is built and where it is
delivered; a URL without credentials stays readable. Wherever a URL is shown (a log line, an error, a delivery
record) it goes through `redact_url`: `https://***@hooks.example.com/x?token=***`. A credential in the URL's
path (some chat services' webhook URLs) cannot be told from a path: put it in the query or use the secret.
"""

from __future__ import annotations

import logging
import os
import secrets as _random
import stat
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

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
                    f"Webhook secrets (and URLs carrying credentials) are sealed at rest, and the lake {root} is on "
                    "an object store, where no key "
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
            f"A webhook secret (or URL) in the lake {root} is sealed, but this process has no key: set "
            f"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY to the key it was sealed with (the lake's key file "
            f"{key_path(root)} is missing).",
            INVALID_STATE,
        )
    try:
        return MultiFernet([Fernet(k) for k in keys]).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise MlflowException(
            f"A webhook secret (or URL) in the lake {root} was sealed with another key than this process has "
            f"(MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, then {key_path(root)}): set the variable to the key it was "
            "sealed with.",
            INVALID_STATE,
        ) from None


# -- credentials inside webhook URLs ----------------------------------------------------------------------
CREDENTIAL_PARAMETERS = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "client_secret",
        "code",  # Azure Functions' function key
        "credential",
        "key",
        "passwd",
        "password",
        "pwd",
        "secret",
        "sig",  # Azure SAS
        "signature",
        "token",
    }
)
"""Query (and fragment) parameter names whose values are credentials, compared lower-cased with `-` as `_`."""
CREDENTIAL_SUFFIXES = ("_token", "_key", "_secret", "_password", "_signature", "_sig", "_credential")
"""A parameter whose normalised name ends in one of these is a credential too (`X-Amz-Signature`, `id_token`)."""
MASK = "***"


def _is_credential_name(name: str) -> bool:
    name = unquote(name).strip().lower().replace("-", "_")
    return name in CREDENTIAL_PARAMETERS or name.endswith(CREDENTIAL_SUFFIXES)


def _params(text: str) -> list[tuple[str, str | None]]:
    """`a=1&b&c=3` as [(a, 1), (b, None), (c, 3)], raw (not unquoted), order kept."""
    return [(p.partition("=")[0], p.partition("=")[2] if "=" in p else None) for p in text.split("&")]


def _credentials_of(url: str) -> list[str] | None:
    """The credential strings of `url` (raw and unquoted), or None if it cannot be parsed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found = []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo:
        found += [userinfo, *userinfo.split(":")]
    for text in (parts.query, parts.fragment):
        found += [v for k, v in _params(text) if v and _is_credential_name(k)]
    found += [unquote(v) for v in found]
    return sorted({v for v in found if v}, key=len, reverse=True)


def url_has_credentials(url: str | None) -> bool:
    """Whether `url` has a userinfo part or a credential-named query/fragment parameter (module docstring)."""
    if url is None:
        return False
    found = _credentials_of(url)
    return found is None or bool(found)  # an unparsable URL: assume the worst


def redact_url(url: str) -> str:
    """`url` as it may be shown: userinfo and credential parameters' values replaced by `***`.

    `https://user:p4ss@hooks.example.com/x?token=t&v=1` -> `https://***@hooks.example.com/x?token=***&v=1`;
    a URL that cannot be parsed shows as `***`. The one redaction of webhook URLs: logs, errors and delivery
    records use it (or `redact_text`, which applies it to a message).
    """
    try:
        parts = urlsplit(url)
    except (ValueError, TypeError):
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rpartition("@")[2]

    def masked(text: str) -> str:
        if not text:
            return text
        return "&".join(
            k if v is None else f"{k}={MASK if v and _is_credential_name(k) else v}" for k, v in _params(text)
        )

    return urlunsplit((parts.scheme, netloc, parts.path, masked(parts.query), masked(parts.fragment)))


def redact_text(text: str, url: str | None) -> str:
    """`text` (an error, a log line) with `url` shown as `redact_url(url)` and any of its credentials masked
    wherever else they appear (urllib3 names the request's path and query in its errors)."""
    if not url or not text:
        return text
    text = text.replace(url, redact_url(url))
    found = _credentials_of(url)
    if found is None:  # unparsable: nothing but the whole URL is known
        return text
    for value in found:
        text = text.replace(value, MASK)
    return text


def seal_url(url: str | None, root: str) -> str | None:
    """A webhook URL as stored: sealed whole when it carries credentials (unless opted out), else as given."""
    return seal(url, root) if url_has_credentials(url) else url


def open_url(stored: str, root: str) -> str:
    """The URL a stored `url` value holds (see `seal_url`)."""
    return open_(stored, root) or stored


class _UrlLogFilter(logging.Filter):
    """Masks the credentials of the webhook URLs this process sends to in urllib3's log records (its DEBUG lines
    name each request's path and query)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: frozenset[str] = frozenset()
        """Replaced, never changed in place: a record logged on another thread iterates a stable set."""

    def filter(self, record: logging.LogRecord) -> bool:
        urls = self.urls
        if urls:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a malformed record is the handler's to report, as it would be
                return True
            redacted = message
            for url in urls:
                redacted = redact_text(redacted, url)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_url_filter = _UrlLogFilter()
_LOGGERS_NAMING_URLS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "requests")


def mask_in_logs(url: str) -> None:
    """From now on, log records of the HTTP stack show `url`'s credentials masked (idempotent; a no-op for a URL
    without credentials)."""
    if not url_has_credentials(url) or url in _url_filter.urls:
        return
    with _lock:
        for name in _LOGGERS_NAMING_URLS:
            log = logging.getLogger(name)
            if _url_filter not in log.filters:
                log.addFilter(_url_filter)
        _url_filter.urls = _url_filter.urls | {url}


# -- the migration ----------------------------------------------------------------------------------------
WEBHOOKS = "mlflow.webhooks"
_migrated: set[str] = set()


def _clear_secret(value: str | None) -> bool:
    return value is not None and not is_sealed(value)


def _clear_url(value: str | None) -> bool:
    return value is not None and not is_sealed(value) and url_has_credentials(value)


SEALED_COLUMNS: dict[str, tuple[Callable[[str | None], bool], Callable[[str | None, str], str | None]]] = {
    "secret": (_clear_secret, seal),
    "url": (_clear_url, seal_url),
}
"""Columns of `mlflow.webhooks` sealed at rest: column -> (holds a value in clear?, how to seal it)."""


def _in_clear(row: dict[str, Any]) -> bool:
    return any(clear(row[col]) for col, (clear, _) in SEALED_COLUMNS.items())


def _sealed_row(row: dict[str, Any], root: str) -> dict[str, Any]:
    return {**row, **{c: to_stored(row[c], root) for c, (clear, to_stored) in SEALED_COLUMNS.items() if clear(row[c])}}


def _files_holding_clear_secrets(root: str, table: str, columns: list[str]) -> list[str]:
    """Parquet files of the table's folder (live or removed) holding a value of `columns` in clear (as
    `SEALED_COLUMNS` judges it); local lakes only."""
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
                data = pq.read_table(entry.path, columns=columns)
            except (OSError, pa.ArrowException):  # being written by another process: new files are sealed
                continue
            if any(SEALED_COLUMNS[c][0](v) for c in columns for v in data.column(c).to_pylist()):
                found.append(entry.path)
    return found


def seal_stored_secrets(tables: Any, lock: Any, *, once: bool = True) -> dict[str, int]:
    """Seal every webhook secret and credential-carrying URL stored unsealed (`SEALED_COLUMNS`), then delete the
    removed files of `mlflow.webhooks` that still hold one in clear (a VACUUM of exactly those files: no live
    version refers to them).

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
            clear = [r for r in rows if _in_clear(r)]
            sealed = len(clear)
            if not clear:
                return None
            return tables.replace(
                WEBHOOKS,
                tables.webhooks,
                [(r["webhook_id"], 0) for r in clear],
                [_sealed_row(r, root) for r in clear],
            )

        tables.write(WEBHOOKS, plan)
    vacuumed = 0
    found = _files_holding_clear_secrets(root, WEBHOOKS, list(SEALED_COLUMNS))
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
