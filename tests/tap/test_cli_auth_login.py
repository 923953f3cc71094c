"""`tap-freshbooks auth login` end to end through the console script (settings from env)."""

from __future__ import annotations

import os
import subprocess

import requests

from conftest import ROOT, TEST_FERNET_KEY
from freshbooks_auth.token_store import TokenStore


def test_auth_login_paste_fills_the_encrypted_store(emulator, tmp_path) -> None:
    store = tmp_path / "tokens.fernet"
    env = {
        **os.environ,
        "TAP_FRESHBOOKS_CLIENT_ID": emulator.client_id,
        "TAP_FRESHBOOKS_CLIENT_SECRET": emulator.client_secret,
        "TAP_FRESHBOOKS_REDIRECT_URI": emulator.redirect_uri,
        "TAP_FRESHBOOKS_API_URL": emulator.url,
        "TAP_FRESHBOOKS_AUTH_URL": emulator.url,
        "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(store),
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": TEST_FERNET_KEY,
    }
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "tap-freshbooks"), "auth", "login", "--paste"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = None
    while url is None:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if "/oauth/authorize" in line:
            url = line.strip().split()[-1]
    redirect = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]  # the user approves
    out, err = proc.communicate(redirect + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert f"Saved FreshBooks tokens to {store} (encrypted)." in out
    tokens = TokenStore(store, TEST_FERNET_KEY).load()
    assert tokens is not None and tokens.refresh_token
    assert tokens.refresh_token.encode() not in store.read_bytes()
    ok = requests.get(
        f"{emulator.url}/auth/api/v1/users/me",
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        timeout=10,
    )
    assert ok.status_code == 200
