"""The bridge's durable state: a thin facade over small repositories on one database.

============================  ======================================================================
module                        owns
============================  ======================================================================
``database``                  the connection, transactions, schema and migrations; SQLite vs PostgreSQL
``queue``                     events: idempotent enqueue, claim, ack, fail, park, recover, prune
``runs``                      run records (webhook and poll runs, outcome, holder)
``account_locks``             per-account exclusion between replicas, held in the database
``verifiers``                 callback verifiers and their Fernet encryption (key check on open)
``callbacks``                 accounts and callbacks that ``register`` created
``records``                   the frozen records handed out (``Batch``, ``QueuedEvent``, ...)
============================  ======================================================================

The backend is chosen by one setting: ``WEBHOOK_BRIDGE_DATABASE_URL`` (``postgresql://...``; replicas
share it), else SQLite at ``<data_dir>/bridge.sqlite3``. :class:`Store` keeps the one-object API the
rest of the bridge calls; new code may use the repositories (``store.queue`` ...) directly.
"""

from __future__ import annotations

import contextlib
import os
import time
import typing as t

from webhook_bridge.store.account_locks import AccountLocks, DatabaseAccountLocks
from webhook_bridge.store.callbacks import CallbackRepository
from webhook_bridge.store.database import (
    SCHEMA_VERSION,
    Database,
    SqliteDatabase,
    StoreError,
    first_line,
    open_database,
)
from webhook_bridge.store.queue import EventQueue, backoff_seconds, batch_limit
from webhook_bridge.store.records import (
    Batch,
    EnqueueResult,
    QueuedEvent,
    RunRecord,
    StoredVerifier,
    utc_iso,
)
from webhook_bridge.store.runs import MAX_ERROR_CHARS, RunLog
from webhook_bridge.store.verifiers import (
    MAX_PENDING_VERIFIERS_PER_ACCOUNT,
    VerifierCipher,
    VerifierRepository,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from webhook_bridge.settings import Settings
    from webhook_bridge.signature import EventDelivery

__all__ = [
    "MAX_ERROR_CHARS",
    "MAX_PENDING_VERIFIERS_PER_ACCOUNT",
    "SCHEMA_VERSION",
    "Batch",
    "EnqueueResult",
    "QueuedEvent",
    "RunRecord",
    "Store",
    "StoreError",
    "StoredVerifier",
    "backoff_seconds",
    "batch_limit",
    "utc_iso",
]

ACCOUNT_WAIT_POLL_SECONDS = 0.2


class Store:
    """The bridge's state on one connection (thread-safe through a lock; call from worker threads).

    ``location``: a SQLite file path, or a ``postgresql://`` URL (``?schema=NAME``, default
    ``webhook_bridge``). Opening creates or migrates the schema and checks ``encryption_key``.
    """

    def __init__(self, location: str | os.PathLike[str], encryption_key: str) -> None:
        cipher = VerifierCipher(encryption_key)
        self.db: Database = open_database(location)
        try:
            cipher.check_key(self.db)
            self.locks: AccountLocks = (
                DatabaseAccountLocks(self.db) if self.db.dialect == "postgresql" else AccountLocks()
            )
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, self.db.errors):
                raise StoreError(
                    f"cannot open the queue database {self.db.location}: {first_line(exc)}"
                ) from None
            raise
        self.run_log = RunLog(self.db, self.locks)
        self.queue = EventQueue(self.db, self.run_log, self.locks)
        self.verifier_repo = VerifierRepository(self.db, cipher)
        self.callback_repo = CallbackRepository(self.db)

        # the one-object API (the repositories' methods, under their historical names)
        self.events = self.queue.events
        self.events_of_run = self.queue.events_of_run
        self.has_running = self.queue.has_running
        self.next_due = self.queue.next_due
        self.claim = self.queue.claim
        self.ack = self.queue.ack
        self.fail = self.queue.fail
        self.recover_interrupted = self.queue.recover_interrupted
        self.requeue_parked = self.queue.requeue_parked
        self.stats = self.queue.stats
        self.failures = self.queue.failures
        self.start_run = self.run_log.start_run
        self.update_run = self.run_log.update_run
        self.runs = self.run_log.runs
        self.last_run = self.run_log.last_run
        self.last_runs_by_account = self.run_log.last_runs_by_account
        self.add_verifier = self.verifier_repo.add_verifier
        self.verified_verifiers = self.verifier_repo.verified_verifiers
        self.verifiers = self.verifier_repo.verifiers
        self.due_verifications = self.verifier_repo.due_verifications
        self.next_verification_due = self.verifier_repo.next_verification_due
        self.mark_verifier = self.verifier_repo.mark_verifier
        self.verifier_summary = self.verifier_repo.verifier_summary
        self.remember_account = self.callback_repo.remember_account
        self.known_account = self.callback_repo.known_account
        self.remember_callback = self.callback_repo.remember_callback
        self.callback_account = self.callback_repo.callback_account
        self.forget_callback = self.callback_repo.forget_callback

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The store ``settings`` select: ``database_url`` (PostgreSQL) or the SQLite file."""
        location = settings.database_url.reveal() if settings.database_url else settings.db_path
        return cls(location, settings.token_encryption_key.reveal())

    # -- the database -------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The SQLite file (``None`` on PostgreSQL)."""
        return self.db.path

    @property
    def location(self) -> str:
        """Where the state lives, for messages: a path, or the URL without its password."""
        return self.db.location

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        """Raise StoreError if the database is unusable (health check), e.g. its connection was lost."""
        try:
            self.db.ping()
        except self.db.errors as exc:
            raise StoreError(f"the queue database {self.location} is unusable: {first_line(exc)}") from None

    def pragma(self, name: str) -> object:
        """Read a PRAGMA (SQLite; tests check WAL and synchronous)."""
        if not isinstance(self.db, SqliteDatabase):
            raise StoreError(f"PRAGMA {name}: the queue database is {self.db.dialect}, not SQLite")
        return self.db.pragma(name)

    # -- events -------------------------------------------------------------------------------
    def enqueue_many(
        self, deliveries: Sequence[tuple[EventDelivery, float]], *, coalesce_window: float
    ) -> list[EnqueueResult]:
        """Store deliveries in ONE durable transaction (see :meth:`EventQueue.enqueue_many`).

        Raises:
            StoreError: nothing was stored (the caller must not answer 200).
        """
        try:
            return self.queue.enqueue_many(deliveries, coalesce_window=coalesce_window)
        except self.db.errors as exc:
            raise StoreError(f"cannot store event: {first_line(exc)}") from None

    def enqueue(
        self, delivery: EventDelivery, received_ts: float | None = None, *, coalesce_window: float = 0.0
    ) -> EnqueueResult:
        """Store one delivery durably (see :meth:`enqueue_many`)."""
        ts = time.time() if received_ts is None else received_ts
        return self.enqueue_many([(delivery, ts)], coalesce_window=coalesce_window)[0]

    def prune(self, *, older_than: float, now: float | None = None) -> int:
        """Delete done/ignored events and finished runs older than ``older_than`` seconds."""
        cutoff = (time.time() if now is None else now) - older_than
        with self.db.tx():
            n = self.queue.prune(cutoff=cutoff)
            self.run_log.prune(cutoff=cutoff)
            return n

    # -- per-account exclusion ----------------------------------------------------------------
    @property
    def account_locks_in_database(self) -> bool:
        """True on PostgreSQL: claims skip accounts another replica runs, so replicas need no shared
        file lock; False on SQLite (one machine: the runner's file lock serialises runs)."""
        return self.locks.in_database

    @contextlib.contextmanager
    def account_run(self, account_id: str, *, wait: float = 0.0) -> Iterator[bool]:
        """Hold ``account_id`` for a block (e.g. one account's poll): ``with store.account_run(a) as held``.

        ``held`` is False when another run (another replica, or another run of this store) has the
        account after waiting up to ``wait`` seconds. On SQLite it is always True.
        """
        deadline = time.monotonic() + wait
        held = self.locks.try_acquire(account_id)
        while not held and time.monotonic() < deadline:
            time.sleep(ACCOUNT_WAIT_POLL_SECONDS)
            held = self.locks.try_acquire(account_id)
        try:
            yield held
        finally:
            if held:
                self.locks.release(account_id)

    def release_account(self, account_id: str) -> None:
        """Free an account that :meth:`claim` locked, without :meth:`ack` / :meth:`fail`."""
        self.locks.release(account_id)

    def held_accounts(self) -> frozenset[str]:
        """Accounts this store is running now (PostgreSQL)."""
        return self.locks.held()
