"""FreshBooksAuthenticator against the FreshBooks emulator (real HTTP, real token store, real processes)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest
import requests

from conftest import app_config
from freshbooks_auth.authenticator import (
    GRANT_REJECTED_MESSAGE,
    FreshBooksAuthenticator,
    authenticator_from_config,
)
from freshbooks_auth.errors import ReauthorizationRequired, TokenEndpointError
from freshbooks_auth.token_store import TokenSet, TokenStore
from token_client import refresh_directly

AUTH_SRC = str(Path(__file__).resolve().parents[2] / "freshbooks-auth")


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def emu(emulator):
    """The shared emulator fixture (tests/conftest.py), under this module's short name."""
    return emulator


@pytest.fixture
def config(emu, tmp_path: Path) -> dict:
    return app_config(emu, tmp_path)


@pytest.fixture
def store(config: dict) -> TokenStore:
    return TokenStore(config["token_store_path"], config["token_encryption_key"], lock_timeout=30)


def seed_store(emu, store: TokenStore) -> TokenSet:
    """Put a brand-new grant's token pair in the store (as `auth login` would)."""
    tokens = TokenSet.from_token_response(emu.issue_grant())
    store.save(tokens)
    return tokens


def make_auth(config: dict, store: TokenStore, **kwargs) -> FreshBooksAuthenticator:
    kwargs.setdefault("retry_wait_seconds", 0.01)
    return FreshBooksAuthenticator(
        client_id=config["client_id"],
        client_secret=config["client_secret"],
        redirect_uri=config["redirect_uri"],
        token_url=f"{config['api_url']}/auth/oauth/token",
        store=store,
        **kwargs,
    )


def me_status(emu, access_token: str) -> int:
    response = requests.get(
        f"{emu.url}/auth/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    return response.status_code


def token_calls(emu) -> list:
    """Token-endpoint requests seen by the emulator: (method, path, status) tuples."""
    return [entry for entry in emu.request_log if entry[1].split("?")[0] == "/auth/oauth/token"]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = AUTH_SRC
    return env


# --- basic protocol ---------------------------------------------------------------------------------


def test_constructed_without_deprecated_stream_argument(config: dict, store: TokenStore) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auth = make_auth(config, store)
    assert auth.auth_endpoint.endswith("/auth/oauth/token")
    assert auth.oauth_request_body["grant_type"] == "refresh_token"


def test_bootstrap_refresh_is_persisted_before_the_new_token_is_used(
    emu, config: dict, store: TokenStore
) -> None:
    grant = emu.issue_grant()
    auth = make_auth(config, store, bootstrap_refresh_token=grant["refresh_token"])
    assert store.load() is None

    request = requests.Request("GET", f"{emu.url}/auth/api/v1/users/me").prepare()
    auth.authenticate_request(request)
    used = request.headers["Authorization"].removeprefix("Bearer ")

    # Before the request is sent, the store already holds the pair the request uses.
    stored = store.load()
    assert stored is not None
    assert stored.access_token == used
    assert stored.refresh_token != grant["refresh_token"]
    assert requests.Session().send(request, timeout=10).status_code == 200

    # The bootstrap token is spent, the stored one is live.
    spent = refresh_directly(emu, grant["refresh_token"])
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    assert auth.refresh_count == 1


def test_rotation_persisted_and_old_refresh_token_rejected(emu, config: dict, store: TokenStore) -> None:
    first = seed_store(emu, store)
    auth = make_auth(config, store)
    auth.handle_unauthorized(first.access_token)  # forces one refresh

    second = store.load()
    assert second is not None
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert auth.tokens == second
    assert me_status(emu, second.access_token) == 200
    assert refresh_directly(emu, first.refresh_token).json()["error"] == "invalid_grant"
    # the stored one still works (and is consumed by this check)
    assert refresh_directly(emu, second.refresh_token).status_code == 200


def test_fresh_store_token_is_used_without_post(emu, config: dict, store: TokenStore) -> None:
    seeded = seed_store(emu, store)
    before = len(token_calls(emu))
    auth = make_auth(config, store, bootstrap_refresh_token="ignored-because-store-has-tokens")
    response = requests.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10)
    assert response.status_code == 200
    assert auth.tokens == seeded
    assert len(token_calls(emu)) == before
    assert auth.refresh_count == 0


def test_expiring_token_is_refreshed_early_and_previous_stays_valid(
    emu, config: dict, store: TokenStore
) -> None:
    emu.access_token_ttl = 4
    seeded = seed_store(emu, store)
    auth = make_auth(config, store, refresh_margin_seconds=3600)  # capped at half the 4 s lifetime
    assert auth.get_access_token() == seeded.access_token
    assert auth.refresh_count == 0
    time.sleep(max(0.0, seeded.expires_at - seeded.effective_margin(3600) - time.time()) + 0.1)
    token = auth.get_access_token()
    assert auth.refresh_count == 1
    assert token != seeded.access_token
    assert me_status(emu, token) == 200
    # refreshed before expiry: the previous access token is still accepted
    assert me_status(emu, seeded.access_token) == 200


def test_created_at_carried_over_from_the_grant_does_not_cause_a_refresh_storm(emu, config, store) -> None:
    """freshbooks-api.md §2.2: one live refresh returned the original exchange's created_at."""
    emu.access_token_ttl = 2
    emu.refresh_keeps_created_at = True
    seed_store(emu, store)
    time.sleep(2.2)  # the grant's created_at + ttl is now in the past
    auth = make_auth(config, store)
    token = auth.get_access_token()
    assert auth.refresh_count == 1
    for _ in range(5):
        assert auth.get_access_token() == token
    assert auth.refresh_count == 1
    assert me_status(emu, token) == 200


def test_second_authenticator_adopts_token_refreshed_by_the_first(
    emu, config: dict, store: TokenStore
) -> None:
    """Two holders of the same store (stand-ins for two processes): one refresh, not two."""
    seeded = seed_store(emu, store)
    a = make_auth(config, store)
    b = make_auth(config, store)
    assert a.get_access_token() == b.get_access_token() == seeded.access_token

    a.handle_unauthorized(seeded.access_token)
    b.handle_unauthorized(seeded.access_token)  # store already holds a newer token: adopt it

    assert a.refresh_count == 1
    assert b.refresh_count == 0
    assert a.get_access_token() == b.get_access_token() == store.load().access_token
    assert me_status(emu, b.get_access_token()) == 200


def test_unauthorized_refreshes_once_then_request_succeeds(emu, config: dict, store: TokenStore) -> None:
    seed_store(emu, store)
    auth = make_auth(config, store)
    session = requests.Session()
    assert session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10).status_code == 200

    emu.expire_access_tokens()  # server-side expiry the client cannot see
    response = session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10)
    assert response.status_code == 401
    failed = response.request.headers["Authorization"].removeprefix("Bearer ")
    auth.handle_unauthorized(failed)
    response = session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10)
    assert response.status_code == 200
    assert auth.refresh_count == 1


# --- rejected grants ----------------------------------------------------------------------------------


def test_revoked_grant_raises_one_line_reauthorization(emu, config: dict, store: TokenStore) -> None:
    seeded = seed_store(emu, store)
    auth = make_auth(config, store)
    emu.revoke_grant()
    assert me_status(emu, seeded.access_token) == 401

    with pytest.raises(ReauthorizationRequired) as info:
        auth.handle_unauthorized(seeded.access_token)
    message = str(info.value)
    assert message == GRANT_REJECTED_MESSAGE
    assert "\n" not in message
    assert "tap-freshbooks auth login" in message
    assert seeded.refresh_token not in message and seeded.access_token not in message
    # The store is left as it was (nothing to save) and still decrypts.
    assert store.load() == seeded
    # No second POST with a token FreshBooks already rejected.
    calls = len(token_calls(emu))
    with pytest.raises(ReauthorizationRequired):
        auth.handle_unauthorized(seeded.access_token)
    assert len(token_calls(emu)) == calls


def test_rejected_bootstrap_token(emu, config: dict, store: TokenStore) -> None:
    grant = emu.issue_grant()
    assert refresh_directly(emu, grant["refresh_token"]).status_code == 200  # spend it
    auth = make_auth(config, store, bootstrap_refresh_token=grant["refresh_token"])
    with pytest.raises(ReauthorizationRequired, match=r"^FreshBooks rejected the refresh token .*auth login"):
        auth.get_access_token()


def test_empty_store_without_bootstrap_names_login(config: dict, store: TokenStore) -> None:
    auth = make_auth(config, store)
    with pytest.raises(ReauthorizationRequired) as info:
        auth.get_access_token()
    assert "tap-freshbooks auth login" in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_client_names_client_settings(emu, config: dict, store: TokenStore) -> None:
    seeded = seed_store(emu, store)
    auth = make_auth({**config, "client_secret": "wrong-secret"}, store)
    with pytest.raises(ReauthorizationRequired) as info:
        auth.handle_unauthorized(seeded.access_token)
    message = str(info.value)
    assert "client_id/client_secret" in message and "\n" not in message
    assert "wrong-secret" not in message
    # invalid_client does not consume the refresh token
    assert refresh_directly(emu, seeded.refresh_token).status_code == 200


def test_spent_refresh_token_with_live_access_token_keeps_running(
    emu, config: dict, store: TokenStore, caplog
) -> None:
    """The refresh margin at work: the refresh token is gone but the access token is still valid.

    (This is what a run finds after a predecessor was killed between FreshBooks rotating the token and
    the store being written.) It keeps working until the access token expires, warns once, and never
    re-POSTs the rejected token; a later 401 ends the run with the re-authorization message.
    """
    emu.access_token_ttl = 600
    seeded = seed_store(emu, store)
    assert refresh_directly(emu, seeded.refresh_token).status_code == 200  # someone else spent it
    auth = make_auth(config, store, refresh_margin_seconds=3600)
    # on disk: the same pair as if obtained 400 s ago (600 s life, past the half-life refresh point)
    now = time.time()
    store.save(TokenSet(**{**seeded.to_dict(), "obtained_at": now - 400, "expires_at": now + 200}))

    caplog.set_level(logging.INFO)
    assert auth.get_access_token() == seeded.access_token  # refresh rejected, old token kept
    assert any("continuing with the current access token" in r.getMessage() for r in caplog.records)
    calls = len(token_calls(emu))
    for _ in range(3):
        assert auth.get_access_token() == seeded.access_token
    assert len(token_calls(emu)) == calls  # no refresh storm
    with pytest.raises(ReauthorizationRequired, match="auth login"):
        auth.handle_unauthorized(seeded.access_token)


# --- token endpoint outages ---------------------------------------------------------------------------


def test_token_endpoint_outage_is_retried_without_losing_the_token(
    emu, config: dict, store: TokenStore
) -> None:
    seeded = seed_store(emu, store)
    emu.faults.configure(token_error_every=2)  # every 2nd token call answers 503 before doing anything
    auth = make_auth(config, store, max_tries=4)
    refreshed = 0
    for _ in range(3):
        auth.handle_unauthorized(auth.get_access_token())
        refreshed += 1
    assert auth.refresh_count == refreshed
    assert me_status(emu, store.load().access_token) == 200
    assert seeded.refresh_token != store.load().refresh_token


def test_token_endpoint_down_gives_up_clearly_and_keeps_refresh_token(
    emu, config: dict, store: TokenStore
) -> None:
    seeded = seed_store(emu, store)
    emu.faults.configure(token_error_every=1)
    auth = make_auth(config, store, max_tries=3)
    with pytest.raises(TokenEndpointError) as info:
        auth.handle_unauthorized(seeded.access_token)
    assert "HTTP 503 after 3 attempts" in str(info.value)
    emu.faults.reset()
    assert store.load() == seeded
    assert refresh_directly(emu, seeded.refresh_token).status_code == 200  # not consumed


# --- logs ---------------------------------------------------------------------------------------------


def test_no_token_value_in_any_log_record(emu, config: dict, store: TokenStore, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    grant = emu.issue_grant()
    auth = make_auth(config, store, bootstrap_refresh_token=grant["refresh_token"])
    session = requests.Session()
    secrets_seen = {grant["access_token"], grant["refresh_token"], config["client_secret"]}

    assert session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10).status_code == 200
    secrets_seen |= {auth.tokens.access_token, auth.tokens.refresh_token}
    auth.handle_unauthorized(auth.tokens.access_token)
    secrets_seen |= {auth.tokens.access_token, auth.tokens.refresh_token}
    emu.faults.configure(token_error_every=2)
    auth.handle_unauthorized(auth.tokens.access_token)
    secrets_seen |= {auth.tokens.access_token, auth.tokens.refresh_token}
    emu.faults.reset()
    emu.revoke_grant()
    with pytest.raises(ReauthorizationRequired):
        auth.handle_unauthorized(auth.tokens.access_token)

    assert any("Refreshed FreshBooks access token" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + " " + repr(record.__dict__)
        for secret in secrets_seen:
            assert secret not in text, f"secret leaked in log record {record.name}: {record.msg!r}"


# --- processes ----------------------------------------------------------------------------------------

REFRESH_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    cfg = json.loads(sys.argv[1])
    pause = sys.argv[2]  # "" or "replace": pause around os.replace so the parent can kill there
    if pause == "replace":
        real_replace = os.replace
        def paused_replace(src, dst):
            print("replacing", flush=True)
            time.sleep(2)
            real_replace(src, dst)
            print("replaced", flush=True)
            time.sleep(2)
        os.replace = paused_replace
    from freshbooks_auth.authenticator import authenticator_from_config
    auth = authenticator_from_config(cfg)
    current = auth.store.load()
    print("posting", flush=True)
    auth.handle_unauthorized(current.access_token)
    print("refreshed", flush=True)
    time.sleep(30)
    """
)


def _wait_for_line(proc: subprocess.Popen, wanted: str, timeout: float = 20) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip() == wanted:
            return
    raise AssertionError(f"subprocess never printed {wanted!r}")


KILL_POINTS = [
    ("posting", 0.0, ""),  # about to POST (maybe not yet sent)
    ("posting", 0.05, ""),  # request on the wire, server still waiting
    ("posting", 0.6, ""),  # mid token_response_delay
    ("posting", 0.95, ""),  # around the moment the server answers
    ("replacing", 0.3, "replace"),  # response received, encrypted temp file written, not renamed yet
    ("replaced", 0.3, "replace"),  # renamed, directory fsynced
    ("refreshed", 0.0, ""),  # refresh finished
]


@pytest.mark.parametrize(("line", "delay", "pause"), KILL_POINTS)
def test_sigkill_during_refresh_never_loses_both_tokens(emu, config, store, line, delay, pause) -> None:
    """SIGKILL a refreshing process at several points; the store must stay usable.

    After each kill the store must decrypt and EITHER its access token works on users/me OR its refresh
    token still refreshes - never neither.

    Residual window (documented honestly): when FreshBooks has already rotated the pair (the POST was
    processed) but the process dies before ``os.replace`` publishes the new file, the store keeps the old
    pair whose refresh token is now spent. Nothing on the client side can close that window - the new
    pair existed only in the dead process's memory. What keeps the store usable is the refresh margin:
    the tap refreshes ``refresh_margin_seconds`` (1 h, capped at half the token lifetime) BEFORE the
    access token expires, and FreshBooks does not revoke the previous access token on refresh, so the
    stored access token keeps working for the rest of its life. The next run uses it (logging a warning)
    and fails with the one-line ``tap-freshbooks auth login`` message once it expires.
    """
    seeded = seed_store(emu, store)
    emu.token_response_delay = 1.0
    proc = subprocess.Popen(
        [sys.executable, "-c", REFRESH_SCRIPT, json.dumps(config), pause],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    with proc:
        try:
            _wait_for_line(proc, line)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    emu.token_response_delay = 0
    time.sleep(0.2)  # let the emulator finish a request the dead client left behind

    stored = TokenStore(config["token_store_path"], config["token_encryption_key"]).load()
    assert stored is not None  # still decrypts
    access_ok = me_status(emu, stored.access_token) == 200
    refresh_ok = refresh_directly(emu, stored.refresh_token).status_code == 200
    print(
        f"kill at {line}+{delay}s: store {'new' if stored != seeded else 'old'} pair, "
        f"access_ok={access_ok}, refresh_ok={refresh_ok}"
    )
    assert access_ok or refresh_ok, f"kill at {line}+{delay}s left a store with no usable token"
    if stored == seeded and not refresh_ok:
        # the residual window: old pair kept, its refresh token spent, its access token still good
        assert access_ok
    if line in ("replaced", "refreshed"):
        assert stored != seeded and refresh_ok
    # a killed writer may leave a stray .tmp file behind; it is encrypted like the store itself
    for path in Path(config["token_store_path"]).parent.iterdir():
        data = path.read_bytes()
        assert seeded.refresh_token.encode() not in data and seeded.access_token.encode() not in data
        assert stored.refresh_token.encode() not in data and stored.access_token.encode() not in data


CONCURRENT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import requests
    cfg = json.loads(sys.argv[1]); n = int(sys.argv[2])
    from freshbooks_auth.authenticator import authenticator_from_config
    from freshbooks_auth.errors import FreshBooksError
    auth = authenticator_from_config(cfg)
    session = requests.Session()
    ok = unauthorized = 0
    try:
        for _ in range(n):
            r = session.get(cfg["api_url"] + "/auth/api/v1/users/me", auth=auth, timeout=10)
            if r.status_code == 401:
                unauthorized += 1
                auth.handle_unauthorized(r.request.headers["Authorization"].split(" ", 1)[1])
                r = session.get(cfg["api_url"] + "/auth/api/v1/users/me", auth=auth, timeout=10)
            r.raise_for_status()
            ok += 1
            time.sleep(0.03)
    except FreshBooksError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(3)
    print(json.dumps({"ok": ok, "refreshes": auth.refresh_count, "unauthorized": unauthorized}), flush=True)
    """
)


def test_two_processes_share_one_store_without_invalid_grant(emu, config: dict, store: TokenStore) -> None:
    emu.access_token_ttl = 2  # forces a refresh about every second
    seed_store(emu, store)
    n = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, json.dumps(config), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        with proc:
            out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"worker failed: {out} {err[-2000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["ok"] for r in results] == [n, n]
    total_refreshes = sum(r["refreshes"] for r in results)
    assert total_refreshes >= 2
    # Every token-endpoint call succeeded: nobody ever sent a spent refresh token.
    assert [status for _m, _p, status in token_calls(emu)] == [200] * total_refreshes
    assert emu.oauth.refresh_count == total_refreshes
    final = store.load()
    assert final is not None and refresh_directly(emu, final.refresh_token).status_code == 200


def test_threads_share_one_authenticator(emu, config: dict, store: TokenStore) -> None:
    emu.access_token_ttl = 2
    seed_store(emu, store)
    auth = make_auth(config, store)
    errors: list[BaseException] = []

    def worker() -> None:
        session = requests.Session()
        try:
            for _ in range(20):
                r = session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10)
                if r.status_code == 401:
                    auth.handle_unauthorized(r.request.headers["Authorization"].split(" ", 1)[1])
                    r = session.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10)
                assert r.status_code == 200
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert auth.refresh_count >= 1


def test_authenticator_from_config(emu, config: dict) -> None:
    grant = emu.issue_grant()
    auth = authenticator_from_config({**config, "refresh_token": grant["refresh_token"]})
    assert requests.get(f"{emu.url}/auth/api/v1/users/me", auth=auth, timeout=10).status_code == 200
    assert auth.store.load() is not None
