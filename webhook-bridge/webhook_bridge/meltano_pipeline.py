"""One run of ``<tap> | <target>`` in the place of ``meltano run``: ``python -m webhook_bridge.meltano_pipeline SPEC``.

The bridge's direct mode starts this small process (standard library only, ~50 ms) instead of
``meltano run``, usually before the run is due ("parked"). ``SPEC`` is a private JSON file (mode
0600, it holds the plugins' environments) with, for the tap and the target, the plugin's Python,
console script and the environment Meltano resolved, plus the run lock's descriptor to hand down.

1. Start the target, then the tap with its stdout piped into the target's stdin (both inherit this
   process's stderr: the run's log file), each under ``warm_start.py``: they import themselves and
   wait. Both hold the run lock's descriptor (single-machine mode), so an orphaned run keeps the lock
   until it is gone (the bridge takes the lock on that same open file).
2. Wait for the run on stdin: one JSON line ``{"tap": [args], "target": [args], "env": {...}}``
   (the run's config, catalog and state files; variables of this run only, e.g.
   ``MELTANO_RUN_STATE_ID_SUFFIX``), passed on to the two plugins. If stdin closes first, the plugins are
   told to end and so does this process.
3. Read the target's stdout: every line is a Singer STATE the target emits after it committed the
   records before it. Keep the last non-empty one. If stdin closes meanwhile, the bridge died
   (``kill -9``): kill the tap and the target at once, so that a re-run of the same events (on
   another replica, whose account lock the dead bridge no longer holds) never overlaps this run.
4. When both exited, print ONE JSON line to stdout: ``{"tap": rc, "target": rc, "state": {...}|null}``,
   then wait for the bridge's answer on stdin (it writes the state to Meltano's state backend
   meanwhile) and exit 0 if both plugins exited 0 and the bridge answered ``saved``, else 1.

The name says ``meltano`` on purpose: the tap's pipeline-lock keeper (``tap_freshbooks.run_lock``)
takes the process that started the tap for its pipeline process when its command line names
meltano, and holds the lease until that process is gone. So, as under ``meltano run``, the lease
covers the loader's commit and the state write, not just the tap. If the bridge dies, this process
sees its stdin close, kills the tap and the target and ends without the state write: the run
counts as interrupted and is re-run.

SIGTERM (timeout, shutdown) is passed on to the tap and the target.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import typing as t


def _last_state(stream: t.IO[bytes], out: list[dict[str, t.Any]]) -> None:
    for raw in stream:
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            sys.stderr.write(f"target stdout (not a state): {line[:300]!r}\n")
            continue
        if isinstance(value, dict) and value:
            out[:] = [value]


def _start(
    plugin: dict[str, t.Any], cwd: str | None, lock_fds: tuple[int, ...], **streams: t.Any
) -> tuple[subprocess.Popen[bytes], int]:
    """Start one plugin under ``warm_start.py``; returns it and the write end of its control pipe."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [plugin["python"], plugin["bootstrap"], plugin["script"], str(read_end)],
            env=plugin["env"],
            cwd=cwd,
            pass_fds=(*lock_fds, read_end),
            **streams,
        )
    finally:
        os.close(read_end)
    return proc, write_end


def _go(write_end: int, args: list[str] | None, env: dict[str, str] | None = None) -> None:
    """Send a plugin its run (or, with ``None``, just close: it ends without running)."""
    try:
        if args is not None:
            os.write(write_end, (json.dumps({"argv": args, "env": env or {}}) + "\n").encode())
    except BrokenPipeError:
        pass  # the plugin died while importing: its exit code says so
    finally:
        os.close(write_end)


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    lock_fds = tuple(fd for fd in (spec.get("pass_fd"),) if isinstance(fd, int))
    cwd = spec.get("cwd")
    target, target_go = _start(spec["target"], cwd, lock_fds, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert target.stdin is not None and target.stdout is not None
    try:
        tap, tap_go = _start(spec["tap"], cwd, lock_fds, stdin=subprocess.DEVNULL, stdout=target.stdin)
    except OSError as exc:
        sys.stderr.write(f"cannot start the tap: {exc}\n")
        target.kill()
        target.wait()
        return 1
    target.stdin.close()  # the tap holds the only write end now: EOF when it exits

    def forward(signum: int, _frame: object) -> None:
        for proc in (tap, target):
            if proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    # parked until the bridge sends the run: {"tap": [args], "target": [args]}; EOF: not needed
    line = sys.stdin.readline()
    run = json.loads(line) if line.strip() else None
    _go(target_go, None if run is None else run["target"], None if run is None else run.get("env"))
    _go(tap_go, None if run is None else run["tap"], None if run is None else run.get("env"))
    if run is None:
        tap.wait()
        target.wait()
        return 0

    reported = threading.Event()
    answers: list[str] = []
    watcher = threading.Thread(target=_watch_bridge, args=((tap, target), reported, answers), daemon=True)
    watcher.start()
    states: list[dict[str, t.Any]] = []
    reader = threading.Thread(target=_last_state, args=(target.stdout, states), daemon=True)
    reader.start()
    tap_rc = tap.wait()
    target_rc = target.wait()
    reader.join()
    result = {"tap": tap_rc, "target": target_rc, "state": states[0] if states else None}
    try:
        sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        return 1  # the bridge is gone: nobody will save the state
    reported.set()
    watcher.join()
    answer = answers[0].strip() if answers else ""
    return 0 if tap_rc == 0 and target_rc == 0 and answer == "saved" else 1


def _watch_bridge(
    plugins: tuple[subprocess.Popen[bytes], ...], reported: threading.Event, answers: list[str]
) -> None:
    """Read the bridge's answer; if stdin closes before the result was reported, the bridge died
    mid-run (``kill -9``): kill the plugins at once, so the re-run of these events on another
    bridge (or after a restart) never overlaps this one, whatever lock guarded it."""
    line = sys.stdin.readline()
    if not line and not reported.is_set():
        sys.stderr.write("meltano_pipeline: the bridge is gone; stopping the run (it is re-run)\n")
        for proc in plugins:
            if proc.poll() is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
    answers.append(line)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    finally:
        # the bridge may have closed our stdout; do not let the interpreter's flush fail loudly
        try:
            sys.stdout.close()
        except OSError:
            os._exit(1)
