"""Find and SIGKILL processes of one pipeline run: only descendants of a process this harness started.

``meltano run`` starts the tap and the loader as its children; the harness knows the ``meltano``
pid it started, so every victim is looked up under that process, never by a global name search.
"""

from __future__ import annotations

import contextlib

import psutil

#: what identifies each role in a child's command line (an argument ending with the executable name)
ROLES = {"tap": "tap-freshbooks", "target": "target-duckdb-fast"}


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (empty if ``pid`` is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def find_role(pid: int, role: str) -> psutil.Process | None:
    """The descendant of ``pid`` that runs ``role`` ("tap" or "target"), if any.

    The tap's catalog discovery (``--discover``) is never a victim: it makes no API request.
    """
    wanted = ROLES[role]
    for proc in descendants(pid):
        args = _cmdline(proc)
        if "--discover" in args:
            continue
        if any(arg.endswith(wanted) for arg in args[:2]):
            return proc
    return None


def sigkill(proc: psutil.Process, wait: float = 5.0) -> bool:
    """SIGKILL one process (psutil checks it is still the same process, not a reused pid)."""
    try:
        proc.kill()
        proc.wait(wait)
    except psutil.NoSuchProcess:
        return False
    except psutil.TimeoutExpired:
        return True
    return True


def reap(procs: list[psutil.Process], grace: float = 20.0) -> list[int]:
    """Wait up to ``grace`` s for ``procs`` to exit on their own, SIGKILL the rest; their pids."""
    alive = [p for p in procs if p.is_running()]
    _, still = psutil.wait_procs(alive, timeout=grace)
    for proc in still:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(still, timeout=5)
    return [p.pid for p in still]
