"""Team members: ``/auth/api/v1/businesses/{business_id}/team_members`` (scope ``user:teams:read``).

The auth family's envelope (freshbooks-api.md §3.1 D): ``{"response": [...], "meta": {"page",
"per_page", "total"}}`` with **no** ``pages``, so the page count is worked out from ``total`` and
``per_page``; a single member is ``/team_members/{uuid}`` -> ``{"response": {...}}``. The id is the
member's ``uuid``. ``created_at`` / ``updated_at`` are RFC 3339 UTC. No "updated since" filter is
known (§5.2), so the stream reads every member and emits the changed ones (incremental on
``updated_at`` client side, like chart_of_accounts). Members are not deleted but deactivated
(``active``). FreshBooks documents no webhook for them.
"""

from __future__ import annotations

import math
import typing as t

from tap_freshbooks import envelopes, incremental
from tap_freshbooks.schema_objects import boolean, integer, schema, string, timestamp
from tap_freshbooks.streams.base import FreshBooksStream
from tap_freshbooks.streams.fields import fields


class AuthEnvelope(envelopes.Envelope):
    """``{"response": [...], "meta": {"page", "per_page", "total"}}`` (no ``pages``)."""

    name = "auth"

    def items(self, body: t.Any, key: str) -> list[dict[str, t.Any]]:  # noqa: ARG002
        return list(body["response"] or [])

    def single(self, body: t.Any, key: str) -> dict[str, t.Any] | None:  # noqa: ARG002
        return t.cast("dict[str, t.Any] | None", body.get("response"))

    def page_info(self, body: t.Any) -> tuple[int, int] | None:
        meta = body.get("meta") or {}
        total, per_page = meta.get("total"), meta.get("per_page")
        if total is None or not per_page:
            return None  # no paging information: one page (an empty page also stops)
        return int(meta.get("page") or 1), math.ceil(int(total) / int(per_page))


AUTH = AuthEnvelope()


class TeamMembersStream(FreshBooksStream):
    """People of the business (the successor of legacy staff); id = the member's uuid."""

    name = "team_members"
    path = "/auth/api/v1/businesses/{business_id}/team_members"
    single_path = "{path}/{id}"
    list_key, single_key = "response", "response"
    envelope = AUTH
    id_field = "uuid"
    business_scoped = True
    strategy = incremental.UpdatedFilter()
    replication_key = "updated_at"
    utc_fields = ("created_at", "updated_at", "invitation_date_accepted")
    is_sorted = False
    schema = schema(
        *fields(string, "uuid", "first_name", "middle_name", "last_name", "email", "job_title", "street_1"),
        *fields(string, "street_2", "city", "province", "country", "postal_code", "phone_number"),
        string("business_role_name", "owner, business_partner, business_manager, business_employee, ..."),
        boolean("active", "False once the member was deactivated (members are not deleted)"),
        integer("identity_id", "FreshBooks login of the member (null if none)"),
        *fields(timestamp, "invitation_date_accepted", "created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        business_scoped=True,
    )
