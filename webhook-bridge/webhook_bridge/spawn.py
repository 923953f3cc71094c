"""Child processes (runs, their supervisors, the Meltano helper) started off the event loop.

``asyncio.create_subprocess_exec`` forks in the event loop's thread, on uvloop as on asyncio, and a
``preexec_fn`` (how a run got its own process group: uvloop refuses ``process_group``) makes the
child run Python between fork and exec. The loop waits for the exec meanwhile: 19-31 ms per child
for a process of the bridge's size (``benchmarks/spawn_lag.py``), during which no webhook is
acknowledged. A bridge starts two or three children per run (run or supervisor, the next parked
one, the post-load step), so every run cost the endpoint that stall.

Here ``subprocess.Popen`` starts the child in a worker thread with ``process_group=0`` and no
Python in the child, so CPython can use ``vfork``: 3-4 ms to start, and the loop keeps serving
meanwhile (its lag p99 2.6-3.8 ms, max 5-9 ms, in ``benchmarks/spawn_lag.py``). The child's exit
is awaited by a thread of its own (not the default executor, whose threads the queue's commits
need), and its pipes become asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

#: ``stdin=PIPE`` / ``stdout=PIPE``: the child's end becomes an asyncio stream on :class:`Child`.
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL


class Child:
    """A started child: ``pid``, ``returncode`` (``None`` while it runs), ``await wait()``, signals,
    and its ``stdin`` / ``stdout`` as asyncio streams when they were pipes (the parts of
    ``asyncio.subprocess.Process`` the bridge uses)."""

    def __init__(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self._exited: asyncio.Future[int] = loop.create_future()
        threading.Thread(target=self._watch, args=(loop,), name=f"child-{popen.pid}", daemon=True).start()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        code = self.popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(self._set_exited, code)

    def _set_exited(self, code: int) -> None:
        if not self._exited.done():
            self._exited.set_result(code)

    @property
    def returncode(self) -> int | None:
        """The exit code once the loop has seen the exit (negative: the signal that ended it)."""
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        """Until the child has exited; its exit code (cancelling the caller leaves it running)."""
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        """Signal the child itself (not its group), unless it has exited."""
        if self.returncode is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        self.popen.kill()


async def spawn(
    cmd: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin: int | t.IO[t.Any] | None = DEVNULL,
    stdout: int | t.IO[t.Any] | None = None,
    stderr: int | t.IO[t.Any] | None = None,
    pass_fds: Sequence[int] = (),
    own_process_group: bool = False,
    limit: int = 2**16,
) -> Child:
    """Start ``cmd`` without holding up the event loop.

    ``own_process_group``: the child leads a process group of its own (a run: stopped as a whole
    with ``killpg`` on a timeout) but stays in the bridge's session. A new session
    (``start_new_session``) is also a new scheduler autogroup on Linux
    (``/proc/sys/kernel/sched_autogroup_enabled``, on by default), and autogroups share the CPU as
    equals whatever the nice of their processes: a run at ``run_niceness`` in its own session took
    as much CPU as the endpoint acknowledging FreshBooks' deliveries.
    ``limit``: the longest line the ``stdout`` stream reads.

    Raises:
        OSError: the program could not be started (not found, not executable).
    """
    loop = asyncio.get_running_loop()

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(cmd),
            cwd=str(cwd),
            env=dict(env),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=tuple(pass_fds),
            process_group=0 if own_process_group else None,
        )

    starting = loop.run_in_executor(None, start)
    try:
        popen = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # the worker thread starts the child anyway: it must not run on unsupervised
        starting.add_done_callback(_kill_unwanted)
        raise
    child = Child(popen, loop)
    try:
        if popen.stdout is not None:
            reader = asyncio.StreamReader(limit=limit)
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), popen.stdout)
            child.stdout = reader
        if popen.stdin is not None:
            transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, popen.stdin)
            child.stdin = asyncio.StreamWriter(transport, protocol, None, loop)
    except BaseException:
        with contextlib.suppress(OSError):
            popen.kill()
        raise
    return child


def _kill_unwanted(started: asyncio.Future[subprocess.Popen[bytes]]) -> None:
    """A child whose start was cancelled: killed and reaped (in a thread of its own)."""
    if started.cancelled() or started.exception() is not None:
        return
    popen = started.result()
    with contextlib.suppress(OSError):
        popen.kill()
    threading.Thread(target=popen.wait, name=f"reap-{popen.pid}", daemon=True).start()
