"""`scripts/demo` never touches the user's data, honours `.env` like Meltano, and a fresh clone runs.

Everything runs for real in a copy of the project (`project_copy.py`): the demo script, Meltano,
the tap, target-duckdb, the bundled emulator as a process, and a second emulator standing in for
the user's real FreshBooks account. The LookML check at the end of the demo is skipped
(`--no-lookml-check`, ~25 s; tests/looker covers it).
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import requests
from cryptography.fernet import Fernet

from demo.project_copy import PYTHON, clean_env, copy_project, meltano
from freshbooks_auth.token_store import TokenSet, TokenStore
from freshbooks_emulator import FreshBooksEmulator
from security.outputs import save_output
from tap_freshbooks.streams import STREAM_TYPES

pytestmark = pytest.mark.slow

DEV_STATE_ID = "dev:tap-freshbooks-to-target-duckdb"
DEMO_STATE_ID = "demo:tap-freshbooks-to-target-duckdb"
USER_STATE = {"singer_state": {"bookmarks": {"invoices": {"replication_key_value": "2026-01-01T00:00:00Z"}}}}
REAL_ONLY_CLIENT = "Only In The Real Account Ltd"
AUTHORIZE_URL = re.compile(r"http://127\.0\.0\.1:\d+/oauth/authorize\?\S+(?=\s*\n)")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_demo(project: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(PYTHON), "scripts/demo.py", "--no-lookml-check", *args],
        cwd=project,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    save_output("scripts/demo.py", proc.stdout + "\n" + proc.stderr)
    log = project / "output" / "demo" / "emulator.log"
    if log.exists():
        save_output("demo emulator log", log.read_text())
    return proc


def table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'freshbooks'"
            ).fetchall()
        ]
        return {t: con.execute(f'select count(*) from freshbooks."{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def client_names(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("select organization from freshbooks.clients").fetchall()}
    finally:
        con.close()


class UserProject:
    """A project copy holding a user's own warehouse, dev state, token store and .env."""

    def __init__(self, root: Path, real_account: FreshBooksEmulator):
        self.root = copy_project(root)
        self.real = real_account
        self.key = Fernet.generate_key().decode()
        self.warehouse = self.root / "output" / "warehouse.duckdb"
        con = duckdb.connect(str(self.warehouse))
        con.execute("create schema freshbooks; create table freshbooks.invoices (id varchar, note varchar)")
        con.execute("insert into freshbooks.invoices values ('1', 'the user''s own data')")
        con.close()
        self.token_store = self.root / ".secrets" / "freshbooks_tokens.fernet"
        TokenStore(self.token_store, self.key).save(TokenSet.from_token_response(real_account.issue_grant()))
        # the bootstrap refresh token of the user's pipeline: the demo must never spend it
        self.bootstrap_refresh_token = real_account.issue_grant()["refresh_token"]
        self.dotenv = self.root / ".env"
        self.write_dotenv(with_credentials=False)
        proc = meltano(
            self.root, clean_env(), "state", "set", "--force", DEV_STATE_ID, json.dumps(USER_STATE)
        )
        assert proc.returncode == 0, proc.stderr[-2000:]

    def write_dotenv(self, *, with_credentials: bool) -> None:
        lines = [
            # settings of the user's pipeline that must not steer the demo
            f"TAP_FRESHBOOKS_TOKEN_STORE_PATH={self.token_store}",
            f"TARGET_DUCKDB_FILEPATH={self.warehouse}",
            f"TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY={self.key}",
        ]
        if with_credentials:
            lines += [
                f"TAP_FRESHBOOKS_CLIENT_ID={self.real.client_id}",
                f"TAP_FRESHBOOKS_CLIENT_SECRET={self.real.client_secret}",
                f"TAP_FRESHBOOKS_REDIRECT_URI={self.real.redirect_uri}",
                f"TAP_FRESHBOOKS_API_URL={self.real.url}",
                f"TAP_FRESHBOOKS_AUTH_URL={self.real.url}",
                f"TAP_FRESHBOOKS_REFRESH_TOKEN={self.bootstrap_refresh_token}",
            ]
        else:
            lines.append('TAP_FRESHBOOKS_ACCOUNT_IDS=["NOT-AN-EMULATOR-ACCOUNT"]')
        self.dotenv.write_text("\n".join(lines) + "\n")

    def fingerprint(self) -> dict[str, str]:
        """The user's data, byte for byte, and the dev state as Meltano reports it."""
        state = meltano(self.root, clean_env(), "state", "get", DEV_STATE_ID)
        assert state.returncode == 0, state.stderr[-2000:]
        return {
            "warehouse": sha256(self.warehouse),
            "token store": sha256(self.token_store),
            ".env": sha256(self.dotenv),
            "dev state": state.stdout.strip(),
        }

    @property
    def demo_warehouse(self) -> Path:
        return self.root / "output" / "demo" / "warehouse.duckdb"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> UserProject:
    real = FreshBooksEmulator(
        seed="small", client_id="real-account-app", client_secret="real-account-secret"
    ).start()
    real.create("clients", real.accounts[0]["account_id"], organization=REAL_ONLY_CLIENT)
    try:
        yield UserProject(tmp_path_factory.mktemp("user-project"), real)
    finally:
        real.stop()


def test_demo_with_the_bundled_emulator_leaves_user_data_alone(project: UserProject) -> None:
    before = project.fingerprint()
    assert json.loads(before["dev state"]) == USER_STATE

    first = run_demo(project.root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "starting the bundled FreshBooks emulator" in first.stdout
    assert project.fingerprint() == before
    counts = table_counts(project.demo_warehouse)
    assert len(counts) == len(STREAM_TYPES) and all(counts.values()), counts
    assert "output/demo/warehouse.duckdb" in first.stdout
    demo_state = meltano(project.root, clean_env(), "--environment", "demo", "state", "get", DEMO_STATE_ID)
    assert demo_state.returncode == 0 and "bookmarks" in demo_state.stdout, demo_state.stderr[-2000:]

    second = run_demo(project.root)  # idempotent: the demo rebuilds only its own files
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert table_counts(project.demo_warehouse) == counts
    assert project.fingerprint() == before


def test_demo_with_credentials_in_dotenv_but_no_demo_grant_says_how_to_authorize(
    project: UserProject,
) -> None:
    project.write_dotenv(with_credentials=True)
    (project.root / "output" / "demo" / "tokens.fernet").unlink(missing_ok=True)
    before = project.fingerprint()

    proc = run_demo(project.root)

    assert proc.returncode == 2
    assert "run scripts/demo in a terminal once to authorize it" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert project.fingerprint() == before
    assert project.bootstrap_refresh_token in project.real.oauth.refresh_tokens  # not spent


def run_demo_in_a_terminal(project: Path, approve: Callable[[str], str]) -> tuple[int, str]:
    """Run the demo on a pseudo-terminal (echo off, as when a paste is not echoed into a log); when it
    prints FreshBooks' authorize URL, `approve(url)` plays the browser and its answer is pasted."""
    controller, terminal = pty.openpty()
    attrs = termios.tcgetattr(terminal)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(terminal, termios.TCSANOW, attrs)
    proc = subprocess.Popen(
        [str(PYTHON), "scripts/demo.py", "--no-lookml-check"],
        cwd=project,
        env=clean_env(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    transcript, answered = b"", False
    started = time.monotonic()
    deadline = started + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed: the demo is done
                    break
                if not chunk:
                    break
                transcript += chunk
            # Meltano relays the plugin's output line by line, so the paste prompt (no newline) only
            # shows later: answer once the whole URL line is there; the terminal holds the answer.
            match = AUTHORIZE_URL.search(transcript.decode("utf-8", "replace"))
            if match and not answered:
                os.write(controller, (approve(match.group(0)) + "\n").encode())
                answered = True
            if proc.poll() is not None and not ready:
                break
            if not answered and time.monotonic() - started > 90:
                break  # no authorize URL: fail below rather than wait
        if not answered and proc.poll() is None:
            proc.kill()
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    text = transcript.decode("utf-8", "replace")
    save_output("scripts/demo.py on a terminal", text)
    return returncode, text


def test_demo_extracts_the_account_whose_credentials_are_in_dotenv(project: UserProject) -> None:
    project.write_dotenv(with_credentials=True)
    (project.root / "output" / "demo" / "tokens.fernet").unlink(missing_ok=True)
    before = project.fingerprint()

    def browser(url: str) -> str:  # the user approves; FreshBooks redirects with a code
        answer = requests.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    returncode, transcript = run_demo_in_a_terminal(project.root, browser)

    assert returncode == 0, transcript[-4000:]
    assert "authorize the demo once" in transcript
    assert "bundled FreshBooks emulator" not in transcript
    assert "your data is in output/demo/warehouse.duckdb" in transcript
    names = client_names(project.demo_warehouse)
    assert REAL_ONLY_CLIENT in names
    real_clients = {
        c["organization"]
        for a in project.real.accounts
        for c in project.real.truth("clients", a["account_id"])
    }
    assert names == real_clients  # that account only: nothing left from the bundled emulator's runs
    assert project.fingerprint() == before
    assert project.bootstrap_refresh_token in project.real.oauth.refresh_tokens  # the user's, still unspent
    assert (project.root / "output" / "demo" / "tokens.fernet").exists()  # the demo's own grant


def test_fresh_clone_runs_meltano_without_setup(tmp_path, emulator) -> None:
    """`git clone` + `meltano install` (venvs linked here) + `meltano run`: no scripts/setup, no output/ content."""
    clone = copy_project(tmp_path / "clone")
    assert sorted(p.name for p in (clone / "output").iterdir()) == ["README.md"]
    assert not (clone / ".secrets").exists()
    (clone / ".env").write_text(
        "\n".join(
            [
                f"TAP_FRESHBOOKS_CLIENT_ID={emulator.client_id}",
                f"TAP_FRESHBOOKS_CLIENT_SECRET={emulator.client_secret}",
                f"TAP_FRESHBOOKS_REDIRECT_URI={emulator.redirect_uri}",
                f"TAP_FRESHBOOKS_API_URL={emulator.url}",
                f"TAP_FRESHBOOKS_REFRESH_TOKEN={emulator.issue_grant()['refresh_token']}",
                f"TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY={Fernet.generate_key().decode()}",
            ]
        )
        + "\n"
    )

    proc = meltano(clone, clean_env(), "run", "tap-freshbooks", "target-duckdb")
    save_output("fresh clone meltano run", proc.stdout + "\n" + proc.stderr)

    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = table_counts(clone / "output" / "warehouse.duckdb")
    assert len(counts) == len(STREAM_TYPES) and counts["invoices"] > 0, counts
    assert (clone / ".secrets" / "freshbooks_tokens.fernet").exists()  # the default token store path
