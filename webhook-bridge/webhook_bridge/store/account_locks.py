"""Per-account exclusion between bridge replicas, held in the database.

Runs for one account must never overlap (the tap's per-account bookmarks and change ledger assume
it); runs for different accounts may go in parallel. On PostgreSQL every replica's store holds:

* a **holder lock**: a session-level advisory lock on ``(HOLDER_SPACE, n)``, ``n`` from the sequence
  ``run_holders``, taken when the store opens and kept until its connection closes. Every run row
  records its holder, so another replica can tell a live run from one whose process died:
  :meth:`DatabaseAccountLocks.holder_alive` tries the holder's lock.
* an **account lock** per account it is running: a session-level advisory lock on
  ``(ACCOUNT_SPACE, hashtext(account_id))``, taken (without waiting) before its events are claimed
  and released after the run's outcome is committed.

Both live in the server and belong to the store's connection: when a replica dies, even with
``kill -9``, the kernel closes its socket, the server ends its session and frees both at once (a host
that vanishes without closing is cut off by TCP keepalives within about a minute). Two accounts
whose ids hash alike only take turns; they never run at once.

On SQLite there is one machine and the runner's file lock (``RunLock``) serialises runs, so
:class:`AccountLocks` grants every account and recovers every run it finds interrupted.
"""

from __future__ import annotations

import contextlib
import typing as t

if t.TYPE_CHECKING:
    from webhook_bridge.store.database import Database

ACCOUNT_SPACE = 0x46425741  # "FBWA": the first key of an account lock
HOLDER_SPACE = 0x46425748  # "FBWH": the first key of a holder lock


class AccountLocks:
    """SQLite: no per-account locks (one machine; the runner's file lock serialises runs)."""

    #: True when accounts are locked in the database (replicas share the queue)
    in_database: t.ClassVar[bool] = False

    def __init__(self) -> None:
        self.holder: int | None = None  # recorded on every run row
        self._run_accounts: dict[int, str] = {}

    def try_acquire(self, account_id: str) -> bool:  # noqa: ARG002  (every account is free here)
        """Take ``account_id`` without waiting; False if another run (here or elsewhere) has it."""
        return True

    def release(self, account_id: str) -> None:
        """Let other runs take ``account_id`` (and forget the runs it was held for)."""
        for run_id in [r for r, a in self._run_accounts.items() if a == account_id]:
            del self._run_accounts[run_id]

    def held(self) -> frozenset[str]:
        """Accounts this store is running."""
        return frozenset()

    def holder_alive(self, holder: int | None) -> bool:  # noqa: ARG002
        """Is the store that recorded ``holder`` on a run still running it?"""
        return False  # recover_interrupted is called under the run lock: nothing else runs

    def bind_run(self, run_id: int, account_id: str) -> None:
        """The lock on ``account_id`` is held for run ``run_id`` (freed by :meth:`release_run`)."""
        self._run_accounts[run_id] = account_id

    def release_run(self, run_id: int) -> None:
        """Run ``run_id``'s outcome is committed: free its account."""
        account_id = self._run_accounts.pop(run_id, None)
        if account_id is not None:
            self.release(account_id)


class DatabaseAccountLocks(AccountLocks):
    """PostgreSQL: session-level advisory locks on the store's connection (see the module doc)."""

    in_database = True

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self._held: set[str] = set()
        with db.lock:
            self.holder = int(db.value("SELECT nextval('run_holders') AS n"))
            db.value("SELECT pg_advisory_lock(?::int4, ?::int4) AS ok", (HOLDER_SPACE, self.holder))

    def try_acquire(self, account_id: str) -> bool:
        with self.db.lock:
            if account_id in self._held:  # re-entrant in the server; not between two runs here
                return False
            got = self.db.value(
                "SELECT pg_try_advisory_lock(?::int4, hashtext(?)) AS got", (ACCOUNT_SPACE, account_id)
            )
            if got:
                self._held.add(account_id)
            return bool(got)

    def release(self, account_id: str) -> None:
        with self.db.lock:
            super().release(account_id)
            if account_id not in self._held:
                return
            self._held.discard(account_id)
            with contextlib.suppress(*self.db.errors):  # a lost connection freed it already
                self.db.value(
                    "SELECT pg_advisory_unlock(?::int4, hashtext(?)) AS ok", (ACCOUNT_SPACE, account_id)
                )

    def held(self) -> frozenset[str]:
        with self.db.lock:
            return frozenset(self._held)

    def holder_alive(self, holder: int | None) -> bool:
        if holder is None:
            return False
        if holder == self.holder:
            return True
        with self.db.lock:
            free = bool(
                self.db.value("SELECT pg_try_advisory_lock(?::int4, ?::int4) AS free", (HOLDER_SPACE, holder))
            )
            if free:  # nobody holds it: that store's session is gone
                self.db.value("SELECT pg_advisory_unlock(?::int4, ?::int4) AS ok", (HOLDER_SPACE, holder))
        return not free
