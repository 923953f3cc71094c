"""One run at a time, everywhere (one machine, SQLite): the bridge's run lock.

Every run the bridge starts (webhook runs and polls, from any bridge process on this data dir) holds
``RunLock``, an exclusive ``flock`` on ``<data_dir>/run.lock``. So runs for one account never overlap
and the shared catalog file of concurrent ``meltano run`` invocations (meltano/meltano#8763) is never
written twice at once. The lock's file descriptor is inherited by the run's processes: if the bridge
dies mid-run, the lock stays held until that orphaned run ends (a direct run's supervisor ends it at
once), and a restarted bridge waits for it instead of starting a second run beside it. Replicated
mode (``database_url``) replaces this lock by a lock per account in the database: ``replicas.py``.
Runs the bridge did not start (the Meltano schedule, cron, CI) are kept apart by the tap's own
pipeline lock (``tap_freshbooks.run_lock``): a bridge run that meets one stops with "another run of
this pipeline is already running" (``RunOutcome.busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import time
from pathlib import Path

from webhook_bridge.logs import log

LOGGER = logging.getLogger("webhook_bridge.runner")


class RunLock:
    """Exclusive inter-process lock (``flock``) on one file; not re-entrant.

    Two ``RunLock`` objects on the same path exclude each other even inside one process.

    With ``keep_open`` the lock file is opened once and every acquisition locks that same open file
    (:meth:`descriptor`): a process started *before* the lock is taken, and given the descriptor,
    holds the lock with us once we take it (direct mode's parked run supervisors).
    """

    def __init__(self, path: str | os.PathLike[str], *, keep_open: bool = False) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self.keep_open = keep_open
        self._open_fd: int | None = None

    def descriptor(self) -> int:
        """The lock file's descriptor that acquisitions lock (``keep_open`` only)."""
        if not self.keep_open:
            raise RuntimeError("RunLock.descriptor() needs keep_open=True")
        if self._open_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._open_fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._open_fd

    @property
    def fd(self) -> int | None:
        """The locked descriptor while held (passed to the ``meltano`` child)."""
        return self._fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never blocks."""
        if self._fd is not None:
            raise RuntimeError("RunLock is not re-entrant")
        if self.keep_open:
            fd = self.descriptor()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if not self.keep_open:
                os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        self._fd = fd
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return True

    def acquire(self, timeout: float | None = None, poll: float = 0.1) -> bool:
        """Block (polling) until the lock is taken or ``timeout`` passed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    async def acquire_async(self, stop: asyncio.Event | None = None, poll: float = 0.1) -> bool:
        """Wait for the lock without blocking the event loop; ``False`` if ``stop`` was set."""
        warned_at = time.monotonic()
        while not self.try_acquire():
            if stop is not None and stop.is_set():
                return False
            if time.monotonic() - warned_at > 60:
                warned_at = time.monotonic()
                log(LOGGER, logging.WARNING, "waiting for the run lock", holder_pid=self.holder())
            await asyncio.sleep(poll)
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        if not self.keep_open:
            os.close(fd)

    def close(self) -> None:
        """Release, and close the kept-open descriptor."""
        self.release()
        fd, self._open_fd = self._open_fd, None
        if fd is not None:
            os.close(fd)

    def holder(self) -> int | None:
        """The pid written by the last holder (informational)."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_free(self) -> bool:
        """True if nobody holds the lock right now (takes and drops it)."""
        if self._fd is not None:
            return False
        if self.try_acquire():
            self.release()
            return True
        return False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
