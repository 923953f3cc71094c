"""Chart of accounts: the ledger-accounts API under ``/accounting/businesses/{business_uuid}``.

Flat ``{"data": [...]}`` with no paging and no filter; records carry ``updated_at`` (RFC 3339
UTC), so the stream is incremental client-side: everything is read, only changes are emitted.
"""

from __future__ import annotations

from tap_freshbooks import envelopes, incremental
from tap_freshbooks.schema_objects import any_array, boolean, integer, schema, string, timestamp
from tap_freshbooks.streams.base import FreshBooksStream
from tap_freshbooks.streams.fields import fields


class ChartOfAccountsStream(FreshBooksStream):
    """Ledger accounts (the current FreshBooks chart of accounts); id = the account uuid."""

    name = "chart_of_accounts"
    path = "/accounting/businesses/{business_uuid}/ledger_accounts/accounts"
    list_key, single_key = "data", "data"
    envelope = envelopes.LEDGER
    id_field = "uuid"
    business_scoped = True
    strategy = incremental.UpdatedFilter()
    replication_key = "updated_at"
    utc_fields = ("updated_at",)
    is_sorted = False
    schema = schema(
        *fields(string, "uuid", "name", "number", "description"),
        string("type", "asset, liability, equity, income, expense"),
        *fields(string, "sub_type", "system_account_name"),
        string("parent_account", "Parent account uuid"),
        any_array("sub_accounts"),
        boolean("auto_created"),
        string("state"),
        integer("category_id"),
        integer("jea_id", "Legacy journal-entry account id (joins journal_entry_details.account)"),
        integer("jesa_id", "Legacy journal-entry sub-account id"),
        timestamp("updated_at", "Last change (UTC)"),
        business_scoped=True,
    )
