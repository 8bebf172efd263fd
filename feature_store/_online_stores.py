"""Online stores: the specs a user passes (`SqliteOnlineStore`, `RedisOnlineStore`) and the backends behind
one `OnlineBackend` contract that hold, per feature table, the latest encoded row of each key.

What a store holds for a table: its rows, {encoded key: encoded features} (`_online_codec`), and one marker
(`StoredTable`): the Delta version the rows are, the publish that wrote them, the keys' and features' Spark
types. Every write changes rows and marker together, atomically (one SQLite transaction; one Redis
MULTI/EXEC, or a RENAME for a full replace), and every read takes rows and marker in one snapshot, so a
reader never sees rows of one publish described by another's marker.

Layout:
    SQLite: tables `fs_online_tables` (one marker row per feature table) and `fs_online_rows`
        (table_name, key, value) in one database file, in WAL mode so that readers do not wait for a publish.
    Redis: one hash per feature table, `<prefix>:<table>`, field = encoded key, value = encoded row, plus the
        field `@meta` holding the marker (keys are JSON lists, so they never start with "@"). A lookup is one
        HMGET of the marker and every key asked.

Settings from the environment (they win over the values the spec was built with, so that a model logged with
one spec can be served against another store without re-logging it):
    $LAKEHOUSE_ONLINE_SQLITE_PATH                        the SQLite file
    $LAKEHOUSE_REDIS_HOST, $LAKEHOUSE_REDIS_PORT, $LAKEHOUSE_REDIS_DB   where Redis is
    $LAKEHOUSE_REDIS_PASSWORD (the variable named by `password_env`)     Redis's password; never stored
"""

from __future__ import annotations

import abc
import contextlib
import functools
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import errors

if TYPE_CHECKING:
    import redis

SQLITE_PATH_ENV = "LAKEHOUSE_ONLINE_SQLITE_PATH"
REDIS_HOST_ENV = "LAKEHOUSE_REDIS_HOST"
REDIS_PORT_ENV = "LAKEHOUSE_REDIS_PORT"
REDIS_DB_ENV = "LAKEHOUSE_REDIS_DB"
DEFAULT_SQLITE_FILE = "_feature_store/online.sqlite"
_CHUNK = 500  # keys per SQLite IN (...) and per Redis command: well under every limit, few round trips
_META = "@meta"
_STAGING_TTL_S = 3600  # a full replace's staging hash expires if its publisher dies before the RENAME


@dataclass(frozen=True)
class StoredTable:
    """What a store records about one feature table's rows (the marker).

    `schema` is the Spark StructType (JSON) of `keys` then `features`, the order rows are encoded in;
    `table_created_at` tells a re-created table (same name, new history) from the one that was published.
    """

    version: int
    publish_id: str
    keys: tuple[str, ...]
    features: tuple[str, ...]
    schema: str
    table_created_at: str | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "publish_id": self.publish_id,
                "keys": list(self.keys),
                "features": list(self.features),
                "schema": self.schema,
                "table_created_at": self.table_created_at,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredTable:
        return _stored_table(text)

    @classmethod
    def _parse(cls, text: str | bytes) -> StoredTable:
        d = json.loads(text)
        return cls(
            d["version"], d["publish_id"], tuple(d["keys"]), tuple(d["features"]), d["schema"], d["table_created_at"]
        )


@functools.lru_cache(maxsize=256)
def _stored_table(text: str | bytes) -> StoredTable:
    # every lookup reads the marker; parsing it once per publish, not per lookup (the marker is immutable)
    return StoredTable._parse(text)


# -- specs ---------------------------------------------------------------------------------------------------
class OnlineStoreSpec(abc.ABC):
    """Where published features are served from; pass one of its subclasses."""

    @abc.abstractmethod
    def connect(self, root: str) -> OnlineBackend:
        """A backend on this store for the lake at `root`, settings from the environment applied (the module
        docstring lists them)."""


@dataclass(frozen=True)
class SqliteOnlineStore(OnlineStoreSpec):
    """An embedded online store: one SQLite file, by default `<lake root>/_feature_store/online.sqlite`.

    `$LAKEHOUSE_ONLINE_SQLITE_PATH`, when set, wins over `path` (e.g. the copy a served model reads). The
    file must be on a local file system: a lake on an object store needs `path=` (or the variable).

    Example:
        >>> publish_table(lake, meta, "customer_features", SqliteOnlineStore())
    """

    path: str | None = None

    def __post_init__(self) -> None:
        if self.path is not None and not isinstance(self.path, (str, os.PathLike)):
            raise errors.ArgumentTypeError("path", self.path, "a local file path (str) or None")

    def resolved_path(self, root: str) -> str:
        path = os.environ.get(SQLITE_PATH_ENV) or (os.fspath(self.path) if self.path is not None else None)
        if path is None:
            if "://" in root:
                raise errors.InvalidArgumentError(
                    "online_store",
                    self,
                    f"the lake {root} is not on a local file system, so the SQLite online store needs a "
                    f"local file: pass SqliteOnlineStore(path=...) or set ${SQLITE_PATH_ENV}",
                )
            path = os.path.join(root, DEFAULT_SQLITE_FILE)
        return os.path.abspath(path)

    def connect(self, root: str) -> OnlineBackend:
        return SqliteBackend(self.resolved_path(root))


@dataclass(frozen=True)
class RedisOnlineStore(OnlineStoreSpec):
    """A Redis online store. The password is read from the variable `password_env` at connection time
    (never stored); `$LAKEHOUSE_REDIS_HOST` / `_PORT` / `_DB`, when set, win over host / port / db.

    Example:
        >>> publish_table(lake, meta, "customer_features", RedisOnlineStore(host="redis.internal"))
    """

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password_env: str = "LAKEHOUSE_REDIS_PASSWORD"
    prefix: str = "fs"

    def __post_init__(self) -> None:
        for name in ("host", "password_env", "prefix"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise errors.ArgumentTypeError(name, value, "a non-empty str")
        for name in ("port", "db"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise errors.ArgumentTypeError(name, value, "a non-negative int")
        if self.port > 65535:
            raise errors.InvalidArgumentError("port", self.port, f"port={self.port} is not a TCP port (0 to 65535)")

    def resolved(self) -> tuple[str, int, int]:
        """(host, port, db) with the environment's overrides applied."""
        host = os.environ.get(REDIS_HOST_ENV) or self.host
        port, db = self.port, self.db
        for env, current in ((REDIS_PORT_ENV, "port"), (REDIS_DB_ENV, "db")):
            raw = os.environ.get(env)
            if raw:
                try:
                    value = int(raw)
                except ValueError:
                    raise errors.InvalidArgumentError(env, raw, f"${env}={raw!r} is not an integer") from None
                if current == "port":
                    port = value
                else:
                    db = value
        return host, port, db

    def connect(self, root: str) -> OnlineBackend:
        host, port, db = self.resolved()
        return RedisBackend(host, port, db, os.environ.get(self.password_env) or None, self.prefix, self.password_env)


def spec_of(description: str) -> OnlineStoreSpec:
    """The spec of the store a backend described as `description` (what publish records keep): how a served
    model finds the store its tables were published to. A Redis password is never recorded: it is read from
    $LAKEHOUSE_REDIS_PASSWORD at connection time."""
    if description.startswith("sqlite:"):
        return SqliteOnlineStore(path=description[len("sqlite:") :])
    m = re.fullmatch(r"redis://(.+):(\d+)/(\d+) \(prefix '(.*)'\)", description)
    if m is None:
        raise errors.InvalidArgumentError(
            "online_store", description, f"{description!r} is not the description of a SQLite or Redis online store"
        )
    return RedisOnlineStore(host=m[1], port=int(m[2]), db=int(m[3]), prefix=m[4])


# -- backends ------------------------------------------------------------------------------------------------
class OnlineBackend(abc.ABC):
    """One connected online store. Rows are (encoded key, encoded row) pairs of `_online_codec`.

    Rules every backend keeps: `replace` and `apply` change the rows and the marker in one atomic step;
    `apply` changes nothing and raises OnlinePublishConflictError unless the marker's publish id is still
    `expected`; `get` reads the marker and the rows in one snapshot, one batched request per <=500 keys
    (SQLite) or one request (Redis).
    """

    description: str
    _seen: dict[str, StoredTable] | None = None

    def last_marker(self, table: str) -> StoredTable | None:
        """The marker this backend last read for `table` (else read now): a lookup encodes its keys with it and
        checks it against the one its batched read returns, so a repeated lookup is one round trip."""
        seen = self._seen if self._seen is not None else {}
        self._seen = seen
        if table not in seen:
            marker = self.marker(table)
            if marker is None:
                return None
            seen[table] = marker
        return seen[table]

    def saw(self, table: str, marker: StoredTable | None) -> None:
        if self._seen is not None:
            if marker is None:
                self._seen.pop(table, None)
            else:
                self._seen[table] = marker

    @abc.abstractmethod
    def marker(self, table: str) -> StoredTable | None:
        """The table's marker, None if it was never published here."""

    @abc.abstractmethod
    def replace(self, table: str, marker: StoredTable, rows: Sequence[tuple[str, str]]) -> int:
        """Make `rows` the table's only rows; return how many keys held before are gone. Raises
        OnlinePublishConflictError, changing nothing, if the store holds a newer version of the same table
        (`supersedes`): a slow full publish never puts older rows over a newer publish's."""

    @abc.abstractmethod
    def apply(
        self,
        table: str,
        marker: StoredTable,
        upserts: Sequence[tuple[str, str]],
        deletes: Sequence[str],
        expected: str,
    ) -> None:
        """Write `upserts`, remove `deletes` (keys absent are ignored) and set `marker`, if the stored
        marker's publish id is `expected`."""

    @abc.abstractmethod
    def get(self, table: str, keys: Sequence[str]) -> tuple[StoredTable | None, list[str | None]]:
        """The marker and, per key in order, its encoded row or None."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> OnlineBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_readers = threading.local()


def reader(spec: OnlineStoreSpec, root: str) -> OnlineBackend:
    """A backend for lookups on `spec`, kept open for this thread and reused by later lookups (a connection per
    call costs more than the lookup: a SQLite open with its pragmas, a Redis client with its handshake). Keyed by
    the resolved location, so a changed environment variable opens a new one; a SQLite file replaced on disk is
    reopened. Publishes never use these: they open their own."""
    cache: dict[tuple, OnlineBackend] = getattr(_readers, "backends", None) or {}
    _readers.backends = cache
    if isinstance(spec, SqliteOnlineStore):
        path = spec.resolved_path(root)
        key: tuple = ("sqlite", path)
        held = cache.get(key)
        if held is not None and isinstance(held, SqliteBackend) and held.same_file():
            return held
    elif isinstance(spec, RedisOnlineStore):
        key = ("redis", *spec.resolved(), spec.prefix, os.environ.get(spec.password_env) or None)
        held = cache.get(key)
        if held is not None:
            return held
    else:
        return spec.connect(root)
    if held is not None:
        held.close()
    backend = cache[key] = spec.connect(root)
    return backend


def close_readers() -> None:
    """Close this thread's kept lookup backends (the next lookup opens new ones)."""
    cache: dict[tuple, OnlineBackend] = getattr(_readers, "backends", None) or {}
    for backend in cache.values():
        backend.close()
    cache.clear()


def supersedes(held: StoredTable | None, new: StoredTable) -> bool:
    """Whether the rows held are of a newer version of the same table (same history) than `new`'s."""
    return held is not None and held.table_created_at == new.table_created_at and held.version > new.version


def _chunks(items: Sequence[Any], n: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class SqliteBackend(OnlineBackend):
    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"sqlite:{path}"
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            # autocommit mode: transactions are the explicit BEGIN ... COMMIT below
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS fs_online_tables (name TEXT PRIMARY KEY, marker TEXT NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS fs_online_rows (table_name TEXT NOT NULL, key TEXT NOT NULL, "
                "value TEXT NOT NULL, PRIMARY KEY (table_name, key)) WITHOUT ROWID"
            )
            self._identity = _identity(path)
        except (sqlite3.Error, OSError) as exc:
            raise errors.OnlineStoreUnavailableError(
                self.description, str(exc), f"check that {path} is a writable local file, or set ${SQLITE_PATH_ENV}"
            ) from None

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise errors.OnlineStoreUnavailableError(self.description, str(exc), "retry the call") from None
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @staticmethod
    def _marker(db: sqlite3.Connection, table: str) -> StoredTable | None:
        row = db.execute("SELECT marker FROM fs_online_tables WHERE name = ?", (table,)).fetchone()
        return None if row is None else StoredTable.from_json(row[0])

    def _set_marker(self, db: sqlite3.Connection, table: str, marker: StoredTable) -> None:
        db.execute(
            "INSERT INTO fs_online_tables (name, marker) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET marker = excluded.marker",
            (table, marker.to_json()),
        )

    def marker(self, table: str) -> StoredTable | None:
        with self._transaction(write=False) as db:
            return self._marker(db, table)

    def replace(self, table: str, marker: StoredTable, rows: Sequence[tuple[str, str]]) -> int:
        new_keys = {k for k, _ in rows}
        with self._transaction(write=True) as db:
            if supersedes(self._marker(db, table), marker):
                raise errors.OnlinePublishConflictError(table, self.description)
            old = [k for (k,) in db.execute("SELECT key FROM fs_online_rows WHERE table_name = ?", (table,))]
            db.execute("DELETE FROM fs_online_rows WHERE table_name = ?", (table,))
            db.executemany(
                "INSERT INTO fs_online_rows (table_name, key, value) VALUES (?, ?, ?)",
                ((table, k, v) for k, v in rows),
            )
            self._set_marker(db, table, marker)
        return sum(1 for k in old if k not in new_keys)

    def apply(
        self,
        table: str,
        marker: StoredTable,
        upserts: Sequence[tuple[str, str]],
        deletes: Sequence[str],
        expected: str,
    ) -> None:
        with self._transaction(write=True) as db:
            current = self._marker(db, table)
            if current is None or current.publish_id != expected:
                raise errors.OnlinePublishConflictError(table, self.description)
            db.executemany(
                "INSERT INTO fs_online_rows (table_name, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (table_name, key) DO UPDATE SET value = excluded.value",
                ((table, k, v) for k, v in upserts),
            )
            db.executemany("DELETE FROM fs_online_rows WHERE table_name = ? AND key = ?", ((table, k) for k in deletes))
            self._set_marker(db, table, marker)

    def get(self, table: str, keys: Sequence[str]) -> tuple[StoredTable | None, list[str | None]]:
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(keys))
        with self._transaction(write=False) as db:
            marker = self._marker(db, table)
            if marker is not None:
                for part in _chunks(wanted):
                    sql = (
                        "SELECT key, value FROM fs_online_rows WHERE table_name = ? AND key IN "
                        f"({','.join('?' * len(part))})"
                    )
                    found.update(db.execute(sql, (table, *part)).fetchall())
        return marker, [found.get(k) for k in keys]

    def same_file(self) -> bool:
        """Whether the file at the path is still the one this connection opened (not deleted or replaced)."""
        return _identity(self.path) == self._identity

    def close(self) -> None:
        self._db.close()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class RedisBackend(OnlineBackend):
    def __init__(self, host: str, port: int, db: int, password: str | None, prefix: str, password_env: str) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.description = f"redis://{host}:{port}/{db} (prefix {prefix!r})"
        self.prefix = prefix
        self._password_env = password_env
        # Two quick retries ride out a dropped connection; redis-py's default (3, up to 1 s apart) makes a
        # server that is down take ~4 s to report, which a model serving requests should not wait.
        self._client: redis.Redis = redis.Redis(
            host=host,
            port=port,
            db=db,
            password=password,
            socket_connect_timeout=5,
            socket_timeout=60,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        )
        self._call(self._client.ping)

    def _call(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` with connection and authentication failures as OnlineStoreUnavailableError."""
        import redis

        try:
            return fn(*args)
        except redis.AuthenticationError as exc:
            raise errors.OnlineStoreUnavailableError(
                self.description, str(exc), f"set ${self._password_env} to the server's password"
            ) from None
        except redis.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise errors.OnlineStoreUnavailableError(
                    self.description, str(exc), f"set ${self._password_env} to the server's password"
                ) from None
            raise
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise errors.OnlineStoreUnavailableError(
                self.description,
                str(exc),
                f"start the server, or point the spec (or ${REDIS_HOST_ENV} / ${REDIS_PORT_ENV}) at a running one",
            ) from None

    def _key(self, table: str) -> str:
        return f"{self.prefix}:{table}"

    def marker(self, table: str) -> StoredTable | None:
        raw = self._call(self._client.hget, self._key(table), _META)
        return None if raw is None else StoredTable.from_json(raw)

    def replace(self, table: str, marker: StoredTable, rows: Sequence[tuple[str, str]]) -> int:
        import redis

        live = self._key(table)
        staging = f"{live}:staging:{uuid.uuid4().hex}"
        new_keys = {k for k, _ in rows}

        def run() -> int:
            pipe = self._client.pipeline(transaction=False)
            pipe.hset(staging, _META, marker.to_json())
            pipe.expire(staging, _STAGING_TTL_S)
            for part in _chunks(rows, 5000):
                pipe.hset(staging, mapping=dict(part))
            pipe.execute()
            with self._client.pipeline(transaction=True) as swap:
                swap.watch(live)  # the EXEC fails if another publish changed the hash since this read
                raw = swap.hget(live, _META)
                if supersedes(None if raw is None else StoredTable.from_json(raw), marker):
                    raise errors.OnlinePublishConflictError(table, self.description)
                old = {k.decode() if isinstance(k, bytes) else str(k) for k in swap.hkeys(live)}
                swap.multi()  # MULTI/EXEC: readers see the old hash or the new one
                swap.rename(staging, live)
                swap.persist(live)
                swap.execute()
            return len(old - new_keys - {_META})

        try:
            return int(self._call(run))
        except redis.WatchError:
            raise errors.OnlinePublishConflictError(table, self.description) from None
        finally:
            with contextlib.suppress(redis.RedisError):  # gone after the RENAME; a failure's expires anyway
                self._client.delete(staging)

    def apply(
        self,
        table: str,
        marker: StoredTable,
        upserts: Sequence[tuple[str, str]],
        deletes: Sequence[str],
        expected: str,
    ) -> None:
        import redis

        live = self._key(table)

        def run() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(live)  # the EXEC fails if another publish changed the hash since this read
                raw = pipe.hget(live, _META)
                current = None if raw is None else StoredTable.from_json(raw)
                if current is None or current.publish_id != expected:
                    raise errors.OnlinePublishConflictError(table, self.description)
                pipe.multi()
                for part in _chunks(upserts, 5000):
                    pipe.hset(live, mapping=dict(part))
                for dpart in _chunks(deletes, 5000):
                    pipe.hdel(live, *dpart)
                pipe.hset(live, _META, marker.to_json())
                pipe.execute()

        try:
            self._call(run)
        except redis.WatchError:
            raise errors.OnlinePublishConflictError(table, self.description) from None

    def get(self, table: str, keys: Sequence[str]) -> tuple[StoredTable | None, list[str | None]]:
        raw = self._call(self._client.hmget, self._key(table), [_META, *keys])
        if raw[0] is None:
            return None, [None] * len(keys)
        return StoredTable.from_json(raw[0]), [None if v is None else v.decode() for v in raw[1:]]

    def close(self) -> None:
        self._client.close()
