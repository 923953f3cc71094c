"""`FreshBooksHTTPStream`: HTTP to FreshBooks, and nothing else.

What every FreshBooks endpoint shares on the wire: the URL base, the shared authenticator (one per
tap process: refresh tokens are single-use), retries (429 honouring ``Retry-After``, 5xx, connection
errors, one refresh-and-retry on 401; the policy is in retries.py), the three envelopes, paging with
the next page in flight, and a GET of one path (``fetch_json``).

What a stream does with the records is elsewhere: which ones changed and the state that proves it
(sync_modes.py, incremental.py), how an API record becomes a Singer record (shaping.py), and the
declarations every stream shares (streams/base.py).
"""

from __future__ import annotations

import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from urllib.parse import urlparse

import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.streams import RESTStream

from freshbooks_auth.answers import error_text
from freshbooks_auth.settings import api_base_url
from tap_freshbooks import envelopes, retries
from tap_freshbooks.errors import FreshBooksError

if t.TYPE_CHECKING:
    from collections.abc import Generator

    from backoff.types import Details
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.rest import HTTPRequest, PageContext

    from freshbooks_auth.authenticator import FreshBooksAuthenticator

PASS_KEY = "fb_pass"  # added to the context handed to request_records: which list pass this is


class BadResponse(FreshBooksError):
    """FreshBooks answered with something we cannot use."""


class TapServices(t.Protocol):
    """What streams use from their tap (``TapFreshBooks``), one of each per process."""

    @property
    def authenticator(self) -> FreshBooksAuthenticator: ...

    @property
    def record_ids(self) -> dict[str, list[str]] | None: ...

    @property
    def accounts(self) -> list[dict[str, t.Any]]: ...


class FreshBooksHTTPStream(RESTStream):
    """HTTP for every FreshBooks endpoint: auth, retries, status handling, envelopes, pages."""

    # -- declarations overridden by streams -------------------------------------------------------
    envelope: envelopes.Envelope = envelopes.ACCOUNTING
    list_key: str = ""
    single_key: str = ""
    #: constant query params
    extra_params: t.ClassVar[dict[str, t.Any]] = {}

    # -- SDK wiring ----------------------------------------------------------------------------
    @property
    def url_base(self) -> str:
        return api_base_url(self.config)

    @property
    def fb_tap(self) -> TapServices:
        """The tap, typed as what the streams use from it."""
        return t.cast("TapServices", self._tap)

    @property
    def authenticator(self) -> FreshBooksAuthenticator:
        return self.fb_tap.authenticator  # one per process: refresh tokens are single-use

    @property
    def http_headers(self) -> dict[str, t.Any]:
        return {"Accept": "application/json"}

    @property
    def timeout(self) -> int:
        return int(self.config.get("request_timeout", 60))

    def get_new_paginator(self) -> envelopes.FreshBooksPaginator:
        return envelopes.FreshBooksPaginator(self.envelope)

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        body = envelopes.parse_json(response)
        try:
            yield from self.envelope.items(body, self.list_key)
        except (KeyError, TypeError, AttributeError) as exc:
            msg = f"Unexpected {self.envelope.name} envelope from {self.path} (no {self.list_key!r})"
            raise BadResponse(msg) from exc

    # -- retries (the policy itself is in retries.py) ---------------------------------------------
    #: waits of every request of this stream (tests install small ones)
    retry_policy: t.ClassVar[retries.RetryPolicy] = retries.RetryPolicy()

    def backoff_max_tries(self) -> int:
        return max(1, int(self.config.get("max_request_tries", 8)))

    def backoff_wait_generator(self) -> Generator[float, BaseException | None, None]:
        """A new generator, so a new attempt counter, per request (python-backoff calls this per call)."""
        return retries.wait_generator(self.retry_policy)

    def backoff_jitter(self, value: float) -> float:
        return value  # retries.RetryPolicy jitters, where the Retry-After floor is known

    def backoff_handler(self, details: Details) -> None:
        retries.log_backoff(self.logger, f"Stream {self.name}", details, self.backoff_max_tries())

    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """``func`` with retries.py's policy; a give-up is one line (stream, path, last failure)."""
        return retries.retrying(
            func,
            subject=f"Stream {self.name}",
            wait_gen=self.backoff_wait_generator,
            max_tries=self.backoff_max_tries,
            jitter=self.backoff_jitter,
            on_backoff=self.backoff_handler,
        )

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED:
            # freshbooks_auth's 401 rule: refresh once and re-send, or ReauthorizationRequired
            self.authenticator.on_unauthorized(response.request)
            raise RetriableAPIError("401: access token refreshed, retrying", response)
        if status == HTTPStatus.FORBIDDEN:
            msg = (
                f"FreshBooks refused {self.name} (403 Forbidden): the OAuth app lacks a scope this "
                f"stream needs ({_error_text(response)}). Add the scope to the app, then run "
                "`tap-freshbooks auth login` again, or deselect the stream."
            )
            raise FatalAPIError(msg)
        if retries.is_retriable_status(status):
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise FatalAPIError(self.response_error_message(response))
        if status != HTTPStatus.NO_CONTENT:
            retries.decode_json_or_retry(response)  # inside the retried call: a bad body is retried

    def response_error_message(self, response: requests.Response) -> str:
        # Never echo headers or the query string (they can carry ids users consider private).
        path = urlparse(response.url).path
        return f"{response.status_code} from FreshBooks for {path}: {_error_text(response)}"

    # -- requests -------------------------------------------------------------------------------
    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        context = dict(page.stream_context or {})
        params: dict[str, t.Any] = {"page": page.next_page_token or 1, "per_page": envelopes.PER_PAGE}
        if self.envelope is envelopes.LEDGER:
            params = {}
        params.update(self.extra_params)
        params.update(context.get(PASS_KEY, {}).get("params", {}))
        request.params = params
        request.safe_query_chars = "[]"
        return request

    def request_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every record of every page, the next page already on its way while this one is emitted.

        The same requests in the same order as the SDK's loop, one at a time: page n+1 is
        requested once page n has arrived and told whether there is a page n+1, and it travels
        while page n's records are transformed and written. Waiting for the wire and working on
        records overlap instead of taking turns. A failure of page n+1 surfaces after page n's
        records, as before.
        """
        paginator = self.get_new_paginator()
        send = self.request_decorator(self._request)
        pages = 0
        with (
            self.get_http_request_counter() as request_counter,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{self.name}") as wire,
        ):
            request_counter.with_context(context)

            def request_next() -> tuple[requests.PreparedRequest, Future[requests.Response]]:
                prepared = self._prepare_request(context=context, page=paginator)
                return prepared, wire.submit(send, prepared, context)

            in_flight: tuple[requests.PreparedRequest, Future[requests.Response]] | None = request_next()
            while in_flight is not None:
                prepared, arriving = in_flight
                response = arriving.result()
                request_counter.increment()
                self.update_sync_costs(prepared, response, context)
                records = list(self.parse_response(response))
                if not records and not paginator.continue_if_empty(response):
                    self.log(
                        "Pagination stopped after %d pages because no records were found in the last response",
                        pages,
                    )
                    return
                pages += 1 if records else 0
                paginator.advance(response)
                in_flight = None if paginator.finished else request_next()
                yield from records

    def fetch_json(self, path: str, params: dict[str, t.Any] | None = None) -> t.Any:
        """GET one URL with the stream's auth and retries; returns the decoded body (or None on 404)."""
        prepared = self.build_prepared_request(
            method="GET",
            url=f"{self.url_base}{path}",
            params=params or {},
            headers={**self.http_headers, "User-Agent": self.user_agent},
        )
        request = self.request_decorator(self._fetch_allowing_404)
        return request(prepared)

    def _fetch_allowing_404(self, prepared: requests.PreparedRequest) -> t.Any:
        authed = self.authenticator(prepared)
        response = self.requests_session.send(authed, timeout=self.timeout)
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        self.validate_response(response)
        return envelopes.parse_json(response)

    def read_list(self, context: dict[str, t.Any], params: dict[str, t.Any]) -> t.Iterable[dict[str, t.Any]]:
        """Every record of every page of the list endpoint, with these filter params."""
        return self.request_records({**context, PASS_KEY: {"params": params}})


def _error_text(response: requests.Response) -> str:
    """The human part of a FreshBooks error body (freshbooks_auth.answers reads every family)."""
    try:
        body = response.json()
    except ValueError:
        return error_text(None, fallback=response.text or response.reason or "")
    return error_text(body, fallback=response.reason or "")
