"""Oversized or malformed webhook bodies are refused before any work is done.

A real uvicorn server runs the bridge app in this process, so the test can count the work the bridge
did: form parses, HMAC computations (the signature module's ``hmac``), verifier and event writes, and
the bytes of the SQLite database. Every bad delivery gets a 4xx with all of those untouched; an
oversized one is answered at once, without waiting for (or reading) the body.
"""

from __future__ import annotations

import hashlib
import hmac as real_hmac
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "webhook-bridge", ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import uvicorn  # noqa: E402

from bridge.helpers import VERIFIER, FakeFreshBooks, event_fields, make_settings, open_store, seed_verifier  # noqa: E402
from freshbooks_emulator.webhooks import sign_webhook  # noqa: E402
from webhook_bridge import app as app_module  # noqa: E402
from webhook_bridge import signature as signature_module  # noqa: E402
from webhook_bridge.app import create_app  # noqa: E402
from webhook_bridge.service import Bridge  # noqa: E402

FORM = "application/x-www-form-urlencoded"
LIMIT = 8192  # the bridge's default max_body_bytes


class Work:
    """Counts everything the bridge does with a delivery after receiving its bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parses = 0
        self.hmacs = 0
        self.enqueues = 0
        self.verifications = 0
        work = self

        real_parse = app_module.parse_form

        def counting_parse(body, *args, **kwargs):
            work.parses += 1
            return real_parse(body, *args, **kwargs)

        class CountingHmac:
            compare_digest = staticmethod(real_hmac.compare_digest)

            @staticmethod
            def new(*args, **kwargs):
                work.hmacs += 1
                return real_hmac.new(*args, **kwargs)

        real_enqueue, real_accept = Bridge.enqueue, Bridge.accept_verification

        async def counting_enqueue(self, *args, **kwargs):
            work.enqueues += 1
            return await real_enqueue(self, *args, **kwargs)

        async def counting_accept(self, *args, **kwargs):
            work.verifications += 1
            return await real_accept(self, *args, **kwargs)

        monkeypatch.setattr(app_module, "parse_form", counting_parse)
        monkeypatch.setattr(signature_module, "hmac", CountingHmac)
        monkeypatch.setattr(Bridge, "enqueue", counting_enqueue)
        monkeypatch.setattr(Bridge, "accept_verification", counting_accept)

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.parses, self.hmacs, self.enqueues, self.verifications


class LiveBridge:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = make_settings(tmp_path)
        seed_verifier(self.settings)  # account ABC123 can sign events with VERIFIER
        app = create_app(self.settings, client_factory=FakeFreshBooks, run_runner=False)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveBridge:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "bridge did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def database_digest(self) -> str:
        """The bytes of the queue database and its WAL: any write changes them."""
        digest = hashlib.sha256()
        db = self.settings.db_path
        for path in (db, db.with_name(db.name + "-wal")):
            digest.update(path.read_bytes() if path.exists() else b"-")
        return digest.hexdigest()

    def rows(self) -> tuple[int, int]:
        store = open_store(self.settings)
        try:
            return len(store.events()), len(store.verifiers())
        finally:
            store.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


def read_status(sock: socket.socket, timeout: float = 5.0) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def request_head(content_type: str | None, extra: str = "", signature: str | None = None) -> bytes:
    lines = ["POST /webhooks/freshbooks HTTP/1.1", "Host: 127.0.0.1"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if signature is not None:
        lines.append(f"X-FreshBooks-Hmac-SHA256: {signature}")
    head = "\r\n".join(lines) + "\r\n" + extra
    return (head + "\r\n").encode("latin-1")


def post(
    bridge: LiveBridge, body: bytes, content_type: str | None = FORM, signature: str | None = None
) -> int:
    with bridge.connect() as sock:
        sock.sendall(request_head(content_type, f"Content-Length: {len(body)}\r\n", signature) + body)
        return read_status(sock)


def signed(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    """Signed as FreshBooks signs, by the emulator's code (so the bridge's counted HMAC stays at 0)."""
    return urlencode(fields).encode(), sign_webhook(fields, VERIFIER)


@pytest.fixture(scope="module")
def live_bridge(tmp_path_factory):
    """One server for the module (starting one per test would cost ~0.3 s each)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        live = LiveBridge(tmp_path_factory.mktemp("bridge")).start()
        live.work = Work(monkeypatch)  # type: ignore[attr-defined]
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture
def bridge(live_bridge):
    """The module's server with its work counters at zero and its rows as they are now."""
    live_bridge.work.parses = live_bridge.work.hmacs = 0
    live_bridge.work.enqueues = live_bridge.work.verifications = 0
    live_bridge.rows_before = live_bridge.rows()
    return live_bridge


def assert_untouched(bridge: LiveBridge, before: str, *, parsed: bool) -> None:
    parses, hmacs, enqueues, verifications = bridge.work.snapshot()  # type: ignore[attr-defined]
    assert hmacs == 0 and enqueues == 0 and verifications == 0
    if not parsed:
        assert parses == 0
    assert bridge.database_digest() == before
    assert bridge.rows() == bridge.rows_before  # type: ignore[attr-defined]


def test_control_a_valid_signed_event_does_the_work(bridge):
    """The counters and the digest do see work when there is some (else the other tests prove nothing)."""
    before = bridge.database_digest()
    body, sig = signed(event_fields(42))
    assert post(bridge, body, signature=sig) == 200
    parses, hmacs, enqueues, _ = bridge.work.snapshot()
    assert (parses, enqueues) == (1, 1) and hmacs >= 1
    assert bridge.database_digest() != before


def test_declared_oversized_body_is_refused_at_once_without_reading_it(bridge):
    before = bridge.database_digest()
    with bridge.connect() as sock:
        started = time.monotonic()
        sock.sendall(request_head(FORM, "Content-Length: 50000000\r\n", signature="x" * 44))  # no body sent
        status = read_status(sock, timeout=3)
        elapsed = time.monotonic() - started
    assert status == 413
    assert elapsed < 1.0  # answered without waiting for 50 MB that never comes
    assert_untouched(bridge, before, parsed=False)


def test_chunked_body_growing_past_the_limit_is_refused_before_it_ends(bridge):
    before = bridge.database_digest()
    with bridge.connect() as sock:
        sock.sendall(request_head(FORM, "Transfer-Encoding: chunked\r\n", signature="x" * 44))
        chunk = b"a" * 1000
        for _ in range(LIMIT // len(chunk) + 2):  # past the limit, and never the terminating 0-chunk
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        started = time.monotonic()
        status = read_status(sock, timeout=3)
        elapsed = time.monotonic() - started
    assert status == 413
    assert elapsed < 1.0
    assert_untouched(bridge, before, parsed=False)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        None,
        "application/x-www-form-urlencodedX",
    ],
)
def test_wrong_content_type_is_refused_before_the_body_is_read(bridge, content_type):
    before = bridge.database_digest()
    body, sig = signed(event_fields(42))  # a correctly signed body: only the type is wrong
    assert post(bridge, body, content_type=content_type, signature=sig) == 400
    with bridge.connect() as sock:  # the body is announced but never sent: no need to wait for it
        started = time.monotonic()
        sock.sendall(request_head(content_type, f"Content-Length: {len(body)}\r\n", sig))
        assert read_status(sock, timeout=3) == 400
        assert time.monotonic() - started < 1.0
    assert_untouched(bridge, before, parsed=False)


MALFORMED = {
    "not ascii": "name=invoice.update&object_id=1&account_id=ABC123&x=\u00e9".encode(),
    "bad utf-8 escape": b"name=invoice.update&object_id=1&account_id=ABC123&x=%FF%FE",
    "field without =": b"name=invoice.update&object_id=1&account_id",
    "empty body": b"",
    "binary": bytes(range(256)),
    "duplicate name": b"name=invoice.update&name=invoice.delete&object_id=1&account_id=ABC123",
    "duplicate account_id": b"name=invoice.update&object_id=1&account_id=ABC123&account_id=OTHER9",
    "empty field name": b"=x&name=invoice.update&object_id=1&account_id=ABC123",
    "too many fields": "&".join(f"f{i}=1" for i in range(40)).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_undecodable_or_duplicate_fields_are_refused_before_any_signature(bridge, case):
    before = bridge.database_digest()
    assert post(bridge, MALFORMED[case], signature=sign_webhook([("a", "b")], VERIFIER)) == 400
    assert_untouched(bridge, before, parsed=True)


MISSING = {
    "no account_id": [("name", "invoice.update"), ("object_id", "1")],
    "no name": [("object_id", "1"), ("account_id", "ABC123")],
    "no object_id": [("name", "invoice.update"), ("account_id", "ABC123")],
    "verifier without callback id": [("verifier", "V" * 33), ("account_id", "ABC123")],
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_required_fields_are_refused_before_any_signature(bridge, case):
    before = bridge.database_digest()
    body, sig = signed(MISSING[case])
    status = post(bridge, body, signature=sig)
    assert 400 <= status < 500
    assert_untouched(bridge, before, parsed=True)


def _with(fields: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    out = [(k, changes.pop(k, v)) for k, v in fields]
    return out + list(changes.items())


ABSURD = {
    "business_id of 5000 chars": _with(event_fields(42), business_id="9" * 5000),
    "user_id of 3000 chars": _with(event_fields(42), user_id="1" * 3000),
    "extra field of 6000 chars": _with(event_fields(42), note="n" * 6000),
    "field name of 500 chars": _with(event_fields(42), **{"x" * 500: "1"}),
    "verifier of 2000 chars": [
        ("name", "callback.verify"),
        ("object_id", "2001"),
        ("verifier", "V" * 2000),
        ("account_id", "ABC123"),
    ],
}


@pytest.mark.parametrize("case", sorted(ABSURD))
def test_absurd_field_lengths_are_refused_even_when_correctly_signed(bridge, case):
    before = bridge.database_digest()
    body, sig = signed(ABSURD[case])  # signed with the real verifier: only the size is wrong
    assert len(body) <= LIMIT
    assert 400 <= post(bridge, body, signature=sig) < 500
    assert_untouched(bridge, before, parsed=True)


def test_absurd_signature_header_is_refused_without_computing_one(bridge):
    before = bridge.database_digest()
    body, _ = signed(event_fields(42))
    assert post(bridge, body, signature="A" * 5000) == 401
    assert_untouched(bridge, before, parsed=True)
