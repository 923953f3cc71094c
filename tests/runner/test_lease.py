"""The pipeline lock's lease on its three real stores: a local file, S3 (moto server), PostgreSQL.

What every store must give: one holder at a time, a holder killed with -9 on this machine is
replaced at once, a holder on another machine counts until its heartbeat is older than the TTL,
racing takers produce exactly one winner, and a holder whose lease was taken cannot renew it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tap_freshbooks.run_lock_lease import Holder, Lease, store_for

STORES = ["file", "s3", "postgres"]


@pytest.fixture(params=STORES)
def lock_url(request, tmp_path, monkeypatch):
    if request.param == "file":
        return f"file://{tmp_path / 'locks'}"
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        bucket = f"locks-{uuid.uuid4().hex[:8]}"
        server.create_bucket(bucket)
        return f"s3://{bucket}/pipeline-locks"
    pytest.importorskip("psycopg")
    return request.getfixturevalue("postgres").dsn


def new_lease(url: str, key: str, what: str = "test") -> Lease:
    return Lease(store_for(url, key), Holder.for_this_process(what))


def test_one_holder_at_a_time_and_release_frees_it(lock_url):
    key = uuid.uuid4().hex
    first, second = new_lease(lock_url, key, "first"), new_lease(lock_url, key, "second")
    assert first.try_acquire() is None
    busy = second.try_acquire()
    assert busy is not None and busy.token == first.holder.token and busy.what == "first"
    assert first.renew()
    assert second.try_acquire() is not None
    assert first.release()
    assert second.try_acquire() is None
    assert second.took_over is None  # freed properly, not taken from a dead holder
    assert second.release()


HOLD_AND_WAIT = """
import sys, time
from tap_freshbooks.run_lock_lease import Holder, Lease, store_for
lease = Lease(store_for(sys.argv[1], sys.argv[2]), Holder.for_this_process("doomed"))
assert lease.try_acquire() is None
print("held", flush=True)
time.sleep(600)
"""


def test_holder_killed_with_sigkill_on_this_machine_is_replaced_at_once(lock_url):
    key = uuid.uuid4().hex
    doomed = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, lock_url, key],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert doomed.stdout.readline().strip() == "held"
        waiting = new_lease(lock_url, key)
        assert waiting.try_acquire() is not None  # alive: respected
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        started = time.monotonic()
        assert waiting.try_acquire() is None
        assert time.monotonic() - started < 2
        assert waiting.took_over is not None and waiting.took_over.pid == doomed.pid
        waiting.release()
    finally:
        if doomed.poll() is None:
            doomed.kill()


def test_holder_on_another_machine_counts_until_its_heartbeat_expires(lock_url):
    key = uuid.uuid4().hex
    store = store_for(lock_url, key)
    foreign = dataclasses.replace(Holder.for_this_process("elsewhere"), host="other-runner/boot/ns", pid=1)
    assert store.create(foreign.record()) is not None
    local = new_lease(lock_url, key)
    busy = local.try_acquire()
    assert busy is not None and busy.host.startswith("other-runner")
    record, version = store.read()
    expired = dict(record, heartbeat_at=time.time() - foreign.ttl - 1)
    assert store.replace(expired, version) is not None
    assert local.try_acquire() is None
    assert local.took_over is not None and local.took_over.host.startswith("other-runner")
    local.release()


def test_racing_takers_get_exactly_one_winner(lock_url):
    key = uuid.uuid4().hex
    leases = [new_lease(lock_url, key, f"racer {i}") for i in range(8)]
    results: list[object] = [None] * len(leases)
    gate = threading.Barrier(len(leases))

    def race(i: int) -> None:
        gate.wait()
        results[i] = "won" if leases[i].try_acquire() is None else "busy"

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(leases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results.count("won") == 1, results
    winner = leases[results.index("won")]
    record, _ = store_for(lock_url, key).read()
    assert record["token"] == winner.holder.token
    winner.release()


def test_a_holder_whose_lease_was_taken_cannot_renew_or_release_it(lock_url):
    key = uuid.uuid4().hex
    first = new_lease(lock_url, key)
    assert first.try_acquire() is None
    store = store_for(lock_url, key)
    _record, version = store.read()
    thief = Holder.for_this_process("after expiry")
    assert store.replace(thief.record(), version) is not None
    assert not first.renew()
    assert not first.release()
    assert json.loads(json.dumps(store.read()[0]))["token"] == thief.token
