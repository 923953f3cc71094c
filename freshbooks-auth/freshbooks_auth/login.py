"""``tap-freshbooks auth login``: the OAuth authorization-code flow that fills the token store.

1. print the authorize URL ``{auth_url}/oauth/authorize?client_id&response_type=code&redirect_uri&state``;
2. receive the redirect: either on a local port (when ``redirect_uri`` is ``http://localhost:PORT/...``
   or ``http://127.0.0.1:PORT/...``) or by asking the user to paste the redirected URL (or the bare code);
3. check ``state``, exchange the code at ``{api_url}/auth/oauth/token``, and save the encrypted token
   set in the store (under the store's lock).

Real FreshBooks apps need an HTTPS redirect URI, so the paste mode is the usual one; the listener is
for local development and the emulator.
"""

from __future__ import annotations

import http.server
import secrets
import sys
import time
import typing as t
import webbrowser
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from freshbooks_auth.authenticator import raise_for_token_error
from freshbooks_auth.errors import (
    ConfigError,
    FreshBooksError,
    LoginError,
    TokenEndpointError,
    TokenStoreError,
)
from freshbooks_auth.fernet import new_encryption_key
from freshbooks_auth.settings import DEFAULT_AUTH_URL, api_base_url, require_settings, token_url
from freshbooks_auth.token_backends import store_from_config
from freshbooks_auth.token_store import TokenSet

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "build_authorize_url",
    "exchange_code",
    "listener_address",
    "login_command",
    "new_encryption_key",
    "parse_pasted_redirect",
    "require_settings",
    "run_login",
]

# plus a token store: token_store_url, or token_store_path (checked by store_from_config)
LOGIN_SETTINGS = ("client_id", "client_secret", "redirect_uri", "token_encryption_key")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_LISTEN_TIMEOUT = 300.0  # FreshBooks authorization codes expire after 5 minutes


def build_authorize_url(auth_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    """``{auth_url}/oauth/authorize?client_id=..&response_type=code&redirect_uri=..&state=..``."""
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{auth_url.rstrip('/')}/oauth/authorize?{query}"


def listener_address(redirect_uri: str) -> tuple[str, int, str] | None:
    """``(host, port, path)`` when ``redirect_uri`` is a plain-HTTP loopback URL, else ``None``."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS:
        return None
    port = parts.port or 80
    return parts.hostname, port, parts.path or "/"


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _code_from_query(query: Mapping[str, list[str]], expected_state: str) -> str:
    """Validate a redirect's query (``error``, ``state``) and return its ``code``.

    Raises:
        LoginError: the user denied access, the state does not match, or there is no code.
    """
    error = _first(query, "error")
    if error:
        description = _first(query, "error_description") or ""
        msg = f"FreshBooks did not authorize the app ({error}{': ' + description if description else ''})"
        raise LoginError(msg)
    state = _first(query, "state")
    if state is None or not secrets.compare_digest(state, expected_state):
        msg = (
            "the redirect's state does not match this login attempt (a stale or forged redirect); "
            "run tap-freshbooks auth login again and use the newest authorize URL"
        )
        raise LoginError(msg)
    code = _first(query, "code")
    if not code:
        msg = "the redirect has no authorization code"
        raise LoginError(msg)
    return code


def parse_pasted_redirect(text: str, expected_state: str) -> str:
    """The authorization code from a pasted redirect URL (state checked) or a bare code.

    Raises:
        LoginError: nothing pasted, or the pasted URL fails the checks of a redirect.
    """
    text = text.strip()
    if not text:
        msg = "nothing was pasted; paste the full URL you were redirected to, or the code"
        raise LoginError(msg)
    if "://" in text or text.startswith("?") or "code=" in text or "error=" in text:
        query_string = urlsplit(text).query if "://" in text else text.lstrip("?")
        return _code_from_query(parse_qs(query_string), expected_state)
    if any(ch.isspace() for ch in text):
        msg = "the pasted text is neither a redirect URL nor an authorization code"
        raise LoginError(msg)
    return text  # a bare code: there is no state to check


def exchange_code(
    *,
    api_url: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    timeout: float = 60.0,
) -> TokenSet:
    """POST ``grant_type=authorization_code`` and return the token set.

    Raises:
        LoginError: the code was rejected (expired, used, redirect_uri mismatch).
        ConfigError: client_id/client_secret rejected (``invalid_client``).
        TokenEndpointError: outage or unexpected answer.
    """
    url = token_url(api_url)
    body = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret,
        "code": code,
        "redirect_uri": redirect_uri,
    }
    try:
        response = requests.post(
            url, data=body, headers={"Accept": "application/json"}, timeout=timeout, allow_redirects=False
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        msg = f"cannot reach the FreshBooks token endpoint {url} ({type(exc).__name__})"
        raise TokenEndpointError(msg) from None
    obtained_at = time.time()
    if response.status_code == 400:
        error = _error_code(response)
        if error == "invalid_grant":
            msg = (
                "FreshBooks rejected the authorization code (invalid_grant): it expired (codes last "
                "5 minutes), was already used, or redirect_uri differs from the app's registered one; "
                "run tap-freshbooks auth login again"
            )
            raise LoginError(msg)
    if response.status_code == 401 or _error_code(response) == "invalid_client":
        msg = (
            "FreshBooks rejected client_id/client_secret (invalid_client): check the client_id and "
            "client_secret settings (TAP_FRESHBOOKS_CLIENT_ID / TAP_FRESHBOOKS_CLIENT_SECRET)"
        )
        raise ConfigError(msg)
    if not response.ok:
        raise_for_token_error(response, action="authorization code")
    try:
        payload = response.json()
        if not isinstance(payload, dict):
            raise ValueError("token response is not a JSON object")
        return TokenSet.from_token_response(payload, obtained_at=obtained_at)
    except ValueError as exc:
        msg = f"FreshBooks token endpoint answered HTTP {response.status_code} with an unusable body ({exc})"
        raise TokenEndpointError(msg) from None


def _error_code(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else None


class _RedirectServer(http.server.HTTPServer):
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], path: str, expected_state: str) -> None:
        super().__init__(address, _RedirectHandler)
        self.expected_path = path
        self.expected_state = expected_state
        self.code: str | None = None
        self.error: LoginError | None = None


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _RedirectServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != self.server.expected_path.rstrip("/"):
            self._reply(404, "Not the FreshBooks redirect.")
            return
        try:
            self.server.code = _code_from_query(parse_qs(parts.query), self.server.expected_state)
        except LoginError as exc:
            self.server.error = exc
            self._reply(400, f"tap-freshbooks login failed: {exc.message}")
            return
        self._reply(200, "tap-freshbooks received the authorization. You can close this window.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><html><body><p>{_html_escape(text)}</p></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: ARG002
        return  # never log the redirect: its query holds the code


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _serve_until_redirect(server: _RedirectServer, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while server.code is None and server.error is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            msg = f"no redirect arrived within {timeout:g} s; run tap-freshbooks auth login again"
            raise LoginError(msg)
        server.timeout = min(remaining, 1.0)
        server.handle_request()
    if server.error is not None:
        raise server.error
    assert server.code is not None
    return server.code


def run_login(
    config: Mapping[str, t.Any],
    *,
    open_browser: bool = False,
    listen: bool | None = None,
    input_fn: Callable[[str], str] = input,
    output: Callable[[str], t.Any] = print,
    listen_timeout: float = DEFAULT_LISTEN_TIMEOUT,
    on_listening: Callable[[str], t.Any] | None = None,
) -> TokenSet:
    """Run the authorization-code flow and save the tokens in the store.

    Args:
        config: tap settings (client_id, client_secret, redirect_uri, token_store_path,
            token_encryption_key, optional api_url/auth_url).
        open_browser: also open the authorize URL in a browser.
        listen: ``True`` receive the redirect on the loopback port of ``redirect_uri``;
            ``False`` ask the user to paste it; ``None`` listen when ``redirect_uri`` allows it.
        input_fn: reads the pasted URL/code.
        output: prints instructions (never token values).
        listen_timeout: seconds to wait for the redirect in listen mode.
        on_listening: called with the authorize URL once the listener accepts connections.

    Raises:
        ConfigError: a setting is missing/invalid, or ``listen=True`` with a non-loopback redirect_uri.
        LoginError: denied, state mismatch, code rejected, no redirect in time.
        TokenStoreError: the store cannot be locked or written, or this key does not decrypt the
            existing store (refused before anything else happens; the file is left as it is).
    """
    require_settings(config, LOGIN_SETTINGS)
    client_id = str(config["client_id"])
    client_secret = str(config["client_secret"])
    redirect_uri = str(config["redirect_uri"])
    base_api_url = api_base_url(config)
    auth_url = str(config.get("auth_url") or DEFAULT_AUTH_URL).rstrip("/")
    store = store_from_config(config)
    try:
        store.check_key()  # a store this key cannot open is never silently replaced
    except TokenStoreError as exc:
        msg = f"{exc.message}; use the key it was written with, or move the file aside to log in afresh"
        raise TokenStoreError(msg) from None
    store.check_writable()

    address = listener_address(redirect_uri)
    if listen is None:
        listen = address is not None
    if listen and address is None:
        msg = (
            "cannot listen for the redirect: redirect_uri must be http://localhost:PORT/... or "
            "http://127.0.0.1:PORT/... (use --paste for an HTTPS redirect_uri)"
        )
        raise ConfigError(msg)

    state = secrets.token_urlsafe(24)
    url = build_authorize_url(auth_url, client_id, redirect_uri, state)

    if listen:
        assert address is not None
        host, port, path = address
        try:
            server = _RedirectServer((host, port), path, state)
        except OSError as exc:
            msg = f"cannot listen on {host}:{port} for the redirect ({exc.strerror or exc}); use --paste"
            raise LoginError(msg) from None
        try:
            output(f"Open this URL in a browser and approve access:\n{url}")
            output(f"Waiting for FreshBooks to redirect to {redirect_uri} ...")
            if open_browser:
                webbrowser.open(url)
            if on_listening is not None:
                on_listening(url)
            code = _serve_until_redirect(server, listen_timeout)
        finally:
            server.server_close()
    else:
        output(f"Open this URL in a browser and approve access:\n{url}")
        if open_browser:
            webbrowser.open(url)
        pasted = input_fn(
            "Paste the full URL your browser was redirected to (or just the code), then press Enter: "
        )
        code = parse_pasted_redirect(pasted or "", state)

    tokens = exchange_code(
        api_url=base_api_url,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=redirect_uri,
        code=code,
    )
    with store.lock():
        store.save(tokens)
    return tokens


def login_command(
    config: Mapping[str, t.Any],
    paste: bool,
    *,
    open_browser: bool = False,
    input_fn: Callable[[str], str] = input,
    output: Callable[[str], t.Any] = print,
) -> int:
    """CLI entry: run the flow, print one result line, return the exit code (0 ok, 2 config, 1 other)."""
    try:
        run_login(
            config,
            open_browser=open_browser,
            listen=False if paste else None,
            input_fn=input_fn,
            output=output,
        )
    except ConfigError as exc:
        print(f"tap-freshbooks auth login: configuration error: {exc}", file=sys.stderr)
        return 2
    except FreshBooksError as exc:
        print(f"tap-freshbooks auth login failed: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("tap-freshbooks auth login cancelled.", file=sys.stderr)
        return 130
    output(f"Saved FreshBooks tokens to {store_from_config(config).location} (encrypted).")
    return 0
