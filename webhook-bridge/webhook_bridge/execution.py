"""Running one process to its end: output to a log file, timeout and cancel, how it ended.

The run's output goes to a file (not a pipe), so an orphaned run is never killed by SIGPIPE. On a
timeout or a cancel (the bridge shutting down) the process gets SIGTERM (``meltano run`` then fails
its job cleanly) and, after a grace period, its whole process group SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import time
import typing as t

from webhook_bridge.spawn import DEVNULL, Child, spawn

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

BUSY_RE = re.compile(r"pipeline is already running", re.IGNORECASE)
KEEP_RUN_LOGS = 50
TAIL_BYTES = 6000
TERMINATE_GRACE_SECONDS = 20.0


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """How one ``meltano run`` ended."""

    exit_code: int | None
    duration: float
    tail: str
    timed_out: bool = False
    cancelled: bool = False
    direct: bool = False  # run by direct mode (no Meltano job row: --force means nothing)
    phases: Mapping[str, float] | None = None  # direct mode: seconds per phase

    def log_fields(self) -> dict[str, t.Any]:
        return {
            "mode": "direct" if self.direct else "meltano",
            "duration_s": round(self.duration, 3),
            **({"phases_s": dict(self.phases)} if self.phases else {}),
        }

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled

    @property
    def busy(self) -> bool:
        """Meltano refused: the same pipeline (state ID) is already running."""
        return self.exit_code not in (0, None) and bool(BUSY_RE.search(self.tail))

    @property
    def killed(self) -> bool:
        """Ended by a signal, a timeout or a cancel: Meltano may have left its job row RUNNING."""
        return self.timed_out or self.cancelled or (self.exit_code is not None and self.exit_code < 0)

    def summary(self) -> str:
        if self.timed_out:
            head = "timed out"
        elif self.cancelled:
            head = "cancelled (bridge shutting down)"
        elif self.exit_code is not None and self.exit_code < 0:
            head = f"killed by signal {-self.exit_code}"
        else:
            head = f"exit code {self.exit_code}"
        lines = [ln for ln in self.tail.splitlines() if ln.strip()]
        return f"{head}: " + " | ".join(lines[-6:])[-1500:]


def log_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a run's log ("" if unreadable)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


async def execute(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    log_path: Path,
    timeout: float,
    pass_fd: int | None = None,
    on_start: t.Callable[[int], None] | None = None,
) -> RunOutcome:
    """Run ``cmd`` to completion with output to ``log_path``; terminate it on timeout/cancel."""
    started = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with log_path.open("ab") as out:
        try:
            proc = await spawn(
                cmd,
                cwd=cwd,
                env=env,
                stdin=DEVNULL,
                stdout=out,
                stderr=out,
                own_process_group=True,  # stopped as a whole, in the bridge's scheduler group (spawn.py)
                pass_fds=(pass_fd,) if pass_fd is not None else (),
            )
        except OSError as exc:
            return RunOutcome(
                exit_code=127, duration=0.0, tail=f"cannot start {cmd[0]}: {exc.strerror or exc}"
            )
    if on_start is not None:
        on_start(proc.pid)
    timed_out, cancelled = await wait_or_terminate(proc, proc.wait(), timeout)
    outcome = RunOutcome(
        exit_code=proc.returncode,
        duration=time.monotonic() - started,
        tail=log_tail(log_path),
        timed_out=timed_out,
        cancelled=cancelled,
    )
    if cancelled:
        # re-raise after the caller had a chance to record the outcome
        raise RunCancelled(outcome)
    return outcome


class RunCancelled(asyncio.CancelledError):
    """A run cancelled (the bridge shutting down), raised once its process ended, with how it ended."""

    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__()
        self.outcome = outcome


async def wait_or_terminate(proc: Child, waiting: t.Awaitable[object], timeout: float) -> tuple[bool, bool]:
    """Await ``waiting``; on timeout or cancel terminate ``proc``. Returns (timed_out, cancelled)."""
    try:
        await asyncio.wait_for(waiting, timeout)
    except TimeoutError:
        await terminate(proc)
        return True, False
    except asyncio.CancelledError:
        await asyncio.shield(terminate(proc))
        return False, True
    return False, False


async def terminate(proc: Child) -> None:
    """SIGTERM to meltano (it fails its job cleanly), then SIGKILL to the whole group."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), TERMINATE_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


def prune_logs(directory: Path, keep: int = KEEP_RUN_LOGS) -> None:
    """Keep the newest ``keep`` run logs."""
    try:
        logs = sorted(directory.glob("run-*.log"))
    except OSError:
        return
    for old in logs[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
