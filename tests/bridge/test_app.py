"""webhook_bridge.app through Starlette's TestClient: routing, status codes, nothing stored on refusal."""

from __future__ import annotations

import json
import logging
import time

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from bridge.helpers import (
    ACCOUNT,
    VERIFIER,
    FakeFreshBooks,
    encode,
    event_fields,
    make_settings,
    open_store,
    seed_verifier,
    signed,
    wait_for,
)
from webhook_bridge.app import create_app
from webhook_bridge.logs import JsonFormatter
from webhook_bridge.signature import compute_signature

URL = "/webhooks/freshbooks"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app_settings(tmp_path):
    s = make_settings(tmp_path)
    seed_verifier(s)
    return s


@pytest.fixture
def client(app_settings, fake_fb):
    with TestClient(create_app(app_settings, client_factory=lambda: fake_fb, run_runner=False)) as c:
        yield c


def rows(settings, status=None):
    store = open_store(settings)
    try:
        return store.events(status)
    finally:
        store.close()


class TestEvents:
    def test_valid_event_is_stored_before_the_200(self, client, app_settings):
        body, headers = signed(event_fields(42))
        response = client.post(URL, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "queued"
        # a separate connection sees the committed row the moment the 200 arrived
        [row] = rows(app_settings)
        assert (row.account_id, row.name, row.object_id, row.stream, row.status) == (
            ACCOUNT,
            "invoice.update",
            "42",
            "invoices",
            "pending",
        )

    def test_redeliveries_are_absorbed(self, client, app_settings):
        body, headers = signed(event_fields(42))
        statuses = [client.post(URL, content=body, headers=headers).json()["message"] for _ in range(3)]
        assert statuses == ["queued", "duplicate", "duplicate"]
        [row] = rows(app_settings)
        assert row.deliveries == 3

    def test_unmapped_event_is_acknowledged_and_ignored(self, client, app_settings):
        body, headers = signed(event_fields(5, "notification.create"))
        response = client.post(URL, content=body, headers=headers)
        assert response.status_code == 200 and response.json()["message"] == "ignored"
        assert rows(app_settings, "pending") == []

    def test_non_ascii_values_signed_like_freshbooks(self, client, app_settings):
        """FreshBooks signs json.dumps(..., ensure_ascii=True): \\uXXXX escapes, UTF-8 in the form."""
        fields = event_fields(42, note="Café ☕ Zürich")
        body, headers = signed(fields)
        assert b"Caf%C3%A9" in body
        assert client.post(URL, content=body, headers=headers).status_code == 200
        assert rows(app_settings)[0].object_id == "42"

    def test_charset_parameter_is_fine(self, client):
        body, headers = signed(event_fields(42))
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        assert client.post(URL, content=body, headers=headers).status_code == 200


class TestRefusals:
    def refuse(self, client, settings, body, headers, status):
        response = client.post(URL, content=body, headers=headers)
        assert response.status_code == status, response.text
        assert rows(settings) == []

    def test_unsigned(self, client, app_settings):
        self.refuse(client, app_settings, encode(event_fields()), FORM, 401)

    def test_tampered(self, client, app_settings):
        fields = event_fields(42)
        _, headers = signed(fields)
        self.refuse(client, app_settings, encode(event_fields(43)), headers, 401)

    def test_reordered_fields(self, client, app_settings):
        fields = event_fields(42)
        _, headers = signed(fields)
        self.refuse(client, app_settings, encode(list(reversed(fields))), headers, 401)

    def test_wrong_key(self, client, app_settings):
        body, headers = signed(event_fields(42), verifier="not-the-verifier")
        self.refuse(client, app_settings, body, headers, 401)

    def test_unknown_account(self, client, app_settings):
        body, headers = signed(event_fields(42, account_id="NOBODY1"))
        self.refuse(client, app_settings, body, headers, 401)

    def test_key_of_another_account(self, client, app_settings):
        seed_verifier(app_settings, account="OTHER1", callback_id="9", verifier="other-key")
        body, headers = signed(event_fields(42), verifier="other-key")
        self.refuse(client, app_settings, body, headers, 401)

    def test_not_a_form(self, client, app_settings):
        _body, headers = signed(event_fields(42))
        headers["Content-Type"] = "application/json"
        self.refuse(client, app_settings, json.dumps(dict(event_fields(42))).encode(), headers, 400)

    def test_missing_content_type(self, client, app_settings):
        body, headers = signed(event_fields(42))
        del headers["Content-Type"]
        self.refuse(client, app_settings, body, headers, 400)

    def test_malformed_form(self, client, app_settings):
        self.refuse(client, app_settings, b"name=invoice.update&name=x", FORM, 400)

    def test_too_large(self, client, app_settings):
        body = encode(event_fields(42, note="x" * 10_000))
        self.refuse(client, app_settings, body, {**FORM, "X-FreshBooks-Hmac-SHA256": "x"}, 413)

    def test_too_large_without_content_length(self, client, app_settings):
        def chunks():
            for _ in range(20):
                yield b"a" * 1000

        response = client.post(URL, content=chunks(), headers=FORM)
        assert response.status_code == 413
        assert rows(app_settings) == []

    def test_not_allowed_account(self, tmp_path, fake_fb):
        s = make_settings(tmp_path, account_ids="ONLYME1")
        seed_verifier(s)
        with TestClient(create_app(s, client_factory=lambda: fake_fb, run_runner=False)) as c:
            body, headers = signed(event_fields(42))
            assert c.post(URL, content=body, headers=headers).status_code == 401
        assert rows(s) == []

    def test_get_is_not_allowed(self, client):
        assert client.get(URL).status_code == 405


class TestVerification:
    def test_stored_encrypted_then_confirmed_off_the_request_path(self, client, app_settings, fake_fb):
        fake_fb.release.clear()  # FreshBooks' verify call hangs ...
        started = time.monotonic()
        response = client.post(
            URL,
            content=b"name=callback.verify&object_id=2002&verifier=NEWsecret123"
            b"&account_id=" + ACCOUNT.encode(),
            headers=FORM,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and elapsed < 2.0  # ... but the 200 does not wait for it
        assert fake_fb.called.wait(5)
        raw = (
            app_settings.db_path.read_bytes()
            + app_settings.db_path.with_name(app_settings.db_path.name + "-wal").read_bytes()
        )
        assert b"NEWsecret123" not in raw
        # not verified yet: the new verifier authenticates nothing
        body, headers = signed(event_fields(7), verifier="NEWsecret123")
        assert client.post(URL, content=body, headers=headers).status_code == 401
        fake_fb.release.set()
        wait_for(lambda: fake_fb.verify_calls, message="verify PUT")
        assert fake_fb.verify_calls == [(ACCOUNT, "2002", "NEWsecret123")]
        wait_for(
            lambda: client.post(URL, content=body, headers=headers).status_code == 200,
            message="event signed with the new verifier accepted",
        )

    def test_rejected_verifier_never_authenticates(self, app_settings):
        fb = FakeFreshBooks(fail_status=422)
        with TestClient(create_app(app_settings, client_factory=lambda: fb, run_runner=False)) as c:
            c.post(
                URL, content=b"verifier=forged&object_id=2003&account_id=" + ACCOUNT.encode(), headers=FORM
            )
            wait_for(lambda: fb.verify_calls, message="verify PUT")
            time.sleep(0.2)
            body, headers = signed(event_fields(7), verifier="forged")
            assert c.post(URL, content=body, headers=headers).status_code == 401
        store = open_store(app_settings)
        assert [v.status for v in store.verifiers() if v.callback_id == "2003"] == ["rejected"]
        store.close()

    def test_verification_for_a_registered_callback_without_account_id(self, client, app_settings, fake_fb):
        store = open_store(app_settings)
        store.remember_callback(ACCOUNT, "2004", "invoice.create", "http://x/webhooks/freshbooks")
        store.close()
        assert client.post(URL, content=b"verifier=abc&object_id=2004", headers=FORM).status_code == 200
        wait_for(lambda: fake_fb.verify_calls, message="verify PUT")
        assert fake_fb.verify_calls == [(ACCOUNT, "2004", "abc")]

    def test_verification_for_an_unknown_callback_without_account_id(self, client):
        assert client.post(URL, content=b"verifier=abc&object_id=9999", headers=FORM).status_code == 400

    def test_verification_for_an_account_nobody_registered(self, client, fake_fb, app_settings):
        """Unauthenticated verifications for arbitrary accounts store nothing and call nobody."""
        r = client.post(URL, content=b"verifier=abc&object_id=1&account_id=STRANGER1", headers=FORM)
        assert r.status_code == 401
        time.sleep(0.2)
        assert fake_fb.verify_calls == []
        store = open_store(app_settings)
        assert [v.account_id for v in store.verifiers()] == [ACCOUNT]
        store.remember_account("STRANGER1")  # what `register` does first
        store.close()
        r = client.post(URL, content=b"verifier=abc&object_id=1&account_id=STRANGER1", headers=FORM)
        assert r.status_code == 200

    def test_verification_for_a_not_allowed_account(self, tmp_path, fake_fb):
        s = make_settings(tmp_path, account_ids="ONLYME1")
        with TestClient(create_app(s, client_factory=lambda: fake_fb, run_runner=False)) as c:
            r = c.post(URL, content=b"verifier=abc&object_id=1&account_id=" + ACCOUNT.encode(), headers=FORM)
            assert r.status_code == 401


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_logs_carry_event_fields_but_never_secrets(client, caplog):
    caplog.set_level(logging.DEBUG)
    fields = event_fields(42)
    body, headers = signed(fields)
    client.post(URL, content=body, headers=headers)
    client.post(
        URL, content=b"verifier=TopSecretVerifier&object_id=2002&account_id=" + ACCOUNT.encode(), headers=FORM
    )
    client.post(
        URL,
        content=body,
        headers={**headers, "X-FreshBooks-Hmac-SHA256": "AAAA" + headers["X-FreshBooks-Hmac-SHA256"][4:]},
    )
    time.sleep(0.3)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    text = "\n".join(lines)
    assert VERIFIER not in text and "TopSecretVerifier" not in text
    assert headers["X-FreshBooks-Hmac-SHA256"] not in text
    queued = [json.loads(line) for line in lines if '"event queued"' in line]
    assert queued and queued[0]["event_name"] == "invoice.update"
    assert queued[0]["account_id"] == ACCOUNT and queued[0]["object_id"] == "42"
    assert queued[0]["received_at"].endswith("Z")


# ------------------------------------------------------------------------------------------------
# property-based fuzz: a bad delivery is never 2xx, never 5xx, and never leaves a row behind

CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data",
        "",
        "application/x-www-form-urlencoded; charset=utf-8",
        "APPLICATION/X-WWW-FORM-URLENCODED",
    ]
)
HEADER_VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
    st.just(compute_signature(event_fields(), VERIFIER)),  # a valid signature of ANOTHER body
    st.binary(min_size=32, max_size=32).map(lambda b: __import__("base64").b64encode(b).decode()),
)
FIELD_NAMES = st.sampled_from(
    ["name", "object_id", "account_id", "business_id", "user_id", "verifier_x", "identity_id", "x"]
)
FIELD_VALUES = st.one_of(
    st.sampled_from(["invoice.update", "1234567", ACCOUNT, "6543", "1", "", "NOBODY1", "invoice.create"]),
    st.text(max_size=20),
)


def _post(client, body, content_type, signature):
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if signature is not None:
        headers["X-FreshBooks-Hmac-SHA256"] = signature.encode("latin-1")
    return client.post(URL, content=body, headers=headers)


def test_fuzz_bad_deliveries(tmp_path):
    s = make_settings(tmp_path)
    seed_verifier(s)
    fb = FakeFreshBooks()
    valid = event_fields(1234567, "invoice.update")

    with TestClient(create_app(s, client_factory=lambda: fb, run_runner=False)) as client:

        @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.binary(max_size=400), CONTENT_TYPES, HEADER_VALUES)
        def random_bytes(body, content_type, signature):
            assume(b"verifier" not in body)
            response = _post(client, body, content_type, signature)
            assert 400 <= response.status_code < 500, (body, response.status_code)

        @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.tuples(FIELD_NAMES, FIELD_VALUES), max_size=8), CONTENT_TYPES, HEADER_VALUES)
        def random_forms(fields, content_type, signature):
            assume(fields != event_fields())  # the one form the "valid signature" belongs to
            response = _post(client, encode(fields), content_type, signature)
            assert 400 <= response.status_code < 500, (fields, response.status_code)

        @hsettings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def mutated_signed_event(data):
            """Change, drop, add or reorder fields of a valid delivery; keep its signature."""
            fields = list(valid)
            op = data.draw(st.sampled_from(["change", "drop", "add", "swap"]))
            if op == "change":
                i = data.draw(st.integers(0, len(fields) - 1))
                fields[i] = (fields[i][0], data.draw(st.text(max_size=12)))
            elif op == "drop":
                fields.pop(data.draw(st.integers(0, len(fields) - 1)))
            elif op == "add":
                fields.append(
                    (data.draw(st.sampled_from(["extra", "z", "note"])), data.draw(st.text(max_size=8)))
                )
            else:
                i, j = data.draw(st.integers(0, len(fields) - 1)), data.draw(st.integers(0, len(fields) - 1))
                fields[i], fields[j] = fields[j], fields[i]
            assume(fields != valid)
            signature = data.draw(
                st.one_of(
                    st.just(compute_signature(valid, VERIFIER)),
                    st.just(compute_signature(fields, "wrong-key")),
                    st.just(compute_signature(fields, VERIFIER).lower()),
                )
            )
            response = _post(client, encode(fields), "application/x-www-form-urlencoded", signature)
            assert 400 <= response.status_code < 500, (fields, response.status_code)

        random_bytes()
        random_forms()
        mutated_signed_event()

    assert rows(s) == []
    # verifications from the fuzz (field name verifier_x is not `verifier`) never happened either
    assert fb.verify_calls == []
