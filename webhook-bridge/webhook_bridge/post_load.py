"""The post-load steps (``post_load_command``) after successful loads, off the events' path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import typing as t

from webhook_bridge import direct
from webhook_bridge.commands import meltano_command, nice_prefix, without_bridge_variables
from webhook_bridge.execution import execute
from webhook_bridge.logs import log

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from webhook_bridge.settings import Settings

LOGGER = logging.getLogger("webhook_bridge.runner")


class PostLoad:
    """Runs ``post_load_command`` (``<plugin>:<command>``) after successful loads, off the events' path.

    A successful webhook run or poll asks for it (:meth:`request`); the events are already done by
    then. Requests made while the steps run are served by one more run afterwards. A failure is
    logged and retried after ``post_load_retry_seconds`` (doubling up to 30 minutes, and at once when
    the next load succeeds); it never touches the load, its events or the state. In direct mode the
    command runs from the utility's virtualenv with the environment Meltano resolved for it; in
    ``meltano`` mode as ``meltano invoke <plugin>:<command>``. It does not take the run lock (the
    steps are idempotent and must not delay the next webhook run) and runs at ``run_niceness``.
    """

    MAX_RETRY_SECONDS = 1800.0

    def __init__(
        self, settings: Settings, environ: Mapping[str, str], service: direct.MeltanoService | None
    ) -> None:
        self.settings = settings
        self.environ = environ
        self.service = service
        self._wake = asyncio.Event()
        self._pending: int | None = None  # run id of the newest load waiting for the steps
        self.failures = 0
        self.runs = 0
        self._off_reason: str | None = None

    def request(self, run_id: int) -> None:
        if self.settings.post_load_command is None:
            return
        self._pending = run_id
        self.failures = 0  # a new load: try at once, whatever happened before
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ok = await self.run_pending()
            if ok is False:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._retry_delay())
                self._wake.set()  # retry (or serve the new request) now

    def _retry_delay(self) -> float:
        return min(self.MAX_RETRY_SECONDS, self.settings.post_load_retry_seconds * 2.0 ** (self.failures - 1))

    def _skip(self, reason: str) -> None:
        """The steps cannot run here: said once per reason."""
        if self._off_reason != reason:
            self._off_reason = reason
            log(
                LOGGER,
                logging.INFO,
                "post-load steps skipped",
                reason=reason,
                post_load_command=self.settings.post_load_command,
            )

    async def _command(self) -> tuple[list[str], dict[str, str]] | None:
        assert self.settings.post_load_command is not None
        plugin, _, command = self.settings.post_load_command.partition(":")
        base = without_bridge_variables(self.environ)
        if self.service is not None:
            with contextlib.suppress(direct.DirectUnavailable):
                answer = await self.service.command(plugin, command)
                if "missing" in answer:
                    self._skip(answer["missing"])
                    return None
                return [*nice_prefix(self.settings), *answer["argv"]], direct.plugin_env(base, answer["env"])
        missing = await asyncio.to_thread(
            direct.undeclared_command, self.settings.project_root, plugin, command
        )
        if missing:
            self._skip(missing)
            return None
        return [*meltano_command(self.settings), "invoke", self.settings.post_load_command], base

    async def run_pending(self) -> bool | None:
        """Run the steps for the pending request: True ok, False failed (kept pending), None nothing to do."""
        run_id = self._pending
        if run_id is None or self.settings.post_load_command is None:
            return None
        command = await self._command()
        if command is None:
            self._pending = None
            return None
        self._pending = None
        self.runs += 1
        log_path = self.settings.runs_log_dir / f"run-{run_id:08d}.post-load.log"
        fields = {"after_run_id": run_id, "post_load_command": self.settings.post_load_command}
        log(LOGGER, logging.INFO, "post-load started", **fields)
        outcome = await execute(
            command[0],
            command[1],
            cwd=self.settings.project_root,
            log_path=log_path,
            timeout=self.settings.run_timeout_seconds,
        )
        if outcome.ok:
            self.failures = 0
            log(LOGGER, logging.INFO, "post-load succeeded", duration_s=round(outcome.duration, 3), **fields)
            return True
        if self._pending is None:
            self._pending = run_id  # nothing newer asked meanwhile: this one is retried
        self.failures += 1
        log(
            LOGGER,
            logging.ERROR,
            "post-load failed; the load stands, the steps are retried",
            duration_s=round(outcome.duration, 3),
            exit_code=outcome.exit_code,
            failures=self.failures,
            retry_in_s=self._retry_delay(),
            error=outcome.summary(),
            **fields,
        )
        return False
