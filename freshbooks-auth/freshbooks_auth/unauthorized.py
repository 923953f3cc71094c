"""The rule for an API call answered 401, for every HTTP client (the tap's requests, the bridge's httpx).

1. Each attempt of a request carries the header :meth:`RequestAuth.authorization` returns: a fresh
   access token (the provider refreshes it under the token store's lock when it is due).
2. When FreshBooks answers 401 the caller reports it with :meth:`RequestAuth.unauthorized`: the
   provider adopts the pair another runner stored, or refreshes, once; the caller then re-sends the
   request once.
3. A 401 for a request that was already refreshed, or for a token that already got a 401 in this
   process, means the grant itself is unusable: :class:`ReauthorizationRequired`, one line.

Callers never hold a token value: they get a header value to send, and report a status back.
"""

from __future__ import annotations

import threading
import typing as t

from freshbooks_auth.errors import REAUTH_COMMAND, ReauthorizationRequired

FRESH_TOKEN_REJECTED_MESSAGE = (
    "FreshBooks rejected a freshly refreshed access token. The grant may have been revoked. "
    f"Re-authorize with: {REAUTH_COMMAND}"
)


class TokenProvider(t.Protocol):
    """What the hook needs from an authenticator (``FreshBooksAuthenticator`` is one)."""

    def get_access_token(self) -> str:
        """A fresh access token."""
        ...

    def handle_unauthorized(self, failed_access_token: str | None = None) -> None:
        """Adopt another runner's pair or refresh once, after ``failed_access_token`` got a 401."""
        ...


class UnauthorizedHook:
    """The 401 rule over one token provider (one per process: it remembers the tokens that got a 401)."""

    def __init__(self, provider: TokenProvider) -> None:
        """Wrap ``provider``; no token is fetched yet."""
        self._provider = provider
        self._rejected: set[str] = set()
        self._lock = threading.Lock()

    def request(self) -> RequestAuth:
        """The credentials of one new request (keep it for all the request's attempts)."""
        return RequestAuth(self)

    def fresh_token(self) -> str:
        """The provider's current access token (for :meth:`RequestAuth.authorization`)."""
        return self._provider.get_access_token()

    def report_unauthorized(self, request: RequestAuth) -> None:
        """``request``'s latest attempt got a 401 (see :meth:`RequestAuth.unauthorized`)."""
        used = request.sent_token
        with self._lock:
            if request.refreshed or (used is not None and used in self._rejected):
                raise ReauthorizationRequired(FRESH_TOKEN_REJECTED_MESSAGE)
            if used is not None:
                self._rejected.add(used)
        self._provider.handle_unauthorized(used)
        request.refreshed = True


class RequestAuth:
    """One API request across its attempts: the header of each attempt and the 401 it may get."""

    __slots__ = ("__weakref__", "_hook", "refreshed", "sent_token")

    def __init__(self, hook: UnauthorizedHook) -> None:
        """Credentials for one request through ``hook``."""
        self._hook = hook
        self.sent_token: str | None = None  # the token of the latest attempt (stays in this package)
        self.refreshed = False  # a 401 already made this request refresh

    def __repr__(self) -> str:
        return f"RequestAuth(refreshed={self.refreshed})"  # never the token

    def authorization(self) -> str:
        """The ``Authorization`` header value for the next attempt."""
        self.sent_token = self._hook.fresh_token()
        return f"Bearer {self.sent_token}"

    def unauthorized(self) -> None:
        """The latest attempt got a 401: refresh once (then re-send), or raise ReauthorizationRequired.

        Raises:
            ReauthorizationRequired: a second 401 for this request, or for a token already rejected.
        """
        self._hook.report_unauthorized(self)
