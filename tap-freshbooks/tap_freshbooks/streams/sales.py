"""Sales pipeline and future revenue: estimates, recurring invoice profiles (each with lines), tasks.

All three are accounting-family lists (``/accounting/account/{account_id}/...``, ``response.result``
envelope, naive US/Eastern ``updated``), so they share the invoices' machinery: incremental on
``updated`` with ``search[updated_min]`` plus the change ledger (whether these lists honour the
filter is UNCONFIRMED, freshbooks-api.md §5.2; the ledger copes either way), a ``search[vis_state]=1``
pass for deletions, and, for estimates and profiles, ``include[]=lines`` with the lines leaving as a
rider stream (``CarriesLines`` / ``LinesRider`` in riders.py, the mechanism ``invoice_lines`` uses).

Sources (freshbooks-api.md §3.2): estimates ``A/estimates/estimates`` (``estimates``/``estimate``,
``id`` == ``estimateid``; fields "like invoices", full list UNCONFIRMED); invoice profiles
``A/invoice_profiles/invoice_profiles`` (``invoice_profiles``; deleted with vis_state=1, §5.4;
fields UNCONFIRMED: declared like invoices plus the profile's schedule); tasks ``A/projects/tasks``
(``tasks``/``task``, ``id`` == ``taskid``, ``rate`` a money object, ``updated`` ET, ``vis_state``).
Webhooks: ``estimate.*`` and ``recurring.*`` (third-party list, §7.5); none is known for tasks.
"""

from __future__ import annotations

from tap_freshbooks.schema_objects import (
    VIS_STATE,
    boolean,
    date,
    decimal,
    integer,
    money,
    schema,
    string,
    timestamp,
)
from tap_freshbooks.streams.accounting import INVOICE_LINE_PROPERTIES, AccountingStream
from tap_freshbooks.streams.fields import BILL_TO, fields
from tap_freshbooks.streams.riders import CarriesLines, lines_rider

#: what estimates and invoice profiles share with invoices (customer, currency, money, status)
BILLING_DOCUMENT_PROPERTIES = [
    integer("customerid", "Client id"),
    integer("ownerid"),
    *fields(string, "accountid", "accounting_systemid", "organization", "fname", "lname", "currency_code"),
    *fields(string, "language", "po_number", "terms", "notes", "description"),
    *BILL_TO,
    string("template"),
    integer("status"),
    string("display_status"),
    date("create_date"),
    decimal("discount_value", "Discount percent"),
    money("amount", "Total"),
    money("discount_total"),
    string("uuid"),
    timestamp("created_at", "Creation time (UTC)"),
    timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
    VIS_STATE,
]


class EstimatesStream(CarriesLines, AccountingStream):
    """Estimates (quotes: the sales pipeline), with ``include[]=lines``; lines go to ``estimate_lines``."""

    resource, single_key = "estimates/estimates", "estimate"
    lines_stream = lines_rider("estimate", INVOICE_LINE_PROPERTIES, parent_id_copy="estimateid")
    schema = schema(
        integer("estimateid"),
        string("estimate_number"),
        string("ui_status", "draft, sent, viewed, accepted, declined, invoiced, ..."),
        string("reply_status"),
        *fields(boolean, "accepted", "invoiced"),
        integer("invoiceid", "Invoice the estimate was converted to"),
        *BILLING_DOCUMENT_PROPERTIES,
    )


class InvoiceProfilesStream(CarriesLines, AccountingStream):
    """Recurring invoice profiles (future revenue), with lines going to ``invoice_profile_lines``."""

    resource, single_key = "invoice_profiles/invoice_profiles", "invoice_profile"
    lines_stream = lines_rider("invoice_profile", INVOICE_LINE_PROPERTIES, parent_id_copy="profileid")
    schema = schema(
        integer("profileid"),
        string("frequency", "Repeat interval as FreshBooks writes it, e.g. 1m, 2w, 1y"),
        integer("occurrences", "Invoices to generate in all (0 = until stopped)"),
        integer("occurrences_to_date", "Invoices generated so far"),
        date("next_issue_date", "When the next invoice is generated"),
        integer("due_offset_days"),
        *fields(boolean, "auto_bill", "send_email"),
        boolean("disable", "Paused"),
        *BILLING_DOCUMENT_PROPERTIES,
    )


class TasksStream(AccountingStream):
    """Tasks (billable task types with a rate; the legacy accounting tasks under ``projects/``)."""

    resource, single_key = "projects/tasks", "task"
    schema = schema(
        integer("taskid"),
        string("name"),
        string("tname", "Same as name (FreshBooks sends both)"),
        string("description"),
        string("tdesc", "Same as description"),
        boolean("billable"),
        money("rate", "Hourly rate"),
        integer("tax1", "Tax id"),
        integer("tax2", "Tax id"),
        timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
        VIS_STATE,
    )
