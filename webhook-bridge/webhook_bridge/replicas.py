"""Replicated mode: several bridge processes share one PostgreSQL queue (``WEBHOOK_BRIDGE_DATABASE_URL``).

Each account is its own pipeline:

* **Its own state ID.** Every run of account ``X`` (webhook runs and polls) extracts only ``X``
  (the tap's ``account_ids``) under the state ID ``<environment>:<extractor>-to-<loader>:X``, as
  ``meltano run --state-id-suffix=X`` names it. The Meltano state must be shared by the replicas:
  point Meltano's system database (``MELTANO_DATABASE_URI``) or ``state_backend.uri`` at storage
  every replica reaches.
* **Its own lock, in the database.** A run holds the account's lock (``store/account_locks.py``: a
  session-level advisory lock of the claiming connection), so runs of one account never overlap,
  while runs of different accounts go in parallel on different replicas. A replica killed with
  ``kill -9`` frees its accounts at once (its connection closes); its run supervisor sees its
  stdin close and kills the tap and the loader (``meltano_pipeline.py``), and the events of the
  dead run are recovered by a live replica and run again (the loader upserts).
* **The tap's pipeline lock is per state ID** too (``MELTANO_RUN_STATE_ID_SUFFIX``), so it no
  longer serialises runs of different accounts; pointed at shared storage
  (``pipeline_lock_url``) it also keeps an orphaned run and its re-run apart.
* **``workers`` runs at a time per replica** (default 1), each of another account.

Polls run per account too: ``account_ids`` if set, else every account the grant reaches
(FreshBooks ``/auth/api/v1/users/me``). A poll of an account that another replica polled less than
half an interval ago is skipped. The first poll of an account in this mode has no state yet, so it
is a full extraction of that account (upserted: no row is duplicated).

The single-machine default (SQLite, one global run lock, one state ID) is :class:`Runner`,
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import typing as t

from webhook_bridge.freshbooks import default_client_factory
from webhook_bridge.logs import log
from webhook_bridge.runner import Job, Runner

if t.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from webhook_bridge.execution import RunOutcome
    from webhook_bridge.settings import Settings
    from webhook_bridge.store import Store

LOGGER = logging.getLogger("webhook_bridge.replicas")
ACCOUNT_WAIT_POLL_SECONDS = 0.5


class ReplicatedRunner(Runner):
    """Runs of different accounts in parallel (``workers`` here, more on other replicas)."""

    RECOVER_EVERY_SECONDS = 2.0  # a dead replica's runs; every worker looks, one query is enough

    def __init__(self, settings: Settings, store: Store, *, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, store, environ=environ)
        if self.parked is not None:  # no file lock to hand down: the account lock is in the database
            self.parked.lock = None
        self.workers = settings.workers
        self._slots = asyncio.Semaphore(self.workers)
        self._wakes: list[asyncio.Event] = []
        self.active_runs: set[int] = set()

    def state_id_suffix(self, account_id: str | None) -> str | None:
        return account_id

    def wake(self) -> None:
        super().wake()
        for event in self._wakes:
            event.set()

    def stop(self) -> None:
        super().stop()
        for event in self._wakes:
            event.set()

    # -- the loop -----------------------------------------------------------------------------
    async def _run_forever(self) -> None:
        log(
            LOGGER,
            logging.INFO,
            "runner started (replicated)",
            workers=self.workers,
            holder=self.store.locks.holder,
            run_mode=self.settings.run_mode,
        )
        await self._prepare()
        workers = [asyncio.create_task(self._worker(n), name=f"worker-{n}") for n in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            for task in workers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _prepare(self) -> None:
        """Direct mode: resolve the plugins and park the first run's supervisor now, so that the
        first runs of a replica that joins under load do not wait for Meltano (~10 s here)."""
        if self.direct is None:
            return
        try:
            await self.direct.resolve()
        except Exception as exc:  # noqa: BLE001  (the first run says it again and falls back)
            log(LOGGER, logging.WARNING, "direct runs not prepared", reason=str(exc))
            return
        await self._park_next()

    async def _worker(self, number: int) -> None:
        wake = asyncio.Event()
        self._wakes.append(wake)
        while not self.stopping:
            wake.clear()  # before looking at the queue: a wake meanwhile is not lost
            try:
                did_work = await self.run_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("runner iteration failed", extra={"fields": {"worker": number}})
                did_work = False
                await self._sleep_on(wake, 5.0)
                continue
            await self._prune_now_and_then()
            if not did_work:
                await self._sleep_on(
                    wake, min(self.RECOVER_EVERY_SECONDS, await asyncio.to_thread(self._seconds_until_due))
                )

    # -- what changes in the locked-run path ----------------------------------------------------
    @contextlib.asynccontextmanager
    async def _turn(
        self,
        account_id: str | None,
        *,
        when_due: bool = False,  # noqa: ARG002  (every worker looks at the queue and recovers)
    ) -> AsyncIterator[bool]:
        """A worker slot, and for a poll its account's lock (``False``: stopping). A webhook run's
        account is locked by its claim, and freed by its ack or fail (:meth:`_run`)."""
        async with self._slots:
            if account_id is None:
                yield True
                return
            if not await self._take_account(account_id):
                yield False
                return
            try:
                yield True
            finally:
                await asyncio.shield(asyncio.to_thread(self.store.locks.release, account_id))

    async def _run(self, job: Job) -> RunOutcome:
        if job.batch is None:
            return await super()._run(job)
        self.active_runs.add(job.run_id)
        try:
            return await super()._run(job)  # its ack / fail frees the account
        finally:
            self.active_runs.discard(job.run_id)
            # also when the run ended without an outcome (an unexpected error)
            await asyncio.shield(asyncio.to_thread(self.store.locks.release_run, job.run_id))

    async def _take_account(self, account_id: str) -> bool:
        """Wait for ``account_id``'s lock (False: the bridge is stopping)."""
        while not await asyncio.to_thread(self.store.locks.try_acquire, account_id):
            if self.stopping:
                return False
            await asyncio.sleep(ACCOUNT_WAIT_POLL_SECONDS)
        return True

    # -- polls --------------------------------------------------------------------------------
    async def _poll_targets(self) -> list[str | None]:
        """One poll per account, each under its own lock and state ID; recently polled ones skipped."""
        accounts = await asyncio.to_thread(self.poll_accounts)
        recent = await asyncio.to_thread(self._recently_polled)
        return [account_id for account_id in accounts if account_id not in recent]

    def poll_accounts(self) -> list[str]:
        """The accounts a poll goes through: ``account_ids``, else every account the grant reaches."""
        if self.settings.account_ids:
            return list(self.settings.account_ids)
        client = default_client_factory(self.settings)()
        try:
            return client.account_ids()
        finally:
            client.close()

    def _recently_polled(self) -> set[str]:
        """Accounts whose last poll (on any replica) started less than half an interval ago."""
        horizon = time.time() - self.settings.poll_interval / 2
        return {
            run.account_id
            for run in self.store.runs(limit=500, kind="poll")
            if run.account_id and run.status in ("running", "succeeded") and run.started_ts > horizon
        }
