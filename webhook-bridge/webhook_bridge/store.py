"""The durable queue: SQLite in WAL mode with ``synchronous=FULL``.

Tables:

``events``
    One row per distinct pending notification. ``enqueue`` is idempotent: a delivery whose
    (account_id, name, object_id, fingerprint) equals a row that is still *waiting for its first run*
    is absorbed into that row (``deliveries`` + 1). Once a run has picked a row up, the same
    notification makes a new row, because the run may already have fetched the record before the
    change that caused the new delivery. Life cycle::

        pending --claim--> running --ack--> done
           ^                  |
           +------fail--------+  (attempts + 1, next_attempt_at = now + backoff)
                              +--> parked   (after max_attempts; kept visible, never blocks others)

``verifiers``
    Callback signing secrets, Fernet-encrypted with the tap's token key. ``pending`` until FreshBooks
    accepted the verify PUT, then ``verified``; only verified ones authenticate events (a forged
    verification delivery can therefore never plant a key).

``runs``
    Every Meltano run the bridge started: kind (webhook/poll), account, outcome, exit code.

``callbacks``
    Callbacks created by ``register`` (so a verification delivery can be tied to its account).

Every write is one transaction; with ``synchronous=FULL`` a committed transaction survives power loss,
so "committed before the 200" means "durable before the 200".
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import hmac
import json
import os
import random
import sqlite3
import threading
import time
import typing as t
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from tap_freshbooks.token_store import make_private_dirs
from webhook_bridge.freshbooks import STREAM_SELECT, target_for

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from webhook_bridge.signature import EventDelivery

SCHEMA_VERSION = 1
MAX_PENDING_VERIFIERS_PER_ACCOUNT = 200
MAX_ERROR_CHARS = 2000
KEY_CHECK = "key_check"  # meta row: a Fernet token of this text, proves the key on open

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    object_id        TEXT    NOT NULL,
    business_id      TEXT,
    stream           TEXT,
    fingerprint      TEXT    NOT NULL,
    received_at      TEXT    NOT NULL,
    received_ts      REAL    NOT NULL,
    last_received_ts REAL    NOT NULL,
    deliveries       INTEGER NOT NULL DEFAULT 1,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL    NOT NULL,
    last_error       TEXT,
    run_id           INTEGER,
    done_ts          REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_waiting_dedupe
    ON events (account_id, name, object_id, fingerprint) WHERE status = 'pending' AND attempts = 0;
CREATE INDEX IF NOT EXISTS events_due ON events (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS events_account ON events (account_id, status, attempts);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id);
CREATE TABLE IF NOT EXISTS verifiers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT    NOT NULL,
    callback_id     TEXT    NOT NULL,
    verifier_hash   TEXT    NOT NULL,
    verifier_enc    BLOB    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL    NOT NULL,
    last_error      TEXT,
    created_ts      REAL    NOT NULL,
    verified_ts     REAL,
    UNIQUE (account_id, callback_id, verifier_hash)
);
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    account_id   TEXT,
    streams      TEXT,
    record_count INTEGER NOT NULL DEFAULT 0,
    event_count  INTEGER NOT NULL DEFAULT 0,
    started_ts   REAL    NOT NULL,
    finished_ts  REAL,
    status       TEXT    NOT NULL,
    exit_code    INTEGER,
    error        TEXT,
    pid          INTEGER,
    log_path     TEXT,
    forced       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_kind ON runs (kind, account_id, id);
CREATE TABLE IF NOT EXISTS accounts (
    account_id    TEXT PRIMARY KEY,
    registered_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
    account_id  TEXT    NOT NULL,
    callback_id TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    uri         TEXT    NOT NULL,
    created_ts  REAL    NOT NULL,
    PRIMARY KEY (account_id, callback_id)
);
"""


class StoreError(Exception):
    """The queue database cannot be opened or written."""


def _create_private_file(path: Path) -> None:
    """Create an empty 0600 file (SQLite then initialises it) unless it exists; never race a 0644 window."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def utc_iso(ts: float) -> str:
    """Unix seconds -> RFC 3339 UTC with milliseconds (``2026-11-25T15:00:00.123Z``)."""
    moment = datetime.datetime.fromtimestamp(ts, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclasses.dataclass(frozen=True)
class EnqueueResult:
    """What happened to one delivery."""

    event_id: int | None
    status: str  # queued | duplicate | ignored


@dataclasses.dataclass(frozen=True)
class QueuedEvent:
    """A row of ``events``."""

    id: int
    account_id: str
    name: str
    object_id: str
    stream: str | None
    received_at: str
    received_ts: float
    attempts: int
    deliveries: int
    status: str
    last_error: str | None


@dataclasses.dataclass(frozen=True)
class Batch:
    """Events claimed for one run: one account, one or more streams, deduplicated record ids."""

    run_id: int
    account_id: str
    events: tuple[QueuedEvent, ...]
    attempt_level: int

    @property
    def record_ids(self) -> dict[str, list[int]]:
        """``{stream: [id, ...]}`` for ``TAP_FRESHBOOKS_RECORD_IDS`` (sorted, unique)."""
        out: dict[str, set[int]] = {}
        for event in self.events:
            if event.stream:
                out.setdefault(event.stream, set()).add(int(event.object_id))
        return {stream: sorted(ids) for stream, ids in sorted(out.items())}

    @property
    def event_received_at(self) -> dict[str, dict[str, str]]:
        """``{stream: {id: received_at}}``: the earliest pending receipt per record."""
        earliest: dict[tuple[str, str], QueuedEvent] = {}
        for event in self.events:
            if not event.stream:
                continue
            key = (event.stream, str(int(event.object_id)))
            current = earliest.get(key)
            if current is None or event.received_ts < current.received_ts:
                earliest[key] = event
        out: dict[str, dict[str, str]] = {}
        for (stream, object_id), event in sorted(earliest.items()):
            out.setdefault(stream, {})[object_id] = event.received_at
        return out

    @property
    def select(self) -> list[str]:
        """Streams to select (each record stream plus its child streams)."""
        out: list[str] = []
        for stream in self.record_ids:
            for name in STREAM_SELECT.get(stream, (stream,)):
                if name not in out:
                    out.append(name)
        return out

    @property
    def record_count(self) -> int:
        return sum(len(ids) for ids in self.record_ids.values())


@dataclasses.dataclass(frozen=True)
class StoredVerifier:
    """A decrypted verifier row."""

    id: int
    account_id: str
    callback_id: str
    verifier: str
    status: str
    attempts: int


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``."""

    id: int
    kind: str
    account_id: str | None
    streams: list[str]
    record_count: int
    event_count: int
    started_ts: float
    finished_ts: float | None
    status: str
    exit_code: int | None
    error: str | None
    pid: int | None
    log_path: str | None
    forced: bool


def backoff_seconds(attempts: int, base: float, maximum: float, *, jitter: float = 0.2) -> float:
    """Exponential backoff after ``attempts`` failures: base, 2*base, 4*base ... capped, +-jitter."""
    delay = min(maximum, base * (2 ** max(0, attempts - 1)))
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, delay)


def batch_limit(max_batch: int, attempts: int) -> int:
    """How many records a run at this retry level may carry: 1/4 per failure, down to 1.

    Fresh events travel together; each failure shrinks the group, so a poison record ends up
    alone after a few retries while the healthy records that shared its first run get through.
    """
    return max(1, max_batch >> (2 * max(0, attempts)))


class Store:
    """One SQLite connection (thread-safe through a lock; call from worker threads, not the loop)."""

    def __init__(self, path: str | os.PathLike[str], encryption_key: str) -> None:
        self.path = Path(path)
        self._fernet = Fernet(encryption_key.encode() if isinstance(encryption_key, str) else encryption_key)
        self._hash_key = hashlib.sha256(b"webhook-bridge verifier id\x00" + encryption_key.encode()).digest()
        self._lock = threading.RLock()
        try:
            make_private_dirs(self.path.parent)
            _create_private_file(self.path)  # SQLite gives its -wal and -shm files the same mode
        except OSError as exc:
            raise StoreError(f"cannot create the queue database {self.path}: {exc.strerror or exc}") from None
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.row_factory = sqlite3.Row
            self._create_schema()
            self._check_key()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise StoreError(f"cannot open the queue database {self.path}: {exc}") from None
        except StoreError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _check_key(self) -> None:
        """Refuse a key that is not the one the verifiers were encrypted with (changing nothing).

        Without this, a wrong key would silently make every verifier unusable (every event 401).
        A database written before this check existed has no check value; its verifiers decide.

        Raises:
            StoreError: the key does not decrypt this database.
        """
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (KEY_CHECK,)).fetchone()
            if row is not None:
                if not self._decrypts(str(row[0]).encode("ascii")):
                    raise StoreError(self._wrong_key_message())
                return
            samples = self._conn.execute("SELECT verifier_enc FROM verifiers LIMIT 20").fetchall()
            if samples and not any(self._decrypts(bytes(r[0])) for r in samples):
                raise StoreError(self._wrong_key_message())
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (KEY_CHECK, self._fernet.encrypt(KEY_CHECK.encode()).decode("ascii")),
            )

    def _decrypts(self, token: bytes) -> bool:
        try:
            self._fernet.decrypt(token)
        except InvalidToken:
            return False
        return True

    def _wrong_key_message(self) -> str:
        return (
            f"token_encryption_key does not decrypt the queue database {self.path}: it is not the key "
            "the database was created with (nothing was changed); use that key, or move the file aside "
            "and run webhook-bridge register again"
        )

    def _create_schema(self) -> None:
        with self._lock:
            self._conn.executescript(SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolls back on any exception)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def pragma(self, name: str) -> object:
        """Read a PRAGMA (tests check WAL and synchronous)."""
        with self._lock:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    def ping(self) -> None:
        """Raise if the database is unusable (health check)."""
        with self._lock:
            self._conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()

    # ============================================================================================
    # events

    def enqueue_many(
        self,
        deliveries: Sequence[tuple[EventDelivery, float]],
        *,
        coalesce_window: float,
    ) -> list[EnqueueResult]:
        """Store deliveries (``(delivery, received_ts)``) in ONE durable transaction.

        Raises:
            StoreError: nothing was stored (the caller must not answer 200).
        """
        results: list[EnqueueResult] = []
        try:
            with self._tx() as conn:
                for delivery, received_ts in deliveries:
                    results.append(self._enqueue_one(conn, delivery, received_ts, coalesce_window))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store event: {exc}") from None
        return results

    def enqueue(
        self, delivery: EventDelivery, received_ts: float | None = None, *, coalesce_window: float = 0.0
    ) -> EnqueueResult:
        """Store one delivery durably (see :meth:`enqueue_many`)."""
        ts = time.time() if received_ts is None else received_ts
        return self.enqueue_many([(delivery, ts)], coalesce_window=coalesce_window)[0]

    @staticmethod
    def _enqueue_one(
        conn: sqlite3.Connection, delivery: EventDelivery, received_ts: float, coalesce_window: float
    ) -> EnqueueResult:
        target = target_for(delivery.name)
        fingerprint = delivery.fingerprint()
        received_at = utc_iso(received_ts)
        if target is None:
            row = conn.execute(
                "INSERT INTO events (account_id, name, object_id, business_id, stream, fingerprint,"
                " received_at, received_ts, last_received_ts, status, next_attempt_at)"
                " VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, 'ignored', ?) RETURNING id",
                (
                    delivery.account_id,
                    delivery.name,
                    delivery.object_id,
                    delivery.business_id,
                    fingerprint,
                    received_at,
                    received_ts,
                    received_ts,
                    received_ts,
                ),
            ).fetchone()
            return EnqueueResult(int(row[0]), "ignored")
        row = conn.execute(
            "INSERT INTO events (account_id, name, object_id, business_id, stream, fingerprint,"
            " received_at, received_ts, last_received_ts, status, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)"
            " ON CONFLICT (account_id, name, object_id, fingerprint)"
            "   WHERE status = 'pending' AND attempts = 0"
            " DO UPDATE SET deliveries = deliveries + 1,"
            "   last_received_ts = max(last_received_ts, excluded.last_received_ts)"
            " RETURNING id, deliveries",
            (
                delivery.account_id,
                delivery.name,
                delivery.object_id,
                delivery.business_id,
                target.stream,
                fingerprint,
                received_at,
                received_ts,
                received_ts,
                received_ts + coalesce_window,
            ),
        ).fetchone()
        return EnqueueResult(int(row[0]), "duplicate" if int(row[1]) > 1 else "queued")

    @staticmethod
    def _event(row: sqlite3.Row) -> QueuedEvent:
        return QueuedEvent(
            id=row["id"],
            account_id=row["account_id"],
            name=row["name"],
            object_id=row["object_id"],
            stream=row["stream"],
            received_at=row["received_at"],
            received_ts=row["received_ts"],
            attempts=row["attempts"],
            deliveries=row["deliveries"],
            status=row["status"],
            last_error=row["last_error"],
        )

    def events(self, status: str | None = None) -> list[QueuedEvent]:
        """All events (optionally of one status), oldest first."""
        with self._lock:
            if status is None:
                rows = self._conn.execute("SELECT * FROM events ORDER BY id").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT * FROM events WHERE status = ? ORDER BY id", (status,)
                ).fetchall()
        return [self._event(r) for r in rows]

    def events_of_run(self, run_id: int, status: str | None = None) -> list[QueuedEvent]:
        """Events claimed by a run (still carrying its id: running, or parked by it)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE run_id = ? AND (? IS NULL OR status = ?) ORDER BY id",
                (run_id, status, status),
            ).fetchall()
        return [self._event(r) for r in rows]

    def has_running(self) -> bool:
        """Any event marked ``running``?"""
        with self._lock:
            return (
                self._conn.execute("SELECT 1 FROM events WHERE status = 'running' LIMIT 1").fetchone()
                is not None
            )

    def next_due(self) -> float | None:
        """When the earliest pending event becomes due (``None``: queue empty)."""
        return self._earliest_pending("events")

    def _earliest_pending(self, table: str) -> float | None:
        """Smallest ``next_attempt_at`` of the pending rows of ``table`` (events or verifiers)."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT min(next_attempt_at) FROM {table} WHERE status = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def claim(self, *, now: float | None = None, max_batch: int = 200) -> Batch | None:
        """Claim the next due group of events for one run (marks them ``running``).

        The group is: the account of the most overdue pending event, and every pending event of that
        account at the same retry level that is due (fresh events: every one received so far, so
        events inside the coalescing window ride along), up to ``batch_limit`` records.
        """
        now = time.time() if now is None else now
        with self._tx() as conn:
            head = conn.execute(
                "SELECT account_id, attempts FROM events WHERE status = 'pending'"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
                (now,),
            ).fetchone()
            if head is None:
                return None
            account_id, level = head["account_id"], int(head["attempts"])
            limit = batch_limit(max_batch, level)
            # fresh events: everything received so far (the ones still inside their coalescing
            # window ride along); retries: only those whose backoff is over
            horizon = 1e18 if level == 0 else now
            rows = conn.execute(
                "SELECT * FROM events WHERE status = 'pending' AND account_id = ? AND attempts = ?"
                " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                (account_id, level, horizon, limit * 20),
            ).fetchall()
            chosen: list[sqlite3.Row] = []
            records: set[tuple[str, str]] = set()
            for row in rows:
                key = (row["stream"], row["object_id"])
                if key not in records and len(records) >= limit:
                    continue
                records.add(key)
                chosen.append(row)
            streams = sorted({r["stream"] for r in chosen})
            run_id = conn.execute(
                "INSERT INTO runs (kind, account_id, streams, record_count, event_count, started_ts,"
                " status) VALUES ('webhook', ?, ?, ?, ?, ?, 'running') RETURNING id",
                (account_id, json.dumps(streams), len(records), len(chosen), now),
            ).fetchone()[0]
            conn.executemany(
                "UPDATE events SET status = 'running', run_id = ? WHERE id = ?",
                [(run_id, r["id"]) for r in chosen],
            )
            events = tuple(self._event(r) for r in chosen)
        return Batch(run_id=int(run_id), account_id=account_id, events=events, attempt_level=level)

    def ack(self, run_id: int, *, now: float | None = None) -> int:
        """The run succeeded: its events are done. Returns how many."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE events SET status = 'done', done_ts = ?, last_error = NULL"
                " WHERE run_id = ? AND status = 'running'",
                (now, run_id),
            )
            return cur.rowcount

    def fail(
        self,
        run_id: int,
        error: str,
        *,
        max_attempts: int,
        retry_base: float,
        retry_max: float,
        count_attempt: bool = True,
        retry_delay: float | None = None,
        now: float | None = None,
    ) -> dict[str, int]:
        """The run failed: retry its events with backoff, or park those out of attempts.

        ``count_attempt=False`` (Meltano said the pipeline is busy, or the bridge is shutting down)
        puts the events back unchanged after ``retry_delay`` seconds.

        Returns: ``{"retry": n, "parked": m}``.
        """
        now = time.time() if now is None else now
        error = error[-MAX_ERROR_CHARS:]
        counts = {"retry": 0, "parked": 0}
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT * FROM events WHERE run_id = ? AND status = 'running'", (run_id,)
            ).fetchall()
            for row in rows:
                attempts = int(row["attempts"]) + (1 if count_attempt else 0)
                if attempts >= max_attempts:
                    conn.execute(
                        "UPDATE events SET status = 'parked', attempts = ?, last_error = ? WHERE id = ?",
                        (attempts, error, row["id"]),
                    )
                    counts["parked"] += 1
                    continue
                if retry_delay is not None:
                    delay = retry_delay
                else:
                    delay = backoff_seconds(attempts, retry_base, retry_max) if attempts else 0.0
                self._requeue(conn, row, attempts=attempts, due=now + delay, error=error)
                counts["retry"] += 1
        return counts

    @staticmethod
    def _requeue(
        conn: sqlite3.Connection, row: sqlite3.Row, *, attempts: int, due: float, error: str | None
    ) -> None:
        """Back to ``pending``; a level-0 row folds into an identical waiting row if one exists."""
        if attempts == 0:
            twin = conn.execute(
                "SELECT id, received_ts FROM events WHERE status = 'pending' AND attempts = 0"
                " AND account_id = ? AND name = ? AND object_id = ? AND fingerprint = ?",
                (row["account_id"], row["name"], row["object_id"], row["fingerprint"]),
            ).fetchone()
            if twin is not None:
                # keep the earliest receipt time (the honest event-to-warehouse latency)
                conn.execute(
                    "UPDATE events SET deliveries = deliveries + ?,"
                    " received_ts = min(received_ts, ?),"
                    " received_at = CASE WHEN ? < received_ts THEN ? ELSE received_at END,"
                    " next_attempt_at = min(next_attempt_at, ?) WHERE id = ?",
                    (
                        row["deliveries"],
                        row["received_ts"],
                        row["received_ts"],
                        row["received_at"],
                        due,
                        twin["id"],
                    ),
                )
                conn.execute("DELETE FROM events WHERE id = ?", (row["id"],))
                return
        conn.execute(
            "UPDATE events SET status = 'pending', attempts = ?, next_attempt_at = ?,"
            " last_error = ?, run_id = NULL WHERE id = ?",
            (attempts, due, error, row["id"]),
        )

    def recover_interrupted(self, *, now: float | None = None, max_attempts: int = 8) -> int:
        """Events left ``running`` by a process that died mid-run go back to ``pending`` at once.

        Call only while holding the run lock (then no run can be in progress). The interrupted run
        counts as an attempt, so an event that kills the bridge every time is parked eventually.
        """
        now = time.time() if now is None else now
        with self._tx() as conn:
            rows = conn.execute("SELECT * FROM events WHERE status = 'running'").fetchall()
            for row in rows:
                attempts = int(row["attempts"]) + 1
                error = "interrupted: the bridge stopped during the run"
                if attempts >= max_attempts:
                    conn.execute(
                        "UPDATE events SET status = 'parked', attempts = ?, last_error = ? WHERE id = ?",
                        (attempts, error, row["id"]),
                    )
                else:
                    self._requeue(conn, row, attempts=attempts, due=now, error=error)
            conn.execute(
                "UPDATE runs SET status = 'interrupted', finished_ts = coalesce(finished_ts, ?)"
                " WHERE status = 'running'",
                (now,),
            )
            return len(rows)

    def requeue_parked(self, event_ids: Iterable[int] | None = None, *, now: float | None = None) -> int:
        """Give parked events a fresh start (after the cause was fixed)."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            if event_ids is None:
                rows = conn.execute("SELECT * FROM events WHERE status = 'parked'").fetchall()
            else:
                ids = list(event_ids)
                rows = [
                    r
                    for r in (conn.execute("SELECT * FROM events WHERE id = ?", (i,)).fetchone() for i in ids)
                    if r is not None and r["status"] == "parked"
                ]
            for row in rows:
                self._requeue(conn, row, attempts=0, due=now, error=row["last_error"])
            return len(rows)

    def prune(self, *, older_than: float, now: float | None = None) -> int:
        """Delete done/ignored events and finished runs older than ``older_than`` seconds."""
        now = time.time() if now is None else now
        cutoff = now - older_than
        with self._tx() as conn:
            n = conn.execute(
                "DELETE FROM events WHERE (status = 'done' AND done_ts < ?)"
                " OR (status = 'ignored' AND received_ts < ?)",
                (cutoff, cutoff),
            ).rowcount
            conn.execute(
                "DELETE FROM runs WHERE finished_ts IS NOT NULL AND finished_ts < ?"
                " AND id NOT IN (SELECT max(id) FROM runs GROUP BY kind, account_id)",
                (cutoff,),
            )
            return n

    # ============================================================================================
    # runs

    def start_run(self, kind: str, *, account_id: str | None = None, streams: Sequence[str] = ()) -> int:
        """Record a run that is not tied to events (polls)."""
        with self._tx() as conn:
            return int(
                conn.execute(
                    "INSERT INTO runs (kind, account_id, streams, started_ts, status)"
                    " VALUES (?, ?, ?, ?, 'running') RETURNING id",
                    (kind, account_id, json.dumps(list(streams)), time.time()),
                ).fetchone()[0]
            )

    def update_run(self, run_id: int, **fields: object) -> None:
        """Set columns of a run row (pid, log_path, status, exit_code, error, finished_ts, forced)."""
        allowed = {"pid", "log_path", "status", "exit_code", "error", "finished_ts", "forced"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        if "error" in fields and isinstance(fields["error"], str):
            fields["error"] = fields["error"][-MAX_ERROR_CHARS:]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*fields.values(), run_id))

    @staticmethod
    def _run(row: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=row["id"],
            kind=row["kind"],
            account_id=row["account_id"],
            streams=json.loads(row["streams"] or "[]"),
            record_count=row["record_count"],
            event_count=row["event_count"],
            started_ts=row["started_ts"],
            finished_ts=row["finished_ts"],
            status=row["status"],
            exit_code=row["exit_code"],
            error=row["error"],
            pid=row["pid"],
            log_path=row["log_path"],
            forced=bool(row["forced"]),
        )

    def runs(self, *, limit: int = 100, kind: str | None = None) -> list[RunRecord]:
        """Most recent runs first."""
        with self._lock:
            if kind:
                rows = self._conn.execute(
                    "SELECT * FROM runs WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
                ).fetchall()
            else:
                rows = self._conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._run(r) for r in rows]

    def last_run(self, kind: str | None = None) -> RunRecord | None:
        runs = self.runs(limit=1, kind=kind)
        return runs[0] if runs else None

    def last_runs_by_account(self) -> list[RunRecord]:
        """The latest run of each (kind, account)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY kind, account_id)"
                " ORDER BY account_id, kind"
            ).fetchall()
        return [self._run(r) for r in rows]

    # ============================================================================================
    # status

    def stats(self, *, now: float | None = None) -> dict[str, t.Any]:
        """Queue depth by status and the age of the oldest waiting event."""
        now = time.time() if now is None else now
        with self._lock:
            counts = {
                row[0]: row[1]
                for row in self._conn.execute("SELECT status, count(*) FROM events GROUP BY status")
            }
            oldest = self._conn.execute(
                "SELECT min(received_ts) FROM events WHERE status IN ('pending', 'running')"
            ).fetchone()[0]
            retrying = self._conn.execute(
                "SELECT count(*) FROM events WHERE status = 'pending' AND attempts > 0"
            ).fetchone()[0]
        return {
            "pending": counts.get("pending", 0),
            "running": counts.get("running", 0),
            "retrying": retrying,
            "parked": counts.get("parked", 0),
            "done": counts.get("done", 0),
            "ignored": counts.get("ignored", 0),
            "queue_depth": counts.get("pending", 0) + counts.get("running", 0),
            "oldest_pending_age_seconds": None if oldest is None else max(0.0, now - oldest),
        }

    def failures(self, *, limit: int = 10) -> list[QueuedEvent]:
        """Events that failed at least once and are not done (retrying or parked), newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM events WHERE last_error IS NOT NULL AND status IN ('pending', 'parked')"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._event(r) for r in rows]

    # ============================================================================================
    # verifiers

    def _verifier_hash(self, verifier: str) -> str:
        return hmac.new(self._hash_key, verifier.encode("utf-8"), hashlib.sha256).hexdigest()

    def add_verifier(self, account_id: str, callback_id: str, verifier: str) -> tuple[int, str]:
        """Store a verifier (encrypted) as ``pending``; idempotent. Returns ``(id, status)``.

        Raises:
            StoreError: too many unconfirmed verifiers for the account (a flood of forged deliveries).
        """
        digest = self._verifier_hash(verifier)
        now = time.time()
        with self._tx() as conn:
            existing = conn.execute(
                "SELECT id, status FROM verifiers WHERE account_id = ? AND callback_id = ?"
                " AND verifier_hash = ?",
                (account_id, callback_id, digest),
            ).fetchone()
            if existing is not None:
                if existing["status"] in ("failed",):
                    conn.execute(
                        "UPDATE verifiers SET status = 'pending', attempts = 0, next_attempt_at = ?"
                        " WHERE id = ?",
                        (now, existing["id"]),
                    )
                    return int(existing["id"]), "pending"
                return int(existing["id"]), str(existing["status"])
            waiting = conn.execute(
                "SELECT count(*) FROM verifiers WHERE account_id = ? AND status = 'pending'",
                (account_id,),
            ).fetchone()[0]
            if waiting >= MAX_PENDING_VERIFIERS_PER_ACCOUNT:
                raise StoreError("too many unconfirmed verifiers for this account")
            # forged deliveries end up 'rejected'; keep only the latest of those
            conn.execute(
                "DELETE FROM verifiers WHERE status = 'rejected' AND id NOT IN"
                " (SELECT id FROM verifiers WHERE status = 'rejected' ORDER BY id DESC LIMIT 100)"
            )
            token = self._fernet.encrypt(verifier.encode("utf-8"))
            row = conn.execute(
                "INSERT INTO verifiers (account_id, callback_id, verifier_hash, verifier_enc, status,"
                " next_attempt_at, created_ts) VALUES (?, ?, ?, ?, 'pending', ?, ?) RETURNING id",
                (account_id, callback_id, digest, token, now, now),
            ).fetchone()
            return int(row[0]), "pending"

    def _decrypt(self, row: sqlite3.Row) -> StoredVerifier | None:
        try:
            verifier = self._fernet.decrypt(bytes(row["verifier_enc"])).decode("utf-8")
        except (InvalidToken, UnicodeDecodeError):
            return None  # written with another key: unusable, ignored
        return StoredVerifier(
            id=row["id"],
            account_id=row["account_id"],
            callback_id=row["callback_id"],
            verifier=verifier,
            status=row["status"],
            attempts=row["attempts"],
        )

    def verified_verifiers(self) -> dict[str, list[str]]:
        """``{account_id: [verifier, ...]}`` of every verified callback (decrypted, for the app)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM verifiers WHERE status = 'verified' ORDER BY id"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for row in rows:
            stored = self._decrypt(row)
            if stored is not None:
                out.setdefault(stored.account_id, []).append(stored.verifier)
        return out

    def verifiers(self, status: str | None = None) -> list[StoredVerifier]:
        with self._lock:
            if status:
                rows = self._conn.execute(
                    "SELECT * FROM verifiers WHERE status = ? ORDER BY id", (status,)
                ).fetchall()
            else:
                rows = self._conn.execute("SELECT * FROM verifiers ORDER BY id").fetchall()
        return [v for v in (self._decrypt(r) for r in rows) if v is not None]

    def due_verifications(self, *, now: float | None = None) -> list[StoredVerifier]:
        """Pending verifiers whose verify PUT is due."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM verifiers WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id",
                (now,),
            ).fetchall()
        return [v for v in (self._decrypt(r) for r in rows) if v is not None]

    def next_verification_due(self) -> float | None:
        return self._earliest_pending("verifiers")

    def mark_verifier(
        self,
        verifier_id: int,
        status: str,
        *,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> None:
        """Record the verify PUT's outcome; a newly verified verifier supersedes its callback's older ones."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM verifiers WHERE id = ?", (verifier_id,)).fetchone()
            if row is None:
                return
            if status == "pending":
                conn.execute(
                    "UPDATE verifiers SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                    " WHERE id = ?",
                    (now + (retry_in or 0.0), error, verifier_id),
                )
                return
            conn.execute(
                "UPDATE verifiers SET status = ?, last_error = ?, attempts = attempts + 1,"
                " verified_ts = CASE WHEN ? = 'verified' THEN ? ELSE verified_ts END WHERE id = ?",
                (status, error, status, now, verifier_id),
            )
            if status == "verified":
                conn.execute(
                    "UPDATE verifiers SET status = 'superseded' WHERE account_id = ? AND callback_id = ?"
                    " AND id != ? AND status IN ('verified', 'pending')",
                    (row["account_id"], row["callback_id"], verifier_id),
                )

    def forget_callback(self, account_id: str, callback_id: str) -> int:
        """Delete a callback's verifiers and registration (after ``register --delete``)."""
        with self._tx() as conn:
            n = conn.execute(
                "DELETE FROM verifiers WHERE account_id = ? AND callback_id = ?",
                (account_id, callback_id),
            ).rowcount
            conn.execute(
                "DELETE FROM callbacks WHERE account_id = ? AND callback_id = ?",
                (account_id, callback_id),
            )
            return n

    # ============================================================================================
    # accounts and callbacks registered by `register`

    def remember_account(self, account_id: str) -> None:
        """``register`` is about to create callbacks for this account: accept its verifications."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO accounts (account_id, registered_ts) VALUES (?, ?)",
                (account_id, time.time()),
            )

    def known_account(self, account_id: str) -> bool:
        """Registered here, or has a callback or a verified verifier."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM accounts WHERE account_id = ?"
                " UNION ALL SELECT 1 FROM callbacks WHERE account_id = ?"
                " UNION ALL SELECT 1 FROM verifiers WHERE account_id = ? AND status = 'verified'"
                " LIMIT 1",
                (account_id, account_id, account_id),
            ).fetchone()
        return row is not None

    def remember_callback(self, account_id: str, callback_id: str, event: str, uri: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO callbacks (account_id, callback_id, event, uri, created_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, callback_id)"
                " DO UPDATE SET event = excluded.event, uri = excluded.uri",
                (account_id, callback_id, event, uri, time.time()),
            )

    def callback_account(self, callback_id: str) -> str | None:
        """The account a registered callback id belongs to (``None``: unknown or ambiguous)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT account_id FROM callbacks WHERE callback_id = ?", (callback_id,)
            ).fetchall()
        return rows[0][0] if len(rows) == 1 else None

    def verifier_summary(self) -> dict[str, dict[str, int]]:
        """``{account_id: {status: count}}``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT account_id, status, count(*) FROM verifiers GROUP BY account_id, status"
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for account, status, count in rows:
            out.setdefault(account, {})[status] = count
        return out
