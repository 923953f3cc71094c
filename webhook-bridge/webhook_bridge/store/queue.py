"""The event queue: idempotent enqueue, claim, ack, fail with backoff, parking, recovery, pruning.

One row per distinct pending notification. ``enqueue`` is idempotent: a delivery whose
(account_id, name, object_id, fingerprint) equals a row that is still *waiting for its first run* is
absorbed into that row (``deliveries`` + 1; the partial unique index ``events_waiting_dedupe``). Once a
run has picked a row up, the same notification makes a new row, because the run may already have
fetched the record before the change that caused the new delivery. Life cycle::

    pending --claim--> running --ack--> done
       ^                  |
       +------fail--------+  (attempts + 1, next_attempt_at = now + backoff)
                          +--> parked   (after max_attempts; kept visible, never blocks others)

With PostgreSQL, several replicas claim from one queue: a claim takes only events of an account no
other live run holds (account_locks.py) and locks the rows it takes (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import random
import time
import typing as t

from webhook_bridge.events import stream_for
from webhook_bridge.store.records import Batch, EnqueueResult, QueuedEvent, Row, utc_iso
from webhook_bridge.store.runs import MAX_ERROR_CHARS, placeholders

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from webhook_bridge.signature import EventDelivery
    from webhook_bridge.store.account_locks import AccountLocks
    from webhook_bridge.store.database import Database
    from webhook_bridge.store.runs import RunLog

CANDIDATE_ACCOUNTS = 100  # accounts with due events a claim looks at (the most overdue first)
INTERRUPTED = "interrupted: the bridge stopped during the run"
INSERT_EVENT = (
    "INSERT INTO events (account_id, name, object_id, business_id, stream, fingerprint,"
    " received_at, received_ts, last_received_ts, status, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def backoff_seconds(attempts: int, base: float, maximum: float, *, jitter: float = 0.2) -> float:
    """Exponential backoff after ``attempts`` failures: base, 2*base, 4*base ... capped, +-jitter."""
    delay = min(maximum, base * (2.0 ** max(0, attempts - 1)))
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, delay)


def batch_limit(max_batch: int, attempts: int) -> int:
    """How many records a run at this retry level may carry: 1/4 per failure, down to 1.

    Fresh events travel together; each failure shrinks the group, so a poison record ends up
    alone after a few retries while the healthy records that shared its first run get through.
    """
    return max(1, max_batch >> (2 * max(0, attempts)))


class EventQueue:
    """The ``events`` table."""

    def __init__(self, db: Database, runs: RunLog, locks: AccountLocks) -> None:
        self.db = db
        self.runs = runs
        self.locks = locks

    # -- enqueue ------------------------------------------------------------------------------
    def enqueue_many(
        self, deliveries: Sequence[tuple[EventDelivery, float]], *, coalesce_window: float
    ) -> list[EnqueueResult]:
        """Store deliveries (``(delivery, received_ts)``) in ONE durable transaction.

        Raises:
            The driver's error: nothing was stored (the facade turns it into StoreError).
        """
        # in one order everywhere, so replicas storing the same notifications wait, never deadlock
        order = sorted(
            range(len(deliveries)),
            key=lambda i: (deliveries[i][0].account_id, deliveries[i][0].name, deliveries[i][0].object_id),
        )

        def store_all() -> list[EnqueueResult]:
            results: dict[int, EnqueueResult] = {}
            with self.db.tx():
                for i in order:
                    delivery, received_ts = deliveries[i]
                    results[i] = self._enqueue_one(delivery, received_ts, coalesce_window)
            return [results[i] for i in range(len(deliveries))]

        return self.db.retry_lost_races(store_all)

    def _enqueue_one(
        self, delivery: EventDelivery, received_ts: float, coalesce_window: float
    ) -> EnqueueResult:
        stream = stream_for(delivery.name)
        fingerprint = delivery.fingerprint()
        values = (
            delivery.account_id,
            delivery.name,
            delivery.object_id,
            delivery.business_id,
            stream,
            fingerprint,
            utc_iso(received_ts),
            received_ts,
            received_ts,
        )
        if stream is None:
            event_id = self.db.value(f"{INSERT_EVENT} RETURNING id", (*values, "ignored", received_ts))
            return EnqueueResult(int(event_id), "ignored")
        row = self.db.one(
            f"{INSERT_EVENT} ON CONFLICT (account_id, name, object_id, fingerprint)"
            "   WHERE status = 'pending' AND attempts = 0"
            " DO UPDATE SET deliveries = events.deliveries + 1,"
            "   last_received_ts = CASE WHEN events.last_received_ts < excluded.last_received_ts"
            "     THEN excluded.last_received_ts ELSE events.last_received_ts END"
            " RETURNING id, deliveries",
            (*values, "pending", received_ts + coalesce_window),
        )
        assert row is not None  # RETURNING always gives the row
        return EnqueueResult(int(row["id"]), "duplicate" if int(row["deliveries"]) > 1 else "queued")

    # -- reading ------------------------------------------------------------------------------
    def events(self, status: str | None = None) -> list[QueuedEvent]:
        """All events (optionally of one status), oldest first."""
        if status is None:
            rows = self.db.all("SELECT * FROM events ORDER BY id")
        else:
            rows = self.db.all("SELECT * FROM events WHERE status = ? ORDER BY id", (status,))
        return [QueuedEvent.from_row(r) for r in rows]

    def events_of_run(self, run_id: int, status: str | None = None) -> list[QueuedEvent]:
        """Events claimed by a run (still carrying its id: running, or parked by it)."""
        if status is None:
            rows = self.db.all("SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,))
        else:
            rows = self.db.all(
                "SELECT * FROM events WHERE run_id = ? AND status = ? ORDER BY id", (run_id, status)
            )
        return [QueuedEvent.from_row(r) for r in rows]

    def has_running(self) -> bool:
        """Any event marked ``running``?"""
        return self.db.one("SELECT 1 AS yes FROM events WHERE status = 'running' LIMIT 1") is not None

    def next_due(self) -> float | None:
        """When the earliest pending event becomes due (``None``: queue empty)."""
        due = self.db.value("SELECT min(next_attempt_at) AS due FROM events WHERE status = 'pending'")
        return None if due is None else float(due)

    def stats(self, *, now: float | None = None) -> dict[str, t.Any]:
        """Queue depth by status and the age of the oldest waiting event."""
        now = time.time() if now is None else now
        with self.db.lock:
            counts = {
                row["status"]: int(row["n"])
                for row in self.db.all("SELECT status, count(*) AS n FROM events GROUP BY status")
            }
            oldest = self.db.value(
                "SELECT min(received_ts) AS oldest FROM events WHERE status IN ('pending', 'running')"
            )
            retrying = int(
                self.db.value("SELECT count(*) AS n FROM events WHERE status = 'pending' AND attempts > 0")
            )
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
        rows = self.db.all(
            "SELECT * FROM events WHERE last_error IS NOT NULL AND status IN ('pending', 'parked')"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [QueuedEvent.from_row(r) for r in rows]

    # -- claim --------------------------------------------------------------------------------
    def claim(self, *, now: float | None = None, max_batch: int = 200) -> Batch | None:
        """Claim the next due group of events for one run (marks them ``running``).

        The group is: the account of the most overdue pending event, and every pending event of that
        account at the same retry level that is due (fresh events: every one received so far, so
        events inside the coalescing window ride along), up to ``batch_limit`` records.

        With account locks in the database (PostgreSQL) only accounts that no live run holds are
        looked at, and the claimed account stays locked until :meth:`ack` / :meth:`fail` (or
        ``release_account``) of this run.
        """
        now = time.time() if now is None else now
        if not self.locks.in_database:
            with self.db.tx():
                return self._claim_account(None, now, max_batch)
        held = self.locks.held()
        rows = self.db.all(
            "SELECT account_id FROM events WHERE status = 'pending' AND next_attempt_at <= ?"
            " GROUP BY account_id ORDER BY min(next_attempt_at), min(id) LIMIT ?",
            (now, CANDIDATE_ACCOUNTS + len(held)),
        )
        for account_id in (r["account_id"] for r in rows if r["account_id"] not in held):
            if not self.locks.try_acquire(account_id):
                continue  # another replica is running it
            try:
                with self.db.tx():
                    batch = self._claim_account(account_id, now, max_batch)
            except BaseException:
                self.locks.release(account_id)
                raise
            if batch is not None:
                self.locks.bind_run(batch.run_id, account_id)
                return batch
            self.locks.release(account_id)  # claimed meanwhile by a replica that ran and finished
        return None

    def _claim_account(self, account_id: str | None, now: float, max_batch: int) -> Batch | None:
        """Inside a transaction: the group of ``account_id`` (``None``: of the most overdue event)."""
        head = self.db.one(
            "SELECT account_id, attempts FROM events WHERE status = 'pending' AND next_attempt_at <= ?"
            + ("" if account_id is None else " AND account_id = ?")
            + " ORDER BY next_attempt_at, id LIMIT 1",
            (now,) if account_id is None else (now, account_id),
        )
        if head is None:
            return None
        account, level = str(head["account_id"]), int(head["attempts"])
        limit = batch_limit(max_batch, level)
        # fresh events: everything received so far (the ones still inside their coalescing
        # window ride along); retries: only those whose backoff is over
        horizon = 1e18 if level == 0 else now
        # Choosing needs three columns of up to 20x the limit; only the chosen rows are read whole
        # (the claim runs beside the deliveries' group commits, and a whole row is ~20 columns).
        rows = self.db.all(
            "SELECT id, stream, object_id FROM events WHERE status = 'pending' AND account_id = ?"
            " AND attempts = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
            + self.db.skip_locked,
            (account, level, horizon, limit * 20),
        )
        chosen: list[Row] = []
        records: set[tuple[str, str]] = set()
        for row in rows:
            key = (row["stream"], row["object_id"])
            if key not in records and len(records) >= limit:
                continue
            records.add(key)
            chosen.append(row)
        if not chosen:
            return None
        run_id = self.runs.create(
            "webhook",
            account_id=account,
            streams=sorted({r["stream"] for r in chosen}),
            started_ts=now,
            record_count=len(records),
            event_count=len(chosen),
        )
        self.db.many(
            "UPDATE events SET status = 'running', run_id = ? WHERE id = ?",
            [(run_id, r["id"]) for r in chosen],
        )
        claimed = self.db.all("SELECT * FROM events WHERE run_id = ? ORDER BY next_attempt_at, id", (run_id,))
        events = tuple(QueuedEvent.from_row(r) for r in claimed)
        return Batch(run_id=run_id, account_id=account, events=events, attempt_level=level)

    # -- outcomes -----------------------------------------------------------------------------
    def ack(self, run_id: int, *, now: float | None = None) -> int:
        """The run succeeded: its events are done (its account is free again). Returns how many."""
        now = time.time() if now is None else now
        with self.db.tx():
            n = self.db.run(
                "UPDATE events SET status = 'done', done_ts = ?, last_error = NULL"
                " WHERE run_id = ? AND status = 'running'",
                (now, run_id),
            )
        self.locks.release_run(run_id)
        return n

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
        puts the events back unchanged after ``retry_delay`` seconds. The run's account is free again.

        Returns: ``{"retry": n, "parked": m}``.
        """
        at = time.time() if now is None else now
        error = error[-MAX_ERROR_CHARS:]

        def put_back() -> dict[str, int]:
            counts = {"retry": 0, "parked": 0}
            with self.db.tx():
                rows = self.db.all("SELECT * FROM events WHERE run_id = ? AND status = 'running'", (run_id,))
                for row in rows:
                    attempts = int(row["attempts"]) + (1 if count_attempt else 0)
                    if attempts >= max_attempts:
                        self._park(row, attempts, error)
                        counts["parked"] += 1
                        continue
                    if retry_delay is not None:
                        delay = retry_delay
                    else:
                        delay = backoff_seconds(attempts, retry_base, retry_max) if attempts else 0.0
                    self._requeue(row, attempts=attempts, due=at + delay, error=error)
                    counts["retry"] += 1
            return counts

        counts = self.db.retry_lost_races(put_back)
        self.locks.release_run(run_id)
        return counts

    def _park(self, row: Row, attempts: int, error: str) -> None:
        self.db.run(
            "UPDATE events SET status = 'parked', attempts = ?, last_error = ? WHERE id = ?",
            (attempts, error, row["id"]),
        )

    def _requeue(self, row: Row, *, attempts: int, due: float, error: str | None) -> None:
        """Back to ``pending``; a level-0 row folds into an identical waiting row if one exists.

        On PostgreSQL a delivery of the same notification may insert that twin meanwhile: the update
        then violates ``events_waiting_dedupe`` and the caller's transaction runs again (it folds).
        """
        if attempts == 0:
            twin = self.db.one(
                "SELECT id FROM events WHERE status = 'pending' AND attempts = 0"
                " AND account_id = ? AND name = ? AND object_id = ? AND fingerprint = ?",
                (row["account_id"], row["name"], row["object_id"], row["fingerprint"]),
            )
            if twin is not None:
                # keep the earliest receipt time (the honest event-to-warehouse latency)
                self.db.run(
                    "UPDATE events SET deliveries = deliveries + ?,"
                    " received_at = CASE WHEN ? < received_ts THEN ? ELSE received_at END,"
                    " received_ts = CASE WHEN ? < received_ts THEN ? ELSE received_ts END,"
                    " next_attempt_at = CASE WHEN ? < next_attempt_at THEN ? ELSE next_attempt_at END"
                    " WHERE id = ?",
                    (
                        row["deliveries"],
                        row["received_ts"],
                        row["received_at"],
                        row["received_ts"],
                        row["received_ts"],
                        due,
                        due,
                        twin["id"],
                    ),
                )
                self.db.run("DELETE FROM events WHERE id = ?", (row["id"],))
                return
        self.db.run(
            "UPDATE events SET status = 'pending', attempts = ?, next_attempt_at = ?,"
            " last_error = ?, run_id = NULL WHERE id = ?",
            (attempts, due, error, row["id"]),
        )

    def recover_interrupted(self, *, now: float | None = None, max_attempts: int = 8) -> int:
        """Events left ``running`` by a process that died mid-run go back to ``pending`` at once.

        SQLite: call only while holding the run lock (then no run can be in progress). PostgreSQL:
        only runs whose holder's session is gone are recovered; other replicas' live runs are left
        alone. The interrupted run counts as an attempt, so an event that kills the bridge every
        time is parked eventually.
        """
        at = time.time() if now is None else now
        return self.db.retry_lost_races(lambda: self._recover_dead_runs(at, max_attempts))

    def _recover_dead_runs(self, now: float, max_attempts: int) -> int:
        with self.db.tx():
            dead = self.runs.dead_run_ids()
            in_dead = f"run_id IN ({placeholders(dead)}) OR " if dead else ""
            rows = self.db.all(
                f"SELECT * FROM events WHERE status = 'running' AND ({in_dead}run_id IS NULL"
                " OR run_id NOT IN (SELECT id FROM runs WHERE status = 'running'))" + self.db.skip_locked,
                dead,
            )
            for row in rows:
                attempts = int(row["attempts"]) + 1
                if attempts >= max_attempts:
                    self._park(row, attempts, INTERRUPTED)
                else:
                    self._requeue(row, attempts=attempts, due=now, error=INTERRUPTED)
            self.runs.mark_interrupted(dead, now=now)
            return len(rows)

    def requeue_parked(self, event_ids: Iterable[int] | None = None, *, now: float | None = None) -> int:
        """Give parked events a fresh start (after the cause was fixed)."""
        at = time.time() if now is None else now
        ids = None if event_ids is None else list(event_ids)
        return self.db.retry_lost_races(lambda: self._requeue_parked(ids, at))

    def _requeue_parked(self, ids: list[int] | None, now: float) -> int:
        with self.db.tx():
            if ids is None:
                rows = self.db.all("SELECT * FROM events WHERE status = 'parked'" + self.db.skip_locked)
            else:
                rows = (
                    self.db.all(
                        f"SELECT * FROM events WHERE status = 'parked' AND id IN ({placeholders(ids)})"
                        + self.db.skip_locked,
                        ids,
                    )
                    if ids
                    else []
                )
            for row in rows:
                self._requeue(row, attempts=0, due=now, error=row["last_error"])
            return len(rows)

    def prune(self, *, cutoff: float) -> int:
        """Delete done/ignored events older than ``cutoff`` (in the caller's transaction)."""
        return self.db.run(
            "DELETE FROM events WHERE (status = 'done' AND done_ts < ?) OR (status = 'ignored' AND received_ts < ?)",
            (cutoff, cutoff),
        )
