"""A real `webhook-bridge serve` process on 127.0.0.1: delivery to run, and crash safety (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from bridge.helpers import (
    event_fields,
    make_settings,
    open_store,
    read_records,
    seed_verifier,
    signed,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def world(tmp_path, fake_cmd):
    settings = make_settings(tmp_path)
    seed_verifier(settings)
    record = tmp_path / "runs.jsonl"
    env_extra = {"FAKE_MELTANO_RECORD": str(record)}
    return settings, record, env_extra, {"meltano_executable": fake_cmd}


def events_by_status(settings):
    store = open_store(settings)
    try:
        out: dict[str, list[str]] = {}
        for e in store.events():
            out.setdefault(e.status, []).append(e.object_id)
        return out
    finally:
        store.close()


def hold_lock(path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, os, sys\n"
                f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "sys.stdin.read()\n"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert holder.stdout.readline().strip() == b"locked"
    return holder


def test_delivery_becomes_a_run(world, server_factory):
    settings, record, env_extra, overrides = world
    server = server_factory(env_extra, **overrides)
    for object_id in (11, 12, 11):
        body, headers = signed(event_fields(object_id))
        assert server.post(body, headers).status_code == 200
    wait_for(
        lambda: (lambda s: s.get("done") and not s.get("pending") and not s.get("running"))(
            events_by_status(settings)
        ),
        timeout=20,
        message="events done",
    )
    ids = sorted({i for r in read_records(record) for i in r["record_ids"]["invoices"]})
    assert ids == [11, 12]
    logs = server.log_lines()
    queued = [line for line in logs if line.get("msg") == "event queued"]
    assert queued and {"event_name", "account_id", "object_id", "received_at"} <= set(queued[0])
    assert any(line.get("msg") == "run succeeded" for line in logs)


def test_kill9_after_ack_before_run(world, server_factory):
    """Acknowledged events survive kill -9 of the bridge and run after the restart."""
    settings, record, env_extra, overrides = world
    holder = hold_lock(settings.lock_path)  # keeps the bridge from starting any run
    try:
        server = server_factory(env_extra, **overrides)
        for object_id in range(1, 6):
            body, headers = signed(event_fields(object_id))
            assert server.post(body, headers).status_code == 200
        server.kill9()
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert sorted(events_by_status(settings)["pending"]) == ["1", "2", "3", "4", "5"]
    assert read_records(record) == []  # nothing ran before the crash
    server_factory(env_extra, **overrides)
    wait_for(
        lambda: len(events_by_status(settings).get("done", [])) == 5,
        timeout=20,
        message="events run after restart",
    )
    assert sorted(i for r in read_records(record) for i in r["record_ids"]["invoices"]) == [1, 2, 3, 4, 5]


def post_and_wait_for_its_run(server, settings, invoice_id: int):
    """Post a signed event for ``invoice_id`` (answered 200) and wait until a run for it has started."""
    body, headers = signed(event_fields(invoice_id))
    assert server.post(body, headers).status_code == 200
    store = open_store(settings)
    run = wait_for(lambda: next((r for r in store.runs() if r.pid), None), timeout=10, message="run start")
    store.close()
    return run


def test_kill9_during_a_run(world, server_factory):
    """kill -9 of the bridge mid-run: the orphaned run keeps the lock; after the restart the events
    are run again (the tap refetches, the target upserts) and end done."""
    settings, record, env_extra, overrides = world
    server = server_factory({**env_extra, "FAKE_MELTANO_SLEEP": "2"}, **overrides)
    run = post_and_wait_for_its_run(server, settings, 21)
    server.kill9()
    restarted = server_factory(env_extra, **overrides)
    wait_for(lambda: events_by_status(settings).get("done") == ["21"], timeout=30, message="rerun")
    records = read_records(record)
    assert [r["record_ids"] for r in records] == [{"invoices": [21]}, {"invoices": [21]}]
    assert records[0]["pid"] == run.pid and records[1]["started"] >= records[0]["ended"]  # no overlap
    assert any(line.get("msg") == "recovered events of an interrupted run" for line in restarted.log_lines())


def test_kill9_of_bridge_and_tap(world, server_factory):
    """Both the bridge and the running meltano die: the events are retried after the restart."""
    settings, record, env_extra, overrides = world
    server = server_factory({**env_extra, "FAKE_MELTANO_SLEEP": "30"}, **overrides)
    run = post_and_wait_for_its_run(server, settings, 31)
    server.kill9()
    os.killpg(run.pid, signal.SIGKILL)
    server_factory(env_extra, **overrides)
    wait_for(lambda: events_by_status(settings).get("done") == ["31"], timeout=30, message="retry")
    assert [r["record_ids"] for r in read_records(record)] == [{"invoices": [31]}]


def test_sigterm_during_a_run_requeues_without_an_attempt(world, server_factory):
    settings, _record, env_extra, overrides = world
    server = server_factory({**env_extra, "FAKE_MELTANO_SLEEP": "30"}, **overrides)
    body, headers = signed(event_fields(41))
    assert server.post(body, headers).status_code == 200
    store = open_store(settings)
    wait_for(lambda: any(r.pid for r in store.runs()), timeout=10, message="run start")
    server.stop()
    [row] = store.events()
    assert row.status == "pending" and row.attempts == 0
    assert store.runs()[0].status == "cancelled"
    store.close()
