"""`webhook-bridge register` against the FreshBooks emulator and a real bridge; `status`; `requeue`."""

from __future__ import annotations

import json
import time

import pytest

from bridge.helpers import (
    bridge_env,
    cli,
    event_fields,
    make_settings,
    open_store,
    read_records,
    seed_verifier,
    wait_for,
)
from webhook_bridge.signature import classify

emulator_mod = pytest.importorskip("freshbooks_emulator", reason="FreshBooks emulator not available")
token_store_mod = pytest.importorskip("freshbooks_auth.token_store", reason="freshbooks-auth not importable")


@pytest.fixture
def emu():
    e = emulator_mod.FreshBooksEmulator(seed="small").start()
    yield e
    e.stop()


@pytest.fixture
def fb_env(tmp_path, emu, fake_cmd):
    """Bridge settings wired to the emulator (token store filled from a fresh grant)."""
    from webhook_bridge.settings import Settings

    token_path = tmp_path / "tokens.fernet"
    key = bridge_env(tmp_path)["WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY"]
    store = token_store_mod.TokenStore(token_path, key)
    store.save(token_store_mod.TokenSet.from_token_response(emu.issue_grant()))
    overrides = {
        "api_url": emu.url,
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "token_store_path": token_path,
        "meltano_executable": fake_cmd,
        "account_ids": emu.accounts[0]["account_id"],
    }
    Settings.from_env(bridge_env(tmp_path, **overrides))  # valid
    return overrides


@pytest.mark.slow
def test_register_verify_list_resend_delete(tmp_path, emu, fb_env, server_factory):
    account = emu.accounts[0]["account_id"]
    record = tmp_path / "runs.jsonl"
    server = server_factory({"FAKE_MELTANO_RECORD": str(record)}, **fb_env)
    env = {**bridge_env(tmp_path, **fb_env), "WEBHOOK_BRIDGE_PUBLIC_URL": server.url}

    first = cli(
        env, "register", "--events", "invoice", "payment.update", "bill_payment.create", "--wait", "20"
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert "not offered by FreshBooks" in first.stdout  # bill_payment: no such event
    assert "all callbacks verified" in first.stdout
    callbacks = [c for c in emu.callbacks if c["account_id"] == account]
    assert sorted(c["event"] for c in callbacks) == [
        "invoice.create",
        "invoice.delete",
        "invoice.update",
        "payment.update",
    ]
    assert all(c["verified"] and c["uri"] == server.url + "/webhooks/freshbooks" for c in callbacks)
    settings = make_settings(tmp_path, **fb_env)
    store = open_store(settings)
    assert store.verifier_summary() == {account: {"verified": 4}}
    # the verifier is encrypted at rest
    raw = (
        settings.db_path.read_bytes()
        + settings.db_path.with_name(settings.db_path.name + "-wal").read_bytes()
    )
    assert all(c["verifier"].encode() not in raw for c in callbacks)

    again = cli(env, "register", "--events", "invoice", "payment.update", "--wait", "5")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("exists") == 4 and "created" not in again.stdout
    assert len([c for c in emu.callbacks if c["account_id"] == account]) == 4  # no duplicates

    listed = cli(env, "register", "--list")
    assert listed.returncode == 0 and listed.stdout.count("verified") == 4

    # a real signed delivery from the emulator reaches a run
    target = emu.truth("invoices", account)[0]["id"]
    assert emu.deliver_event(account, "invoice.update", target) == [200]
    wait_for(lambda: read_records(record), timeout=20, message="run")
    assert read_records(record)[0]["record_ids"] == {"invoices": [target]}

    cid = str(next(c["callbackid"] for c in emu.callbacks if c["event"] == "payment.update"))
    resent = cli(env, "register", "--resend", cid)
    assert resent.returncode == 0 and "resent" in resent.stdout
    deleted = cli(env, "register", "--delete", cid)
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    assert all(str(c["callbackid"]) != cid for c in emu.callbacks)
    wait_for(
        lambda: store.verifier_summary() == {account: {"verified": 3}},
        timeout=5,
        message="local verifier removed",
    )
    store.close()


def test_register_needs_a_public_url(tmp_path, fb_env):
    result = cli(bridge_env(tmp_path, **fb_env), "register")
    assert result.returncode == 2 and "--public-url" in result.stderr


def test_status_and_requeue(tmp_path, fake_cmd):
    settings = make_settings(tmp_path)
    seed_verifier(settings)
    store = open_store(settings)
    for i in range(3):
        store.enqueue(classify(event_fields(i + 1)), time.time() - 30)
    batch = store.claim(max_batch=1)
    store.fail(
        batch.run_id, "exit code 1: target: warehouse unavailable", max_attempts=1, retry_base=1, retry_max=1
    )
    batch = store.claim()
    store.ack(batch.run_id)
    store.enqueue(classify(event_fields(9)), time.time() - 5)
    store.update_run(batch.run_id, status="succeeded", exit_code=0, finished_ts=time.time())
    store.close()
    env = bridge_env(tmp_path)

    text = cli(env, "status")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "queue depth: 1" in out and "parked: 1" in out
    assert "oldest pending event: 5." in out or "oldest pending event: 6." in out
    assert "ABC123" in out and "webhook" in out and "succeeded" in out
    assert "warehouse unavailable" in out
    report = json.loads(cli(env, "status", "--json").stdout)
    assert report["queue"]["parked"] == 1 and report["queue"]["pending"] == 1
    assert report["recent_failures"][0]["object_id"] == "1"
    assert report["run_lock"]["held"] is False

    requeued = cli(env, "requeue")
    assert requeued.returncode == 0 and "1 parked event(s) queued again" in requeued.stdout
    assert json.loads(cli(env, "status", "--json").stdout)["queue"]["parked"] == 0


def test_poll_command_runs_under_the_lock(tmp_path, fake_cmd):
    record = tmp_path / "runs.jsonl"
    env = {**bridge_env(tmp_path, meltano_executable=fake_cmd), "FAKE_MELTANO_RECORD": str(record)}
    result = cli(env, "poll")
    assert result.returncode == 0, result.stderr
    [run] = read_records(record)
    assert run["record_ids"] is None and run["argv"] == ["run", "tap-freshbooks", "target-duckdb"]
