"""webhook_bridge.spawn: children started off the event loop behave as asyncio's did, on both loops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path

import pytest

from webhook_bridge.spawn import DEVNULL, PIPE, spawn

LOOPS = ["asyncio", "uvloop"]


def run_on(loop: str) -> Callable[[Coroutine[object, object, object]], object]:
    return asyncio.run if loop == "asyncio" else pytest.importorskip("uvloop").run


@pytest.mark.parametrize("loop", LOOPS)
def test_pipes_exit_code_and_a_big_answer(tmp_path: Path, loop: str) -> None:
    """A line-based conversation like the run supervisor's, with a 5 MB line each way (a state)."""
    echo = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line.upper()); sys.stdout.flush()\nsys.exit(3)\n"

    async def talk() -> tuple[list[bytes], int | None, int]:
        child = await spawn(
            [sys.executable, "-c", echo], cwd=tmp_path, env=os.environ, stdin=PIPE, stdout=PIPE, limit=2**24
        )
        assert child.stdin is not None and child.stdout is not None
        answers = []
        for message in (b"go\n", b"x" * 5_000_000 + b"\n"):
            child.stdin.write(message)
            await child.stdin.drain()
            answers.append(await child.stdout.readline())
        running = child.returncode
        child.stdin.close()  # EOF: the child ends
        assert await child.stdout.readline() == b""
        return answers, running, await child.wait()

    answers, running, code = run_on(loop)(talk())
    assert answers == [b"GO\n", b"X" * 5_000_000 + b"\n"]
    assert running is None and code == 3


@pytest.mark.parametrize("loop", LOOPS)
def test_own_process_group_in_the_bridges_session_and_killed_as_a_group(tmp_path: Path, loop: str) -> None:
    ids = tmp_path / "ids.json"
    child_code = (
        "import json, os, subprocess, sys, time\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "ids = [os.getsid(0), os.getpgid(0), os.getpid(), grandchild.pid]\n"
        "open(sys.argv[1], 'w').write(json.dumps(ids))\n"
        "time.sleep(60)\n"
    )

    async def group() -> tuple[list[int], int]:
        child = await spawn(
            [sys.executable, "-c", child_code, str(ids)], cwd=tmp_path, env=os.environ, own_process_group=True
        )
        for _ in range(200):
            if ids.exists() and ids.read_text():
                break
            await asyncio.sleep(0.05)
        found = json.loads(ids.read_text())
        os.killpg(child.pid, signal.SIGKILL)
        return found, await child.wait()

    (sid, pgid, pid, grandchild), code = run_on(loop)(group())
    assert pgid == pid and sid == os.getsid(0)
    assert code == -signal.SIGKILL
    for _ in range(100):  # the grandchild was in the group too
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        asyncio.run(asyncio.sleep(0.05))
    else:
        pytest.fail("the grandchild survived killpg")


@pytest.mark.parametrize("loop", LOOPS)
def test_without_own_group_the_child_stays_in_ours(tmp_path: Path, loop: str) -> None:
    out = tmp_path / "pgid"

    async def plain() -> int:
        with out.open("wb") as fh:
            child = await spawn(
                [sys.executable, "-c", "import os; print(os.getpgid(0))"],
                cwd=tmp_path,
                env=os.environ,
                stdout=fh,
            )
        return await child.wait()

    assert run_on(loop)(plain()) == 0
    assert int(out.read_text()) == os.getpgid(0)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancelled_wait_leaves_the_child_and_a_signal_ends_it(tmp_path: Path, loop: str) -> None:
    async def cancel_then_signal() -> tuple[int | None, int]:
        child = await spawn(
            [sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path, env=os.environ
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(child.wait(), 0.2)
        still = child.returncode
        child.send_signal(signal.SIGTERM)
        code = await child.wait()
        child.send_signal(signal.SIGTERM)  # after the exit: nothing happens
        return still, code

    still, code = run_on(loop)(cancel_then_signal())
    assert still is None and code == -signal.SIGTERM


@pytest.mark.parametrize("loop", LOOPS)
def test_a_missing_program_raises_oserror(tmp_path: Path, loop: str) -> None:
    async def missing() -> None:
        await spawn([str(tmp_path / "no-such-program")], cwd=tmp_path, env=os.environ, stdout=DEVNULL)

    with pytest.raises(FileNotFoundError):
        run_on(loop)(missing())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_start_cancelled_half_way_leaves_no_child_running(tmp_path: Path, loop: str) -> None:
    """Cancelled while the worker thread starts it (a bridge shutting down): the child is killed."""
    marker = f"spawn-cancel-{loop}-{os.getpid()}"

    def running() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    async def cancel_it() -> None:
        task = asyncio.create_task(
            spawn([sys.executable, "-c", "import time; time.sleep(60)", marker], cwd=tmp_path, env=os.environ)
        )
        await asyncio.sleep(0)  # the start is in the worker thread now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not running():
                return
        pytest.fail(f"the child of a cancelled start still runs: {running()}")

    run_on(loop)(cancel_it())
