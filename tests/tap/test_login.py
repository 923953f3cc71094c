"""`tap-freshbooks auth login`: the authorization-code flow against the emulator (listener and paste)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from conftest import app_config
from freshbooks_auth.errors import ConfigError, LoginError
from freshbooks_auth.login import (
    build_authorize_url,
    listener_address,
    login_command,
    parse_pasted_redirect,
    run_login,
)
from freshbooks_auth.token_store import TokenStore

# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def emu(emulator):
    """The shared emulator fixture (tests/conftest.py), under this module's short name."""
    return emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def config(emu, tmp_path: Path) -> dict:
    """Paste-mode config: the emulator app's own registered redirect URI."""
    return app_config(emu, tmp_path)


@pytest.fixture
def listen_config(emu, config: dict) -> dict:
    """Listener-mode config: an app registered with a loopback redirect URI on a free port."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    client_id, client_secret = "loopback-app", "loopback-secret"
    emu.oauth.register_app(client_id, client_secret, redirect)
    return {**config, "client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect}


class Browser:
    """Plays the user's browser: opens the authorize URL and follows (or stops at) the redirect."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.result: requests.Response | None = None
        self.error: BaseException | None = None

    def output(self, text: str) -> None:
        self.lines.append(text)

    @property
    def authorize_url(self) -> str:
        for text in self.lines:
            for token in text.split():
                if "/oauth/authorize?" in token:
                    return token
        raise AssertionError(f"no authorize URL printed: {self.lines}")

    def redirect_location(self, url: str | None = None) -> str:
        response = requests.get(url or self.authorize_url, allow_redirects=False, timeout=10)
        assert response.status_code == 302, response.text
        return response.headers["Location"]

    def follow_in_thread(self, url: str, *, tamper_state: bool = False) -> threading.Thread:
        def run() -> None:
            try:
                location = self.redirect_location(url)
                if tamper_state:
                    location = with_query(location, state="forged-state")
                self.result = requests.get(location, timeout=10)
            except BaseException as exc:  # noqa: BLE001
                self.error = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def me_status(emu, access_token: str) -> int:
    return requests.get(
        f"{emu.url}/auth/api/v1/users/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    ).status_code


# --- helpers ------------------------------------------------------------------------------------------


def test_authorize_url_shape() -> None:
    url = build_authorize_url("https://auth.freshbooks.com/", "cid", "https://example.com/cb", "st8")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://auth.freshbooks.com/oauth/authorize"
    assert parse_qs(parts.query) == {
        "client_id": ["cid"],
        "response_type": ["code"],
        "redirect_uri": ["https://example.com/cb"],
        "state": ["st8"],
    }


def test_listener_address() -> None:
    assert listener_address("http://localhost:8765/cb") == ("localhost", 8765, "/cb")
    assert listener_address("http://127.0.0.1:9000") == ("127.0.0.1", 9000, "/")
    assert listener_address("https://localhost:8765/cb") is None
    assert listener_address("https://example.com/cb") is None


def test_parse_pasted_redirect() -> None:
    assert parse_pasted_redirect("https://x.example/cb?code=abc&state=s1\n", "s1") == "abc"
    assert parse_pasted_redirect("  abc123  ", "s1") == "abc123"
    assert parse_pasted_redirect("?code=abc&state=s1", "s1") == "abc"
    with pytest.raises(LoginError, match="state does not match"):
        parse_pasted_redirect("https://x.example/cb?code=abc&state=other", "s1")
    with pytest.raises(LoginError, match="state does not match"):
        parse_pasted_redirect("https://x.example/cb?code=abc", "s1")
    with pytest.raises(LoginError, match="access_denied"):
        parse_pasted_redirect("https://x.example/cb?error=access_denied&state=s1", "s1")
    with pytest.raises(LoginError, match="nothing was pasted"):
        parse_pasted_redirect("   ", "s1")


@pytest.mark.parametrize(
    "missing", ["client_id", "client_secret", "redirect_uri", "token_store_path", "token_encryption_key"]
)
def test_missing_setting_is_named_with_its_env_var(config: dict, missing: str) -> None:
    broken = {k: v for k, v in config.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        run_login(broken, listen=False, input_fn=lambda _p: "", output=lambda _t: None)
    message = str(info.value)
    assert f"`{missing}`" in message
    assert f"TAP_FRESHBOOKS_{missing.upper()}" in message
    assert "\n" not in message


def test_listen_needs_loopback_redirect(config: dict) -> None:
    with pytest.raises(ConfigError, match="--paste"):
        run_login({**config, "redirect_uri": "https://example.com/cb"}, listen=True, output=lambda _t: None)


# --- end to end: paste mode ---------------------------------------------------------------------------


def test_paste_mode_end_to_end(emu, config: dict) -> None:
    browser = Browser()
    pasted: list[str] = []

    def paste(prompt: str) -> str:
        assert "Paste" in prompt
        pasted.append(browser.redirect_location())
        return pasted[0]

    tokens = run_login(config, listen=False, input_fn=paste, output=browser.output)
    assert parse_qs(urlsplit(pasted[0]).query)["code"]
    stored = TokenStore(config["token_store_path"], config["token_encryption_key"]).load()
    assert stored == tokens
    assert me_status(emu, stored.access_token) == 200
    raw = Path(config["token_store_path"]).read_bytes()
    assert tokens.access_token.encode() not in raw and tokens.refresh_token.encode() not in raw
    assert all(tokens.access_token not in line and tokens.refresh_token not in line for line in browser.lines)


def test_paste_mode_accepts_bare_code(emu, config: dict) -> None:
    browser = Browser()

    def paste(_prompt: str) -> str:
        return parse_qs(urlsplit(browser.redirect_location()).query)["code"][0]

    tokens = run_login(config, listen=False, input_fn=paste, output=browser.output)
    assert me_status(emu, tokens.access_token) == 200


def test_paste_mode_rejects_state_mismatch(emu, config: dict) -> None:
    browser = Browser()

    def paste(_prompt: str) -> str:
        return with_query(browser.redirect_location(), state="forged-state")

    with pytest.raises(LoginError, match="state does not match"):
        run_login(config, listen=False, input_fn=paste, output=browser.output)
    assert not Path(config["token_store_path"]).exists()


def test_used_code_is_rejected(emu, config: dict) -> None:
    browser = Browser()
    locations: list[str] = []

    def paste_first(_prompt: str) -> str:
        locations.append(browser.redirect_location())
        return locations[-1]

    run_login(config, listen=False, input_fn=paste_first, output=browser.output)
    used_code = parse_qs(urlsplit(locations[0]).query)["code"][0]
    with pytest.raises(LoginError, match="rejected the authorization code"):
        run_login(config, listen=False, input_fn=lambda _p: used_code, output=lambda _t: None)


def test_wrong_client_secret_is_config_error(emu, config: dict) -> None:
    browser = Browser()
    bad = {**config, "client_secret": "definitely-wrong"}
    with pytest.raises(ConfigError, match="client_id/client_secret") as info:
        run_login(bad, listen=False, input_fn=lambda _p: browser.redirect_location(), output=browser.output)
    assert "definitely-wrong" not in str(info.value)


# --- end to end: listener mode ------------------------------------------------------------------------


def test_listener_mode_end_to_end(emu, listen_config: dict) -> None:
    browser = Browser()
    threads: list[threading.Thread] = []
    tokens = run_login(
        listen_config,
        listen=True,
        output=browser.output,
        on_listening=lambda url: threads.append(browser.follow_in_thread(url)),
        listen_timeout=20,
    )
    threads[0].join(10)
    assert browser.error is None
    assert browser.result is not None and browser.result.status_code == 200
    assert "close this window" in browser.result.text
    stored = TokenStore(listen_config["token_store_path"], listen_config["token_encryption_key"]).load()
    assert stored == tokens
    assert me_status(emu, tokens.access_token) == 200


def test_listener_is_chosen_automatically_for_loopback_redirect(emu, listen_config: dict) -> None:
    browser = Browser()
    tokens = run_login(
        listen_config,
        output=browser.output,
        on_listening=lambda url: browser.follow_in_thread(url),
        listen_timeout=20,
    )
    assert me_status(emu, tokens.access_token) == 200


def test_listener_rejects_state_mismatch(emu, listen_config: dict) -> None:
    browser = Browser()
    with pytest.raises(LoginError, match="state does not match"):
        run_login(
            listen_config,
            listen=True,
            output=browser.output,
            on_listening=lambda url: browser.follow_in_thread(url, tamper_state=True),
            listen_timeout=20,
        )
    assert not Path(listen_config["token_store_path"]).exists()


def test_listener_times_out(listen_config: dict) -> None:
    with pytest.raises(LoginError, match="no redirect arrived"):
        run_login(listen_config, listen=True, output=lambda _t: None, listen_timeout=0.5)


# --- CLI function -------------------------------------------------------------------------------------


def test_login_command_success_line(emu, config: dict, capsys) -> None:
    browser = Browser()
    code = login_command(
        config, paste=True, input_fn=lambda _p: browser.redirect_location(), output=browser.output
    )
    assert code == 0
    assert browser.lines[-1] == f"Saved FreshBooks tokens to {config['token_store_path']} (encrypted)."
    assert capsys.readouterr().err == ""


def test_login_command_error_is_one_line(config: dict, capsys) -> None:
    broken = {k: v for k, v in config.items() if k != "client_secret"}
    assert login_command(broken, paste=True, input_fn=lambda _p: "", output=lambda _t: None) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TAP_FRESHBOOKS_CLIENT_SECRET" in err

    def forged(_prompt: str) -> str:
        return "https://x.example/cb?code=abc&state=nope"

    assert login_command(config, paste=True, input_fn=forged, output=lambda _t: None) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state does not match" in err
