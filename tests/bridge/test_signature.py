"""webhook_bridge.signature: FreshBooks' HMAC exactly as freshbooks-api.md §7.4 computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook_bridge.signature import (
    EventDelivery,
    FormError,
    SignatureError,
    VerificationDelivery,
    classify,
    compute_signature,
    message_for,
    parse_form,
    verify_signature,
)


class TestWorkedExample:
    """The worked example of freshbooks-api.md §7.4."""

    body = (
        b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
    )
    verifier = "scADVVi5QuKuj5qTjVkbJNYQe7V7USpGd"
    message = (
        '{"name": "invoice.create", "object_id": "1234567", "account_id": "6BApk", '
        '"business_id": "6543", "identity_id": "1234", "user_id": "1"}'
    )
    signature = "/S03vyYmI7CekM4YXBHUhs9o5rnMtqGLrW3aA8S9gPc="

    def test_message_is_json_dumps_with_python_defaults(self):
        assert message_for(parse_form(self.body)) == self.message.encode()

    def test_signature(self):
        assert compute_signature(parse_form(self.body), self.verifier) == self.signature

    def test_matches_freshbooks_reference_code(self):
        # FreshBooks' generation code, as quoted in the PHP SDK docs
        msg = dict((k, str(v)) for k, v in parse_form(self.body))
        dig = hmac.new(
            self.verifier.encode("utf-8"), msg=json.dumps(msg).encode("utf-8"), digestmod=hashlib.sha256
        ).digest()
        assert base64.b64encode(dig).decode() == self.signature

    def test_verify_accepts(self):
        verify_signature(parse_form(self.body), self.signature, [self.verifier])

    def test_verify_accepts_any_of_several_verifiers(self):
        verify_signature(parse_form(self.body), self.signature, ["other", self.verifier, "x"])

    def test_surrounding_whitespace_in_header_is_ignored(self):
        verify_signature(parse_form(self.body), f" {self.signature} ", [self.verifier])

    def test_tampered_value(self):
        with pytest.raises(SignatureError):
            verify_signature(
                parse_form(self.body.replace(b"1234567", b"1234568")), self.signature, [self.verifier]
            )

    def test_wrong_key(self):
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), self.signature, ["not-the-verifier"])

    def test_missing_header(self):
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), None, [self.verifier])

    def test_empty_header(self):
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), "  ", [self.verifier])

    def test_no_verifier_known(self):
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), self.signature, [])

    def test_hex_digest_is_not_accepted(self):
        hexsig = hmac.new(self.verifier.encode(), self.message.encode(), hashlib.sha256).hexdigest()
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), hexsig, [self.verifier])

    def test_hmac_of_raw_body_is_not_accepted(self):
        raw = base64.b64encode(hmac.new(self.verifier.encode(), self.body, hashlib.sha256).digest())
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), raw.decode(), [self.verifier])

    def test_non_ascii_header(self):
        with pytest.raises(SignatureError):
            verify_signature(parse_form(self.body), "é" + self.signature, [self.verifier])


class TestBodyOrder:
    """The message follows the raw body's field order."""

    verifier = TestWorkedExample.verifier

    def test_reordered_body_has_another_signature(self):
        a = parse_form(b"name=invoice.create&object_id=1&account_id=AB")
        b = parse_form(b"object_id=1&name=invoice.create&account_id=AB")
        assert dict(a) == dict(b)
        assert compute_signature(a, self.verifier) != compute_signature(b, self.verifier)

    def test_signature_of_one_order_fails_for_another(self):
        a = parse_form(b"name=invoice.create&object_id=1&account_id=AB")
        b = parse_form(b"account_id=AB&object_id=1&name=invoice.create")
        with pytest.raises(SignatureError):
            verify_signature(b, compute_signature(a, self.verifier), [self.verifier])

    def test_parse_keeps_body_order(self):
        assert [k for k, _ in parse_form(b"z=1&a=2&m=3")] == ["z", "a", "m"]


class TestNonAscii:
    """Non-ASCII values are \\uXXXX-escaped in the message (json.dumps ensure_ascii=True)."""

    verifier = "sécret-ключ"

    def test_message_escapes_non_ascii(self):
        fields = parse_form(b"name=client.update&object_id=7&account_id=AB&note=Caf%C3%A9+%E2%98%95")
        assert dict(fields)["note"] == "Café ☕"
        assert message_for(fields).endswith(b'"note": "Caf\\u00e9 \\u2615"}')
        assert message_for(fields).isascii()

    def test_signature_over_escaped_message_and_utf8_key(self):
        fields = parse_form(b"name=client.update&object_id=7&account_id=AB&note=Caf%C3%A9")
        expected = base64.b64encode(
            hmac.new(
                self.verifier.encode("utf-8"),
                b'{"name": "client.update", "object_id": "7", "account_id": "AB", "note": "Caf\\u00e9"}',
                hashlib.sha256,
            ).digest()
        ).decode()
        assert compute_signature(fields, self.verifier) == expected
        verify_signature(fields, expected, [self.verifier])

    def test_plus_is_space(self):
        assert parse_form(b"a=x+y")[0] == ("a", "x y")


class TestParseForm:
    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"novalue",
            b"a=1&&b=2",
            b"=1",
            b"a=1&a=2",
            b"a=%ff",
            b"a=%C3",
            "a=é".encode(),
            b"\x00\x01\x02",
            b'{"name": "invoice.create"}',
            b"&".join(b"f%d=1" % i for i in range(40)),
        ],
        ids=[
            "empty",
            "no-equals",
            "empty-pair",
            "no-name",
            "repeated",
            "bad-utf8",
            "truncated-utf8",
            "raw-non-ascii",
            "binary",
            "json",
            "too-many-fields",
        ],
    )
    def test_malformed(self, body):
        with pytest.raises(FormError):
            parse_form(body)

    def test_form_error_is_a_signature_error(self):
        assert issubclass(FormError, SignatureError)

    def test_blank_values_kept(self):
        assert parse_form(b"a=&b=2") == [("a", ""), ("b", "2")]


class TestClassify:
    def test_event(self):
        delivery = classify(parse_form(TestWorkedExample.body))
        assert isinstance(delivery, EventDelivery)
        assert (delivery.name, delivery.object_id, delivery.account_id, delivery.business_id) == (
            "invoice.create",
            "1234567",
            "6BApk",
            "6543",
        )
        assert delivery.resource == "invoice"

    def test_verification(self):
        delivery = classify(
            parse_form(b"name=callback.verify&object_id=2001&verifier=abcDEF123&account_id=AB")
        )
        assert delivery == VerificationDelivery(callback_id="2001", verifier="abcDEF123", account_id="AB")

    def test_verification_without_account(self):
        delivery = classify(parse_form(b"verifier=abc&object_id=2001"))
        assert isinstance(delivery, VerificationDelivery) and delivery.account_id is None

    @pytest.mark.parametrize(
        "body",
        [
            b"name=invoice.create&object_id=1",
            b"name=invoice.create&account_id=AB",
            b"object_id=1&account_id=AB",
            b"name=invoice.create&object_id=12x&account_id=AB",
            b"name=invoice.create&object_id=1&account_id=A-B",
            b"name=invoice.create&object_id=1&account_id=AB%0A",
            b"name=%3Cscript%3E&object_id=1&account_id=AB",
            b"verifier=abc&object_id=x",
            b"verifier=&object_id=1",
        ],
    )
    def test_malformed_identifying_fields(self, body):
        with pytest.raises(SignatureError):
            classify(parse_form(body))

    def test_fingerprint_ignores_order_but_not_values(self):
        a = classify(parse_form(b"name=invoice.update&object_id=1&account_id=AB&user_id=1"))
        b = classify(parse_form(b"user_id=1&account_id=AB&object_id=1&name=invoice.update"))
        c = classify(parse_form(b"name=invoice.update&object_id=1&account_id=AB&user_id=2"))
        assert a.fingerprint() == b.fingerprint() != c.fingerprint()


@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=30)),
        min_size=1,
        max_size=8,
        unique_by=lambda kv: kv[0],
    ),
    st.text(min_size=1, max_size=40),
)
def test_roundtrip_property(fields, verifier):
    """Any form we can encode parses back in order, and its own signature verifies."""
    body = urlencode(fields).encode("ascii")
    parsed = parse_form(body)
    assert parsed == fields
    verify_signature(parsed, compute_signature(parsed, verifier), [verifier])
    with pytest.raises(SignatureError):
        verify_signature(parsed, compute_signature(parsed, verifier + "x"), [verifier])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(body):
    try:
        fields = parse_form(body)
    except FormError:
        return
    try:
        classify(fields)
    except SignatureError:
        pass
