"""What two FreshBooks answers mean, read once for the tap and the bridge: ``users/me`` and error bodies.

* ``accounting_accounts``: the accounting accounts a grant reaches, from ``GET /auth/api/v1/users/me``
  (``response.business_memberships[].business``; a membership without an ``account_id``, such as a
  Client role, has no accounting account).
* ``error_text``: the human part of an error body, whichever API family answered
  (freshbooks-api.md, error shapes): accounting ``response.errors[].message``, the reverted 2023
  style and the ledger's ``errors.message`` / ``details``, OAuth ``error_description``, project
  ``error`` (text or per-field object), events ``message`` plus ``details``.

Both take the decoded JSON, so each caller keeps its own HTTP library (requests, httpx).
"""

from __future__ import annotations

import typing as t

IDENTITY_PATH = "/auth/api/v1/users/me"
#: longest error text kept (a body can hold a whole HTML page)
MAX_ERROR_TEXT = 300


def accounting_accounts(body: t.Any) -> list[dict[str, t.Any]]:
    """``[{"account_id", "business_id", "business_uuid"}, ...]`` from a users/me body, in order, once each."""
    me = body.get("response", body) if isinstance(body, dict) else None
    memberships = me.get("business_memberships") if isinstance(me, dict) else None
    accounts: dict[str, dict[str, t.Any]] = {}
    for membership in memberships if isinstance(memberships, list) else []:
        business = membership.get("business") if isinstance(membership, dict) else None
        if not isinstance(business, dict):
            continue
        account_id = business.get("account_id")
        if not account_id or str(account_id) in accounts:
            continue
        accounts[str(account_id)] = {
            "account_id": str(account_id),
            "business_id": business.get("id"),
            "business_uuid": business.get("business_uuid"),
        }
    return list(accounts.values())


def _text(value: t.Any) -> str:
    """One piece of an error body as text: a string, a ``message``, or ``field: message`` pairs."""
    if isinstance(value, dict):
        metadata = value.get("metadata")
        for source, key in ((value, "message"), (metadata, "message"), (value, "reason")):
            if isinstance(source, dict) and source.get(key):
                return str(source[key])
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def error_text(body: t.Any, fallback: str = "") -> str:
    """The human part of a FreshBooks error body (one line, at most ``MAX_ERROR_TEXT`` characters).

    ``fallback`` (e.g. the HTTP reason, or the raw text of a body that is not JSON) is used when
    the body says nothing readable.
    """
    parts: list[str] = []
    if isinstance(body, dict):
        response = body.get("response")
        listed = response.get("errors") if isinstance(response, dict) else body.get("errors")
        if isinstance(listed, list):  # accounting
            parts += [_text(error) for error in listed]
        elif isinstance(listed, dict):  # ledger
            parts.append(_text(listed))
        else:
            for key in ("error_description", "message", "error"):  # OAuth, events, projects
                if body.get(key):
                    parts.append(_text(body[key]))
                    break
        details = body.get("details")
        if isinstance(details, list) and details:  # events' validation, the reverted 2023 style
            parts.append("(" + "; ".join(_text(detail) for detail in details) + ")")
        if not parts and body:
            parts.append(str(body))
    elif body is not None:
        parts.append(str(body))
    text = " ".join(" ".join(parts).split()) or " ".join(fallback.split())
    return text[:MAX_ERROR_TEXT]
