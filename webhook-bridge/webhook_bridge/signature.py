"""FreshBooks webhook deliveries: form parsing and the ``X-FreshBooks-Hmac-SHA256`` check.

This module performs no I/O. Everything that can be wrong with a delivery raises
:class:`SignatureError` (a body that is not a form raises its subclass :class:`FormError`, so the
HTTP layer can answer 400 instead of 401).

The signature, exactly as FreshBooks computes it (freshbooks-api.md §7.4)::

    msg = json.dumps({field: value, ...})   # form fields in body order, Python's default
                                            # separators ", " and ": ", ensure_ascii=True
    sig = base64(HMAC-SHA256(key=verifier.encode("utf-8"), msg=msg.encode("utf-8")))

So the raw body's field order matters, values are strings, and non-ASCII text appears in the message
as ``\\uXXXX`` escapes. It is *not* an HMAC of the raw body and *not* hex.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qsl

__all__ = [
    "SIGNATURE_HEADER",
    "EventDelivery",
    "FormError",
    "SignatureError",
    "VerificationDelivery",
    "classify",
    "compute_signature",
    "message_for",
    "parse_form",
    "verify_signature",
]

SIGNATURE_HEADER = "X-FreshBooks-Hmac-SHA256"
MAX_FIELDS = 32
MAX_SIGNATURE_LENGTH = 128  # base64 of a SHA-256 digest is 44 characters

ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
OBJECT_ID_RE = re.compile(r"^[0-9]{1,20}$")
EVENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,40}(\.[A-Za-z][A-Za-z0-9_]{0,40}){0,3}$")

Fields = Sequence[tuple[str, str]]


class SignatureError(Exception):
    """The delivery is not a correctly signed FreshBooks delivery (answer 401)."""


class FormError(SignatureError):
    """The body is not a form FreshBooks would send (answer 400)."""


def parse_form(body: bytes, *, max_fields: int = MAX_FIELDS) -> list[tuple[str, str]]:
    """Parse an ``application/x-www-form-urlencoded`` body, keeping the fields in body order.

    Strict: UTF-8 only, every field must be ``name=value``, names are unique and non-empty.

    Raises:
        FormError: the body is empty or not such a form.
    """
    if not body:
        raise FormError("empty body")
    try:
        text = body.decode("ascii")  # a url-encoded body is ASCII; %XX escapes carry UTF-8
    except UnicodeDecodeError:
        raise FormError("body is not url-encoded ASCII") from None
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=max_fields,
            separator="&",
        )
    except (ValueError, UnicodeDecodeError):
        raise FormError("body is not a url-encoded form") from None
    seen: set[str] = set()
    for name, _value in pairs:
        if not name:
            raise FormError("form field without a name")
        if name in seen:
            raise FormError("repeated form field")
        seen.add(name)
    if not pairs:
        raise FormError("form has no fields")
    return pairs


def message_for(fields: Fields | Mapping[str, str]) -> bytes:
    """The exact bytes FreshBooks signs: ``json.dumps`` (defaults) of the fields in order."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    return json.dumps({str(k): str(v) for k, v in items}).encode("utf-8")


def compute_signature(fields: Fields | Mapping[str, str], verifier: str) -> str:
    """``base64(HMAC-SHA256(verifier, message_for(fields)))``, the header value FreshBooks sends."""
    digest = hmac.new(verifier.encode("utf-8"), message_for(fields), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(
    fields: Fields | Mapping[str, str], signature: str | None, verifiers: Iterable[str]
) -> None:
    """Check ``signature`` against every known verifier of the account (constant-time compares).

    Both directions are enforced: a missing signature fails, and so does an account without a
    verifier.

    Raises:
        SignatureError: missing/odd header, no verifier, or no verifier produces the signature.
    """
    if signature is None or not signature.strip():
        raise SignatureError("signature header is missing")
    candidate = signature.strip()
    if len(candidate) > MAX_SIGNATURE_LENGTH or not candidate.isascii():
        raise SignatureError("signature header is malformed")
    keys = [v for v in verifiers if v]
    if not keys:
        raise SignatureError("no verifier is known for this account")
    message = message_for(fields)
    given = candidate.encode("ascii")
    matched = False
    for verifier in keys:
        digest = hmac.new(verifier.encode("utf-8"), message, hashlib.sha256).digest()
        expected = base64.b64encode(digest)
        # no early exit: the time taken does not depend on which verifier matched
        matched |= hmac.compare_digest(given, expected)
    if not matched:
        raise SignatureError("signature does not match")


@dataclasses.dataclass(frozen=True)
class VerificationDelivery:
    """FreshBooks' registration handshake: ``verifier`` and the callback id in ``object_id``."""

    callback_id: str
    verifier: str
    account_id: str | None


@dataclasses.dataclass(frozen=True)
class EventDelivery:
    """One change notification (carries no object data: the record must be fetched)."""

    name: str
    object_id: str
    account_id: str
    business_id: str | None
    fields: tuple[tuple[str, str], ...]

    @property
    def resource(self) -> str:
        """``invoice.update`` -> ``invoice``."""
        return self.name.split(".", 1)[0]

    def fingerprint(self) -> str:
        """Identity of a delivery: SHA-256 of all its fields, independent of their order.

        FreshBooks deliveries carry no event id or timestamp, so two deliveries with the same fields
        are the same notification for our purposes (a retry, or a second change of the same object
        that the same fetch of the current record answers).
        """
        canonical = json.dumps(sorted(self.fields), separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def classify(fields: Fields) -> VerificationDelivery | EventDelivery:
    """Tell a verification delivery from an event and check the identifying fields' shapes.

    Raises:
        SignatureError: fields needed to authenticate the delivery are missing or malformed.
    """
    data = dict(fields)
    account_id = data.get("account_id")
    if account_id is not None and not ACCOUNT_ID_RE.fullmatch(account_id):
        raise SignatureError("account_id is malformed")
    object_id = data.get("object_id")
    if "verifier" in data:
        verifier = data["verifier"]
        if not verifier or len(verifier) > 256 or not verifier.isprintable():
            raise SignatureError("verifier is malformed")
        if object_id is None or not OBJECT_ID_RE.fullmatch(object_id):
            raise SignatureError("verification without a callback id")
        return VerificationDelivery(callback_id=object_id, verifier=verifier, account_id=account_id)
    name = data.get("name")
    if account_id is None or name is None or object_id is None:
        raise SignatureError("event without account_id, name or object_id")
    if not EVENT_NAME_RE.fullmatch(name):
        raise SignatureError("event name is malformed")
    if not OBJECT_ID_RE.fullmatch(object_id):
        raise SignatureError("object_id is malformed")
    business_id = data.get("business_id") or None
    return EventDelivery(
        name=name,
        object_id=object_id,
        account_id=account_id,
        business_id=business_id,
        fields=tuple(fields),
    )
