"""The 401 rule (freshbooks_auth.unauthorized), as the tap's streams and the bridge's client use it.

Against the FreshBooks emulator: real HTTP, a real encrypted token store, real refreshes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from conftest import app_config
from freshbooks_auth.authenticator import FreshBooksAuthenticator, authenticator_from_config
from freshbooks_auth.errors import ReauthorizationRequired
from freshbooks_auth.token_store import TokenSet, TokenStore
from freshbooks_auth.unauthorized import FRESH_TOKEN_REJECTED_MESSAGE
from webhook_bridge.freshbooks import FreshBooksAPIError, FreshBooksClient, StaticToken


@pytest.fixture
def auth(emulator, tmp_path: Path) -> FreshBooksAuthenticator:
    """An authenticator over a store that holds a live pair (as after `auth login`)."""
    config = app_config(emulator, tmp_path)
    store = TokenStore(config["token_store_path"], config["token_encryption_key"])
    store.save(TokenSet.from_token_response(emulator.issue_grant()))
    return authenticator_from_config(config)


def token_posts(emulator) -> int:
    return sum(1 for entry in emulator.request_log if entry[1].split("?")[0] == "/auth/oauth/token")


def test_the_tap_path_refreshes_once_then_asks_to_reauthorize(emulator, auth) -> None:
    """SDK streams: the authenticator signs the PreparedRequest; after a 401, on_unauthorized(request)
    refreshes once and the SDK re-sends the same object. A second 401 for it spends no refresh token."""
    session = requests.Session()
    me = f"{emulator.url}/auth/api/v1/users/me"
    assert session.get(me, auth=auth, timeout=10).status_code == 200

    emulator.expire_access_tokens()  # the server forgets the access token; the client cannot see it
    failed = session.get(me, auth=auth, timeout=10)
    assert failed.status_code == 401
    before = token_posts(emulator)
    auth.on_unauthorized(failed.request)
    assert token_posts(emulator) == before + 1 and auth.refresh_count == 1
    resent = session.send(auth(failed.request), timeout=10)  # what the SDK's retry does
    assert resent.status_code == 200

    with pytest.raises(ReauthorizationRequired) as info:
        auth.on_unauthorized(resent.request)  # the refreshed token got a 401 as well
    assert info.value.message == FRESH_TOKEN_REJECTED_MESSAGE
    assert token_posts(emulator) == before + 1  # no second refresh token spent


def test_a_revoked_grant_asks_to_reauthorize_on_the_first_401(emulator, auth) -> None:
    session = requests.Session()
    me = f"{emulator.url}/auth/api/v1/users/me"
    assert session.get(me, auth=auth, timeout=10).status_code == 200
    emulator.revoke_grant()
    failed = session.get(me, auth=auth, timeout=10)
    assert failed.status_code == 401
    with pytest.raises(ReauthorizationRequired, match="rejected the refresh token"):
        auth.on_unauthorized(failed.request)


def test_the_bridge_client_follows_the_same_rule(emulator, auth) -> None:
    """The bridge's callbacks client (httpx) through the same hook: one refresh, the call succeeds."""
    with FreshBooksClient(emulator.url, auth, max_tries=1) as client:
        accounts = client.account_ids()
        assert accounts
        emulator.expire_access_tokens()
        before = token_posts(emulator)
        assert client.account_ids() == accounts
        assert token_posts(emulator) == before + 1

        emulator.revoke_grant()
        emulator.expire_access_tokens()
        with pytest.raises(FreshBooksAPIError) as info:
            client.account_ids()
    assert info.value.status == 401 and not info.value.retryable
    assert "Re-authorize with: tap-freshbooks auth login" in str(info.value)


def test_a_static_token_is_not_refreshed(emulator) -> None:
    with (
        FreshBooksClient(emulator.url, StaticToken("not-a-token"), max_tries=1) as client,
        pytest.raises(FreshBooksAPIError) as info,
    ):
        client.account_ids()
    assert info.value.status == 401 and "not-a-token" not in str(info.value)


def test_credentials_never_show_the_token(auth) -> None:
    credentials = auth.unauthorized_hook.request()
    header = credentials.authorization()
    assert header.startswith("Bearer ") and header.removeprefix("Bearer ") not in repr(credentials)
