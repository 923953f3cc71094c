"""webhook_bridge.runner (commands, run_lock) + poller with a fake `meltano` that records its environment."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.helpers import ACCOUNT, event_fields, make_settings, open_store, read_records
from webhook_bridge.commands import build_command, build_env
from webhook_bridge.execution import execute
from webhook_bridge.poller import next_poll_at
from webhook_bridge.run_lock import RunLock
from webhook_bridge.runner import Runner
from webhook_bridge.signature import classify
from webhook_bridge.store import RunRecord


def ev(object_id, name="invoice.update", account=ACCOUNT):
    return classify(event_fields(object_id, name, account))


class Env:
    """A runner wired to the fake meltano."""

    def __init__(self, tmp_path: Path, fake_cmd: Path, **overrides):
        self.tmp = tmp_path
        self.record = tmp_path / "runs.jsonl"
        self.fail_file = tmp_path / "fail"
        self.busy_file = tmp_path / "busy"
        self.settings = make_settings(tmp_path, meltano_executable=fake_cmd, **overrides)
        self.store = open_store(self.settings)
        self.environ = {
            "PATH": os.environ.get("PATH", ""),
            "FAKE_MELTANO_RECORD": str(self.record),
            "FAKE_MELTANO_FAIL_FILE": str(self.fail_file),
            "FAKE_MELTANO_BUSY_FILE": str(self.busy_file),
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": "must-not-reach-the-child",
            "TAP_FRESHBOOKS_RECORD_IDS": '{"stale": [1]}',
        }

    def runner(self, **environ) -> Runner:
        return Runner(self.settings, self.store, environ={**self.environ, **environ})

    def enqueue(self, *events, at=None):
        for e in events:
            self.store.enqueue(e, at or time.time(), coalesce_window=self.settings.coalesce_window_seconds)

    def runs(self):
        return read_records(self.record)

    def statuses(self):
        return sorted((e.object_id, e.status) for e in self.store.events())


@pytest.fixture
def env(tmp_path, fake_cmd):
    e = Env(tmp_path, fake_cmd)
    yield e
    e.store.close()


async def run_until(runner: Runner, predicate, timeout=20.0):
    task = asyncio.create_task(runner.run_forever())
    try:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


def test_command_and_env(env):
    cmd = build_command(env.settings)
    assert cmd[0].endswith("nice") and cmd[1:3] == ["-n", "10"]  # runs yield the CPU to the endpoint
    assert cmd[4:] == ["run", "tap-freshbooks", "target-duckdb"]
    assert build_command(env.settings, force=True)[4:] == [
        "run",
        "--force",
        "tap-freshbooks",
        "target-duckdb",
    ]
    plain = make_settings(env.tmp, run_niceness=0, meltano_executable=env.settings.meltano_executable)
    assert build_command(plain)[1:] == ["run", "tap-freshbooks", "target-duckdb"]
    child = build_env(
        {"A": "1", "WEBHOOK_BRIDGE_X": "s", "TAP_FRESHBOOKS__SELECT_FILTER": "[]"},
        env.settings,
        record_ids={"invoices": [1]},
        event_received_at={"invoices": {"1": "t"}},
        select=["invoices", "invoice_lines"],
        account_ids=[ACCOUNT],
    )
    assert child["A"] == "1" and "WEBHOOK_BRIDGE_X" not in child
    assert child["TAP_FRESHBOOKS_RECORD_IDS"] == '{"invoices":[1]}'
    assert child["TAP_FRESHBOOKS_EVENT_RECEIVED_AT"] == '{"invoices":{"1":"t"}}'
    assert child["TAP_FRESHBOOKS__SELECT_FILTER"] == '["invoices", "invoice_lines"]'
    assert child["TAP_FRESHBOOKS_ACCOUNT_IDS"] == '["ABC123"]'
    poll = build_env(
        {
            "TAP_FRESHBOOKS_RECORD_IDS": "{}",
            "TAP_FRESHBOOKS_EVENT_RECEIVED_AT": "{}",
            "TAP_FRESHBOOKS_ACCOUNT_IDS": '["X"]',
        },
        env.settings,
    )
    assert "TAP_FRESHBOOKS_RECORD_IDS" not in poll and "TAP_FRESHBOOKS_EVENT_RECEIVED_AT" not in poll
    assert poll["TAP_FRESHBOOKS_ACCOUNT_IDS"] == '["X"]'  # the user's own setting stays for polls


def test_record_ids_run_per_account(env):
    env.enqueue(
        ev(1),
        ev(2, "invoice.create"),
        ev(1, "invoice.delete"),
        ev(7, "payment.update"),
        ev(3, account="OTHER1"),
        at=time.time() - 10,
    )
    runner = env.runner()
    asyncio.run(runner.run_next())
    asyncio.run(runner.run_next())
    runs = env.runs()
    assert len(runs) == 2
    first = runs[0]
    assert first["argv"] == ["run", "tap-freshbooks", "target-duckdb"]
    assert first["record_ids"] == {"invoices": [1, 2], "payments": [7]}
    assert first["select_filter"] is None  # no selection from the bridge: the tap adds the riders
    assert first["account_ids"] == [ACCOUNT]
    assert set(first["event_received_at"]["invoices"]) == {"1", "2"}
    assert first["bridge_vars"] == []  # the bridge's secrets never reach meltano
    assert Path(first["cwd"]) == env.settings.project_root
    assert runs[1]["record_ids"] == {"invoices": [3]} and runs[1]["account_ids"] == ["OTHER1"]
    assert {s for _, s in env.statuses()} == {"done"}
    assert [r.status for r in env.store.runs()] == ["succeeded", "succeeded"]


def test_coalescing_window_gathers_a_burst(tmp_path, fake_cmd):
    env = Env(tmp_path, fake_cmd, coalesce_window_seconds=1.0)
    runner = env.runner()

    async def scenario():
        task = asyncio.create_task(runner.run_forever())
        for i in range(20):
            env.enqueue(ev(100 + i))
            runner.wake()
            await asyncio.sleep(0.02)
        while len(env.store.events("done")) < 20:
            await asyncio.sleep(0.05)
        runner.stop()
        await task

    asyncio.run(asyncio.wait_for(scenario(), 30))
    runs = env.runs()
    assert len(runs) == 1, runs
    assert runs[0]["record_ids"] == {"invoices": list(range(100, 120))}
    env.store.close()


def test_failure_is_retried_with_backoff_and_kept_visible(env):
    env.fail_file.touch()
    env.enqueue(ev(1), at=time.time() - 10)
    runner = env.runner()
    assert asyncio.run(runner.run_next())
    [row] = env.store.events()
    assert row.status == "pending" and row.attempts == 1
    assert "warehouse unavailable" in row.last_error
    assert env.store.next_due() > time.time()  # backing off
    assert env.store.runs()[0].status == "failed" and env.store.runs()[0].exit_code == 1
    env.fail_file.unlink()
    asyncio.run(run_until(env.runner(), lambda: env.store.events("done")))
    assert [r["outcome"] for r in env.runs()] == ["failed", "ok"]


def test_poison_event_is_parked_and_never_blocks_the_queue(tmp_path, fake_cmd):
    env = Env(
        tmp_path,
        fake_cmd,
        max_attempts=4,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        max_batch_records=16,
    )
    env.enqueue(*(ev(i) for i in range(1, 9)), ev(666), at=time.time() - 10)
    runner = env.runner(FAKE_MELTANO_POISON="666")

    async def scenario():
        task = asyncio.create_task(runner.run_forever())
        while not env.store.events("parked"):
            await asyncio.sleep(0.05)
        env.enqueue(ev(50))  # a new event after the poison was parked goes straight through
        runner.wake()
        while len(env.store.events("done")) < 9:
            await asyncio.sleep(0.05)
        runner.stop()
        await task

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert [e.object_id for e in env.store.events("parked")] == ["666"]
    assert sorted(int(e.object_id) for e in env.store.events("done")) == [*range(1, 9), 50]
    parked = env.store.events("parked")[0]
    assert parked.attempts == 4 and "666" in parked.last_error
    env.store.close()


def test_busy_pipeline_is_retried_without_counting_an_attempt(env):
    env.busy_file.touch()
    env.enqueue(ev(1), at=time.time() - 10)
    assert asyncio.run(env.runner().run_next())
    [row] = env.store.events()
    assert row.status == "pending" and row.attempts == 0 and "already running" in row.last_error
    assert env.store.runs()[0].status == "busy"
    env.busy_file.unlink()
    asyncio.run(run_until(env.runner(), lambda: env.store.events("done")))


def test_force_only_after_our_own_killed_run(env):
    env.busy_file.write_text("unless-force")
    # a cron poll is running: busy, and the bridge does NOT force
    env.enqueue(ev(1), at=time.time() - 10)
    asyncio.run(env.runner().run_next())
    assert [r["argv"] for r in env.runs()] == [["run", "tap-freshbooks", "target-duckdb"]]
    # our previous run was killed (its Meltano job row is stale): the bridge forces
    run_id = env.store.start_run("poll")
    env.store.update_run(run_id, status="interrupted", finished_ts=time.time())
    asyncio.run(run_until(env.runner(), lambda: env.store.events("done")))
    assert env.runs()[-1]["argv"] == ["run", "--force", "tap-freshbooks", "target-duckdb"]
    assert env.store.runs()[0].forced


def test_timeout_kills_the_run(tmp_path, fake_cmd):
    env = Env(tmp_path, fake_cmd, run_timeout_seconds=1)
    env.enqueue(ev(1), at=time.time() - 10)
    started = time.monotonic()
    asyncio.run(env.runner(FAKE_MELTANO_SLEEP="30").run_next())
    assert time.monotonic() - started < 25
    [row] = env.store.events()
    assert row.status == "pending" and row.attempts == 1 and "timed out" in row.last_error
    assert env.store.runs()[0].status == "timeout"
    env.store.close()


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_a_run_gets_its_own_process_group_in_the_bridges_scheduler_group(tmp_path, event_loop):
    """Killed as a group on a timeout, but in the bridge's session: on Linux a new session is a new
    scheduler autogroup, and there ``run_niceness`` would not lower the run's share of the CPU.
    Also under uvloop (a dependency: uvicorn serves on it), which refuses some of asyncio's keywords."""
    run = asyncio.run if event_loop == "asyncio" else pytest.importorskip("uvloop").run
    log, ids = tmp_path / "run.log", tmp_path / "ids.json"
    # The ids go to a file of their own: the run's log also takes its stderr (a warning on a CI runner).
    child = (
        "import json, os, pathlib, sys\n"
        "group = pathlib.Path('/proc/self/autogroup')\n"
        "ids = [os.getsid(0), os.getpgid(0), os.getpid(), group.read_text() if group.exists() else '-']\n"
        "pathlib.Path(sys.argv[1]).write_text(json.dumps(ids))"
    )
    outcome = run(
        execute([sys.executable, "-c", child, str(ids)], os.environ, cwd=tmp_path, log_path=log, timeout=30)
    )
    assert outcome.exit_code == 0, log.read_text()
    sid, pgid, pid, autogroup = json.loads(ids.read_text())
    assert int(pgid) == int(pid) and int(sid) == os.getsid(0)
    # The whole line ("/autogroup-N nice 0"): some sandboxes (CI's runner) serve the file empty.
    ours = Path("/proc/self/autogroup")
    assert autogroup == (ours.read_text() if ours.exists() else "-")


def test_runs_are_serialised_across_processes(env):
    """Another process holding the run lock keeps the runner waiting; the child inherits the lock."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, os, sys, time\n"
                f"fd = os.open({str(env.settings.lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "time.sleep(1.5)\n"
            ),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout.readline().strip() == b"locked"
    released_at = time.time() + 1.4
    env.enqueue(ev(1), at=time.time() - 10)
    runner = env.runner(FAKE_MELTANO_SLEEP="1")

    async def scenario():
        task = asyncio.create_task(runner.run_forever())
        while not env.runs() and not runner.current_run:
            await asyncio.sleep(0.02)
        # during the run, nobody else can take the lock
        assert not RunLock(env.settings.lock_path).try_acquire()
        while not env.store.events("done"):
            await asyncio.sleep(0.05)
        runner.stop()
        await task

    asyncio.run(asyncio.wait_for(scenario(), 30))
    holder.wait(10)
    assert env.runs()[0]["started"] >= released_at - 0.2


def test_webhook_runs_and_polls_never_overlap(tmp_path, fake_cmd):
    env = Env(tmp_path, fake_cmd, poll_interval=10, coalesce_window_seconds=0)
    from webhook_bridge.poller import Poller

    runner = env.runner(FAKE_MELTANO_SLEEP="0.3")
    poller = Poller(env.settings, env.store, runner)

    async def scenario():
        tasks = [asyncio.create_task(runner.run_forever()), asyncio.create_task(poller.run_forever())]
        for i in range(6):
            env.enqueue(ev(i + 1))
            runner.wake()
            await asyncio.sleep(0.15)
        while (
            len(env.store.events("done")) < 6
            or not env.store.last_run("poll")
            or env.store.last_run("poll").status == "running"
        ):
            await asyncio.sleep(0.05)
        runner.stop()
        await asyncio.gather(*tasks)

    asyncio.run(asyncio.wait_for(scenario(), 60))
    runs = sorted(env.runs(), key=lambda r: r["started"])
    assert any(r["record_ids"] is None for r in runs) and any(r["record_ids"] for r in runs)
    for a, b in itertools.pairwise(runs):
        assert a["ended"] <= b["started"], "two runs overlapped"
    poll = next(r for r in runs if r["record_ids"] is None)
    assert poll["select_filter"] is None and poll["event_received_at"] is None
    env.store.close()


def test_poll_run_through_the_lock(env):
    outcome = asyncio.run(env.runner().run_poll())
    assert outcome.ok
    [run] = env.runs()
    assert run["record_ids"] is None and run["argv"] == ["run", "tap-freshbooks", "target-duckdb"]
    assert env.store.last_run("poll").status == "succeeded"


class TestPollSchedule:
    def rec(self, status, started=1000.0, finished=1010.0):
        return RunRecord(1, "poll", None, [], 0, 0, started, finished, status, 0, None, None, None, False)

    def test_first_poll_is_immediate(self, settings):
        s = make_settings(Path(settings.project_root), poll_interval=900)
        assert next_poll_at(None, s, now=5.0) == 5.0

    def test_disabled(self, settings):
        assert next_poll_at(None, settings, now=5.0) is None  # poll_interval 0 in tests

    def test_interval_after_success_and_sooner_after_failure(self, tmp_path):
        s = make_settings(tmp_path, poll_interval=900, busy_retry_seconds=30)
        assert next_poll_at(self.rec("succeeded"), s, now=0) == 1900.0
        assert next_poll_at(self.rec("busy"), s, now=0) == 1040.0
        assert next_poll_at(self.rec("failed"), s, now=0) == 1310.0
