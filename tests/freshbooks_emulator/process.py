"""The emulator in its own process (``python -m freshbooks_emulator serve``), for the demo and benchmarks.

Out of process it stands in for FreshBooks' servers the way they really are: its threads share no
interpreter (and no GIL) with the program that measures or drives it. ``start`` waits for the state
file the server writes atomically once it listens (its URL, OAuth app, a grant and its accounts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing as t
from pathlib import Path

#: the directory holding the ``freshbooks_emulator`` package (goes on the child's PYTHONPATH)
TESTS_DIR = Path(__file__).resolve().parent.parent


class EmulatorDidNotStart(RuntimeError):
    """The emulator process exited, or wrote no state file in time."""


def start(
    state_file: Path,
    *,
    seed: str = "demo",
    bulk: t.Iterable[str] = (),
    now: str | None = None,
    output: t.IO[bytes] | t.IO[str] | None = None,
    cwd: Path | None = None,
    tests_dir: Path = TESTS_DIR,
    timeout: float = 120.0,
) -> tuple[subprocess.Popen[bytes], dict[str, t.Any]]:
    """Start ``freshbooks_emulator serve`` on a free port; returns the process and its state.

    ``bulk``: ``stream:n[:account_id]`` specs (``--bulk``). ``output``: where its stdout and stderr
    go (default: discarded). ``tests_dir``: whose ``freshbooks_emulator`` to run (a benchmark may
    run another copy of the repository's).
    """
    state_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "freshbooks_emulator", "serve", "--seed", seed, "--port", "0"]
    if now:
        argv += ["--now", now]
    for spec in bulk:
        argv += ["--bulk", spec]
    argv += ["--state-file", str(state_file)]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(tests_dir)},
        cwd=cwd,
        stdout=output if output is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output is not None else subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            msg = f"the FreshBooks emulator did not start (exit code {proc.returncode})"
            raise EmulatorDidNotStart(msg)
        time.sleep(0.05)
    return proc, json.loads(state_file.read_text())


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
