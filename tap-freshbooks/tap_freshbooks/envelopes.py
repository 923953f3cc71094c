"""The FreshBooks response envelopes and the paginator that reads them.

FreshBooks has three list envelopes (freshbooks-api.md §3.1):

* accounting: ``{"response": {"result": {"<key>": [...], "page", "pages", "per_page", "total"}}}``
* project-like: ``{"meta": {"page", "pages", "per_page", "total", ...}, "<key>": [...]}``
* ledger: ``{"data": [...]}`` with no paging at all

Paging rules: ``per_page`` is silently capped at 100, an empty collection reports ``pages: 0``, a page
past the end is empty. We stop when ``page >= pages`` or a page is empty (the SDK already stops on an
empty page).
"""

from __future__ import annotations

import decimal
import typing as t

import msgspec
from singer_sdk.pagination import BaseAPIPaginator

if t.TYPE_CHECKING:
    import requests

PER_PAGE = 100


#: msgspec decodes a UTF-8 JSON body several times faster than the standard library, to the same
#: Python objects: str, int (any size), bool, None, list, dict, and every number with a fraction or
#: exponent a ``decimal.Decimal`` of its exact text (float_hook receives the literal).
_DECODER = msgspec.json.Decoder(float_hook=decimal.Decimal)


class _FloatConstants:
    """Set once a body carried NaN/Infinity (not JSON, but Python's decoder accepts them)."""

    seen = False

    @classmethod
    def parse(cls, literal: str) -> float:
        cls.seen = True
        return float(literal)


def float_constants_seen() -> bool:
    """True once any body of this process held a NaN/Infinity literal (decoded as a float)."""
    return _FloatConstants.seen


def parse_json(response: requests.Response) -> t.Any:
    """Decode JSON keeping every number exact (decoded once per response, then reused).

    msgspec takes strict UTF-8 JSON; anything else (another charset, NaN literals) goes through
    requests' own decoding with the same number rules, as before.
    """
    body = getattr(response, "_fb_body", None)
    if body is None:
        try:
            body = _DECODER.decode(response.content)
        except msgspec.DecodeError:
            body = response.json(parse_float=decimal.Decimal, parse_constant=_FloatConstants.parse)
        response._fb_body = body  # type: ignore[attr-defined]  # noqa: SLF001  (paginator and parser share one decode)
    return body


class Envelope:
    """How one family wraps lists and single records."""

    name = "base"

    def items(self, body: t.Any, key: str) -> list[dict[str, t.Any]]:
        raise NotImplementedError

    def single(self, body: t.Any, key: str) -> dict[str, t.Any] | None:
        raise NotImplementedError

    def page_info(self, body: t.Any) -> tuple[int, int] | None:
        """Return (page, pages), or None when the envelope has no paging."""
        raise NotImplementedError


class AccountingEnvelope(Envelope):
    name = "accounting"

    def items(self, body: t.Any, key: str) -> list[dict[str, t.Any]]:
        return list(body["response"]["result"].get(key) or [])

    def single(self, body: t.Any, key: str) -> dict[str, t.Any] | None:
        return t.cast("dict[str, t.Any] | None", body["response"]["result"].get(key))

    def page_info(self, body: t.Any) -> tuple[int, int] | None:
        result = body["response"]["result"]
        return int(result.get("page") or 1), int(result.get("pages") or 0)


class ProjectEnvelope(Envelope):
    name = "project"

    def items(self, body: t.Any, key: str) -> list[dict[str, t.Any]]:
        return list(body.get(key) or [])

    def single(self, body: t.Any, key: str) -> dict[str, t.Any] | None:
        return t.cast("dict[str, t.Any] | None", body.get(key))

    def page_info(self, body: t.Any) -> tuple[int, int] | None:
        meta = body.get("meta") or {}
        if "pages" not in meta:
            return None
        return int(meta.get("page") or 1), int(meta.get("pages") or 0)


class LedgerEnvelope(Envelope):
    name = "ledger"

    def items(self, body: t.Any, key: str) -> list[dict[str, t.Any]]:  # noqa: ARG002
        return list(body.get("data") or [])

    def single(self, body: t.Any, key: str) -> dict[str, t.Any] | None:  # noqa: ARG002
        return t.cast("dict[str, t.Any] | None", body.get("data"))

    def page_info(self, body: t.Any) -> tuple[int, int] | None:  # noqa: ARG002
        return None


ACCOUNTING = AccountingEnvelope()
PROJECT = ProjectEnvelope()
LEDGER = LedgerEnvelope()


class FreshBooksPaginator(BaseAPIPaginator[int]):
    """Page-number paginator that trusts ``page``/``pages`` from any envelope.

    Stops when the envelope reports no more pages, when it has no paging at all (ledger), or
    (by the SDK) on an empty page. The page number always comes from our own counter, so a server
    that echoes a wrong ``page`` cannot loop us.
    """

    def __init__(self, envelope: Envelope, start_value: int = 1) -> None:
        super().__init__(start_value)
        self._envelope = envelope

    def has_more(self, response: requests.Response) -> bool:
        info = self._envelope.page_info(parse_json(response))
        if info is None:
            return False
        _page, pages = info
        return self.current_value < pages

    def get_next(self, response: requests.Response) -> int | None:  # noqa: ARG002
        return self.current_value + 1
