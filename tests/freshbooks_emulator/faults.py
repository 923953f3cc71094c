"""Fault injection for API requests (never the token endpoint, the authorize page or /_emulator).

Every ``*_every = n`` setting counts API requests on one shared counter: request number ``k`` gets
the first fault (in the order below) whose ``n`` divides ``k``. ``0`` switches a fault off.
``only_paths`` (a regular expression, searched in the request path; ``None`` = every path) limits
faults, ``fail_next`` and the counter to matching requests.

HTTP-level faults (an ordinary, well-formed answer):

* ``rate_limit_every = n``: answers 429 with ``Retry-After: retry_after`` (seconds such as ``"1"``,
  or an HTTP-date such as ``"Wed, 21 Oct 2015 07:28:00 GMT"``; ``None`` sends no header) and body
  ``{"response":{"errors":[{"errno":429,"message":"Rate limit exceeded."}]}}``.
* ``server_error_every = n``: answers ``server_error_status`` (503).

Transport-level faults (what proxies, load balancers and flaky networks do):

* ``reset_every = n``: the connection is reset (TCP RST, ``SO_LINGER`` 0) without any answer.
* ``timeout_every = n``: no answer for ``timeout_seconds`` (set it above the client's timeout),
  then the connection is closed, still without an answer.
* ``truncate_every = n``: the real answer is cut in half, then the connection is closed.
  ``truncate_style``: ``"length"`` sends a ``Content-Length`` for the whole body, ``"chunked"``
  sends ``Transfer-Encoding: chunked`` and never the last chunk, ``"alternate"`` takes turns.
* ``garbage_every = n``: ``200 OK`` with a body the client cannot use. ``garbage_style``:
  ``"html"`` (a proxy's error page, ``text/html``), ``"half_json"`` (the real JSON cut in half,
  with a matching ``Content-Length``), ``"binary"`` (bytes that are not UTF-8) or ``"alternate"``.

Other settings:

* ``latency``: seconds to sleep before answering every API request.
* ``hold``: while true, every API request waits (at most ``hold_seconds``, 45 by default, below
  the tap's 60 s request timeout) until ``hold`` is set false again. Tests use it to keep one run
  mid-extraction, holding whatever it holds, for as long as they need, however slow the machine.
* ``fail_next(n, kind=503)``: the next n API requests fail with that status, or with a transport
  fault named ``"reset"``, ``"timeout"``, ``"truncate"`` or ``"garbage"`` (styles as above).
* ``token_error_every = n``: every n-th token-endpoint call answers 503 before doing anything
  (the refresh token is NOT consumed).

Everything is settable over HTTP: ``POST /_emulator/faults`` with a JSON object of the settings above
(plus ``{"fail_next": {"n": 2, "status": 503 | "reset" | ...}}`` and ``{"reset": true}``);
``GET /_emulator/faults`` returns the settings, ``count`` (API requests seen), ``injected`` (faults
injected) and ``injected_by_kind``.

For tests that measure waits, :attr:`Faults.arrivals` keeps ``(monotonic time, path, kind)`` for
every API request, ``kind`` being the fault injected into it (``None`` when answered normally).
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
import time
import typing as t

TRANSPORT_KINDS = ("reset", "timeout", "truncate", "garbage")
TRUNCATE_STYLES = ("length", "chunked")
GARBAGE_STYLES = ("html", "half_json", "binary")


@dataclasses.dataclass(frozen=True)
class TransportFault:
    """A fault the HTTP handler applies to the connection instead of (or to) the real answer."""

    kind: str  # one of TRANSPORT_KINDS
    style: str = ""  # truncate / garbage style, resolved (never "alternate")
    seconds: float = 0.0  # timeout: how long to stay silent


class Faults:
    FIELDS = (
        "rate_limit_every",
        "server_error_every",
        "server_error_status",
        "latency",
        "retry_after",
        "token_error_every",
        "reset_every",
        "timeout_every",
        "timeout_seconds",
        "truncate_every",
        "truncate_style",
        "garbage_every",
        "garbage_style",
        "only_paths",
        "hold",
        "hold_seconds",
    )

    def __init__(self):
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.rate_limit_every = 0
            self.server_error_every = 0
            self.server_error_status = 503
            self.latency = 0.0
            self.retry_after = "0"
            self.token_error_every = 0
            self.reset_every = 0
            self.timeout_every = 0
            self.timeout_seconds = 65.0  # above the tap's default request_timeout (60 s)
            self.truncate_every = 0
            self.truncate_style = "alternate"
            self.garbage_every = 0
            self.garbage_style = "alternate"
            self.only_paths: str | None = None
            self.hold = False
            self.hold_seconds = 45.0
            self._count = 0
            self._token_count = 0
            self._queue: list[int | str] = []
            self._turns: collections.Counter[str] = collections.Counter()
            self.injected = 0
            self.injected_by_kind: collections.Counter[str] = collections.Counter()
            self.arrivals: collections.deque[tuple[float, str, str | None]] = collections.deque(
                maxlen=200_000
            )

    @property
    def hold(self) -> bool:
        """True while API requests wait (``configure(hold=...)`` or ``faults.hold = ...`` alike)."""
        return not self._released.is_set()

    @hold.setter
    def hold(self, value: bool) -> None:
        if value:
            self._released.clear()
        else:
            self._released.set()

    def configure(self, **kw) -> None:
        for k, v in kw.items():
            if k == "fail_next":
                if isinstance(v, dict):
                    self.fail_next(int(v.get("n", 1)), v.get("status", 503))
                else:
                    self.fail_next(int(v))
            elif k == "reset" and v:
                self.reset()
            elif k in self.FIELDS:
                self._check(k, v)
                setattr(self, k, v)
            else:
                raise KeyError(f"unknown fault setting {k!r}")

    @staticmethod
    def _check(key: str, value: t.Any) -> None:
        if key == "truncate_style" and value not in (*TRUNCATE_STYLES, "alternate"):
            raise KeyError(f"truncate_style must be one of {TRUNCATE_STYLES} or 'alternate'")
        if key == "garbage_style" and value not in (*GARBAGE_STYLES, "alternate"):
            raise KeyError(f"garbage_style must be one of {GARBAGE_STYLES} or 'alternate'")
        if key == "only_paths" and value is not None:
            re.compile(value)

    def fail_next(self, n: int = 1, status: int | str = 503) -> None:
        """Fail the next n API requests with an HTTP status or a transport fault kind."""
        kind: int | str = status if status in TRANSPORT_KINDS else int(status)
        with self._lock:
            self._queue.extend([kind] * n)

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS} | {
            "count": self._count,
            "injected": self.injected,
            "injected_by_kind": dict(self.injected_by_kind),
        }

    def _error(self, status: int):
        headers = {}
        if status == 429:
            body = {"response": {"errors": [{"errno": 429, "message": "Rate limit exceeded."}]}}
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
        else:
            body = {
                "response": {"errors": [{"errno": status, "message": "Service temporarily unavailable."}]}
            }
        self._count_injection(str(status))
        return status, headers, body

    def _count_injection(self, kind: str) -> None:
        self.injected += 1
        self.injected_by_kind[kind] += 1

    def _style(self, kind: str, setting: str, styles: tuple[str, ...]) -> str:
        if setting != "alternate":
            return setting
        turn = self._turns[kind]
        self._turns[kind] += 1
        return styles[turn % len(styles)]

    def _transport(self, kind: str) -> TransportFault:
        self._count_injection(kind)
        if kind == "truncate":
            return TransportFault(kind, self._style(kind, self.truncate_style, TRUNCATE_STYLES))
        if kind == "garbage":
            return TransportFault(kind, self._style(kind, self.garbage_style, GARBAGE_STYLES))
        if kind == "timeout":
            return TransportFault(kind, seconds=float(self.timeout_seconds))
        return TransportFault(kind)

    def _pick(self, n: int):
        if self._queue:
            queued = self._queue.pop(0)
            return self._transport(queued) if isinstance(queued, str) else self._error(queued)
        if self.rate_limit_every and n % int(self.rate_limit_every) == 0:
            return self._error(429)
        if self.server_error_every and n % int(self.server_error_every) == 0:
            return self._error(int(self.server_error_status))
        for kind in TRANSPORT_KINDS:
            every = int(getattr(self, f"{kind}_every") or 0)
            if every and n % every == 0:
                return self._transport(kind)
        return None

    def check_api(self, path: str = ""):
        """Return (status, headers, body) or a TransportFault to inject, or None."""
        if self.hold:
            self._released.wait(float(self.hold_seconds))
        if self.latency:
            time.sleep(float(self.latency))
        with self._lock:
            if self.only_paths and not re.search(self.only_paths, path):
                self.arrivals.append((time.monotonic(), path, None))
                return None
            self._count += 1
            picked = self._pick(self._count)
            if isinstance(picked, TransportFault):
                kind = picked.kind
            elif picked is not None:
                kind = str(picked[0])
            else:
                kind = None
            self.arrivals.append((time.monotonic(), path, kind))
        return picked

    def check_token(self):
        with self._lock:
            self._token_count += 1
            if self.token_error_every and self._token_count % int(self.token_error_every) == 0:
                self._count_injection("token_503")
                return (
                    503,
                    {},
                    {
                        "error": "temporarily_unavailable",
                        "error_description": "The server is temporarily unavailable.",
                    },
                )
        return None
