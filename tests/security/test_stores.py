"""The token store and the bridge's verifier database: private files, no secret in clear, and a wrong
key fails with one clear message without touching what is stored."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from conftest import ROOT, TEST_FERNET_KEY, app_config, tap_config
from freshbooks_auth.errors import TokenStoreError
from freshbooks_auth.token_store import TokenSet, TokenStore
from security.outputs import save_output

BRIDGE_SRC = ROOT / "webhook-bridge"
if str(BRIDGE_SRC) not in sys.path:
    sys.path.insert(0, str(BRIDGE_SRC))

from webhook_bridge.signature import classify  # noqa: E402
from webhook_bridge.store import Store, StoreError  # noqa: E402

OTHER_KEY = Fernet.generate_key().decode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask():
    """umask 000: every file or directory a tool does not restrict itself comes out world-writable."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def one_line(message: str) -> str:
    assert "\n" not in message.strip() and "Traceback" not in message, message
    return message


def grant_tokens(emulator) -> TokenSet:
    return TokenSet.from_token_response(emulator.issue_grant())


# ------------------------------------------------------------------------------------------------
# token store (tap-freshbooks)


def test_token_store_file_and_the_directories_it_creates_are_private(emulator, tmp_path, permissive_umask):
    store = TokenStore(tmp_path / "new" / "nested" / "tokens.fernet", TEST_FERNET_KEY)
    with store.lock():
        store.save(grant_tokens(emulator))
    assert mode(store.path) == 0o600
    assert mode(store.lock_path) & 0o077 == 0
    assert mode(tmp_path / "new") == 0o700
    assert mode(tmp_path / "new" / "nested") == 0o700
    assert [p.name for p in store.path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_token_store_leaves_an_existing_directory_alone(emulator, tmp_path, permissive_umask):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    store = TokenStore(shared / "tokens.fernet", TEST_FERNET_KEY)
    store.save(grant_tokens(emulator))
    assert mode(shared) == 0o755  # not the tool's directory: not its to change
    assert mode(store.path) == 0o600


def test_token_store_bytes_hold_no_token_in_clear(emulator, tmp_path):
    tokens = grant_tokens(emulator)
    store = TokenStore(tmp_path / "tokens.fernet", TEST_FERNET_KEY)
    store.save(tokens)
    raw = store.path.read_bytes()
    for needle in (tokens.access_token, tokens.refresh_token, "access_token", "refresh_token"):
        assert needle.encode() not in raw
    assert store.load() == tokens


def test_token_store_wrong_key_fails_in_one_line_and_keeps_the_store(emulator, tmp_path):
    store = TokenStore(tmp_path / "tokens.fernet", TEST_FERNET_KEY)
    store.save(grant_tokens(emulator))
    before = store.path.read_bytes()
    with pytest.raises(TokenStoreError) as caught:
        TokenStore(store.path, OTHER_KEY).load()
    message = one_line(str(caught.value))
    assert str(store.path) in message and "token_encryption_key" in message
    assert store.path.read_bytes() == before
    assert store.load() is not None  # the right key still opens it


def test_tap_run_with_the_wrong_key_spends_nothing_and_overwrites_nothing(emulator, tmp_path):
    config = tap_config(emulator, tmp_path)
    store = TokenStore(config["token_store_path"], TEST_FERNET_KEY)
    store.save(grant_tokens(emulator))
    before = store.path.read_bytes()
    config["token_encryption_key"] = OTHER_KEY  # a bootstrap refresh_token is present too
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    emulator.clear_log()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_FRESHBOOKS")}
    proc = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--config", str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    save_output("tap-freshbooks with the wrong token key", proc.stdout + proc.stderr)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "token_encryption_key does not decrypt" in proc.stderr.strip().splitlines()[-1]
    assert store.path.read_bytes() == before
    assert not [p for p in emulator.request_log if p[1].endswith("/oauth/token")]  # bootstrap token unspent


def test_auth_login_with_the_wrong_key_refuses_before_anything_happens(emulator, tmp_path):
    from freshbooks_auth.login import login_command

    config = app_config(emulator, tmp_path)
    store = TokenStore(config["token_store_path"], TEST_FERNET_KEY)
    store.save(grant_tokens(emulator))
    before = store.path.read_bytes()
    emulator.clear_log()
    printed: list[str] = []
    asked: list[str] = []
    errors = _stderr_of(
        lambda: login_command(
            {**config, "token_encryption_key": OTHER_KEY},
            True,
            input_fn=lambda p: asked.append(p) or "",
            output=printed.append,
        )
    )
    code, err = errors
    assert code != 0
    assert "token_encryption_key does not decrypt" in one_line(err)
    assert printed == [] and asked == []  # no authorize URL, no prompt: nothing to throw away
    assert store.path.read_bytes() == before
    assert emulator.request_log == []


def _stderr_of(fn) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        code = fn()
    return code, buffer.getvalue()


# ------------------------------------------------------------------------------------------------
# webhook-bridge verifier database


def _event(object_id: int = 1):
    return classify(
        [
            ("name", "invoice.update"),
            ("object_id", str(object_id)),
            ("account_id", "ABC123"),
            ("business_id", "1"),
            ("identity_id", "2"),
            ("user_id", "1"),
        ]
    )


def _db_files(path: Path) -> list[Path]:
    return [
        p
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    ]


def test_bridge_database_and_the_directories_it_creates_are_private(tmp_path, permissive_umask):
    db = tmp_path / "data" / "deeper" / "bridge.sqlite3"
    store = Store(db, TEST_FERNET_KEY)
    try:
        vid, _ = store.add_verifier("ABC123", "2001", "Verifier0123456789abcdefghijklmno")
        store.mark_verifier(vid, "verified")
        store.enqueue(_event())
        files = _db_files(db)
        assert {p.name for p in files} >= {"bridge.sqlite3", "bridge.sqlite3-wal"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "deeper") == 0o700


def test_bridge_database_holds_no_verifier_in_clear(tmp_path):
    db = tmp_path / "bridge.sqlite3"
    verifier = "Verifier0123456789abcdefghijklmno"
    store = Store(db, TEST_FERNET_KEY)
    try:
        vid, _ = store.add_verifier("ABC123", "2001", verifier)
        store.mark_verifier(vid, "verified")
        raw_before_checkpoint = b"".join(p.read_bytes() for p in _db_files(db))
        store.pragma("wal_checkpoint(TRUNCATE)")
        raw_after_checkpoint = b"".join(p.read_bytes() for p in _db_files(db))
        assert store.verified_verifiers() == {"ABC123": [verifier]}
    finally:
        store.close()
    for raw in (raw_before_checkpoint, raw_after_checkpoint):
        assert verifier.encode() not in raw
        assert verifier[:16].encode() not in raw


def test_bridge_database_wrong_key_fails_in_one_line_and_keeps_everything(tmp_path):
    db = tmp_path / "bridge.sqlite3"
    store = Store(db, TEST_FERNET_KEY)
    vid, _ = store.add_verifier("ABC123", "2001", "Verifier0123456789abcdefghijklmno")
    store.mark_verifier(vid, "verified")
    store.enqueue(_event(7))
    store.close()

    with pytest.raises(StoreError) as caught:
        Store(db, OTHER_KEY)
    message = one_line(str(caught.value))
    assert str(db) in message and "token_encryption_key" in message

    again = Store(db, TEST_FERNET_KEY)  # the right key: everything is still there
    try:
        assert again.verified_verifiers() == {"ABC123": ["Verifier0123456789abcdefghijklmno"]}
        assert [e.object_id for e in again.events()] == ["7"]
    finally:
        again.close()


def test_bridge_database_from_before_the_key_check_is_still_guarded(tmp_path):
    """A database written before the key check existed has no check value: its verifiers decide."""
    db = tmp_path / "bridge.sqlite3"
    store = Store(db, TEST_FERNET_KEY)
    vid, _ = store.add_verifier("ABC123", "2001", "Verifier0123456789abcdefghijklmno")
    store.mark_verifier(vid, "verified")
    store.close()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM meta WHERE key != 'schema_version'")
    with pytest.raises(StoreError):
        Store(db, OTHER_KEY)
    Store(db, TEST_FERNET_KEY).close()


def test_bridge_cli_with_the_wrong_key_says_so_in_one_line(tmp_path):
    data = tmp_path / "data"
    store = Store(data / "bridge.sqlite3", TEST_FERNET_KEY)
    store.enqueue(_event(9))
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_BRIDGE_")}
    env.update(
        {
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": OTHER_KEY,
            "WEBHOOK_BRIDGE_DATA_DIR": str(data),
            "WEBHOOK_BRIDGE_PROJECT_ROOT": str(tmp_path),
            "PYTHONPATH": os.pathsep.join([str(BRIDGE_SRC), str(ROOT / "tap-freshbooks")]),
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "webhook_bridge", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    save_output("webhook-bridge status with the wrong key", proc.stdout + proc.stderr)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "token_encryption_key does not decrypt" in lines[0], proc.stderr
