"""Direct mode's runs (``direct.py``): run supervisors started before their run is due, and one run.

A direct run takes a parked supervisor (``meltano_pipeline.py``, the tap and the loader already
imported), hands it the run's files, saves the loader's last state through Meltano's state backend
and ends like any other run (``execution.RunOutcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import typing as t
from pathlib import Path

from webhook_bridge import direct
from webhook_bridge.commands import SUFFIX_VAR, nice_prefix, without_bridge_variables
from webhook_bridge.execution import RunCancelled, RunOutcome, log_tail, wait_or_terminate
from webhook_bridge.spawn import PIPE, Child, spawn

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from webhook_bridge.run_lock import RunLock
    from webhook_bridge.settings import Settings


class ParkedRuns:
    """Direct mode's run supervisors, each started before its run is due (``meltano_pipeline.py``).

    At most one waits at a time, for the current resolution, with the tap and the target already
    imported; a run takes it (or starts one right away) and, once it ended, the next one is parked.
    Its output goes to a log file of its own, renamed to the run's when a run takes it. The parked
    processes hold the run lock's kept-open descriptor, so they share the lock the bridge takes
    (``lock=None`` in replicated mode: the account's lock is held in the database).
    """

    def __init__(self, settings: Settings, base_env: Mapping[str, str], lock: RunLock | None) -> None:
        self.settings = settings
        self.base_env = dict(base_env)
        self.lock = lock
        self._parked: tuple[direct.Resolved, Child, Path] | None = None
        self._spec_for: tuple[direct.Resolved, Path] | None = None  # the resolution's supervisor spec
        self._count = 0
        self.taken_warm = 0
        self._parking = asyncio.Lock()

    def _spec(self, resolved: direct.Resolved) -> Path:
        if self._spec_for is None or self._spec_for[0] is not resolved:
            self._remove_spec()
            self._spec_for = (
                resolved,
                direct.write_warm_spec(
                    self.settings.data_dir
                    / "direct"
                    / f"resolved-{os.getpid()}-{int(resolved.resolved_at * 1000)}",
                    resolved,
                    self.base_env,
                    pass_fd=self._lock_fd(),
                ),
            )
        return self._spec_for[1]

    def _lock_fd(self) -> int | None:
        return None if self.lock is None else self.lock.descriptor()

    def _remove_spec(self) -> None:
        """The spec holds the plugins' environments: gone as soon as it is not needed."""
        if self._spec_for is not None:
            shutil.rmtree(self._spec_for[1].parent, ignore_errors=True)
            self._spec_for = None

    async def _start(self, resolved: direct.Resolved) -> tuple[Child, Path]:
        spec = await asyncio.to_thread(self._spec, resolved)
        self._count += 1
        log_path = self.settings.runs_log_dir / f"run-parked-{os.getpid()}-{self._count}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = without_bridge_variables(self.base_env)
        with log_path.open("ab") as out:
            try:
                proc = await spawn(
                    [*nice_prefix(self.settings), *direct.supervisor_command(spec)],
                    cwd=self.settings.project_root,
                    env=env,
                    stdin=PIPE,
                    stdout=PIPE,
                    stderr=out,
                    own_process_group=True,  # stopped as a whole, in the bridge's scheduler group (spawn.py)
                    pass_fds=() if self.lock is None else (self.lock.descriptor(),),
                    limit=256 * 1024 * 1024,
                )
            except OSError as exc:
                raise direct.DirectUnavailable(
                    f"cannot start the run supervisor: {exc.strerror or exc}"
                ) from None
        return proc, log_path

    async def take(self, resolved: direct.Resolved, log_path: Path) -> Child:
        """A supervisor for this run (the parked one if it suits), its output going to ``log_path``."""
        parked, self._parked = self._parked, None
        if parked is not None and parked[0] is resolved and parked[1].returncode is None:
            self.taken_warm += 1
            proc, parked_log = parked[1], parked[2]
        else:
            if parked is not None:
                await self._discard(parked)
            proc, parked_log = await self._start(resolved)
        with contextlib.suppress(OSError):
            os.replace(parked_log, log_path)
        return proc

    async def park(self, resolved: direct.Resolved) -> None:
        """Start the next run's supervisor now (it imports the plugins while nothing is due)."""
        async with self._parking:  # runs ending together (replicated workers) park one, not two
            await self._park(resolved)

    async def _park(self, resolved: direct.Resolved) -> None:
        if self._parked is not None:
            if self._parked[0] is resolved and self._parked[1].returncode is None:
                return
            await self._discard(self._parked)
            self._parked = None
        proc, log_path = await self._start(resolved)
        self._parked = (resolved, proc, log_path)

    @staticmethod
    async def _discard(parked: tuple[direct.Resolved, Child, Path]) -> None:
        _, proc, log_path = parked
        if proc.returncode is None:
            with contextlib.suppress(OSError, ConnectionError):
                assert proc.stdin is not None
                proc.stdin.close()  # EOF: the supervisor tells its plugins to end, and ends
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        with contextlib.suppress(OSError):
            log_path.unlink()

    async def close(self) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            await asyncio.shield(self._discard(parked))
        self._remove_spec()


async def execute_direct(
    service: direct.MeltanoService,
    parked: ParkedRuns,
    settings: Settings,
    *,
    run_dir: Path,
    log_path: Path,
    on_start: t.Callable[[int], None] | None = None,
    state_id_suffix: str | None = None,
    **run: t.Any,
) -> RunOutcome:
    """One direct run: resolved settings + state from Meltano, ``tap | target`` under a supervisor,
    the loader's last state saved through Meltano's state backend before the supervisor exits.
    With ``state_id_suffix`` the state ID is ``meltano run --state-id-suffix``'s, and the plugins
    get ``MELTANO_RUN_STATE_ID_SUFFIX`` as under ``meltano run``.

    Raises:
        direct.DirectUnavailable: before anything ran (the caller falls back to ``meltano run``).
    """
    started = time.monotonic()
    phases: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        phases[name] = round(now - since, 3)
        return now

    resolved = await service.resolve()
    mark = lap("resolve", started)
    state_id = direct.suffixed_state_id(resolved.state_id, state_id_suffix)
    state = await service.state_get(state_id)
    mark = lap("state_get", mark)
    args: dict[str, t.Any] = await asyncio.to_thread(
        direct.write_run_files, run_dir, resolved, state=state, **run
    )
    if state_id_suffix is not None:
        args["env"] = {SUFFIX_VAR: state_id_suffix}
    warm_before = parked.taken_warm
    proc = await parked.take(resolved, log_path)
    phases["warm"] = float(parked.taken_warm > warm_before)
    if on_start is not None:
        on_start(proc.pid)
    note = ""

    async def finish() -> None:
        nonlocal note
        assert proc.stdout is not None and proc.stdin is not None
        with contextlib.suppress(OSError, ConnectionError):
            proc.stdin.write(direct.encode_line(args))  # go
            await proc.stdin.drain()
        line = await proc.stdout.readline()
        after = lap("tap_and_target", mark)
        answer = b"failed\n"
        if line:
            result = await direct.decode_line(line)  # the state: megabytes for a large account
            if result.get("state"):
                try:
                    await service.state_set(state_id, {"singer_state": result["state"]})
                    lap("state_set", after)
                    answer = b"saved\n"
                except direct.DirectUnavailable as exc:
                    note = f"the state could not be saved: {exc}"
            else:
                answer = b"saved\n"  # nothing to save (Meltano keeps the state as it was too)
            with contextlib.suppress(OSError, ConnectionError):
                proc.stdin.write(answer)
                await proc.stdin.drain()
        with contextlib.suppress(OSError, ConnectionError):
            proc.stdin.close()
        await proc.wait()

    try:
        timed_out, cancelled = await wait_or_terminate(proc, finish(), settings.run_timeout_seconds)
    finally:
        await asyncio.to_thread(_remove_run_dir, run_dir)
    tail = log_tail(log_path)
    if note:
        with contextlib.suppress(OSError), log_path.open("a") as fh:
            fh.write(note + "\n")
        tail += "\n" + note
    outcome = RunOutcome(
        exit_code=proc.returncode,
        duration=time.monotonic() - started,
        tail=tail,
        timed_out=timed_out,
        cancelled=cancelled,
        direct=True,
        phases=phases,
    )
    if cancelled:
        raise RunCancelled(outcome)
    return outcome


def _remove_run_dir(run_dir: Path) -> None:
    """A run's private files (they hold the plugins' settings) go as soon as the run ended."""
    shutil.rmtree(run_dir, ignore_errors=True)
