"""The scheduled incremental poll: catches every change whose webhook never arrived.

Every ``poll_interval`` seconds (default 900; 0 disables) the bridge runs the ordinary incremental
``meltano run <extractor> <loader>`` through the same run lock as webhook runs. The tap's change ledger
makes it exactly-once: a record already loaded by a webhook run and unchanged since is not sent again;
a record changed again is.

The schedule survives restarts: the next poll is due ``poll_interval`` after the last one started
(as recorded in the ``runs`` table), immediately if there never was one. A poll refused because the
pipeline is busy (a cron run) is retried after ``busy_retry_seconds``; a failed one after at most five
minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import typing as t

from webhook_bridge.logs import log

if t.TYPE_CHECKING:
    from webhook_bridge.runner import Runner
    from webhook_bridge.settings import Settings
    from webhook_bridge.store import RunRecord, Store

LOGGER = logging.getLogger("webhook_bridge.poller")
FAILED_POLL_RETRY_SECONDS = 300.0


def next_poll_at(last: RunRecord | None, settings: Settings, *, now: float) -> float | None:
    """When the next poll is due (``None``: polling disabled). Pure function of the last poll."""
    interval = settings.poll_interval
    if interval <= 0:
        return None
    if last is None:
        return now
    if last.status == "running":
        # a poll of another bridge process (or ours, interrupted): try again after the interval
        return last.started_ts + interval
    finished = last.finished_ts or last.started_ts
    if last.status == "succeeded":
        return last.started_ts + interval
    if last.status == "busy":
        return finished + min(interval, settings.busy_retry_seconds)
    return finished + min(interval, FAILED_POLL_RETRY_SECONDS)


class Poller:
    """Runs :meth:`Runner.run_poll` on schedule until stopped."""

    def __init__(self, settings: Settings, store: Store, runner: Runner) -> None:
        self.settings = settings
        self.store = store
        self.runner = runner
        self._wake = asyncio.Event()
        self._forced = False

    def poll_now(self) -> None:
        """Ask for a poll at the next opportunity (used by tests and the status endpoint)."""
        self._forced = True
        self._wake.set()

    async def run_forever(self) -> None:
        if self.settings.poll_interval <= 0:
            log(LOGGER, logging.INFO, "scheduled polling disabled (poll_interval = 0)")
            return
        log(LOGGER, logging.INFO, "poller started", poll_interval_s=self.settings.poll_interval)
        while not self.runner.stopping:
            self._wake.clear()
            last = await asyncio.to_thread(self.store.last_run, "poll")
            due = next_poll_at(last, self.settings, now=time.time())
            wait = 0.0 if (due is None or self._forced) else max(0.0, due - time.time())
            if due is None:
                return
            if wait > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(wait, 60.0))
                continue
            self._forced = False
            try:
                outcome = await self.runner.run_poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                LOGGER.exception("poll failed to start", extra={"fields": {}})
                await asyncio.sleep(30)
                continue
            if outcome is None:  # stopping
                return
