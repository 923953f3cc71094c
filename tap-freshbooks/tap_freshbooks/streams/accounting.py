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
from tap_freshbooks.streams.riders import CarriesLines, LinesRider

ACCOUNT = "/accounting/account/{account_id}"


class AccountingStream(FreshBooksStream):
    """A list under ``/accounting/account/{account_id}`` filtered by ``search[updated_min]``."""

    strategy: incremental.Strategy = incremental.UpdatedFilter(server="search")
    has_vis_state = True
    replication_key: str | None = "updated"
    eastern_fields: tuple[str, ...] = ("updated", "created_at")
    is_sorted = False


class ClientsStream(AccountingStream):
    """Clients (customers). ``signup_date`` is naive UTC, unlike the rest of the family."""

    name = "clients"
    path = f"{ACCOUNT}/users/clients"
    list_key, single_key = "clients", "client"
    utc_fields = ("signup_date",)
    # client-portal access tokens: secrets, never copied to a warehouse
    drop_fields = ("statement_token", "direct_link_token")
    schema = schema(
        integer("userid"),
        string("organization"),
        string("fname"),
        string("lname"),
        string("email"),
        string("company_industry"),
        string("company_size"),
        string("currency_code"),
        string("language"),
        string("bus_phone"),
        string("mob_phone"),
        string("home_phone"),
        string("fax"),
        string("note"),
        string("p_street"),
        string("p_street2"),
        string("p_city"),
        string("p_province"),
        string("p_code"),
        string("p_country"),
        string("s_street"),
        string("s_street2"),
        string("s_city"),
        string("s_province"),
        string("s_code"),
        string("s_country"),
        string("username"),
        string("role"),
        boolean("pref_email"),
        boolean("pref_gmail"),
        string("subdomain"),
        string("vat_name"),
        string("vat_number"),
        string("uuid"),
        string("accounting_systemid"),
        boolean("allow_late_fees"),
        boolean("allow_late_notifications"),
        boolean("has_retainer"),
        integer("retainer_id"),
        integer("level"),
        integer("statement"),
        integer("num_logins"),
        timestamp("signup_date", "Sign-up time (FreshBooks sends naive UTC)"),
        timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
        timestamp("last_activity"),
        timestamp("last_login"),
        money_list("outstanding_balance"),
        money_list("credit_balance"),
        money_list("draft_balance"),
        money_list("overdue_balance"),
        VIS_STATE,
    )


INVOICE_LINE_PROPERTIES = [
    integer("lineid", "Line number inside the invoice"),
    string("name"),
    string("description"),
    decimal("qty", "Quantity (exact decimal; FreshBooks sends a string)"),
    money("unit_cost"),
    money("amount"),
    string("taxName1"),
    decimal("taxAmount1", "Tax 1 percent"),
    string("taxNumber1"),
    string("taxName2"),
    decimal("taxAmount2", "Tax 2 percent"),
    string("taxNumber2"),
    boolean("compounded_tax"),
    integer("type", "0 normal line, 1 rebilled expense"),
    integer("expenseid"),
    integer("taskno"),
    integer("basecampid"),
    integer("retainer_id"),
    integer("retainer_period_id"),
    integer("modern_project_id"),
    any_array("modern_time_entries"),
    date("date"),
    timestamp("updated", "Last change of the line (UTC)"),
]


class InvoiceLinesStream(LinesRider):
    """Invoice lines, emitted exactly when their invoice is (see ``LinesRider``)."""

    name = "invoice_lines"
    parent, line_properties = "invoice", INVOICE_LINE_PROPERTIES
    drop_fields = ("invoiceid",)  # same value as invoice_id


class InvoicesStream(CarriesLines, AccountingStream):
    """Invoices, fetched with ``include[]=lines``; the lines go to ``invoice_lines``."""

    name = "invoices"
    path = f"{ACCOUNT}/invoices/invoices"
    list_key, single_key = "invoices", "invoice"
    lines_stream = InvoiceLinesStream
    schema = schema(
        integer("invoiceid"),
        string("invoice_number"),
        integer("customerid", "Client id"),
        integer("ownerid"),
        integer("estimateid"),
        string("accountid"),
        integer("basecampid"),
        integer("sentid"),
        integer("ext_archive"),
        string("description"),
        string("autobill_status"),
        string("return_uri"),
        string("dispute_status"),
        string("last_order_status"),
        boolean("show_attachments"),
        integer("parent"),
        string("uuid"),
        string("accounting_systemid"),
        string("organization"),
        string("fname"),
        string("lname"),
        string("currency_code"),
        string("language"),
        string("po_number"),
        string("template"),
        string("terms"),
        string("notes"),
        string("address"),
        string("street"),
        string("street2"),
        string("city"),
        string("province"),
        string("code"),
        string("country"),
        string("vat_name"),
        string("vat_number"),
        integer("status", "1 draft, 2 sent, 3 viewed, 4 paid, 5 auto-paid, 6 retry, 7 failed, 8 partial"),
        string("v3_status"),
        string("display_status"),
        string("payment_status"),
        string("date_paid"),
        date("create_date"),
        date("due_date"),
        date("generation_date"),
        integer("due_offset_days"),
        decimal("discount_value", "Discount percent"),
        money("amount", "Invoice total"),
        money("outstanding"),
        money("paid"),
        money("discount_total"),
        money("deposit_amount"),
        money("net_paid_amount"),
        string("deposit_percentage"),
        string("deposit_status"),
        boolean("auto_bill"),
        string("version", "FreshBooks row version (naive US/Eastern with microseconds)"),
        timestamp("created_at", "Creation time (UTC)"),
        timestamp("updated", "Last change (UTC; FreshBooks sends naive US/Eastern)"),
        VIS_STATE,
    )


class PaymentsStream(AccountingStream):
    """Payments received against invoices."""

    name = "payments"
    path = f"{ACCOUNT}/payments/payments"
    list_key, single_key = "payments", "payment"
    schema = schema(
        integer("logid"),
        integer("invoiceid"),
        integer("clientid"),
        integer("creditid"),
        integer("overpaymentid"),
        integer("bulk_paymentid"),
        money("amount"),
        date("date"),
        string("type", "Cash, Check, Credit Card, ..."),
        string("note"),
        string("gateway"),
        string("transactionid"),
        string("orderid"),
        boolean("from_credit"),
        boolean("send_client_notification"),
        string("accounting_systemid"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class ExpensesStream(AccountingStream):
    """Expenses; ``staffid`` links to ``staff``, ``categoryid`` to ``expense_categories``."""

    name = "expenses"
    path = f"{ACCOUNT}/expenses/expenses"
    list_key, single_key = "expenses", "expense"
    schema = schema(
        integer("expenseid"),
        money("amount"),
        integer("categoryid"),
        integer("clientid"),
        integer("projectid"),
        integer("staffid"),
        integer("invoiceid"),
        integer("accountid"),
        integer("transactionid"),
        integer("ext_invoiceid"),
        integer("ext_accountid"),
        integer("bank_name_id"),
        integer("profileid"),
        integer("expenseprofileid"),
        string("accounting_systemid"),
        date("date"),
        string("vendor"),
        string("notes"),
        string("bank_name"),
        string("account_name"),
        integer("ext_systemid"),
        integer("background_jobid"),
        boolean("potential_bill_payment"),
        boolean("compounded_tax"),
        integer("status"),
        boolean("has_receipt"),
        boolean("is_cogs"),
        boolean("include_receipt"),
        boolean("isduplicate"),
        decimal("markup_percent"),
        string("taxName1"),
        string("taxName2"),
        money("taxAmount1"),
        money("taxAmount2"),
        decimal("taxPercent1"),
        decimal("taxPercent2"),
        any_object("attachment"),
        string("version"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class ExpenseCategoriesStream(AccountingStream):
    """Expense categories (with ``parentid`` for the hierarchy). Read-only in FreshBooks."""

    name = "expense_categories"
    path = f"{ACCOUNT}/expenses/categories"
    list_key, single_key = "categories", "category"
    replication_key = "updated_at"
    eastern_fields = ("updated_at", "created_at")
    schema = schema(
        integer("categoryid"),
        string("category", "Category name"),
        integer("parentid", "Parent category id (hierarchy)"),
        boolean("is_cogs"),
        boolean("is_editable"),
        boolean("transaction_posted"),
        timestamp("created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        VIS_STATE,
    )


BILL_LINE = th.ObjectType(
    integer("categoryid"),
    any_object("category"),
    integer("list_index"),
    string("description"),
    decimal("quantity"),
    money("unit_cost"),
    money("amount"),
    money("total_amount"),
    string("tax_name1"),
    string("tax_name2"),
    decimal("tax_percent1"),
    decimal("tax_percent2"),
    integer("tax_authorityid1"),
    integer("tax_authorityid2"),
    money("tax_amount1"),
    money("tax_amount2"),
    additional_properties=True,
)


class BillsStream(AccountingStream):
    """Bills (accounts payable). ``created_at``/``updated_at`` are naive UTC by default (setting
    ``bills_timezone``): freshbooks-sdk 1.3.0 ``models.py`` lists bill and bill_vendor in
    ``ACCOUNTING_UTC_DATE_FIELDS``; FreshBooks' Node SDK tests read them as US/Eastern instead."""

    name = "bills"
    path = f"{ACCOUNT}/bills/bills"
    list_key, single_key = "bills", "bill"
    replication_key = "updated_at"
    schema = schema(
        integer("vendorid"),
        string("bill_number"),
        date("issue_date"),
        date("due_date"),
        integer("due_offset_days"),
        string("currency_code"),
        string("language"),
        string("status", "unpaid, partial, paid, overdue, ..."),
        money("amount"),
        money("total_amount"),
        money("outstanding"),
        money("paid"),
        money("tax_amount"),
        string("overall_category"),
        string("overall_description"),
        th.Property("lines", th.ArrayType(BILL_LINE), description="Bill lines"),
        any_array("bill_payments"),
        any_object("vendor"),
        any_object("attachment"),
        timestamp("created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        VIS_STATE,
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

    name = "bill_vendors"
    path = f"{ACCOUNT}/bill_vendors/bill_vendors"
    list_key, single_key = "bill_vendors", "bill_vendor"
    id_field = "vendorid"
    schema = schema(
        integer("vendorid"),
        string("vendor_name"),
        string("account_number"),
        string("primary_contact_first_name"),
        string("primary_contact_last_name"),
        string("primary_contact_email"),
        string("phone"),
        string("website"),
        string("street"),
        string("street2"),
        string("city"),
        string("province"),
        string("postal_code"),
        string("country"),
        string("currency_code"),
        string("language"),
        boolean("is_1099"),
        string("note"),
        money_list("outstanding_balance"),
        money_list("overdue_balance"),
        any_array("tax_defaults"),
        timestamp("created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        VIS_STATE,
    )


class BillPaymentsStream(AccountingStream):
    """Payments of bills. No change timestamp is documented: snapshot + fingerprints."""

    name = "bill_payments"
    path = f"{ACCOUNT}/bill_payments/bill_payments"
    list_key, single_key = "bill_payments", "bill_payment"
    strategy = incremental.Snapshot()
    replication_key = None
    schema = schema(
        integer("billid"),
        money("amount"),
        date("paid_date"),
        string("payment_type"),
        boolean("matched_with_expense"),
        string("note"),
        timestamp("created_at"),
        timestamp("updated_at"),
        VIS_STATE,
    )


class ItemsStream(AccountingStream):
    """Items (products) sold on invoices."""

    name = "items"
    path = f"{ACCOUNT}/items/items"
    list_key, single_key = "items", "item"
    schema = schema(
        integer("itemid"),
        string("name"),
        string("description"),
        string("sku"),
        decimal("qty"),
        decimal("inventory"),
        money("unit_cost"),
        integer("tax1"),
        integer("tax2"),
        string("accounting_systemid"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class TaxesStream(AccountingStream):
    """Taxes. No vis_state: FreshBooks deletes taxes for real (webhooks ``tax.delete``)."""

    name = "taxes"
    path = f"{ACCOUNT}/taxes/taxes"
    list_key, single_key = "taxes", "tax"
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

    name = "credit_notes"
    path = f"{ACCOUNT}/credit_notes/credit_notes"
    list_key, single_key = "credit_notes", "credit_note"
    extra_params: t.ClassVar[dict[str, t.Any]] = {"include[]": ["lines"]}
    schema = schema(
        integer("creditid"),
        integer("clientid"),
        string("credit_number"),
        string("credit_type"),
        string("accounting_systemid"),
        date("create_date"),
        string("currency_code"),
        string("language"),
        money("amount"),
        money("paid"),
        string("display_status"),
        string("payment_status"),
        integer("status"),
        string("organization"),
        string("notes"),
        string("terms"),
        any_array("lines"),
        timestamp("created_at"),
        timestamp("updated", "Last change (UTC)"),
        VIS_STATE,
    )


class OtherIncomesStream(AccountingStream):
    """Other income (list key ``other_income``, id field ``incomeid``)."""

    name = "other_incomes"
    path = f"{ACCOUNT}/other_incomes/other_incomes"
    list_key, single_key = "other_income", "other_income"
    id_field = "incomeid"
    replication_key = "updated_at"
    eastern_fields = ("created_at", "updated_at")
    schema = schema(
        integer("incomeid"),
        integer("userid"),
        money("amount"),
        string("category_name"),
        date("date"),
        string("note"),
        string("payment_type"),
        string("source"),
        integer("sourceid"),
        th.Property(
            "taxes",
            th.ArrayType(th.ObjectType(decimal("amount"), string("name"), additional_properties=True)),
        ),
        timestamp("created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        VIS_STATE,
    )


class StaffStream(AccountingStream):
    """Staff (legacy users/staffs): the dimension behind expense ``staffid``. Snapshot."""

    name = "staff"
    path = f"{ACCOUNT}/users/staffs"
    list_key, single_key = "staffs", "staff"
    strategy = incremental.Snapshot()
    replication_key = None
    schema = schema(
        integer("userid"),
        integer("staffid"),
        string("accounting_systemid"),
        string("fname"),
        string("lname"),
        string("display_name"),
        string("email"),
        string("organization"),
        string("username"),
        string("bus_phone"),
        string("mob_phone"),
        string("home_phone"),
        string("fax"),
        string("note"),
        string("currency_code"),
        string("language"),
        integer("num_logins"),
        decimal("rate", "Billing rate"),
        integer("level"),
        timestamp("signup_date"),
        timestamp("last_login"),
        timestamp("updated"),
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
        string("name"),
        string("description"),
        string("detail_type"),
        date("user_entered_date"),
        money("debit"),
        money("credit"),
        money("balance"),
        th.Property(
            "account",
            th.ObjectType(
                string("account_name"),
                string("account_number"),
                string("account_type"),
                integer("accountid"),
                integer("id"),
                string("accounting_systemid"),
                additional_properties=True,
            ),
        ),
        th.Property(
            "sub_account",
            th.ObjectType(
                string("account_sub_name"),
                string("account_sub_number"),
                integer("id"),
                integer("sub_accountid"),
                integer("parentid"),
                additional_properties=True,
            ),
        ),
        th.Property(
            "entry",
            th.ObjectType(
                integer("entryid"),
                integer("id"),
                integer("clientid"),
                integer("invoiceid"),
                integer("expenseid"),
                integer("incomeid"),
                integer("creditid"),
                integer("paymentid"),
                integer("categoryid"),
                additional_properties=True,
            ),
        ),
        string("currency_code"),
        string("accounting_systemid"),
    )
