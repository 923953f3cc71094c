"""Turn queued events into ``meltano run`` invocations of the tap with ``record_ids``.

* **One run at a time, everywhere** (one machine, SQLite). Every run the bridge starts (webhook runs
  and polls, from any bridge process on this data dir) holds ``RunLock``, an exclusive ``flock`` on
  ``<data_dir>/run.lock``. So runs for one account never overlap and the shared catalog file of
  concurrent ``meltano run`` invocations (meltano/meltano#8763) is never written twice at once. The
  lock's file descriptor is inherited by the run's processes: if the bridge dies mid-run, the lock
  stays held until that orphaned run ends (a direct run's supervisor ends it at once), and a
  restarted bridge waits for it instead of starting a second run beside it. Replicated mode
  (``database_url``) replaces this lock by a lock per account in the database: ``replicas.py``.
  Runs the bridge did not start (the Meltano schedule, cron, CI) are kept apart by the tap's own
  pipeline lock (``tap_freshbooks.run_lock``): a bridge run that meets one stops with "another run
  of this pipeline is already running", which is "busy" below.
* **Same state ID as polling.** A ``record_ids`` run never moves polling bookmarks and records what it
  delivered in the tap's change ledger, so it runs as plain ``meltano run tap-freshbooks <loader>``.
  Meltano refuses a second run of the same state ID ("already running": a cron poll); that is a
  retry later that does not count as an attempt.
* **Done only after exit code 0.** Events are acknowledged only after ``meltano run`` succeeded, i.e.
  after the loader committed the records and Meltano saved the state. Any failure retries them with
  exponential backoff; retries travel in ever smaller groups so a poison record ends up alone and is
  parked after ``max_attempts`` without holding back the others.
* The run's output goes to a file (not a pipe), so an orphaned run is never killed by SIGPIPE.
* **Direct mode** (``run_mode=direct``, the default): the same runs without starting Meltano each
  time; the tap and the loader are started from their plugin virtualenvs with the settings Meltano
  resolved once, and the state goes through Meltano's state backend (``direct.py``). ``meltano run``
  stays the fallback whenever direct mode cannot be used, and the mode ``run_mode=meltano``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
import typing as t
from pathlib import Path

from webhook_bridge import direct
from webhook_bridge.logs import log
from webhook_bridge.store import Batch, Store

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from webhook_bridge.settings import Settings

LOGGER = logging.getLogger("webhook_bridge.runner")

BUSY_RE = re.compile(r"pipeline is already running", re.IGNORECASE)
KEEP_RUN_LOGS = 50
TAIL_BYTES = 6000
TERMINATE_GRACE_SECONDS = 20.0
PRUNE_AFTER_SECONDS = 7 * 86400
ORPHAN_CHECK_SECONDS = 10.0
PRUNE_EVERY_SECONDS = 3600.0
DIRECT_RETRY_SECONDS = 300.0  # direct mode could not be used: runs go through meltano run this long
SUFFIX_VAR = "MELTANO_RUN_STATE_ID_SUFFIX"  # meltano run's --state-id-suffix, read by the tap's lock


# ================================================================================================
# the global run lock


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


# ================================================================================================
# building and executing one run


def resolve_executable(name: str, project_root: Path | None = None) -> str:
    """``meltano`` on PATH; else the link Meltano keeps in ``<project>/.meltano/run/bin`` (there when
    the bridge runs as ``meltano invoke webhook-bridge``, whose venv has no meltano); else next to
    this Python."""
    if os.sep in name:
        return name
    found = shutil.which(name)
    if found:
        return found
    if name == "meltano" and project_root is not None:
        link = project_root / ".meltano" / "run" / "bin"
        if link.exists():
            return str(link)
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def nice_prefix(settings: Settings) -> list[str]:
    """``nice -n N``: runs get a lower CPU priority (``run_niceness``) so that, on a small machine,
    acknowledging webhooks (FreshBooks waits 10 s at most) always wins over a tap run (which can wait)."""
    nice = shutil.which("nice") if settings.run_niceness > 0 else None
    return [nice, "-n", str(settings.run_niceness)] if nice else []


def build_command(settings: Settings, *, force: bool = False) -> list[str]:
    """``[nice -n N] meltano [--environment E] run [--force] <extractor> <loader>``."""
    cmd = nice_prefix(settings)
    cmd.append(resolve_executable(settings.meltano_executable, settings.project_root))
    if settings.meltano_environment:
        cmd.append(f"--environment={settings.meltano_environment}")
    cmd.append("run")
    if force:
        cmd.append("--force")
    cmd += [settings.extractor, settings.loader]
    return cmd


def build_env(
    base: Mapping[str, str],
    settings: Settings,
    *,
    record_ids: Mapping[str, Sequence[int]] | None = None,
    event_received_at: Mapping[str, Mapping[str, str]] | None = None,
    select: Sequence[str] | None = None,
    account_ids: Sequence[str] | None = None,
    state_id_suffix: str | None = None,
) -> dict[str, str]:
    """The child's environment: the bridge's own (minus its secrets) plus the run's tap settings.

    A poll (no ``record_ids``) gets none of the webhook-only variables, even if they were set in the
    bridge's environment by mistake. A webhook run sends no stream selection (``select`` is a
    Meltano select filter for callers that want one): the tap narrows the run to its ``record_ids``
    streams and the streams riding along with them. ``state_id_suffix`` (a per-account pipeline in
    replicated mode) becomes ``MELTANO_RUN_STATE_ID_SUFFIX``: ``meltano run`` appends it to the state
    ID, and the tap keys its pipeline lock with it.
    """
    env = {k: v for k, v in base.items() if not k.startswith(("WEBHOOK_BRIDGE_", "MELTANO_UTILITY_"))}
    prefix = settings.extractor_env_prefix
    for var in (f"{prefix}_RECORD_IDS", f"{prefix}_EVENT_RECEIVED_AT", f"{prefix}__SELECT_FILTER"):
        env.pop(var, None)
    if record_ids is not None:
        env[f"{prefix}_RECORD_IDS"] = json.dumps(dict(record_ids), separators=(",", ":"))
        env[f"{prefix}_EVENT_RECEIVED_AT"] = json.dumps(dict(event_received_at or {}), separators=(",", ":"))
    if record_ids is not None and select is not None:  # the tap itself adds what rides along
        env[f"{prefix}__SELECT_FILTER"] = json.dumps(list(select))
    if account_ids is not None:
        env[f"{prefix}_ACCOUNT_IDS"] = json.dumps(list(account_ids))
    if state_id_suffix is not None:
        env[SUFFIX_VAR] = state_id_suffix
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


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


def _tail(path: Path, limit: int = TAIL_BYTES) -> str:
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
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # own process group: terminated as a whole on timeout
                pass_fds=(pass_fd,) if pass_fd is not None else (),
            )
        except OSError as exc:
            return RunOutcome(
                exit_code=127, duration=0.0, tail=f"cannot start {cmd[0]}: {exc.strerror or exc}"
            )
    if on_start is not None:
        on_start(proc.pid)
    timed_out, cancelled = await _wait_or_terminate(proc, proc.wait(), timeout)
    outcome = RunOutcome(
        exit_code=proc.returncode,
        duration=time.monotonic() - started,
        tail=_tail(log_path),
        timed_out=timed_out,
        cancelled=cancelled,
    )
    if cancelled:
        # re-raise after the caller had a chance to record the outcome
        raise _Cancelled(outcome)
    return outcome


class _Cancelled(asyncio.CancelledError):
    def __init__(self, outcome: RunOutcome) -> None:
        super().__init__()
        self.outcome = outcome


async def _wait_or_terminate(
    proc: asyncio.subprocess.Process, waiting: t.Awaitable[object], timeout: float
) -> tuple[bool, bool]:
    """Await ``waiting``; on timeout or cancel terminate ``proc``. Returns (timed_out, cancelled)."""
    try:
        await asyncio.wait_for(waiting, timeout)
    except TimeoutError:
        await _terminate(proc)
        return True, False
    except asyncio.CancelledError:
        await asyncio.shield(_terminate(proc))
        return False, True
    return False, False


async def _terminate(proc: asyncio.subprocess.Process) -> None:
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
        self._parked: tuple[direct.Resolved, asyncio.subprocess.Process, Path] | None = None
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

    async def _start(self, resolved: direct.Resolved) -> tuple[asyncio.subprocess.Process, Path]:
        spec = await asyncio.to_thread(self._spec, resolved)
        self._count += 1
        log_path = self.settings.runs_log_dir / f"run-parked-{os.getpid()}-{self._count}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {
            k: v
            for k, v in self.base_env.items()
            if not k.startswith(("WEBHOOK_BRIDGE_", "MELTANO_UTILITY_"))
        }
        with log_path.open("ab") as out:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *nice_prefix(self.settings),
                    *direct.supervisor_command(spec),
                    cwd=str(self.settings.project_root),
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=out,
                    start_new_session=True,
                    pass_fds=() if self.lock is None else (self.lock.descriptor(),),
                    limit=256 * 1024 * 1024,
                )
            except OSError as exc:
                raise direct.DirectUnavailable(
                    f"cannot start the run supervisor: {exc.strerror or exc}"
                ) from None
        return proc, log_path

    async def take(self, resolved: direct.Resolved, log_path: Path) -> asyncio.subprocess.Process:
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
    async def _discard(parked: tuple[direct.Resolved, asyncio.subprocess.Process, Path]) -> None:
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
            proc.stdin.write(json.dumps(args).encode() + b"\n")  # go
            await proc.stdin.drain()
        line = await proc.stdout.readline()
        after = lap("tap_and_target", mark)
        answer = b"failed\n"
        if line:
            result = json.loads(line)
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
        timed_out, cancelled = await _wait_or_terminate(proc, finish(), settings.run_timeout_seconds)
    finally:
        await asyncio.to_thread(_remove_run_dir, run_dir)
    tail = _tail(log_path)
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
        raise _Cancelled(outcome)
    return outcome


def _remove_run_dir(run_dir: Path) -> None:
    """A run's private files (they hold the plugins' settings) go as soon as the run ended."""
    shutil.rmtree(run_dir, ignore_errors=True)


# ================================================================================================
# the runner


class Runner:
    """Claims event groups and runs them, one at a time, under the global run lock."""

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
                await self._sleep(5.0)
                continue
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                self._pruned_at = time.monotonic()
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.prune, older_than=PRUNE_AFTER_SECONDS)
            if not did_work:
                await self._sleep(await asyncio.to_thread(self._seconds_until_due))

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

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def run_next(self, *, recover_only: bool = False) -> bool:
        """Take the lock, recover interrupted events, claim one due group and run it.

        Returns True if a run happened (or events were recovered).
        """
        async with self.mutex:
            if not recover_only:
                due = await asyncio.to_thread(self.store.next_due)
                if due is None or due > time.time():
                    return False
            if not await self.lock.acquire_async(self._stop):
                return False
            try:
                recovered = await asyncio.to_thread(
                    self.store.recover_interrupted, max_attempts=self.settings.max_attempts
                )
                if recovered:
                    log(LOGGER, logging.WARNING, "recovered events of an interrupted run", events=recovered)
                if recover_only:
                    return bool(recovered)
                batch = await asyncio.to_thread(self.store.claim, max_batch=self.settings.max_batch_records)
                if batch is None:
                    return False
                await self._run_batch(batch)
                return True
            finally:
                self.lock.release()

    def state_id_suffix(self, account_id: str | None) -> str | None:  # noqa: ARG002  (replicated: the account)
        """The state ID suffix of an account's runs: none here (one pipeline for every account)."""
        return None

    async def _run_batch(self, batch: Batch) -> None:
        env = build_env(
            self.environ,
            self.settings,
            record_ids=batch.record_ids,
            event_received_at=batch.event_received_at,
            account_ids=[batch.account_id],
            state_id_suffix=self.state_id_suffix(batch.account_id),
        )
        fields = {
            "run_id": batch.run_id,
            "kind": "webhook",
            "account_id": batch.account_id,
            "streams": list(batch.record_ids),
            "records": batch.record_count,
            "events": len(batch.events),
            "retry_level": batch.attempt_level,
        }
        log(LOGGER, logging.INFO, "run started", **fields)
        outcome = await self._execute(batch.run_id, env, batch=batch)
        if outcome.busy and not outcome.direct and self._previous_run_was_killed(batch.run_id):
            # Meltano's job row of OUR killed run still says RUNNING (it would only go stale after
            # 5 minutes without heartbeat). We hold the run lock, so no bridge run is in progress.
            log(LOGGER, logging.WARNING, "previous run was killed; re-running with --force", **fields)
            await asyncio.to_thread(self.store.update_run, batch.run_id, forced=1)
            outcome = await self._execute(batch.run_id, env, force=True, batch=batch)
        await self._finish_batch(batch, outcome, fields)

    async def _finish_batch(self, batch: Batch, outcome: RunOutcome, fields: dict[str, t.Any]) -> None:
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

    def _previous_run_was_killed(self, run_id: int) -> bool:
        for run in self.store.runs(limit=5):
            if run.id >= run_id or run.status == "running":
                continue
            return run.status in ("interrupted", "cancelled", "timeout") or (
                run.exit_code is not None and run.exit_code < 0
            )
        return False

    async def _execute(
        self,
        run_id: int,
        env: Mapping[str, str],
        *,
        force: bool = False,
        batch: Batch | None = None,
        account_id: str | None = None,
    ) -> RunOutcome:
        """One run for run ``run_id`` (the caller holds the lock): direct, else ``meltano run``.

        A poll of one account (``account_id``) extracts only that account."""
        if batch is not None:
            account_id = batch.account_id
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
                        state_id_suffix=self.state_id_suffix(account_id),
                        **({} if account_id is None else {"account_ids": [account_id]}),
                        **(
                            {}
                            if batch is None
                            else {
                                "record_ids": batch.record_ids,
                                "event_received_at": batch.event_received_at,
                            }
                        ),
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
        except _Cancelled as cancelled:
            await asyncio.shield(asyncio.to_thread(self._record_cancel, run_id, cancelled.outcome))
            raise
        finally:
            self.current_run = None
            await asyncio.to_thread(_prune_logs, self.settings.runs_log_dir)
            await self._park_next()

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

    # -- polls --------------------------------------------------------------------------------
    async def run_poll(self) -> RunOutcome | None:
        """One incremental poll of every account (``None``: stopped before the lock was taken)."""
        async with self.mutex:
            if not await self.lock.acquire_async(self._stop):
                return None
            try:
                await asyncio.to_thread(
                    self.store.recover_interrupted, max_attempts=self.settings.max_attempts
                )
                return await self._poll(None)
            finally:
                self.lock.release()

    async def _poll(self, account_id: str | None) -> RunOutcome:
        """One poll (of every account, or of ``account_id`` only); the caller holds the lock."""
        run_id = await asyncio.to_thread(self.store.start_run, "poll", account_id=account_id)
        fields = {"run_id": run_id, "kind": "poll", **({"account_id": account_id} if account_id else {})}
        log(LOGGER, logging.INFO, "poll started", **fields)
        env = build_env(
            self.environ,
            self.settings,
            account_ids=None if account_id is None else [account_id],
            state_id_suffix=self.state_id_suffix(account_id),
        )
        outcome = await self._execute(run_id, env, account_id=account_id)
        if outcome.busy and not outcome.direct and self._previous_run_was_killed(run_id):
            await asyncio.to_thread(self.store.update_run, run_id, forced=1)
            outcome = await self._execute(run_id, env, force=True, account_id=account_id)
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
        return outcome

    async def run_post_load_now(self) -> bool | None:
        """The post-load steps once, now, if a load asked for them (``webhook-bridge poll``)."""
        return await self.post_load.run_pending()


# ================================================================================================
# post-load steps


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
                delay = min(
                    self.MAX_RETRY_SECONDS, self.settings.post_load_retry_seconds * 2 ** (self.failures - 1)
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.set()  # retry (or serve the new request) now

    async def _command(self) -> tuple[list[str], dict[str, str]] | None:
        assert self.settings.post_load_command is not None
        plugin, _, command = self.settings.post_load_command.partition(":")
        base = {
            k: v for k, v in self.environ.items() if not k.startswith(("WEBHOOK_BRIDGE_", "MELTANO_UTILITY_"))
        }
        if self.service is not None:
            with contextlib.suppress(direct.DirectUnavailable):
                answer = await self.service.command(plugin, command)
                if "missing" in answer:
                    if self._off_reason != answer["missing"]:
                        self._off_reason = answer["missing"]
                        log(
                            LOGGER,
                            logging.INFO,
                            "post-load steps skipped",
                            reason=answer["missing"],
                            post_load_command=self.settings.post_load_command,
                        )
                    return None
                return [*nice_prefix(self.settings), *answer["argv"]], direct.plugin_env(base, answer["env"])
        missing = await asyncio.to_thread(
            direct.undeclared_command, self.settings.project_root, plugin, command
        )
        if missing:
            if self._off_reason != missing:
                self._off_reason = missing
                log(
                    LOGGER,
                    logging.INFO,
                    "post-load steps skipped",
                    reason=missing,
                    post_load_command=self.settings.post_load_command,
                )
            return None
        cmd = nice_prefix(self.settings)
        cmd.append(resolve_executable(self.settings.meltano_executable, self.settings.project_root))
        if self.settings.meltano_environment:
            cmd.append(f"--environment={self.settings.meltano_environment}")
        return [*cmd, "invoke", self.settings.post_load_command], base

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
            retry_in_s=min(
                self.MAX_RETRY_SECONDS, self.settings.post_load_retry_seconds * 2 ** (self.failures - 1)
            ),
            error=outcome.summary(),
            **fields,
        )
        return False


def _prune_logs(directory: Path, keep: int = KEEP_RUN_LOGS) -> None:
    try:
        logs = sorted(directory.glob("run-*.log"))
    except OSError:
        return
    for old in logs[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
