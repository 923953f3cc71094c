"""The running service behind the routes: group commit, verifier cache, background workers.

Owned by the app's lifespan (``create_app``). Nothing here runs at import time.

* **Group commit.** Handlers hand each valid event to one committer task, which writes everything
  that queued up meanwhile in ONE SQLite transaction (one fsync) on a worker thread and then
  resolves each handler's future. The handler answers 200 only after its future resolved, i.e. after
  the commit is durable. Under concurrency this keeps acknowledgement latency flat.
* **Verifier cache.** Decrypted verifiers of verified callbacks, per account, in memory; reloaded
  when an account or a signature is unknown (at most once a second) and after every verification.
* **Verification worker.** Confirms stored verifiers with FreshBooks' verify PUT, off the request
  path, with retries; until FreshBooks accepts a verifier it authenticates nothing.
* **Runner and poller** (``runner.py``, ``poller.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import typing as t

from webhook_bridge.freshbooks import FreshBooksAPIError, default_client_factory
from webhook_bridge.logs import log
from webhook_bridge.poller import Poller
from webhook_bridge.replicas import ReplicatedRunner
from webhook_bridge.runner import Runner
from webhook_bridge.store import EnqueueResult, Store, StoreError, backoff_seconds

if t.TYPE_CHECKING:
    from webhook_bridge.settings import Settings
    from webhook_bridge.signature import EventDelivery, VerificationDelivery

LOGGER = logging.getLogger("webhook_bridge.service")
MAX_GROUP = 512
VERIFY_MAX_ATTEMPTS = 10
CACHE_RELOAD_MIN_INTERVAL = 1.0
CACHE_MAX_AGE = 30.0

ClientFactory = t.Callable[[], t.Any]  # -> FreshBooksClient-like (verify_callback)


class Bridge:
    """Everything the HTTP handlers and background tasks share."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: ClientFactory | None = None,
        run_runner: bool = True,
    ) -> None:
        self.settings = settings
        self.store = Store.from_settings(settings)
        self.run_runner = run_runner
        self.client_factory = client_factory or default_client_factory(settings)
        self._client: t.Any = None
        self._queue: asyncio.Queue[tuple[EventDelivery, float, asyncio.Future[EnqueueResult]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._verifiers: dict[str, list[str]] = {}
        self._verifiers_loaded_at = 0.0
        self._verify_wake: asyncio.Event | None = None
        self.runner: Runner | None = None
        self.poller: Poller | None = None
        self._runner_store: Store | None = None
        self.started_at = time.time()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._verify_wake = asyncio.Event()
        await asyncio.to_thread(self.reload_verifiers)
        self._tasks.append(asyncio.create_task(self._committer(), name="committer"))
        self._tasks.append(asyncio.create_task(self._verification_worker(), name="verifier"))
        if self.run_runner:
            self._runner_store = Store.from_settings(self.settings)
            # replicated (database_url): a pipeline per account, under its lock in the database
            runner_class = ReplicatedRunner if self.settings.database_url else Runner
            self.runner = runner_class(self.settings, self._runner_store)
            self.poller = Poller(self.settings, self._runner_store, self.runner)
            self._tasks.append(asyncio.create_task(self.runner.run_forever(), name="runner"))
            self._tasks.append(asyncio.create_task(self.poller.run_forever(), name="poller"))
        log(
            LOGGER,
            logging.INFO,
            "bridge started",
            data_dir=str(self.settings.data_dir),
            accounts_with_verifiers=sorted(self._verifiers),
            runner=self.run_runner,
        )

    async def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        # let the committer flush what is queued, then cancel everything
        if self._queue is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drain_queue(), 5.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._runner_store is not None:
            self._runner_store.close()
        self.store.close()

    async def _drain_queue(self) -> None:
        assert self._queue is not None
        while not self._queue.empty():
            await asyncio.sleep(0.01)

    def healthy(self) -> tuple[bool, str]:
        """Can the bridge take events right now?"""
        for task in self._tasks:
            if task.get_name() == "committer" and task.done():
                return False, "committer stopped"
        try:
            self.store.ping()
        except Exception as exc:  # noqa: BLE001
            return False, f"queue database unusable: {type(exc).__name__}"
        return True, "ok"

    # -- events -------------------------------------------------------------------------------
    async def enqueue(
        self, delivery: EventDelivery, received_ts: float, *, timeout: float = 8.0
    ) -> EnqueueResult:
        """Durably store one event (group commit). Raises StoreError / TimeoutError."""
        assert self._queue is not None, "bridge not started"
        future: asyncio.Future[EnqueueResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((delivery, received_ts, future))
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    async def _committer(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                results = await asyncio.to_thread(
                    self.store.enqueue_many,
                    [(d, ts) for d, ts, _ in group],
                    coalesce_window=self.settings.coalesce_window_seconds,
                )
            except Exception as exc:  # noqa: BLE001  (every waiting handler must hear about it)
                if not isinstance(exc, StoreError):
                    exc = StoreError(f"cannot store event: {type(exc).__name__}: {exc}")
                log(LOGGER, logging.ERROR, "queue write failed", error=str(exc), events=len(group))
                for _, _, fut in group:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, _, fut), result in zip(group, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
            if self.runner is not None:
                self.runner.wake()

    # -- verifiers ----------------------------------------------------------------------------
    def reload_verifiers(self) -> None:
        self._verifiers = self.store.verified_verifiers()
        self._verifiers_loaded_at = time.monotonic()

    async def verifiers_for(self, account_id: str, *, refresh: bool = False) -> list[str]:
        """Verified verifiers of an account (cached; ``refresh`` re-reads at most once a second)."""
        age = time.monotonic() - self._verifiers_loaded_at
        if age > CACHE_MAX_AGE or (refresh and age > CACHE_RELOAD_MIN_INTERVAL):
            await asyncio.to_thread(self.reload_verifiers)
        return self._verifiers.get(account_id, [])

    def account_allowed(self, account_id: str) -> bool:
        """Events: only accounts in ``account_ids`` when that is set."""
        return not self.settings.account_ids or account_id in self.settings.account_ids

    async def verification_allowed(self, account_id: str) -> bool:
        """Verifications are unauthenticated, so they are taken only for accounts we expect:
        ``account_ids`` if set, else accounts ``register`` ran for (or that already have callbacks).
        Anything else could make the bridge store rows and call FreshBooks for arbitrary accounts."""
        if self.settings.account_ids:
            return account_id in self.settings.account_ids
        return await asyncio.to_thread(self.store.known_account, account_id)

    async def accept_verification(self, delivery: VerificationDelivery, account_id: str) -> str:
        """Store the verifier (encrypted, pending) and wake the worker that confirms it."""
        _, status = await asyncio.to_thread(
            self.store.add_verifier, account_id, delivery.callback_id, delivery.verifier
        )
        if self._verify_wake is not None:
            self._verify_wake.set()
        return status

    async def callback_account(self, callback_id: str) -> str | None:
        account = await asyncio.to_thread(self.store.callback_account, callback_id)
        if account is None and len(self.settings.account_ids) == 1:
            account = self.settings.account_ids[0]
        return account

    async def _verification_worker(self) -> None:
        assert self._verify_wake is not None
        while True:
            self._verify_wake.clear()  # before reading: a wake meanwhile is not lost
            try:
                due = await asyncio.to_thread(self.store.due_verifications)
                for stored in due:
                    await asyncio.to_thread(self._confirm, stored)
                next_due = await asyncio.to_thread(self.store.next_verification_due)
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("verification worker iteration failed", extra={"fields": {}})
                next_due = time.time() + 30
            wait = 60.0 if next_due is None else max(0.05, min(60.0, next_due - time.time()))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._verify_wake.wait(), wait)

    def _confirm(self, stored: t.Any) -> None:
        """The verify PUT for one stored verifier (worker thread)."""
        fields = {"account_id": stored.account_id, "callback_id": stored.callback_id}
        try:
            if self._client is None:
                self._client = self.client_factory()
            callback = self._client.verify_callback(stored.account_id, stored.callback_id, stored.verifier)
        except FreshBooksAPIError as exc:
            attempts = stored.attempts + 1
            if exc.retryable and attempts < VERIFY_MAX_ATTEMPTS:
                delay = backoff_seconds(attempts, 2.0, 600.0)
                self.store.mark_verifier(stored.id, "pending", error=str(exc), retry_in=delay)
                log(
                    LOGGER,
                    logging.WARNING,
                    "verify call failed; will retry",
                    error=str(exc),
                    retry_in_s=round(delay, 1),
                    **fields,
                )
            elif exc.retryable:
                self.store.mark_verifier(stored.id, "failed", error=str(exc))
                log(
                    LOGGER,
                    logging.ERROR,
                    "verify call failed; giving up (use register --resend)",
                    error=str(exc),
                    **fields,
                )
            else:
                self.store.mark_verifier(stored.id, "rejected", error=str(exc))
                log(
                    LOGGER,
                    logging.WARNING,
                    "FreshBooks rejected the verifier (forged or stale verification delivery)",
                    error=str(exc),
                    status=exc.status,
                    **fields,
                )
            return
        except Exception as exc:  # noqa: BLE001  (settings missing, tap not installed, ...)
            attempts = stored.attempts + 1
            self.store.mark_verifier(stored.id, "pending", error=str(exc), retry_in=60.0)
            log(
                LOGGER,
                logging.ERROR,
                "verify call could not be made; will retry",
                error=str(exc),
                error_type=type(exc).__name__,
                attempts=attempts,
                **fields,
            )
            return
        self.store.mark_verifier(stored.id, "verified")
        self.reload_verifiers()
        log(
            LOGGER,
            logging.INFO,
            "callback verified",
            event=getattr(callback, "event", None),
            verified=getattr(callback, "verified", None),
            **fields,
        )
