"""FreshBooks OAuth authenticator: refresh with rotation through the encrypted token store.

FreshBooks refresh tokens are single-use. The protocol, for every refresh:

1. take the store's inter-process lock (a file lock, a PostgreSQL row lock or an S3 lease: see
   ``token_backends``; this module never asks which);
2. re-read the store: if another process refreshed meanwhile and its access token is fresh, adopt
   it (no POST);
3. otherwise POST ``grant_type=refresh_token`` with the store's refresh token (the config's bootstrap
   ``refresh_token`` only when the store is empty);
4. on success write the new pair to the store (atomic, encrypted) *before* the new access token is
   used, then release the lock.

Access tokens are refreshed ``refresh_margin_seconds`` before they expire (capped at half the token's
lifetime), so when a refresh dies half-way the previous access token is still valid for a while.

One instance per tap process (the tap holds it); thread-safe.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import typing as t
import weakref

import requests
from singer_sdk.authenticators import OAuthAuthenticator

from freshbooks_auth import retry_policy
from freshbooks_auth.errors import (
    REAUTH_COMMAND,
    ConfigError,
    ReauthorizationRequired,
    TokenEndpointError,
    TokenStoreError,
)
from freshbooks_auth.settings import api_base_url, require_settings, token_url
from freshbooks_auth.token_backends import store_from_config
from freshbooks_auth.token_store import TokenSet
from freshbooks_auth.unauthorized import RequestAuth, UnauthorizedHook

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from freshbooks_auth.token_backends import TokenStoreBackend

GRANT_REJECTED_MESSAGE = (
    "FreshBooks rejected the refresh token (the grant was revoked or the token was already used). "
    f"Re-authorize with: {REAUTH_COMMAND}"
)
CLIENT_REJECTED_MESSAGE = (
    "FreshBooks rejected the client_id/client_secret (invalid_client): check those settings "
    "(TAP_FRESHBOOKS_CLIENT_ID / TAP_FRESHBOOKS_CLIENT_SECRET), then if needed re-authorize with: "
    f"{REAUTH_COMMAND}"
)
REDIRECT_URI_MISSING_MESSAGE = (
    "setting `redirect_uri` is missing: every token refresh sends the app's registered redirect URI "
    "(as FreshBooks' own SDKs do); set it in the config file or as TAP_FRESHBOOKS_REDIRECT_URI"
)
NOT_AUTHORIZED_MESSAGE = (
    "FreshBooks is not authorized yet: the token store {path} is empty and no refresh_token is "
    f"configured. Authorize with: {REAUTH_COMMAND}"
)

DEFAULT_TOKEN_TIMEOUT = 60.0
EXPIRY_SAFETY_SECONDS = 30.0  # never send an access token this close to its expiry


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, tz=datetime.UTC).isoformat(timespec="seconds")


def token_error_code(response: requests.Response) -> tuple[str | None, str | None]:
    """``(error, error_description)`` from an OAuth error body, if it is JSON."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    description = body.get("error_description") or body.get("message")
    return (
        str(error) if error is not None else None,
        str(description)[:200] if description is not None else None,
    )


def raise_for_token_error(response: requests.Response, *, action: str) -> None:
    """Turn a non-2xx token-endpoint response into a one-line FreshBooksError.

    Raises:
        ReauthorizationRequired: ``invalid_grant`` or ``invalid_client``.
        TokenEndpointError: anything else.
    """
    error, description = token_error_code(response)
    if error == "invalid_client" or (response.status_code == 401 and error is None):
        raise ReauthorizationRequired(CLIENT_REJECTED_MESSAGE)
    if error == "invalid_grant":
        raise ReauthorizationRequired(GRANT_REJECTED_MESSAGE)
    detail = f"{error}: {description}" if error else response.reason or "no error detail"
    msg = f"FreshBooks token endpoint refused the {action} (HTTP {response.status_code}, {detail})"
    raise TokenEndpointError(msg)


class FreshBooksAuthenticator(OAuthAuthenticator):
    """OAuth 2.0 authenticator for FreshBooks with single-use, rotating refresh tokens.

    Streams call :meth:`authenticate_request` (the SDK does, through ``requests``' auth hook) and, after an
    API call answered 401, :meth:`on_unauthorized` with that request, then re-send it once. Clients
    that do not use ``requests`` take a :class:`~freshbooks_auth.unauthorized.RequestAuth` per request
    from :attr:`unauthorized_hook` instead.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str | None,
        token_url: str,
        store: TokenStoreBackend,
        bootstrap_refresh_token: str | None = None,
        refresh_margin_seconds: float = 3600,
        logger: logging.Logger | None = None,
        max_tries: int = 4,
        retry_wait_seconds: float = 1.0,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
    ) -> None:
        """Create the authenticator (no network or file access yet)."""
        super().__init__(
            auth_endpoint=token_url,
            client_id=client_id,
            client_secret=client_secret,
        )
        if logger is not None:
            self.logger = logger
        self.redirect_uri = redirect_uri
        self.store = store
        self.bootstrap_refresh_token = bootstrap_refresh_token or None
        self.refresh_margin_seconds = float(refresh_margin_seconds)
        self.max_tries = max(1, int(max_tries))
        self.retry_wait_seconds = float(retry_wait_seconds)
        self.timeout = float(timeout)
        self.retry_policy = retry_policy.RetryPolicy(base_seconds=self.retry_wait_seconds)
        self.refresh_count = 0  # POSTs to the token endpoint that rotated the pair (this process)
        self._tokens: TokenSet | None = None
        self._rejected_refresh_token: str | None = None  # answered invalid_grant in this process
        self._mutex = threading.RLock()
        # The SDK's session retries POSTs inside urllib3 (also after the request was sent), which
        # could resend a refresh token the server already consumed. Retries are done here instead.
        self._session = requests.Session()
        self.unauthorized_hook = UnauthorizedHook(self)  # the 401 rule (one per process, like this)
        # each request this authenticator signed -> its credentials across attempts (the SDK re-sends
        # the same PreparedRequest object on a retry)
        self._signed: weakref.WeakKeyDictionary[requests.PreparedRequest, RequestAuth] = (
            weakref.WeakKeyDictionary()
        )

    # ---------------------------------------------------------------------------------------------
    # SDK interface

    @property
    def oauth_request_body(self) -> dict[str, str]:
        """Body of a refresh POST for the current refresh token."""
        current = self._tokens
        return self._refresh_body(current.refresh_token if current else self.bootstrap_refresh_token)

    def is_token_valid(self) -> bool:
        """True when the access token in memory is fresh (outside the refresh margin).

        After FreshBooks rejected the refresh token, the current access token counts as valid until
        it expires (there is nothing to refresh with).
        """
        tokens = self._tokens
        if tokens is None:
            return False
        if self._rejected_refresh_token is not None and tokens.refresh_token == self._rejected_refresh_token:
            return self._still_valid(tokens)
        return tokens.is_fresh(self.refresh_margin_seconds)

    @staticmethod
    def _still_valid(tokens: TokenSet) -> bool:
        return not tokens.is_expired(now=time.time() + EXPIRY_SAFETY_SECONDS)

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set ``Authorization: Bearer`` with a fresh access token (refreshing under the lock if needed)."""
        with self._mutex:
            credentials = self._signed.get(request)
            if credentials is None:
                credentials = self._signed[request] = self.unauthorized_hook.request()
            request.headers["Authorization"] = credentials.authorization()
            return request

    def on_unauthorized(self, request: requests.PreparedRequest | None) -> None:
        """The API answered ``request`` (signed here) with 401: refresh once; the caller re-sends it.

        Raises:
            ReauthorizationRequired: the request was already refreshed once, its token already got
                a 401, or the refresh token was rejected.
        """
        with self._mutex:
            credentials = self._signed.get(request) if request is not None else None
        if credentials is None:  # not signed here: nothing to compare, refresh the current token
            credentials = self.unauthorized_hook.request()
        credentials.unauthorized()

    def update_access_token(self) -> None:
        """Make the access token fresh: adopt the store's pair, or refresh under the lock."""
        with self._mutex:
            self._ensure_fresh(failed_access_token=None)

    # ---------------------------------------------------------------------------------------------
    # public helpers for the tap / streams

    @property
    def tokens(self) -> TokenSet | None:
        """The token set in use (``None`` before the first request)."""
        return self._tokens

    def get_access_token(self) -> str:
        """A fresh access token (for calls made outside the SDK's request path)."""
        with self._mutex:
            if not self.is_token_valid():
                self.update_access_token()
            assert self._tokens is not None
            return self._tokens.access_token

    def handle_unauthorized(self, failed_access_token: str | None = None) -> None:
        """React to an API 401 for ``failed_access_token``.

        Under the lock: if the store holds a different access token that is not expired (another
        process refreshed), adopt it; otherwise refresh once. The caller then re-sends the request
        once (``authenticate_request`` attaches the new token).

        Raises:
            ReauthorizationRequired: the refresh token was rejected.
        """
        with self._mutex:
            failed = failed_access_token or (self._tokens.access_token if self._tokens else None)
            self._ensure_fresh(failed_access_token=failed)

    # ---------------------------------------------------------------------------------------------
    # the refresh protocol

    def _adopt(self, tokens: TokenSet) -> None:
        self._tokens = tokens
        # keep the SDK's attributes meaningful for code that reads them
        self.access_token = tokens.access_token
        self.last_refreshed = datetime.datetime.fromtimestamp(
            tokens.obtained_at or time.time(), tz=datetime.UTC
        )
        self.expires_in = max(0, int(tokens.expires_at - (tokens.obtained_at or time.time())))

    def _usable(self, tokens: TokenSet | None, failed_access_token: str | None) -> bool:
        if tokens is None:
            return False
        if failed_access_token is not None:
            # after a 401: anything but the token that just failed, if it has not expired
            return tokens.access_token != failed_access_token and not tokens.is_expired()
        return tokens.is_fresh(self.refresh_margin_seconds)

    def _ensure_fresh(self, *, failed_access_token: str | None) -> None:
        # Cheap path without the lock: another process may already have rotated (reads are atomic
        # because the store is replaced with os.replace).
        stored = self.store.load()
        if self._usable(stored, failed_access_token):
            assert stored is not None
            self._adopt_from_store(stored)
            return
        with self.store.lock():
            stored = self.store.load()  # re-read inside the lock
            if self._usable(stored, failed_access_token):
                assert stored is not None
                self._adopt_from_store(stored)
                return
            next_refresh_token = stored.refresh_token if stored else self.bootstrap_refresh_token
            if (
                self._rejected_refresh_token is not None
                and next_refresh_token == self._rejected_refresh_token
            ):
                # Do not POST a refresh token FreshBooks already rejected.
                raise ReauthorizationRequired(GRANT_REJECTED_MESSAGE)
            reason = "unauthorized" if failed_access_token else "expiring"
            self._refresh_locked(stored, reason=reason)

    def _adopt_from_store(self, stored: TokenSet) -> None:
        if self._tokens is None or stored.access_token != self._tokens.access_token:
            self.logger.info(
                "Using FreshBooks access token from the token store (expires_at=%s)",
                _iso(stored.expires_at),
                extra={"fb_token_event": "adopted", "expires_at": _iso(stored.expires_at)},
            )
        self._adopt(stored)

    def _refresh_body(self, refresh_token: str | None) -> dict[str, str]:
        # freshbooks-sdk 1.3.0 client.py `_authorize_call` always sends redirect_uri (and refuses
        # to refresh without one): so does this, checked before any refresh token is spent.
        if not self.redirect_uri:
            raise ConfigError(REDIRECT_URI_MISSING_MESSAGE)
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id or "",
            "client_secret": self.client_secret or "",
            "refresh_token": refresh_token or "",
            "redirect_uri": self.redirect_uri,
        }

    def _refresh_locked(self, stored: TokenSet | None, *, reason: str) -> None:
        """POST the refresh and persist the rotated pair. Caller holds ``store.lock()``."""
        if stored is not None:
            refresh_token = stored.refresh_token
            source = "store"
        elif self.bootstrap_refresh_token:
            refresh_token = self.bootstrap_refresh_token
            source = "config"
        else:
            raise ReauthorizationRequired(NOT_AUTHORIZED_MESSAGE.format(path=self.store.location))
        # Fail before the POST consumes the refresh token if the new one could not be saved.
        self.store.check_writable()
        body = self._refresh_body(refresh_token)

        self.logger.info(
            "Refreshing FreshBooks access token (reason=%s, refresh_token_source=%s)",
            reason,
            source,
            extra={"fb_token_event": "refreshing", "reason": reason, "refresh_token_source": source},
        )
        response = self._post_token(body)
        obtained_at = time.time()
        if not response.ok:
            try:
                raise_for_token_error(response, action="refresh")
            except ReauthorizationRequired as exc:
                if exc.message == GRANT_REJECTED_MESSAGE:
                    self._rejected_refresh_token = refresh_token
                    latest = self.store.load()
                    if (
                        latest is not None
                        and latest.refresh_token != refresh_token
                        and self._still_valid(latest)
                    ):
                        # Another runner wrote a newer pair meanwhile (a lapsed S3 lease, or `auth
                        # login`): that one is live, use it instead of failing.
                        self._adopt_from_store(latest)
                        return
                    if stored is not None and reason == "expiring" and self._still_valid(stored):
                        # The refresh margin at work: the refresh token is gone (e.g. a run was
                        # killed after FreshBooks rotated it) but the current access token still
                        # works. Use it until it expires, and say so loudly.
                        self.logger.warning(
                            "FreshBooks rejected the refresh token; continuing with the current access "
                            "token until it expires at %s. Re-authorize with: %s",
                            _iso(stored.expires_at),
                            REAUTH_COMMAND,
                            extra={
                                "fb_token_event": "refresh_rejected",
                                "expires_at": _iso(stored.expires_at),
                            },
                        )
                        self._adopt(stored)
                        return
                raise
            return  # pragma: no cover  (raise_for_token_error always raises)

        # 2xx: the old refresh token is consumed from here on. Never retry this POST.
        self.refresh_count += 1
        try:
            payload = response.json()
            if not isinstance(payload, dict):
                raise ValueError("token response is not a JSON object")
            new_tokens = TokenSet.from_token_response(
                payload, obtained_at=obtained_at, previous_refresh_token=None
            )
        except ValueError as exc:
            msg = (
                f"FreshBooks token endpoint answered HTTP {response.status_code} with an unusable "
                f"body ({exc}); the refresh token is spent. Re-authorize with: {REAUTH_COMMAND}"
            )
            raise ReauthorizationRequired(msg) from None
        try:
            self.store.save(new_tokens)  # persist BEFORE the new access token is used
        except TokenStoreError as exc:
            msg = (
                f"{exc.message}; FreshBooks already rotated the refresh token, so the new pair is lost. "
                f"Fix the token store, then re-authorize with: {REAUTH_COMMAND}"
            )
            raise TokenStoreError(msg) from None
        self._adopt(new_tokens)
        self.logger.info(
            "Refreshed FreshBooks access token (expires_at=%s)",
            _iso(new_tokens.expires_at),
            extra={
                "fb_token_event": "refreshed",
                "expires_at": _iso(new_tokens.expires_at),
                "reason": reason,
            },
        )

    def _post_token(self, body: Mapping[str, str]) -> requests.Response:
        """POST to the token endpoint, retrying outages (connection errors, 429, 5xx) only.

        Waits follow retry_policy.RetryPolicy (jittered exponential steps from ``retry_wait_seconds``,
        ``Retry-After`` as a floor).

        A 2xx or 4xx answer is returned at once: 2xx consumed the refresh token; 4xx is final.
        A connection that broke after the request was sent is retried too: if the server had already
        rotated, the retry gets ``invalid_grant`` (the token was lost with the response, either way).
        """
        last_problem = ""
        for attempt in range(1, self.max_tries + 1):  # the attempt counter belongs to this POST
            retry_after: float | None = None
            try:
                response = self._session.post(
                    self.auth_endpoint,
                    data=dict(body),
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = type(exc).__name__
            else:
                if not retry_policy.is_retriable_status(response.status_code):
                    return response
                last_problem = f"HTTP {response.status_code}"
                retry_after = retry_policy.parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self.max_tries:
                wait = self.retry_policy.wait(attempt, retry_after)
                self.logger.warning(
                    "FreshBooks token endpoint failed (%s); retry %d of %d in %.1f s",
                    last_problem,
                    attempt,
                    self.max_tries - 1,
                    wait,
                    extra={"fb_token_event": "retry", "problem": last_problem},
                )
                time.sleep(wait)
        msg = (
            f"FreshBooks token endpoint {self.auth_endpoint} is unavailable "
            f"({last_problem} after {self.max_tries} attempts); try again later"
        )
        raise TokenEndpointError(msg)


def authenticator_from_config(
    config: Mapping[str, t.Any],
    *,
    logger: logging.Logger | None = None,
    refresh_margin_seconds: float = 3600,
) -> FreshBooksAuthenticator:
    """Build the authenticator from tap settings (see the contract's settings table).

    Raises:
        ConfigError: a required setting is missing or the encryption key is malformed.
    """
    require_settings(config, ("client_id", "client_secret", "token_encryption_key"))
    return FreshBooksAuthenticator(
        client_id=str(config["client_id"]),
        client_secret=str(config["client_secret"]),
        redirect_uri=config.get("redirect_uri") or None,
        token_url=token_url(api_base_url(config)),
        store=store_from_config(config),  # token_store_url, else token_store_path (a file)
        bootstrap_refresh_token=config.get("refresh_token") or None,
        refresh_margin_seconds=refresh_margin_seconds,
        logger=logger,
    )
