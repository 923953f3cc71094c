"""The retry policy of tap-freshbooks: what is retried, how long to wait, and how a give-up reads.

Retried (each one tested against the emulator in ``tests/tap/test_retries.py``):

* HTTP 429 and every 5xx;
* connection resets, connections closed without an answer, refused connections, connect and
  read timeouts;
* truncated bodies: shorter than their ``Content-Length``, or a chunked body cut short;
* 2xx answers whose body is not JSON (an HTML error page, half a JSON document, bytes that are not
  UTF-8): :func:`decode_json_or_retry` decodes the body inside the retried call.

Not retried: 403 and other 4xx. A 401 is the authenticator's business: the stream refreshes the
token once and retries at once (no wait); a second 401 on a fresh token asks to re-authorize.

Waits: exponential backoff with "equal jitter" (half the exponential step, plus a random part of up to
the other half), capped at ``max_seconds``. A ``Retry-After`` header (seconds or an HTTP-date) is a
floor: the wait is at least that long, capped at ``max_retry_after_seconds``.

The attempt counter belongs to ONE request: :func:`wait_generator` keeps it in the generator's own
frame, and python-backoff creates a new generator for every call of a decorated function
(``backoff._common._RetryState.__init__`` calls ``_init_wait_gen`` once per call). So an isolated
failure always waits one short step, however many requests failed before it.

After ``max_tries`` attempts, :func:`retrying` raises :class:`RequestFailed`: one line naming the
stream, the method and path (never the query string or a token) and the last failure.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import typing as t
from http import HTTPStatus
from urllib.parse import urlparse

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

# The policy itself (waits, Retry-After, which statuses) is shared with the token endpoint and the
# bridge: re-exported here for the tap's streams.
from freshbooks_auth.retry_policy import RetryPolicy as RetryPolicy
from freshbooks_auth.retry_policy import is_retriable_status as is_retriable_status
from freshbooks_auth.retry_policy import parse_retry_after as parse_retry_after
from tap_freshbooks import envelopes
from tap_freshbooks.errors import FreshBooksError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from backoff.types import Details

#: Exceptions the retried call may raise and still be retried (the SDK's own list).
RETRIED_EXCEPTIONS: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class RequestFailed(FreshBooksError):
    """A request still failed after the last allowed attempt."""


def _response_of(exc: BaseException | None) -> requests.Response | None:
    response = getattr(exc, "response", None)
    return response if isinstance(response, requests.Response) else None


def wait_generator(
    policy: RetryPolicy, rng: random.Random | None = None
) -> Generator[float, BaseException | None, None]:
    """A python-backoff wait generator whose attempt counter lives and dies with one request.

    python-backoff primes it with ``send(None)`` and then sends each exception it is about to retry.
    A 401 (the stream already refreshed the token) is retried at once and does not count as a
    backoff step.
    """
    attempt = 0
    exc = yield  # type: ignore[misc]  # primed by python-backoff
    while True:
        response = _response_of(exc)
        if response is not None and response.status_code == HTTPStatus.UNAUTHORIZED:
            wait = 0.0
        else:
            attempt += 1
            retry_after = (
                parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
            )
            wait = policy.wait(attempt, retry_after, rng)
        exc = yield wait


def decode_json_or_retry(response: requests.Response) -> t.Any:
    """Decode a 2xx body (cached on the response); a body that is not JSON is retriable."""
    try:
        return envelopes.parse_json(response)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        content_type = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        msg = (
            f"{response.status_code} from FreshBooks for {_path(response.url)} with a body that is "
            f"not JSON ({content_type}, {len(response.content)} bytes)"
        )
        raise RetriableAPIError(msg, response) from None


_QUERY = re.compile(r"\?[^\s'\")]*")
_HOST = re.compile(r"host='[^']*', port=\d+\)?:?\s*")


def _redact(text: str) -> str:
    return _HOST.sub("", _QUERY.sub("", text))


def _path(url: str | None) -> str:
    return urlparse(url or "").path or "/"


def describe_failure(exc: BaseException) -> str:
    """What went wrong, in a few words: never a URL's query string, a header or a token."""
    if isinstance(exc, RetriableAPIError):
        return _redact(str(exc))
    text = _redact(f"{exc!s} {exc.__cause__!s}" if exc.__cause__ else str(exc))
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timeout (no connection within the request timeout)"
    if isinstance(exc, requests.exceptions.Timeout) or "Read timed out" in text:
        return "read timeout (no answer within request_timeout)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"response body cut short ({text.strip()[:120]})"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "response body could not be decompressed"
    if isinstance(exc, ConnectionResetError) or "reset by peer" in text:
        return "connection reset by peer"
    if "RemoteDisconnected" in text or "without response" in text:
        return "connection closed without an answer"
    if "refused" in text:
        return "connection refused"
    if "resolve" in text or "Name or service not known" in text:
        return "host name could not be resolved"
    return f"{type(exc).__name__} ({text.strip()[:120]})"


def give_up_message(
    subject: str, request: requests.PreparedRequest | None, tries: int, exc: BaseException
) -> str:
    """The one line a user reads when a request failed ``tries`` times."""
    where = f"{request.method} {_path(request.url)}" if request is not None else "request"
    times = "time" if tries == 1 else "times"
    return (
        f"{subject}: {where} failed {tries} {times}; last failure: {describe_failure(exc).rstrip('. ')}. "
        "FreshBooks (or the network to it) keeps failing: try again later, or raise max_request_tries."
    )


def retrying(
    func: Callable[..., t.Any],
    *,
    subject: str,
    wait_gen: Callable[[], Generator[float, t.Any, None]],
    max_tries: int | Callable[[], int],
    jitter: Callable[[float], float] | None = None,
    on_backoff: Callable[[Details], None] | None = None,
) -> Callable[..., t.Any]:
    """``func`` retried on :data:`RETRIED_EXCEPTIONS`; raises :class:`RequestFailed` at the end.

    ``wait_gen`` is called once per call of the returned function (python-backoff does that), so a
    generator keeping its own attempt counter gives every request a fresh one. ``subject`` names who
    asked (e.g. ``"Stream invoices"``). python-backoff's own log lines are off: they print request
    objects and URLs; ``on_backoff`` logs instead.
    """

    def remember_tries(details: Details) -> None:
        exc = t.cast("t.Mapping[str, t.Any]", details).get("exception")  # set by on_exception
        if exc is not None:
            exc._fb_tries = int(details.get("tries") or 0)  # noqa: SLF001  (read just below)

    decorated = backoff.on_exception(
        wait_gen,
        RETRIED_EXCEPTIONS,
        max_tries=max_tries,
        jitter=jitter,
        on_backoff=on_backoff,
        on_giveup=remember_tries,
        logger=None,
    )(func)

    @functools.wraps(func)
    def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return decorated(*args, **kwargs)
        except RETRIED_EXCEPTIONS as exc:
            tries = getattr(exc, "_fb_tries", None)
            if tries is None:
                tries = max_tries() if callable(max_tries) else int(max_tries)
            request = next((a for a in args if isinstance(a, requests.PreparedRequest)), None)
            raise RequestFailed(give_up_message(subject, request, tries, exc)) from None

    return call


def log_backoff(logger: logging.Logger, subject: str, details: t.Mapping[str, t.Any], max_tries: int) -> None:
    """One WARNING per backoff (``details`` from python-backoff): who, which attempt, why, how long."""
    exc = details.get("exception")
    logger.warning(
        "%s: attempt %d of %d failed (%s); retrying in %.2f s",
        subject,
        int(details.get("tries") or 0),
        max_tries,
        describe_failure(exc) if exc is not None else "no exception",
        float(details.get("wait") or 0.0),
        extra={"fb_retry_attempt": int(details.get("tries") or 0), "fb_retry_wait_s": details.get("wait")},
    )
