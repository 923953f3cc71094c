"""The bridge's database: one connection, transactions, the schema and its migrations, and the few
places where SQLite (the single-machine default) and PostgreSQL (shared by replicas) differ.

The repositories (``queue``, ``runs``, ``verifiers``, ``callbacks``) write their SQL once, with ``?``
placeholders and only syntax both engines share (``INSERT ... ON CONFLICT``, ``RETURNING``, partial
indexes, ``CASE`` instead of the engines' different two-argument ``max``/``min``). What differs is
here:

* column types (identity keys, ``REAL`` vs ``DOUBLE PRECISION``, ``BLOB`` vs ``BYTEA``);
* how a transaction starts (SQLite ``BEGIN IMMEDIATE``: one writer; PostgreSQL: row locks);
* :attr:`Database.skip_locked`, appended to the SELECTs that claim rows, so replicas that claim at
  the same moment take disjoint rows (``FOR UPDATE SKIP LOCKED``);
* durability: SQLite in WAL mode with ``synchronous=FULL``; PostgreSQL's ``COMMIT`` (with the server's
  default ``synchronous_commit=on``). Either way a committed transaction is durable, so "committed
  before the 200" means "durable before the 200".
"""

from __future__ import annotations

import abc
import contextlib
import functools
import os
import re
import sqlite3
import threading
import typing as t
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from webhook_bridge.store.records import Row

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

SCHEMA_VERSION = 2
DEFAULT_PG_SCHEMA = "webhook_bridge"
PG_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SCHEMA_LOCK = 0x46425753  # pg_advisory_xact_lock key: one replica creates or migrates the schema at a time
POSTGRES_SCHEMES = ("postgresql", "postgres")
T = t.TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id               {id},
    account_id       TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    object_id        TEXT    NOT NULL,
    business_id      TEXT,
    stream           TEXT,
    fingerprint      TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    received_ts      {real}  NOT NULL,
    last_received_ts {real}  NOT NULL,
    deliveries       INTEGER NOT NULL DEFAULT 1,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  {real}  NOT NULL,
    last_error       TEXT,
    run_id           BIGINT,
    done_ts          {real}
);
CREATE UNIQUE INDEX IF NOT EXISTS events_waiting_dedupe
    ON events (account_id, name, object_id, fingerprint) WHERE status = 'pending' AND attempts = 0;
CREATE INDEX IF NOT EXISTS events_due ON events (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS events_account ON events (account_id, status, attempts);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id);
CREATE TABLE IF NOT EXISTS verifiers (
    id              {id},
    account_id      TEXT    NOT NULL,
    callback_id     TEXT    NOT NULL,
    verifier_hash   TEXT    NOT NULL,
    verifier_enc    {blob}  NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {real}  NOT NULL,
    last_error      TEXT,
    created_ts      {real}  NOT NULL,
    verified_ts     {real},
    UNIQUE (account_id, callback_id, verifier_hash)
);
CREATE TABLE IF NOT EXISTS runs (
    id           {id},
    kind         TEXT    NOT NULL,
    account_id   TEXT,
    streams      TEXT,
    record_count INTEGER NOT NULL DEFAULT 0,
    event_count  INTEGER NOT NULL DEFAULT 0,
    started_ts   {real}  NOT NULL,
    finished_ts  {real},
    status       TEXT    NOT NULL,
    exit_code    INTEGER,
    error        TEXT,
    pid          INTEGER,
    log_path     TEXT,
    forced       INTEGER NOT NULL DEFAULT 0,
    holder       INTEGER
);
CREATE INDEX IF NOT EXISTS runs_kind ON runs (kind, account_id, id);
CREATE TABLE IF NOT EXISTS accounts (
    account_id    TEXT PRIMARY KEY,
    registered_ts {real} NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    account_id  TEXT    NOT NULL,
    callback_id TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    uri         TEXT    NOT NULL,
    created_ts  {real}  NOT NULL,
    PRIMARY KEY (account_id, callback_id)
)
"""

#: schema version -> statements that bring a database of the version before it there
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # the process (database session) that started a run, so a replica recovers only dead ones' runs
    2: ("ALTER TABLE runs ADD COLUMN holder INTEGER",),
}


class StoreError(Exception):
    """The queue database cannot be opened or written."""


def first_line(exc: BaseException) -> str:
    """A driver error as one line (PostgreSQL's carry DETAIL/HINT lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Cursor(t.Protocol):
    """What both drivers' cursors give back."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> t.Any: ...

    def fetchall(self) -> list[t.Any]: ...


def is_database_url(location: str | os.PathLike[str]) -> bool:
    """``postgresql://...`` (or ``postgres://``) rather than a SQLite file path."""
    return isinstance(location, str) and urlsplit(location).scheme.lower() in POSTGRES_SCHEMES


def open_database(location: str | os.PathLike[str]) -> Database:
    """SQLite for a path, PostgreSQL for a ``postgresql://`` URL; created and migrated if needed.

    Raises:
        StoreError: one line (a URL is shown without its password).
    """
    if is_database_url(location):
        return PostgresDatabase(str(location))
    return SqliteDatabase(Path(location))


class Database(abc.ABC):
    """One connection shared by the threads of a process (a lock serialises them)."""

    dialect: t.ClassVar[str]
    #: appended to a SELECT that claims rows: replicas claiming at the same moment take disjoint rows
    skip_locked: t.ClassVar[str] = ""
    #: column types for SCHEMA
    types: t.ClassVar[dict[str, str]]

    def __init__(self, location: str, path: Path | None) -> None:
        self.location = location  # for messages: a path, or the URL without its password
        self.path = path
        self.lock = threading.RLock()
        #: the driver's exceptions (the callers that answer HTTP turn them into StoreError)
        self.errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        #: a transaction that lost a race to another writer and may simply run again (PostgreSQL: a
        #: unique-index conflict with a concurrent insert, a deadlock); SQLite has one writer at a time
        self.lost_race_errors: tuple[type[Exception], ...] = ()

    # -- what each engine provides ------------------------------------------------------------
    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[object]) -> Cursor: ...

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None: ...

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[None]: ...

    @abc.abstractmethod
    def _serialize_schema_changes(self) -> None:
        """Inside the schema transaction: keep other processes from creating the schema at once."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def reset_hint(self) -> str:
        """How a user starts over with an empty database (for the wrong-key message)."""

    # -- queries ------------------------------------------------------------------------------
    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute; the number of rows changed."""
        with self.lock:
            return self._execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        with self.lock:
            row: Row | None = self._execute(sql, params).fetchone()
            return row

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self.lock:
            return list(self._execute(sql, params).fetchall())

    def value(self, sql: str, params: Sequence[object] = ()) -> t.Any:
        """The first column of the first row (``None``: no row)."""
        row = self.one(sql, params)
        return None if row is None else next(iter(row.values()))

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.lock:
            self._executemany(sql, rows)

    @contextlib.contextmanager
    def tx(self) -> Iterator[Database]:
        """One transaction (rolled back on any exception); the connection is this thread's meanwhile."""
        with self.lock, self._transaction():
            yield self

    def retry_lost_races(self, work: t.Callable[[], T], *, attempts: int = 3) -> T:
        """``work()`` (one transaction), run again when it lost a race to a concurrent writer."""
        for attempt in range(1, attempts + 1):
            try:
                return work()
            except self.lost_race_errors:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def ping(self) -> None:
        """Raise if the database is unusable (health check)."""
        self.all("SELECT 1 AS ok FROM meta LIMIT 1")

    # -- schema -------------------------------------------------------------------------------
    def _create_schema(self) -> None:
        """Create the tables (new database) or migrate them to :data:`SCHEMA_VERSION`."""
        with self.tx():
            self._serialize_schema_changes()
            for statement in SCHEMA.format(**self.types).split(";"):
                self.run(statement)
            self.run(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            version = int(self.value("SELECT value FROM meta WHERE key = 'schema_version'"))
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the queue database {self.location} has schema version {version}, written by a newer "
                    f"webhook-bridge (this one knows {SCHEMA_VERSION}); upgrade webhook-bridge"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    self.run(statement)
            self.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))


# ================================================================================================
# SQLite


def _dict_row(cursor: sqlite3.Cursor, row: tuple[t.Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def _create_private_file(path: Path) -> None:
    """Create an empty 0600 file (SQLite then initialises it) unless it exists; never race a 0644 window."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SqliteDatabase(Database):
    """A file under the data directory, WAL mode, ``synchronous=FULL``, one writer at a time."""

    dialect = "sqlite"
    types: t.ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "real": "REAL",
        "blob": "BLOB",
    }

    def __init__(self, path: Path) -> None:
        from freshbooks_auth.token_store import make_private_dirs  # noqa: PLC0415  (SQLite only)

        super().__init__(str(path), path)
        try:
            make_private_dirs(path.parent)
            _create_private_file(path)  # SQLite gives its -wal and -shm files the same mode
        except OSError as exc:
            raise StoreError(f"cannot create the queue database {path}: {exc.strerror or exc}") from None
        try:
            self.conn = sqlite3.connect(
                str(path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the queue database {path}: {exc}") from None
        try:
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: SQLite refused WAL mode (got {mode})")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.row_factory = _dict_row
            self._create_schema()
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open the queue database {path}: {exc}") from None
        except StoreError:
            self.close()
            raise

    def _execute(self, sql: str, params: Sequence[object]) -> Cursor:
        return self.conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _serialize_schema_changes(self) -> None:
        """``BEGIN IMMEDIATE`` already holds the only write lock."""

    def pragma(self, name: str) -> object:
        with self.lock:
            return next(iter(self.conn.execute(f"PRAGMA {name}").fetchone().values()))

    def close(self) -> None:
        with self.lock, contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def reset_hint(self) -> str:
        return "move the file aside and run webhook-bridge register again"


# ================================================================================================
# PostgreSQL


def split_database_url(url: str) -> tuple[str, str]:
    """``postgresql://...?schema=NAME&sslmode=...`` -> (the URL libpq takes, the schema name).

    Raises:
        StoreError: the schema name is not a plain lower-case identifier.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = DEFAULT_PG_SCHEMA
    kept: list[tuple[str, str]] = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not PG_SCHEMA_RE.fullmatch(schema):
        raise StoreError(
            f"WEBHOOK_BRIDGE_DATABASE_URL has schema={schema!r}: use lower-case letters, digits and _"
        )
    return parts._replace(query=urlencode(kept)).geturl(), schema


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """The repositories' ``?`` placeholders in psycopg's style."""
    return sql.replace("?", "%s")


class PostgresDatabase(Database):
    """A schema (default ``webhook_bridge``) in a PostgreSQL database that every replica shares."""

    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    types: t.ClassVar[dict[str, str]] = {
        "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "blob": "BYTEA",
    }

    def __init__(self, url: str) -> None:
        from freshbooks_auth.store_url import redact_url  # noqa: PLC0415

        super().__init__(redact_url(url), None)
        try:
            import psycopg  # noqa: PLC0415  (the optional `postgres` extra)
            from psycopg.rows import dict_row  # noqa: PLC0415
        except ImportError:
            raise StoreError(
                "WEBHOOK_BRIDGE_DATABASE_URL selects PostgreSQL, which needs the psycopg package: "
                "pip install 'freshbooks-webhook-bridge[postgres]'"
            ) from None
        self.errors = (psycopg.Error,)
        self.lost_race_errors = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected)
        conninfo, self.schema = split_database_url(url)
        try:
            self.conn: psycopg.Connection[Row] = psycopg.connect(
                conninfo,
                autocommit=True,
                row_factory=dict_row,
                application_name="webhook-bridge",
                connect_timeout=15,
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot open the queue database {self.location}: {first_line(exc)}") from None
        try:
            # A replica whose host vanishes (no FIN) loses its session, and so its locks, within a
            # minute instead of the kernel's two hours.
            self.conn.execute("SET tcp_keepalives_idle = 30")
            self.conn.execute("SET tcp_keepalives_interval = 10")
            self.conn.execute("SET tcp_keepalives_count = 3")
            # a replica stopped inside a transaction (SIGSTOP, a hung thread) must not hold row locks
            # that deliveries of the same notification wait on: its session ends, its locks go
            self.conn.execute("SET idle_in_transaction_session_timeout = '60s'")
            self.conn.execute(f"SET search_path TO {self.schema}")  # checked: a plain identifier
            self._create_schema()
        except psycopg.Error as exc:
            self.close()
            raise StoreError(f"cannot open the queue database {self.location}: {first_line(exc)}") from None
        except StoreError:
            self.close()
            raise

    def _execute(self, sql: str, params: Sequence[object]) -> Cursor:
        return self.conn.execute(_pg_sql(sql), params or None)

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(_pg_sql(sql), rows)

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._pg_transaction()

    @contextlib.contextmanager
    def _pg_transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def _serialize_schema_changes(self) -> None:
        self.run("SELECT pg_advisory_xact_lock(?::int8)", (SCHEMA_LOCK,))
        self.run(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        # the ids of the database sessions that hold runs (see account_locks.py)
        self.run("CREATE SEQUENCE IF NOT EXISTS run_holders AS integer CYCLE")

    def close(self) -> None:
        with self.lock, contextlib.suppress(Exception):
            self.conn.close()

    def reset_hint(self) -> str:
        return f"drop the schema {self.schema} and run webhook-bridge register again"
