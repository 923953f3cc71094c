"""The encrypted token store: encryption at rest, atomic replace, 0600, inter-process lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from freshbooks_auth.errors import ConfigError, TokenStoreError
from freshbooks_auth.fernet import GENERATE_KEY_COMMAND, new_encryption_key
from freshbooks_auth.token_store import TokenSet, TokenStore

TAP_SRC = str(Path(__file__).resolve().parents[2] / "tap-freshbooks")

ACCESS = "eyJhbGciOiJIUzI1NiJ9.access-token-PLAINTEXT-MARKER.sig"
REFRESH = "f00dfeed" * 8


def make_tokens(access: str = ACCESS, refresh: str = REFRESH, ttl: int = 43200) -> TokenSet:
    return TokenSet.from_token_response(
        {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ttl,
            "created_at": int(time.time()),
            "scope": "user:profile:read user:clients:read",
        }
    )


@pytest.fixture
def key() -> str:
    return new_encryption_key()


@pytest.fixture
def store(tmp_path: Path, key: str) -> TokenStore:
    return TokenStore(tmp_path / "state" / "freshbooks-tokens.enc", key, lock_timeout=5)


# --- TokenSet ---------------------------------------------------------------------------------------


def test_tokenset_expiry_is_created_at_plus_expires_in() -> None:
    now = time.time()
    ts = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 43200, "created_at": int(now) - 100},
        obtained_at=now,
    )
    assert ts.expires_at == int(now) - 100 + 43200
    assert ts.created_at == int(now) - 100
    assert ts.token_type == "Bearer"
    assert ts.is_fresh(3600)
    assert not ts.is_fresh(3600, now=ts.expires_at - 3000)
    assert ts.is_fresh(0, now=ts.expires_at - 1)
    assert ts.is_expired(now=ts.expires_at)


def test_tokenset_margin_capped_at_half_lifetime() -> None:
    """A token that lives 10 s is used for ~5 s, not refreshed on every request by a 1 h margin."""
    now = time.time()
    ts = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 10, "created_at": int(now)}, obtained_at=now
    )
    assert ts.effective_margin(3600) <= 5
    assert ts.is_fresh(3600, now=now + 1)
    assert not ts.is_fresh(3600, now=now + 6)


def test_tokenset_stale_created_at_does_not_expire_on_arrival() -> None:
    now = time.time()
    ts = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 100, "created_at": int(now) - 10_000},
        obtained_at=now,
    )
    assert ts.expires_at == pytest.approx(now + 100)
    assert ts.is_fresh(3600, now=now + 1)


def test_tokenset_rejects_response_without_tokens() -> None:
    with pytest.raises(ValueError, match="access_token"):
        TokenSet.from_token_response({"refresh_token": "r", "expires_in": 5})
    with pytest.raises(ValueError, match="refresh_token"):
        TokenSet.from_token_response({"access_token": "a", "expires_in": 5})


def test_tokenset_repr_redacts_and_dict_roundtrip() -> None:
    ts = make_tokens()
    for text in (repr(ts), str(ts), f"{ts}"):
        assert ACCESS not in text
        assert REFRESH not in text
        assert "redacted" in text
    assert TokenSet.from_dict(ts.to_dict()) == ts
    with pytest.raises(ValueError):
        TokenSet.from_dict({"access_token": "a"})


# --- encryption at rest -----------------------------------------------------------------------------


def test_missing_file_loads_none(store: TokenStore) -> None:
    assert store.load() is None


def test_roundtrip_and_file_never_holds_plain_tokens(store: TokenStore, key: str) -> None:
    ts = make_tokens()
    store.save(ts)
    assert store.load() == ts
    raw = store.path.read_bytes()
    assert ACCESS.encode() not in raw
    assert REFRESH.encode() not in raw
    assert b"access_token" not in raw
    assert b"refresh_token" not in raw
    # the whole file is one Fernet token
    assert Fernet(key.encode()).decrypt(raw)
    # a second handle with the same key reads it
    assert TokenStore(store.path, key).load() == ts


def test_no_plaintext_in_any_file_of_the_directory(store: TokenStore) -> None:
    store.save(make_tokens())
    with store.lock():
        store.save(make_tokens(access=ACCESS + "2", refresh=REFRESH[::-1]))
    for path in store.path.parent.iterdir():
        data = path.read_bytes()
        assert ACCESS.encode() not in data
        assert REFRESH[::-1].encode() not in data


def test_file_mode_is_0600_even_with_permissive_umask(store: TokenStore) -> None:
    old = os.umask(0)
    try:
        store.save(make_tokens())
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        store.save(make_tokens(access="second"))  # replacing keeps 0600
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_wrong_key_is_a_clear_one_line_error(store: TokenStore, key: str) -> None:
    store.save(make_tokens())
    other_key = new_encryption_key()
    with pytest.raises(TokenStoreError) as info:
        TokenStore(store.path, other_key).load()
    message = str(info.value)
    assert message.startswith(f"token_encryption_key does not decrypt {store.path}: ")
    assert "\n" not in message
    assert "Traceback" not in message
    assert "InvalidToken" not in message
    assert other_key not in message and key not in message
    assert info.value.__suppress_context__  # raised "from None": no chained cryptography traceback


def test_corrupt_file_is_a_token_store_error(store: TokenStore) -> None:
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(b"not a fernet token at all")
    with pytest.raises(TokenStoreError, match="does not decrypt"):
        store.load()


def test_encrypted_but_not_a_token_set(store: TokenStore, key: str) -> None:
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(Fernet(key.encode()).encrypt(b'{"hello": 1}'))
    with pytest.raises(TokenStoreError, match="does not hold a FreshBooks token set"):
        store.load()


def test_unreadable_store_is_a_token_store_error(tmp_path: Path, key: str) -> None:
    path = tmp_path / "store-is-a-directory"
    path.mkdir()
    with pytest.raises(TokenStoreError, match="cannot read token store"):
        TokenStore(path, key).load()


@pytest.mark.parametrize("bad_key", ["not-a-key", "", "x" * 44])
def test_malformed_key_is_a_config_error_with_generate_command(tmp_path: Path, bad_key: str) -> None:
    with pytest.raises(ConfigError) as info:
        TokenStore(tmp_path / "t.enc", bad_key)
    assert "token_encryption_key" in str(info.value)
    assert GENERATE_KEY_COMMAND in str(info.value)
    if bad_key:
        assert bad_key not in str(info.value)


def test_key_accepts_bytes_and_surrounding_whitespace(tmp_path: Path) -> None:
    key = new_encryption_key()
    a = TokenStore(tmp_path / "t.enc", key.encode())
    a.save(make_tokens())
    assert TokenStore(tmp_path / "t.enc", f"  {key}\n").load() == a.load()


# --- atomic save ------------------------------------------------------------------------------------


def test_crash_before_replace_leaves_old_store_intact(
    store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_tokens()
    store.save(old)
    before = store.path.read_bytes()

    def crash(*_args: object, **_kwargs: object) -> None:
        raise OSError(5, "simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(TokenStoreError, match="cannot write token store"):
        store.save(make_tokens(access="new-access", refresh="new-refresh"))
    monkeypatch.undo()

    assert store.path.read_bytes() == before
    assert store.load() == old
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_save_fsyncs_file_and_directory(store: TokenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    store.save(make_tokens())
    assert len(synced) >= 2  # the temp file, then the directory


def test_save_into_unwritable_directory_fails_cleanly(tmp_path: Path, key: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = TokenStore(blocker / "tokens.enc", key)  # parent is a regular file
    with pytest.raises(TokenStoreError):
        store.save(make_tokens())


# --- inter-process lock -----------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {src!r})
    from freshbooks_auth.token_store import TokenStore
    store = TokenStore({path!r}, {key!r})
    with store.lock():
        print("locked", flush=True)
        time.sleep({hold})
    print("released", flush=True)
    """
)


def test_lock_excludes_other_processes_and_times_out_clearly(store: TokenStore, key: str) -> None:
    code = HOLD_LOCK.format(src=TAP_SRC, path=str(store.path), key=key, hold=1.5)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    with proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(TokenStoreError) as info, store.lock(timeout=0.3):
            pass
        message = str(info.value)
        assert "timed out" in message and str(store.lock_path) in message and "\n" not in message
        started = time.monotonic()
        with store.lock(timeout=10):
            waited = time.monotonic() - started
        assert waited > 0.3  # it really waited for the other process
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_lock_released_when_holder_is_killed(store: TokenStore, key: str) -> None:
    code = HOLD_LOCK.format(src=TAP_SRC, path=str(store.path), key=key, hold=60)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    with proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "locked"
            proc.kill()
            proc.wait(timeout=10)
            with store.lock(timeout=5):
                pass
        finally:
            if proc.poll() is None:
                proc.kill()


def test_lock_is_reentrant_in_one_thread(store: TokenStore) -> None:
    with store.lock(), store.lock():
        store.save(make_tokens())
    assert store.load() is not None
