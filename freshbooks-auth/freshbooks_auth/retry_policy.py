"""How long to wait between attempts at a FreshBooks call, and which answers are worth another one.

The token endpoint (here), the tap's API calls (``tap_freshbooks.retries``) and the bridge's
callbacks client share this one policy: it lives in the lowest package they all depend on.

Waits: exponential backoff with "equal jitter" (half the exponential step, plus a random part of up
to the other half), capped at ``max_seconds``. A ``Retry-After`` header (seconds or an HTTP-date) is
a floor: the wait is at least that long, capped at ``max_retry_after_seconds``.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from http import HTTPStatus


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt ``n + 1`` of one request."""

    #: first exponential step (the wait after attempt 1 is between half of it and all of it)
    base_seconds: float = 0.5
    #: cap of one exponential step
    max_seconds: float = 30.0
    #: cap of a server's Retry-After
    max_retry_after_seconds: float = 120.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Equal-jitter exponential wait after failed attempt ``attempt`` (1-based)."""
        step = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        half = step / 2
        return half + (rng.uniform(0, half) if rng is not None else random.uniform(0, half))

    def wait(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``; ``retry_after`` (seconds) is a floor."""
        jittered = self.backoff(attempt, rng)
        if retry_after is None:
            return jittered
        return max(min(retry_after, self.max_retry_after_seconds), jittered)


def is_retriable_status(status: int) -> bool:
    """429 and 5xx are worth another attempt; everything else is final."""
    return status == HTTPStatus.TOO_MANY_REQUESTS or 500 <= status <= 599


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (from delay-seconds or an HTTP-date), or None when absent/unreadable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
