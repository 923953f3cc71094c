"""Fault injection for API requests (never the token endpoint, the authorize page or /_emulator).

* ``rate_limit_every = n``: every n-th API request answers 429 with ``Retry-After: retry_after``
  and body ``{"response":{"errors":[{"errno":429,"message":"Rate limit exceeded."}]}}``.
* ``server_error_every = n``: every n-th API request answers ``server_error_status`` (503).
* ``latency``: seconds to sleep before answering every API request.
* ``fail_next(n, status=503)``: the next n API requests fail with that status.
* ``token_error_every = n``: every n-th token-endpoint call answers 503 before doing anything
  (the refresh token is NOT consumed).
"""
from __future__ import annotations

import threading
import time


class Faults:
    FIELDS = ("rate_limit_every", "server_error_every", "server_error_status", "latency",
              "retry_after", "token_error_every")

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.rate_limit_every = 0
            self.server_error_every = 0
            self.server_error_status = 503
            self.latency = 0.0
            self.retry_after = "0"
            self.token_error_every = 0
            self._count = 0
            self._token_count = 0
            self._queue: list[int] = []
            self.injected = 0

    def configure(self, **kw) -> None:
        for k, v in kw.items():
            if k == "fail_next":
                if isinstance(v, dict):
                    self.fail_next(int(v.get("n", 1)), int(v.get("status", 503)))
                else:
                    self.fail_next(int(v))
            elif k == "reset" and v:
                self.reset()
            elif k in self.FIELDS:
                setattr(self, k, v)
            else:
                raise KeyError(f"unknown fault setting {k!r}")

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        with self._lock:
            self._queue.extend([status] * n)

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS} | {"count": self._count,
                                                               "injected": self.injected}

    def _error(self, status: int):
        headers = {}
        if status == 429:
            body = {"response": {"errors": [{"errno": 429, "message": "Rate limit exceeded."}]}}
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
        else:
            body = {"response": {"errors": [{"errno": status,
                                             "message": "Service temporarily unavailable."}]}}
        self.injected += 1
        return status, headers, body

    def check_api(self):
        """Return (status, headers, body) to inject, or None."""
        if self.latency:
            time.sleep(float(self.latency))
        with self._lock:
            self._count += 1
            n = self._count
            if self._queue:
                return self._error(self._queue.pop(0))
            if self.rate_limit_every and n % int(self.rate_limit_every) == 0:
                return self._error(429)
            if self.server_error_every and n % int(self.server_error_every) == 0:
                return self._error(int(self.server_error_status))
        return None

    def check_token(self):
        with self._lock:
            self._token_count += 1
            if self.token_error_every and self._token_count % int(self.token_error_every) == 0:
                self.injected += 1
                return 503, {}, {"error": "temporarily_unavailable",
                                 "error_description": "The server is temporarily unavailable."}
        return None
