"""Accounting-family streams: ``/accounting/account/{account_id}/...``, ``response.result`` envelope.

Timestamps ``updated`` / ``created_at`` / ``updated_at`` are naive US/Eastern and leave this tap as
UTC. Lists hide deleted records; streams with ``has_vis_state`` make a second pass for them.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_freshbooks import incremental
from tap_freshbooks.schema_objects import (
    VIS_STATE,
    any_array,
    any_object,
    boolean,
    date,
    decimal,
    integer,
    money,
    money_list,
    schema,
    string,
    timestamp,
)
from tap_freshbooks.streams.base import FreshBooksStream
from tap_freshbooks.streams.fields import BILL_TO, PHONES, address, fields
from tap_freshbooks.streams.riders import CarriesLines, lines_rider

ACCOUNT = "/accounting/account/{account_id}"


class AccountingStream(FreshBooksStream):
    """A list under ``/accounting/account/{account_id}`` filtered by ``search[updated_min]``."""

    #: ``"<group>/<plural>"``: the list's path under the account. The plural is also the list's key
    #: in the response and the stream's name, unless the stream declares ``list_key`` or ``name``.
    resource: t.ClassVar[str] = ""
    strategy: incremental.Strategy = incremental.UpdatedFilter(server="search")
    has_vis_state = True
    replication_key: str | None = "updated"
    eastern_fields: tuple[str, ...] = ("updated", "created_at")
    is_sorted = False

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        """``path``, ``list_key`` and ``name`` follow from ``resource``."""
        super().__init_subclass__(**kwargs)
        if "resource" in cls.__dict__:
            plural = cls.resource.rpartition("/")[2]
            cls.path = f"{ACCOUNT}/{cls.resource}"
            cls.list_key = cls.__dict__.get("list_key", plural)
            # a class attribute, as every stream declares it (mypy sees the SDK's instance attribute)
            setattr(cls, "name", cls.__dict__.get("name", plural))  # noqa: B010


class UpdatedAtStream(AccountingStream):
    """Accounting objects that carry ``created_at`` / ``updated_at`` instead of ``updated``."""

    replication_key = "updated_at"
    eastern_fields = ("created_at", "updated_at")


#: an ``UpdatedAtStream`` object's change columns, last in its schema
UPDATED_AT_COLUMNS = [timestamp("created_at"), timestamp("updated_at", "Last change (UTC)"), VIS_STATE]


class SnapshotAccountingStream(AccountingStream):
    """An accounting list with no change timestamp: every run reads it all and emits what changed."""

    strategy = incremental.Snapshot()
    replication_key = None


class ClientsStream(AccountingStream):
    """Clients (customers). ``signup_date`` is naive UTC, unlike the rest of the family."""

    resource, single_key = "users/clients", "client"
    utc_fields = ("signup_date",)
    # client-portal access tokens: secrets, never copied to a warehouse
    drop_fields = ("statement_token", "direct_link_token")
    schema = schema(
        integer("userid"),
        *fields(string, "organization", "fname", "lname", "email"),
        *fields(string, "company_industry", "company_size", "currency_code", "language"),
        *PHONES,
        string("note"),
        *address("p_"),
        *address("s_"),
        *fields(string, "username", "role"),
        *fields(boolean, "pref_email", "pref_gmail"),
        *fields(string, "subdomain", "vat_name", "vat_number", "uuid", "accounting_systemid"),
        *fields(boolean, "allow_late_fees", "allow_late_notifications", "has_retainer"),
        *fields(integer, "retainer_id", "level", "statement", "num_logins"),
        timestamp("signup_date", "Sign-up time (FreshBooks sends naive UTC)"),
        timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
        *fields(timestamp, "last_activity", "last_login"),
        *fields(money_list, "outstanding_balance", "credit_balance", "draft_balance", "overdue_balance"),
        VIS_STATE,
    )


INVOICE_LINE_PROPERTIES = [
    integer("lineid", "Line number inside the invoice"),
    *fields(string, "name", "description"),
    decimal("qty", "Quantity (exact decimal; FreshBooks sends a string)"),
    *fields(money, "unit_cost", "amount"),
    string("taxName1"),
    decimal("taxAmount1", "Tax 1 percent"),
    *fields(string, "taxNumber1", "taxName2"),
    decimal("taxAmount2", "Tax 2 percent"),
    string("taxNumber2"),
    boolean("compounded_tax"),
    integer("type", "0 normal line, 1 rebilled expense"),
    *fields(integer, "expenseid", "taskno", "basecampid"),
    *fields(integer, "retainer_id", "retainer_period_id", "modern_project_id"),
    any_array("modern_time_entries"),
    date("date"),
    timestamp("updated", "Last change of the line (UTC)"),
]


class InvoicesStream(CarriesLines, AccountingStream):
    """Invoices, fetched with ``include[]=lines``; the lines go to ``invoice_lines``."""

    resource, single_key = "invoices/invoices", "invoice"
    lines_stream = lines_rider("invoice", INVOICE_LINE_PROPERTIES, parent_id_copy="invoiceid")
    schema = schema(
        integer("invoiceid"),
        string("invoice_number"),
        integer("customerid", "Client id"),
        *fields(integer, "ownerid", "estimateid"),
        string("accountid"),
        *fields(integer, "basecampid", "sentid", "ext_archive"),
        *fields(string, "description", "autobill_status", "return_uri"),
        *fields(string, "dispute_status", "last_order_status"),
        boolean("show_attachments"),
        integer("parent"),
        *fields(string, "uuid", "accounting_systemid", "organization", "fname", "lname", "currency_code"),
        *fields(string, "language", "po_number", "template", "terms", "notes"),
        *BILL_TO,
        integer("status", "1 draft, 2 sent, 3 viewed, 4 paid, 5 auto-paid, 6 retry, 7 failed, 8 partial"),
        *fields(string, "v3_status", "display_status", "payment_status", "date_paid"),
        *fields(date, "create_date", "due_date", "generation_date"),
        integer("due_offset_days"),
        decimal("discount_value", "Discount percent"),
        money("amount", "Invoice total"),
        *fields(money, "outstanding", "paid", "discount_total", "deposit_amount", "net_paid_amount"),
        *fields(string, "deposit_percentage", "deposit_status"),
        boolean("auto_bill"),
        string("version", "FreshBooks row version (naive US/Eastern with microseconds)"),
        timestamp("created_at", "Creation time (UTC)"),
        timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
        VIS_STATE,
    )


class PaymentsStream(AccountingStream):
    """Payments received against invoices."""

    resource, single_key = "payments/payments", "payment"
    schema = schema(
        *fields(integer, "logid", "invoiceid", "clientid", "creditid", "overpaymentid", "bulk_paymentid"),
        money("amount"),
        date("date"),
        string("type", "Cash, Check, Credit Card, ..."),
        *fields(string, "note", "gateway", "transactionid", "orderid"),
        *fields(boolean, "from_credit", "send_client_notification"),
        string("accounting_systemid"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class ExpensesStream(AccountingStream):
    """Expenses; ``staffid`` links to ``staff``, ``categoryid`` to ``expense_categories``."""

    resource, single_key = "expenses/expenses", "expense"
    schema = schema(
        integer("expenseid"),
        money("amount"),
        *fields(integer, "categoryid", "clientid", "projectid", "staffid"),
        *fields(integer, "invoiceid", "accountid", "transactionid", "ext_invoiceid"),
        *fields(integer, "ext_accountid", "bank_name_id", "profileid", "expenseprofileid"),
        string("accounting_systemid"),
        date("date"),
        *fields(string, "vendor", "notes", "bank_name", "account_name"),
        *fields(integer, "ext_systemid", "background_jobid"),
        *fields(boolean, "potential_bill_payment", "compounded_tax"),
        integer("status"),
        *fields(boolean, "has_receipt", "is_cogs", "include_receipt", "isduplicate"),
        decimal("markup_percent"),
        *fields(string, "taxName1", "taxName2"),
        *fields(money, "taxAmount1", "taxAmount2"),
        *fields(decimal, "taxPercent1", "taxPercent2"),
        any_object("attachment"),
        string("version"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class ExpenseCategoriesStream(UpdatedAtStream):
    """Expense categories (with ``parentid`` for the hierarchy). Read-only in FreshBooks."""

    name = "expense_categories"
    resource, single_key = "expenses/categories", "category"
    schema = schema(
        integer("categoryid"),
        string("category", "Category name"),
        integer("parentid", "Parent category id (hierarchy)"),
        *fields(boolean, "is_cogs", "is_editable", "transaction_posted"),
        *UPDATED_AT_COLUMNS,
    )


BILL_LINE = th.ObjectType(
    integer("categoryid"),
    any_object("category"),
    integer("list_index"),
    string("description"),
    decimal("quantity"),
    *fields(money, "unit_cost", "amount", "total_amount"),
    *fields(string, "tax_name1", "tax_name2"),
    *fields(decimal, "tax_percent1", "tax_percent2"),
    *fields(integer, "tax_authorityid1", "tax_authorityid2"),
    *fields(money, "tax_amount1", "tax_amount2"),
    additional_properties=True,
)


class BillsStream(UpdatedAtStream):
    """Bills (accounts payable). ``created_at``/``updated_at`` are naive UTC by default (setting
    ``bills_timezone``): freshbooks-sdk 1.3.0 ``models.py`` lists bill and bill_vendor in
    ``ACCOUNTING_UTC_DATE_FIELDS``; FreshBooks' Node SDK tests read them as US/Eastern instead."""

    resource, single_key = "bills/bills", "bill"
    schema = schema(
        integer("vendorid"),
        string("bill_number"),
        *fields(date, "issue_date", "due_date"),
        integer("due_offset_days"),
        *fields(string, "currency_code", "language"),
        string("status", "unpaid, partial, paid, overdue, ..."),
        *fields(money, "amount", "total_amount", "outstanding", "paid", "tax_amount"),
        *fields(string, "overall_category", "overall_description"),
        th.Property("lines", th.ArrayType(BILL_LINE), description="Bill lines"),
        any_array("bill_payments"),
        *fields(any_object, "vendor", "attachment"),
        *UPDATED_AT_COLUMNS,
    )

    @property
    def eastern_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("created_at", "updated_at") if self._bill_zone() == "US/Eastern" else ()

    @property
    def utc_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("created_at", "updated_at") if self._bill_zone() == "UTC" else ()

    def _bill_zone(self) -> str:
        return str(self.config.get("bills_timezone") or "UTC")


class BillVendorsStream(BillsStream):
    """Vendors of bills (id field ``vendorid``)."""

    resource, single_key = "bill_vendors/bill_vendors", "bill_vendor"
    id_field = "vendorid"
    schema = schema(
        integer("vendorid"),
        *fields(string, "vendor_name", "account_number", "primary_contact_first_name"),
        *fields(string, "primary_contact_last_name", "primary_contact_email", "phone"),
        string("website"),
        *address(code="postal_code"),
        *fields(string, "currency_code", "language"),
        boolean("is_1099"),
        string("note"),
        *fields(money_list, "outstanding_balance", "overdue_balance"),
        any_array("tax_defaults"),
        *UPDATED_AT_COLUMNS,
    )


class BillPaymentsStream(SnapshotAccountingStream):
    """Payments of bills. No change timestamp is documented: snapshot + fingerprints."""

    resource, single_key = "bill_payments/bill_payments", "bill_payment"
    schema = schema(
        integer("billid"),
        money("amount"),
        date("paid_date"),
        string("payment_type"),
        boolean("matched_with_expense"),
        string("note"),
        *fields(timestamp, "created_at", "updated_at"),
        VIS_STATE,
    )


class ItemsStream(AccountingStream):
    """Items (products) sold on invoices."""

    resource, single_key = "items/items", "item"
    schema = schema(
        integer("itemid"),
        *fields(string, "name", "description", "sku"),
        *fields(decimal, "qty", "inventory"),
        money("unit_cost"),
        *fields(integer, "tax1", "tax2"),
        string("accounting_systemid"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class TaxesStream(AccountingStream):
    """Taxes. No vis_state: FreshBooks deletes taxes for real (webhooks ``tax.delete``)."""

    resource, single_key = "taxes/taxes", "tax"
    has_vis_state = False
    schema = schema(
        integer("taxid"),
        string("name"),
        decimal("amount", "Tax percent"),
        boolean("compound"),
        string("number", "Tax registration number"),
        string("accounting_systemid"),
        timestamp("updated", "Last change (UTC)"),
    )


class CreditNotesStream(AccountingStream):
    """Credit notes. Whether lists accept ``updated_min`` is unconfirmed: the ledger copes."""

    resource, single_key = "credit_notes/credit_notes", "credit_note"
    extra_params: t.ClassVar[dict[str, t.Any]] = {"include[]": ["lines"]}
    schema = schema(
        *fields(integer, "creditid", "clientid"),
        *fields(string, "credit_number", "credit_type", "accounting_systemid"),
        date("create_date"),
        *fields(string, "currency_code", "language"),
        *fields(money, "amount", "paid"),
        *fields(string, "display_status", "payment_status"),
        integer("status"),
        *fields(string, "organization", "notes", "terms"),
        any_array("lines"),
        timestamp("created_at"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class OtherIncomesStream(UpdatedAtStream):
    """Other income (list key ``other_income``, id field ``incomeid``)."""

    resource, single_key = "other_incomes/other_incomes", "other_income"
    list_key = "other_income"
    id_field = "incomeid"
    schema = schema(
        *fields(integer, "incomeid", "userid"),
        money("amount"),
        string("category_name"),
        date("date"),
        *fields(string, "note", "payment_type", "source"),
        integer("sourceid"),
        th.Property(
            "taxes",
            th.ArrayType(th.ObjectType(decimal("amount"), string("name"), additional_properties=True)),
        ),
        *UPDATED_AT_COLUMNS,
    )


class StaffStream(SnapshotAccountingStream):
    """Staff (legacy users/staffs): the dimension behind expense ``staffid``. Snapshot."""

    name = "staff"
    resource, single_key = "users/staffs", "staff"
    schema = schema(
        *fields(integer, "userid", "staffid"),
        *fields(string, "accounting_systemid", "fname", "lname", "display_name"),
        *fields(string, "email", "organization", "username"),
        *PHONES,
        *fields(string, "note", "currency_code", "language"),
        integer("num_logins"),
        decimal("rate", "Billing rate"),
        integer("level"),
        *fields(timestamp, "signup_date", "last_login", "updated"),
        VIS_STATE,
    )
    # freshbooks-sdk 1.3.0 models.py: only client signup_date is UTC; staff's is naive US/Eastern.
    eastern_fields = ("updated", "last_login", "signup_date")


class JournalEntryDetailsStream(FreshBooksStream):
    """General-ledger lines. No change timestamp: a date window on ``user_entered_date``.

    Each run re-reads the last ``journal_lookback_days`` (default 90) of entry dates and emits
    what changed (fingerprints). Entries re-posted further back than that are caught by a full
    refresh (``meltano run --full-refresh``), e.g. weekly.
    """

    name = "journal_entry_details"
    path = f"{ACCOUNT}/journal_entries/journal_entry_details"
    list_key = "journal_entry_details"
    single_path = None
    strategy = incremental.DateWindow(field="user_entered_date")
    schema = schema(
        integer("detailid"),
        *fields(string, "name", "description", "detail_type"),
        date("user_entered_date"),
        *fields(money, "debit", "credit", "balance"),
        th.Property(
            "account",
            th.ObjectType(
                *fields(string, "account_name", "account_number", "account_type"),
                *fields(integer, "accountid", "id"),
                string("accounting_systemid"),
                additional_properties=True,
            ),
        ),
        th.Property(
            "sub_account",
            th.ObjectType(
                *fields(string, "account_sub_name", "account_sub_number"),
                *fields(integer, "id", "sub_accountid", "parentid"),
                additional_properties=True,
            ),
        ),
        th.Property(
            "entry",
            th.ObjectType(
                *fields(integer, "entryid", "id", "clientid", "invoiceid", "expenseid"),
                *fields(integer, "incomeid", "creditid", "paymentid", "categoryid"),
                additional_properties=True,
            ),
        ),
        *fields(string, "currency_code", "accounting_systemid"),
    )
