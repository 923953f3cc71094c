"""The FreshBooks side: event names, event -> stream mapping, and the callbacks API client.

Callbacks API (freshbooks-api.md §7.1), all under ``{api_url}/events/account/{account_id}/events``:
``POST callbacks`` create, ``GET callbacks`` list, ``PUT callbacks/{id}`` with
``{"callback": {"verifier": ...}}`` verify or ``{"callback": {"resend": true}}`` resend, ``DELETE
callbacks/{id}``. The access token comes from the tap's encrypted token store through the tap's own
``FreshBooksAuthenticator`` (FreshBooks refresh tokens are single-use, so there must be exactly one
refresh protocol for the tap and the bridge).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import typing as t

import httpx

from freshbooks_auth.answers import IDENTITY_PATH, accounting_accounts, error_text
from freshbooks_auth.errors import ConfigError, FreshBooksError, ReauthorizationRequired
from freshbooks_auth.retry_policy import RetryPolicy, is_retriable_status, parse_retry_after
from freshbooks_auth.unauthorized import TokenProvider, UnauthorizedHook
from webhook_bridge import __version__
from webhook_bridge.events import EVENT_STREAMS, stream_for

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from webhook_bridge.settings import Settings

LOGGER = logging.getLogger("webhook_bridge.freshbooks")

# ------------------------------------------------------------------------------------------------
# Event names (freshbooks-api.md §7.5). Which stream an event refreshes is events.py's.


@dataclasses.dataclass(frozen=True)
class EventTarget:
    """The stream whose ``record_ids`` fetch the record an event names (see events.py)."""

    stream: str


def target_for(event_name: str) -> EventTarget | None:
    """The stream an event refreshes (``None``: not fetchable by id, left to the poll)."""
    stream = stream_for(event_name)
    return None if stream is None else EventTarget(stream)


EVENT_ACTIONS = ("create", "update", "delete")

# What `register` subscribes to by default: every resource with a stream in events.py. FreshBooks
# documents (or third parties list) events for these resources; `bill_payment` and `other_income`
# have no documented events, they are tried and reported as "not offered" if FreshBooks answers 422.
# Journal entries, ledger accounts and bill payments without events are covered by the scheduled poll.
DEFAULT_EVENT_RESOURCES = tuple(EVENT_STREAMS)
DEFAULT_EVENTS = tuple(f"{r}.{a}" for r in DEFAULT_EVENT_RESOURCES for a in EVENT_ACTIONS)


def expand_events(names: Iterable[str]) -> list[str]:
    """``invoice`` -> ``invoice.create, invoice.update, invoice.delete``; full names pass through."""
    out: list[str] = []
    for name in names:
        expanded = [name] if "." in name else [f"{name}.{a}" for a in EVENT_ACTIONS]
        out.extend(e for e in expanded if e not in out)
    return out


# ------------------------------------------------------------------------------------------------
# tokens


class StaticToken:
    """A fixed access token (tests, or a token obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_access_token(self) -> str:
        return self._token

    def handle_unauthorized(self, failed_access_token: str | None = None) -> None:  # noqa: ARG002
        raise FreshBooksAPIError(401, "the access token was rejected")


def token_provider_from_settings(settings: Settings) -> TokenProvider:
    """The shared FreshBooks authenticator over the tap's encrypted token store.

    Raises:
        FreshBooksAPIError: its settings are incomplete or unusable (one line).
    """
    missing = [
        name
        for name, value in (
            ("CLIENT_ID", settings.client_id),
            ("CLIENT_SECRET", settings.client_secret),
            ("TOKEN_STORE_PATH (or TOKEN_STORE_URL)", settings.token_store_path or settings.token_store_url),
        )
        if not value
    ]
    if missing:
        raise FreshBooksAPIError(
            0,
            "calling FreshBooks needs the tap's OAuth app and token store: set "
            + ", ".join(f"WEBHOOK_BRIDGE_{m}" for m in missing),
        )
    # imported here: the authenticator pulls in singer-sdk, which only FreshBooks calls need
    from freshbooks_auth.authenticator import authenticator_from_config  # noqa: PLC0415

    try:
        return authenticator_from_config(settings.tap_config(), logger=LOGGER)
    except FreshBooksError as exc:
        raise FreshBooksAPIError(0, str(exc)) from None


def _token_error(exc: FreshBooksError) -> FreshBooksAPIError:
    """A token problem as an API error: re-authorize / fix a setting (final), else an outage (retried)."""
    final = isinstance(exc, (ReauthorizationRequired, ConfigError))
    return FreshBooksAPIError(401 if final else 0, str(exc))


# ------------------------------------------------------------------------------------------------
# errors and the client


class FreshBooksAPIError(Exception):
    """A FreshBooks call failed; ``str(err)`` is one line without secrets."""

    def __init__(self, status: int, message: str, *, details: object = None) -> None:
        self.status = status
        self.details = details
        super().__init__(" ".join(str(message).split()))

    @property
    def retryable(self) -> bool:
        """Outages (network, 408, 429, 5xx) are worth retrying; other 4xx are final."""
        return self.status == 0 or self.status in (408, 409, 429) or self.status >= 500

    @property
    def unrecognized_event(self) -> bool:
        """FreshBooks' 422 ``event: Value error, Unrecognized event``."""
        return self.status == 422 and "unrecognized event" in f"{self} {self.details}".lower()


@dataclasses.dataclass(frozen=True)
class Callback:
    """A FreshBooks callback registration."""

    callback_id: int
    event: str
    uri: str
    verified: bool
    account_id: str

    @classmethod
    def from_api(cls, account_id: str, data: dict[str, t.Any]) -> Callback:
        raw_id: t.Any = data.get("callbackid", data.get("id"))  # an int, or its digits
        return cls(
            callback_id=int(raw_id),
            event=str(data.get("event", "")),
            uri=str(data.get("uri", "")),
            verified=bool(data.get("verified")),
            account_id=account_id,
        )


#: The tap's retry policy (freshbooks_auth.retry_policy), with Retry-After honoured up to 30 s: the
#: bridge's calls run while someone waits (``register``, a callback's verification).
RETRY_POLICY = RetryPolicy(max_retry_after_seconds=30.0)


class FreshBooksClient:
    """Synchronous client for the callbacks API and the identity call (used off the event loop)."""

    def __init__(
        self,
        api_url: str,
        tokens: TokenProvider,
        *,
        timeout: float = 20.0,
        max_tries: int = 3,
        retry_policy: RetryPolicy = RETRY_POLICY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._unauthorized = UnauthorizedHook(tokens)  # the tokens, and the 401 rule shared with the tap
        self.max_tries = max(1, max_tries)
        self.retry_policy = retry_policy
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": f"webhook-bridge/{__version__}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FreshBooksClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- low level ------------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, json: object = None, params: dict[str, t.Any] | None = None
    ) -> dict[str, t.Any]:
        url = f"{self.api_url}{path}"
        idempotent = method != "POST"
        credentials = self._unauthorized.request()
        attempt = 0
        while True:
            attempt += 1
            try:
                authorization = credentials.authorization()
            except FreshBooksError as exc:
                raise _token_error(exc) from None
            try:
                response = self._http.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Authorization": authorization},
                )
            except httpx.HTTPError as exc:
                # a POST may have been processed; `register` re-lists before creating again
                if idempotent and attempt < self.max_tries:
                    time.sleep(self.retry_policy.wait(attempt))
                    continue
                raise FreshBooksAPIError(0, f"{method} {path}: {type(exc).__name__}") from None
            if response.status_code == 401:
                try:
                    credentials.unauthorized()  # refresh once, or re-authorize
                except FreshBooksError as exc:
                    raise _token_error(exc) from None
                continue
            if (
                is_retriable_status(response.status_code)
                and attempt < self.max_tries
                and (idempotent or response.status_code == 429)
            ):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                time.sleep(self.retry_policy.wait(attempt, retry_after))
                continue
            if response.status_code >= 400:
                raise _api_error(method, path, response)
            if response.status_code == 204 or not response.content:
                return {}
            try:
                body = response.json()
            except ValueError:
                raise FreshBooksAPIError(
                    response.status_code, f"{method} {path}: answer is not JSON"
                ) from None
            return body if isinstance(body, dict) else {}

    @staticmethod
    def _callbacks_path(account_id: str, callback_id: int | str | None = None) -> str:
        path = f"/events/account/{account_id}/events/callbacks"
        return path if callback_id is None else f"{path}/{callback_id}"

    @staticmethod
    def _result(body: dict[str, t.Any]) -> dict[str, t.Any]:
        response = body.get("response", body)
        result = response.get("result", response) if isinstance(response, dict) else {}
        return result if isinstance(result, dict) else {}

    # -- identity -------------------------------------------------------------------------------
    def account_ids(self) -> list[str]:
        """Accounting account ids the grant reaches (``/auth/api/v1/users/me``)."""
        return [account["account_id"] for account in accounting_accounts(self._request("GET", IDENTITY_PATH))]

    # -- callbacks ------------------------------------------------------------------------------
    def list_callbacks(self, account_id: str) -> list[Callback]:
        """Every callback of the account (all pages)."""
        out: list[Callback] = []
        page = 1
        while True:
            body = self._request(
                "GET", self._callbacks_path(account_id), params={"page": page, "per_page": 100}
            )
            result = self._result(body)
            items = result.get("callbacks") or []
            out.extend(Callback.from_api(account_id, item) for item in items)
            pages = int(result.get("pages") or 0)
            if not items or page >= pages:
                return out
            page += 1

    def create_callback(self, account_id: str, event: str, uri: str) -> Callback:
        """Register ``uri`` for ``event``; FreshBooks then POSTs the verification to ``uri``."""
        body = self._request(
            "POST",
            self._callbacks_path(account_id),
            json={"callback": {"event": event, "uri": uri}},
        )
        return Callback.from_api(account_id, self._result(body).get("callback") or {})

    def verify_callback(self, account_id: str, callback_id: int | str, verifier: str) -> Callback:
        """Confirm the verifier FreshBooks sent; notifications start after this."""
        body = self._request(
            "PUT",
            self._callbacks_path(account_id, callback_id),
            json={"callback": {"verifier": verifier}},
        )
        return Callback.from_api(account_id, self._result(body).get("callback") or {})

    def resend_verification(self, account_id: str, callback_id: int | str) -> Callback:
        """Ask FreshBooks to POST a new verification to the callback's uri."""
        body = self._request(
            "PUT",
            self._callbacks_path(account_id, callback_id),
            json={"callback": {"resend": True}},
        )
        return Callback.from_api(account_id, self._result(body).get("callback") or {})

    def delete_callback(self, account_id: str, callback_id: int | str) -> None:
        """Remove the callback (404 counts as already gone)."""
        try:
            self._request("DELETE", self._callbacks_path(account_id, callback_id))
        except FreshBooksAPIError as exc:
            if exc.status != 404:
                raise


def _api_error(method: str, path: str, response: httpx.Response) -> FreshBooksAPIError:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = error_text(body, fallback=response.reason_phrase or "error")
    details = body.get("details") if isinstance(body, dict) else None
    return FreshBooksAPIError(
        response.status_code,
        f"{method} {path} answered HTTP {response.status_code}: {message}",
        details=details,
    )


def default_client_factory(settings: Settings) -> Callable[[], FreshBooksClient]:
    """Clients for ``settings``: its API URL, its token store, its timeout (service and replicas)."""

    def factory() -> FreshBooksClient:
        return FreshBooksClient(
            settings.api_url,
            token_provider_from_settings(settings),
            timeout=settings.http_timeout_seconds,
        )

    return factory
