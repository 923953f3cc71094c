"""Turn queued events into runs of the tap with ``record_ids``, and run the polls: one locked-run path.

* **One path for every run.** A webhook run and a poll both go through :meth:`Runner._locked_run`:
  take the lock, recover the events of interrupted runs, begin the run (claim a group of events, or
  start a poll), execute it, record how it ended. On one machine the lock is ``RunLock``
  (``run_lock.py``, one run at a time everywhere); replicated mode (``replicas.py``) replaces it by
  a lock per account in the database.
* **Same state ID as polling.** A ``record_ids`` run never moves polling bookmarks and records what it
  delivered in the tap's change ledger, so it runs as plain ``meltano run tap-freshbooks <loader>``.
  Meltano refuses a second run of the same state ID ("already running": a cron poll); that is a
  retry later that does not count as an attempt.
* **Done only after exit code 0.** Events are acknowledged only after ``meltano run`` succeeded, i.e.
  after the loader committed the records and Meltano saved the state. Any failure retries them with
  exponential backoff; retries travel in ever smaller groups so a poison record ends up alone and is
  parked after ``max_attempts`` without holding back the others.
* **Direct mode** (``run_mode=direct``, the default): the same runs without starting Meltano each
  time; the tap and the loader are started from their plugin virtualenvs with the settings Meltano
  resolved once, and the state goes through Meltano's state backend (``direct.py``, ``parked.py``).
  ``meltano run`` (``commands.py``, ``execution.py``) stays the fallback whenever direct mode cannot
  be used, and the mode ``run_mode=meltano``.
* After a successful load the post-load steps run, off the events' path (``post_load.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import time
import typing as t

from webhook_bridge import direct
from webhook_bridge.commands import TapRun, build_command, build_env
from webhook_bridge.execution import RunCancelled, RunOutcome, execute, prune_logs
from webhook_bridge.logs import log
from webhook_bridge.parked import ParkedRuns, execute_direct
from webhook_bridge.post_load import PostLoad
from webhook_bridge.run_lock import RunLock

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from webhook_bridge.settings import Settings
    from webhook_bridge.store import Batch, Store

LOGGER = logging.getLogger("webhook_bridge.runner")

PRUNE_AFTER_SECONDS = 7 * 86400
ORPHAN_CHECK_SECONDS = 10.0
PRUNE_EVERY_SECONDS = 3600.0
DIRECT_RETRY_SECONDS = 300.0  # direct mode could not be used: runs go through meltano run this long


@dataclasses.dataclass(frozen=True)
class Job:
    """A run that has begun (its row is in the runs table): a claimed group of events, or a poll."""

    run_id: int
    account_id: str | None  # a poll of every account: None
    batch: Batch | None = None  # a poll: None

    def tap_run(self) -> TapRun:
        """The tap settings of this run: its account, and a webhook run's records."""
        run: TapRun = {} if self.account_id is None else {"account_ids": [self.account_id]}
        if self.batch is not None:
            run["record_ids"] = self.batch.record_ids
            run["event_received_at"] = self.batch.event_received_at
        return run

    def log_fields(self) -> dict[str, t.Any]:
        if self.batch is None:
            return {
                "run_id": self.run_id,
                "kind": "poll",
                **({"account_id": self.account_id} if self.account_id else {}),
            }
        return {
            "run_id": self.run_id,
            "kind": "webhook",
            "account_id": self.batch.account_id,
            "streams": list(self.batch.record_ids),
            "records": self.batch.record_count,
            "events": len(self.batch.events),
            "retry_level": self.batch.attempt_level,
        }


class Runner:
    """Claims event groups and runs them, and the polls, one at a time, under the global run lock.

    Replicated mode (``replicas.ReplicatedRunner``) changes what the lock is (:meth:`_turn`), how
    often recovery looks (``RECOVER_EVERY_SECONDS``) and which polls there are (:meth:`_poll_targets`);
    the path of a run (:meth:`_locked_run`) is this one.
    """

    RECOVER_EVERY_SECONDS = 0.0  # one machine: whenever the lock was taken (no run is ours then)

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        environ: Mapping[str, str] | None = None,
        lock: RunLock | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.environ = dict(os.environ if environ is None else environ)
        self.lock = lock or RunLock(settings.lock_path, keep_open=settings.run_mode == "direct")
        self.mutex = asyncio.Lock()  # in-process: runner and poller take turns
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.current_run: int | None = None
        self.runs_started = 0
        self.direct = (
            direct.MeltanoService(
                settings, build_env(self.environ, settings), settings.data_dir / "meltano-service.log"
            )
            if settings.run_mode == "direct"
            else None
        )
        self._direct_fallback_reason: str | None = None
        self._direct_retry_at = 0.0  # after a failed direct attempt: meltano run until then
        self.parked = ParkedRuns(settings, self.environ, self.lock) if self.direct is not None else None
        self.park_ahead = False  # serve: yes (run_forever); a one-off `webhook-bridge poll`: no
        self.post_load = PostLoad(settings, self.environ, self.direct)
        self._orphans_checked_at = 0.0
        self._pruned_at = time.monotonic()
        self._recovered_at = -float("inf")

    # -- control ------------------------------------------------------------------------------
    def wake(self) -> None:
        """New events were queued: re-check the schedule now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop direct mode's parked run and Meltano helper (if any)."""
        if self.parked is not None:
            await asyncio.shield(self.parked.close())
        if self.direct is not None:
            await asyncio.shield(self.direct.close())

    async def _park_next(self) -> None:
        """Direct mode: start the next run's supervisor while nothing is due (never fails a run)."""
        if (
            not self.park_ahead
            or self.parked is None
            or self.direct is None
            or self.direct.resolved is None
            or self.stopping
        ):
            return
        try:
            await self.parked.park(self.direct.resolved)
        except Exception as exc:  # noqa: BLE001  (the next run starts its own)
            log(LOGGER, logging.WARNING, "could not start the next run ahead of time", error=str(exc))

    async def run_forever(self) -> None:
        """Work until :meth:`stop`; never dies from a failed run."""
        post_load = asyncio.create_task(self.post_load.run_forever(), name="post-load")
        self.park_ahead = True
        try:
            await self._run_forever()
        finally:
            post_load.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await post_load
            await self.close()

    async def _run_forever(self) -> None:
        log(
            LOGGER,
            logging.INFO,
            "runner started",
            coalesce_window_s=self.settings.coalesce_window_seconds,
            run_mode=self.settings.run_mode,
        )
        recover_checked = False
        while not self.stopping:
            # clear BEFORE looking at the queue: a wake() during this iteration then cuts the
            # following sleep short instead of being lost
            self._wake.clear()
            try:
                if not recover_checked or await asyncio.to_thread(self._has_orphans):
                    recover_checked = True
                    await self.run_next(recover_only=True)
                did_work = await self.run_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("runner iteration failed", extra={"fields": {}})
                did_work = False
                await self._sleep_on(self._wake, 5.0)
                continue
            await self._prune_now_and_then()
            if not did_work:
                await self._sleep_on(self._wake, await asyncio.to_thread(self._seconds_until_due))

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
            self._pruned_at = time.monotonic()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.prune, older_than=PRUNE_AFTER_SECONDS)

    def _has_orphans(self) -> bool:
        """Events marked running while we run nothing: left by a process that died (checked
        at most every ORPHAN_CHECK_SECONDS; cheap indexed query)."""
        now = time.monotonic()
        if self.current_run is not None or now - self._orphans_checked_at < ORPHAN_CHECK_SECONDS:
            return False
        self._orphans_checked_at = now
        return self.store.has_running()

    def _seconds_until_due(self) -> float:
        due = self.store.next_due()
        if due is None:
            return 60.0
        return max(0.0, min(60.0, due - time.time()))

    @staticmethod
    async def _sleep_on(event: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds``, or until ``event`` is set."""
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    # -- webhook runs and polls: their entry points ---------------------------------------------
    async def run_next(self, *, recover_only: bool = False) -> bool:
        """Take the lock, recover interrupted events, claim one due group and run it.

        Returns True if a run happened (or events were recovered).
        """
        done = await self._locked_run(
            None, self._nothing if recover_only else self._claim, when_due=not recover_only
        )
        if done is None:
            return False
        recovered, outcome = done
        return outcome is not None or bool(recovered)

    async def run_poll(self) -> RunOutcome | None:
        """One incremental poll of every account (``None``: stopped before the lock was taken).

        Of several polls (replicated mode: one per account) the outcome is the last failed one.
        """
        try:
            accounts = await self._poll_targets()
        except Exception as exc:  # noqa: BLE001  (one line; the poll is retried on schedule)
            log(LOGGER, logging.ERROR, "poll: cannot list the accounts", error=str(exc))
            return RunOutcome(exit_code=1, duration=0.0, tail=f"cannot list the accounts: {exc}")
        outcome: RunOutcome | None = None
        for account_id in accounts:
            done = await self._locked_run(account_id, functools.partial(self._begin_poll, account_id))
            if done is None:
                return None
            one = done[1]
            assert one is not None  # a poll always begins
            if outcome is None or not one.ok:
                outcome = one
        return outcome or RunOutcome(exit_code=0, duration=0.0, tail="")

    async def _poll_targets(self) -> list[str | None]:
        """The polls a poll consists of: here one, of every account (``None``), under one state ID."""
        return [None]

    async def run_post_load_now(self) -> bool | None:
        """The post-load steps once, now, if a load asked for them (``webhook-bridge poll``)."""
        return await self.post_load.run_pending()

    def state_id_suffix(
        self,
        account_id: str | None,  # noqa: ARG002  (replicated: the account)
    ) -> str | None:
        """The state ID suffix of an account's runs: none here (one pipeline for every account)."""
        return None

    # -- the one locked-run path ------------------------------------------------------------------
    async def _locked_run(
        self,
        account_id: str | None,
        begin: Callable[[], Awaitable[Job | None]],
        *,
        when_due: bool = False,
    ) -> tuple[int, RunOutcome | None] | None:
        """Lock → recover → begin → execute → record, for every run.

        ``begin`` claims a group of events or starts a poll (``None``: nothing to run). Returns
        ``None`` if the lock was not taken, else (events recovered, the run's outcome or ``None``).
        """
        async with self._turn(account_id, when_due=when_due) as held:
            if not held:
                return None
            recovered = await self._recover()
            job = await begin()
            return recovered, None if job is None else await self._run(job)

    @contextlib.asynccontextmanager
    async def _turn(
        self,
        account_id: str | None,  # noqa: ARG002  (replicated: the account's lock)
        *,
        when_due: bool = False,
    ) -> AsyncIterator[bool]:
        """Hold the right to run while the body runs (``False``: not now, or stopping).

        One machine: this process's turn (runner and poller take turns) and ``RunLock``, whatever
        the account. ``when_due``: only if a group of events is due (else the lock is not taken).
        """
        async with self.mutex:
            if when_due:
                due = await asyncio.to_thread(self.store.next_due)
                if due is None or due > time.time():
                    yield False
                    return
            if not await self.lock.acquire_async(self._stop):
                yield False
                return
            try:
                yield True
            finally:
                self.lock.release()

    async def _recover(self) -> int:
        """Events of interrupted runs go back to the queue (at most every RECOVER_EVERY_SECONDS)."""
        if time.monotonic() - self._recovered_at < self.RECOVER_EVERY_SECONDS:
            return 0
        self._recovered_at = time.monotonic()
        recovered = await asyncio.to_thread(
            self.store.recover_interrupted, max_attempts=self.settings.max_attempts
        )
        if recovered:
            log(LOGGER, logging.WARNING, "recovered events of an interrupted run", events=recovered)
        return recovered

    @staticmethod
    async def _nothing() -> Job | None:
        return None

    async def _claim(self) -> Job | None:
        batch = await asyncio.to_thread(self.store.claim, max_batch=self.settings.max_batch_records)
        return None if batch is None else Job(batch.run_id, batch.account_id, batch)

    async def _begin_poll(self, account_id: str | None) -> Job:
        run_id = await asyncio.to_thread(self.store.start_run, "poll", account_id=account_id)
        return Job(run_id, account_id)

    async def _run(self, job: Job) -> RunOutcome:
        """Execute a run that has begun, and record how it ended."""
        fields = job.log_fields()
        log(LOGGER, logging.INFO, "poll started" if job.batch is None else "run started", **fields)
        tap_run = job.tap_run()
        env = build_env(
            self.environ, self.settings, state_id_suffix=self.state_id_suffix(job.account_id), **tap_run
        )
        outcome = await self._execute(job, env, tap_run)
        if outcome.busy and not outcome.direct and self._previous_run_was_killed(job.run_id):
            # Meltano's job row of OUR killed run still says RUNNING (it would only go stale after
            # 5 minutes without heartbeat). We hold the run lock, so no bridge run is in progress.
            log(LOGGER, logging.WARNING, "previous run was killed; re-running with --force", **fields)
            await asyncio.to_thread(self.store.update_run, job.run_id, forced=1)
            outcome = await self._execute(job, env, tap_run, force=True)
        if job.batch is None:
            await self._record_poll(job.run_id, outcome, fields)
        else:
            await self._record_batch(job.batch, outcome, fields)
        return outcome

    def _previous_run_was_killed(self, run_id: int) -> bool:
        for run in self.store.runs(limit=5):
            if run.id >= run_id or run.status == "running":
                continue
            return run.status in ("interrupted", "cancelled", "timeout") or (
                run.exit_code is not None and run.exit_code < 0
            )
        return False

    async def _execute(
        self, job: Job, env: Mapping[str, str], tap_run: TapRun, *, force: bool = False
    ) -> RunOutcome:
        """One run of ``job`` (the caller holds the lock): direct, else ``meltano run``."""
        run_id = job.run_id
        log_path = self.settings.runs_log_dir / f"run-{run_id:08d}.log"
        self.current_run = run_id
        self.runs_started += 1

        def on_start(pid: int) -> None:
            self.store.update_run(run_id, pid=pid, log_path=str(log_path))

        try:
            if self.direct is not None and not force and time.monotonic() >= self._direct_retry_at:
                assert self.parked is not None
                try:
                    return await execute_direct(
                        self.direct,
                        self.parked,
                        self.settings,
                        run_dir=self.settings.data_dir / "direct" / f"run-{run_id:08d}",
                        log_path=log_path,
                        on_start=on_start,
                        state_id_suffix=self.state_id_suffix(job.account_id),
                        **tap_run,
                    )
                except direct.DirectUnavailable as exc:
                    self._direct_retry_at = time.monotonic() + DIRECT_RETRY_SECONDS
                    if str(exc) != self._direct_fallback_reason:
                        self._direct_fallback_reason = str(exc)
                        log(
                            LOGGER,
                            logging.WARNING,
                            "direct run not possible; using meltano run",
                            reason=str(exc),
                            run_id=run_id,
                        )
            return await execute(
                build_command(self.settings, force=force),
                env,
                cwd=self.settings.project_root,
                log_path=log_path,
                timeout=self.settings.run_timeout_seconds,
                pass_fd=self.lock.fd,
                on_start=on_start,
            )
        except RunCancelled as cancelled:
            await asyncio.shield(asyncio.to_thread(self._record_cancel, run_id, cancelled.outcome))
            raise
        finally:
            self.current_run = None
            await asyncio.to_thread(prune_logs, self.settings.runs_log_dir)
            await self._park_next()

    # -- recording how a run ended ----------------------------------------------------------------
    async def _record_batch(self, batch: Batch, outcome: RunOutcome, fields: dict[str, t.Any]) -> None:
        now = time.time()
        if outcome.ok:
            await asyncio.to_thread(self.store.ack, batch.run_id, now=now)
            await asyncio.to_thread(
                self.store.update_run, batch.run_id, status="succeeded", exit_code=0, finished_ts=now
            )
            for event in batch.events:
                log(
                    LOGGER,
                    logging.DEBUG,
                    "event loaded",
                    run_id=batch.run_id,
                    event_name=event.name,
                    account_id=event.account_id,
                    object_id=event.object_id,
                    received_at=event.received_at,
                    latency_s=round(now - event.received_ts, 3),
                )
            log(LOGGER, logging.INFO, "run succeeded", **outcome.log_fields(), **fields)
            self.post_load.request(batch.run_id)
            return
        busy = outcome.busy  # Meltano refused: same state ID running; retry without an attempt
        counts = await asyncio.to_thread(
            self.store.fail,
            batch.run_id,
            "meltano: the pipeline is already running (another run of the same state ID)"
            if busy
            else outcome.summary(),
            max_attempts=self.settings.max_attempts,
            retry_base=self.settings.retry_base_seconds,
            retry_max=self.settings.retry_max_seconds,
            count_attempt=not busy,
            retry_delay=self.settings.busy_retry_seconds if busy else None,
            now=now,
        )
        status = "busy" if busy else "timeout" if outcome.timed_out else "failed"
        await asyncio.to_thread(
            self.store.update_run,
            batch.run_id,
            status=status,
            exit_code=outcome.exit_code,
            error=outcome.summary(),
            finished_ts=now,
        )
        log(
            LOGGER,
            logging.WARNING if status == "busy" else logging.ERROR,
            f"run {status}",
            **outcome.log_fields(),
            exit_code=outcome.exit_code,
            retry=counts["retry"],
            parked=counts["parked"],
            error=outcome.summary(),
            **fields,
        )
        if counts["parked"]:
            for event in await asyncio.to_thread(self.store.events_of_run, batch.run_id, "parked"):
                log(
                    LOGGER,
                    logging.ERROR,
                    "event parked after too many failed runs",
                    run_id=batch.run_id,
                    event_id=event.id,
                    event_name=event.name,
                    account_id=event.account_id,
                    object_id=event.object_id,
                    received_at=event.received_at,
                    attempts=event.attempts,
                )

    async def _record_poll(self, run_id: int, outcome: RunOutcome, fields: dict[str, t.Any]) -> None:
        status = "succeeded" if outcome.ok else ("busy" if outcome.busy else "failed")
        await asyncio.to_thread(
            self.store.update_run,
            run_id,
            status=status,
            exit_code=outcome.exit_code,
            error=None if outcome.ok else outcome.summary(),
            finished_ts=time.time(),
        )
        log(
            LOGGER,
            logging.INFO if outcome.ok else logging.ERROR,
            f"poll {status}",
            **outcome.log_fields(),
            exit_code=outcome.exit_code,
            **({} if outcome.ok else {"error": outcome.summary()}),
            **fields,
        )
        if outcome.ok:
            self.post_load.request(run_id)

    def _record_cancel(self, run_id: int, outcome: RunOutcome) -> None:
        """Shutdown during a run: its events go back unchanged (no attempt counted)."""
        self.store.fail(
            run_id,
            "cancelled: the bridge shut down during the run",
            max_attempts=self.settings.max_attempts,
            retry_base=self.settings.retry_base_seconds,
            retry_max=self.settings.retry_max_seconds,
            count_attempt=False,
            retry_delay=0.0,
        )
        self.store.update_run(
            run_id, status="cancelled", exit_code=outcome.exit_code, finished_ts=time.time()
        )
