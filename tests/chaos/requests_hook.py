"""Act at an exact API request of a run: the emulator calls a hook before it answers a request.

``HookedFaults`` is the emulator's own ``Faults`` (every fault setting still works) plus a hook
called in the emulator's handler thread when an API request arrives, before it is answered. A
``Trigger`` counts the API requests of one run and, at request number ``at``, runs an action (kill
the tap, kill the loader, kill meltano, expire every access token, change FreshBooks...) while the
client waits for its answer. So "kill at request 37" is a precise, reproducible point of a run.

Each request is labelled by stream, account, pass and page (``invoices zK3pQ7 list p2``,
``clients Rt8vW2 deleted p1``), which is how the suite counts distinct kill points.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
import typing as t
import urllib.parse

from freshbooks_emulator import streams as S
from freshbooks_emulator.faults import Faults, TransportFault
from freshbooks_emulator.reports import REPORT_STREAMS

_CURRENT = threading.local()  # the raw request path (with query) of the handler thread's request

_ACCOUNTING = re.compile(r"^/accounting/account/([^/]+)/([^/]+/[^/]+)(?:/(\d+))?/?$")
_BUSINESS = re.compile(r"^/(?:projects|comments|timetracking)/business/(\d+)/([a-z_]+)(?:/(\d+))?/?$")
_REPORT = re.compile(r"^/accounting/account/([^/]+)/reports/accounting/([^/]+)/?$")
#: report endpoint -> the tap's stream
_REPORT_STREAM = {path: stream for stream, path in REPORT_STREAMS.items()}
_LEDGER = re.compile(r"^/accounting/businesses/([^/]+)/ledger_accounts/accounts/?$")
_BUSINESS_STREAM = {
    "projects": "projects",
    "project": "projects",
    "services": "services",
    "service": "services",
    "time_entries": "time_entries",
}


class HookedFaults(Faults):
    """``Faults`` plus ``hook(path) -> TransportFault | None``, called for every API request."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: t.Callable[[str], TransportFault | None] | None = None

    def check_api(self, path: str = ""):
        hook = self.hook
        if hook is not None:
            answer = hook(path)
            if answer is not None:
                return answer  # e.g. a reset for the request of a process that was just killed
        return super().check_api(path)


def install(emu) -> HookedFaults:
    """Give a (started) emulator hookable faults and remember each request's query string."""
    faults = HookedFaults()
    emu.faults = faults
    handler = emu._server.RequestHandlerClass  # noqa: SLF001  (one class per emulator: make_handler)
    parse = handler.parse_request

    def parse_request(self) -> bool:  # stdlib hook: self.path is set here
        ok = parse(self)
        _CURRENT.path = getattr(self, "path", "")
        return ok

    handler.parse_request = parse_request

    server = emu._server  # noqa: SLF001
    report_error = server.handle_error

    def handle_error(request, client_address) -> None:
        # a killed client's keep-alive connection is reset: expected here, not worth a traceback
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            report_error(request, client_address)

    server.handle_error = handle_error
    return faults


def label(emu, path: str) -> str:
    """``<stream> <account> <pass> p<page>`` for an API request path (query from the handler)."""
    raw = getattr(_CURRENT, "path", "") or path
    parts = urllib.parse.urlsplit(raw)
    query = urllib.parse.parse_qs(parts.query)
    page = (query.get("page") or ["1"])[0]
    kind = "deleted" if query.get("search[vis_state]") == ["1"] else "list"
    route = urllib.parse.unquote(parts.path)
    if route.rstrip("/").endswith("/users/me"):
        return "identity"
    if m := _ACCOUNTING.match(route):
        spec = S.ACCOUNTING_BY_PATH.get(m.group(2))
        name = spec.name if spec else m.group(2)
        return f"{name} {m.group(1)} {'one' if m.group(3) else kind} p{page}"
    if m := _BUSINESS.match(route):
        account = emu.account_by_business(int(m.group(1)))
        name = _BUSINESS_STREAM.get(m.group(2), m.group(2))
        return f"{name} {account['account_id'] if account else m.group(1)} {'one' if m.group(3) else kind} p{page}"
    if m := _REPORT.match(route):
        return f"{_REPORT_STREAM.get(m.group(2), m.group(2))} {m.group(1)} {kind} p{page}"
    if m := _LEDGER.match(route):
        account = emu.account_by_uuid(m.group(1))
        return f"chart_of_accounts {account['account_id'] if account else '?'} list p{page}"
    return route


@dataclasses.dataclass
class Fired:
    """What a trigger did: at which request (number and label) and what the action reported."""

    at: int
    label: str
    note: str = ""


class Trigger:
    """At API request number ``at`` of a run (1-based), or at the first request labelled ``where``,
    run ``action(label)`` once, before that request is answered.

    ``action`` returns a short note and, optionally, a fault to answer that request with.
    """

    def __init__(
        self,
        emu,
        at: int | None,
        action: t.Callable[[str], tuple[str, TransportFault | None]],
        where: str | None = None,
    ) -> None:
        self.emu = emu
        self.at = at
        self.where = where
        self.action = action
        self.count = 0
        self.fired: Fired | None = None
        self.labels: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, path: str) -> TransportFault | None:
        with self._lock:
            self.count += 1
            number = self.count
            here = label(self.emu, path)
            self.labels.append(here)
            if self.fired is not None or (number != self.at and here != self.where):
                return None
            self.fired = Fired(number, here)
        note, answer = self.action(here)
        self.fired.note = note
        return answer


class Recorder:
    """Hook that only labels requests (to learn how many requests a clean run makes, and which)."""

    def __init__(self, emu) -> None:
        self.emu = emu
        self.labels: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, path: str) -> None:
        with self._lock:
            self.labels.append(label(self.emu, path))
