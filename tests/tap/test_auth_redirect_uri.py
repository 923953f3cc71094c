"""Every token refresh carries `redirect_uri`, as FreshBooks' official SDK sends it.

freshbooks-sdk 1.3.0 `freshbooks/client.py` `_authorize_call` (used by `refresh_access_token`) puts
`redirect_uri` in every token request and refuses to refresh without one
(freshbooks-api.md §2.2). The tap does the same, and refuses before it spends the refresh token.
"""

from __future__ import annotations

import requests

from conftest import run_tap, tap_config
from freshbooks_auth.authenticator import authenticator_from_config
from freshbooks_auth.errors import ConfigError


def test_every_refresh_of_a_run_sends_the_redirect_uri(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    run_tap(config)  # bootstrap refresh
    emulator.expire_access_tokens()
    run = run_tap({**config, "refresh_token": None})  # refresh with the rotated token from the store

    assert run.count > 0
    assert emulator.oauth.refresh_redirect_uris == [emulator.redirect_uri] * 2


def test_refresh_without_redirect_uri_stops_before_spending_the_token(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    del config["redirect_uri"]
    auth = authenticator_from_config(config)

    try:
        requests.get(f"{emulator.url}/auth/api/v1/users/me", auth=auth, timeout=10)
    except ConfigError as exc:
        message = str(exc)
    else:
        raise AssertionError("a refresh without redirect_uri was sent")

    assert "redirect_uri" in message and "TAP_FRESHBOOKS_REDIRECT_URI" in message
    assert "\n" not in message
    assert emulator.oauth.refresh_redirect_uris == []
    assert config["refresh_token"] in emulator.oauth.refresh_tokens  # still live, not consumed


def test_tap_without_redirect_uri_says_so_in_one_line(emulator, tmp_path) -> None:
    from test_cli_errors import assert_one_clear_line, run_cli

    config = tap_config(emulator, tmp_path)
    del config["redirect_uri"]
    proc = run_cli([], config, tmp_path)

    assert_one_clear_line(proc, "redirect_uri", "TAP_FRESHBOOKS_REDIRECT_URI")
    assert config["refresh_token"] in emulator.oauth.refresh_tokens
