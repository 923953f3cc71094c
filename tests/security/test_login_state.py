"""`auth login` checks the OAuth `state`: a redirect with a missing, different or stale `state` is refused
in one line, and no code exchange happens (the emulator's token endpoint sees no call; the code stays
unused), on the local-listener path and on the paste path."""

from __future__ import annotations

import http.client
import socket
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from conftest import app_config
from freshbooks_auth.errors import LoginError
from freshbooks_auth.login import login_command, run_login

STATE_CASES = ["missing", "different", "stale", "empty", "repeated"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str) -> tuple[int, dict[str, str], str]:
    """A silent browser (http.client logs nothing, so the code never reaches a captured log)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def approve(authorize_url: str) -> str:
    """The user approves in the browser: the emulator's authorize page redirects with a code."""
    status, headers, _ = http_get(authorize_url)
    assert status == 302
    return headers["Location"]


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def code_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["code"][0]


def tamper(location: str, case: str, stale_state: str) -> str:
    parts = urlsplit(location)
    pairs = [(k, v) for k, v in parse_qs(parts.query).items()]
    query = [(k, v[0]) for k, v in pairs if k != "state"]
    real = state_of(location)
    if case == "different":
        query.append(("state", "forged-" + real[7:]))
    elif case == "stale":
        query.append(("state", stale_state))  # the state of an earlier, abandoned login
    elif case == "empty":
        query.append(("state", ""))
    elif case == "repeated":
        query = [("state", "forged"), *query, ("state", real)]  # first one wins and is wrong
    return urlunsplit(parts._replace(query=urlencode(query)))


def token_calls(emu) -> list:
    return [entry for entry in emu.request_log if entry[1].split("?")[0].endswith("/oauth/token")]


def authorize_url_in(lines: list[str]) -> str:
    for text in lines:
        for word in text.split():
            if "/oauth/authorize?" in word:
                return word
    raise AssertionError(f"no authorize URL printed: {lines}")


@pytest.fixture
def stale_state(emulator, tmp_path) -> str:
    """Start a login, read the state from its authorize URL, abandon it."""
    printed: list[str] = []
    with pytest.raises(LoginError):
        run_login(
            app_config(emulator, tmp_path / "abandoned"),
            listen=False,
            input_fn=lambda _p: "",
            output=printed.append,
        )
    return state_of(authorize_url_in(printed))


def assert_nothing_exchanged(emu, config: dict, code: str) -> None:
    assert token_calls(emu) == []
    assert code in emu.oauth.codes  # the code was never spent: it could still be exchanged
    assert not Path(config["token_store_path"]).exists()


@pytest.mark.parametrize("case", STATE_CASES)
def test_paste_path_refuses_a_redirect_without_this_logins_state(emulator, tmp_path, stale_state, case):
    config = app_config(emulator, tmp_path)
    printed: list[str] = []
    pasted: list[str] = []

    def paste(_prompt: str) -> str:
        pasted.append(tamper(approve(authorize_url_in(printed)), case, stale_state))
        return pasted[0]

    emulator.clear_log()
    with pytest.raises(LoginError, match="state does not match") as caught:
        run_login(config, listen=False, input_fn=paste, output=printed.append)
    assert "\n" not in str(caught.value)
    assert_nothing_exchanged(emulator, config, code_of(pasted[0]))


@pytest.mark.parametrize("case", STATE_CASES)
def test_listener_path_refuses_a_redirect_without_this_logins_state(emulator, tmp_path, stale_state, case):
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    emulator.oauth.register_app("loopback-app", "loopback-secret-0123", redirect)
    config = {
        **app_config(emulator, tmp_path),
        "client_id": "loopback-app",
        "client_secret": "loopback-secret-0123",
        "redirect_uri": redirect,
    }
    browser: dict[str, object] = {}

    def follow(url: str) -> None:
        def run() -> None:
            location = tamper(approve(url), case, stale_state)
            browser["code"] = code_of(location)
            browser["response"] = http_get(location)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        browser["thread"] = thread

    emulator.clear_log()
    with pytest.raises(LoginError, match="state does not match") as caught:
        run_login(config, listen=True, output=lambda _t: None, on_listening=follow, listen_timeout=20)
    browser["thread"].join(10)  # type: ignore[attr-defined]
    assert "\n" not in str(caught.value)
    status, _, page = browser["response"]  # type: ignore[misc]
    assert status == 400 and "state does not match" in page
    assert browser["code"] not in page
    assert_nothing_exchanged(emulator, config, browser["code"])  # type: ignore[arg-type]


def test_login_command_prints_one_line_for_a_forged_redirect(emulator, tmp_path, capsys):
    config = app_config(emulator, tmp_path)
    printed: list[str] = []

    def paste(_prompt: str) -> str:
        return tamper(approve(authorize_url_in(printed)), "missing", "")

    emulator.clear_log()
    assert login_command(config, paste=True, input_fn=paste, output=printed.append) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "state does not match" in err and "auth login" in err
    assert token_calls(emulator) == []


def test_the_matching_state_is_what_makes_the_exchange_happen(emulator, tmp_path):
    """Control: the same flow with the redirect untouched exchanges the code exactly once."""
    config = app_config(emulator, tmp_path)
    printed: list[str] = []
    emulator.clear_log()
    run_login(
        config, listen=False, input_fn=lambda _p: approve(authorize_url_in(printed)), output=printed.append
    )
    assert len(token_calls(emulator)) == 1
    assert Path(config["token_store_path"]).exists()
