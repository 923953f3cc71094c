"""Stream specifications: where each FreshBooks resource lives and how it is shaped.

One ``StreamSpec`` per emulated resource.  The server, the store and the renderer all read
this table, so adding a resource is mostly a matter of adding a row here and a generator in
``seed.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# datetime render formats (see render.py)
ET = "eastern"  # naive US/Eastern "YYYY-MM-DD HH:MM:SS"
ET_MICRO = "eastern_micro"  # naive US/Eastern "YYYY-MM-DD HH:MM:SS.ffffff" (invoice/expense version)
UTC_NAIVE = "utc"  # naive UTC "YYYY-MM-DD HH:MM:SS"
UTC_T = "utc_t"  # naive UTC "YYYY-MM-DDTHH:MM:SS"
UTC_Z = "utc_z"  # "YYYY-MM-DDTHH:MM:SSZ"
UTC_MICRO_Z = "utc_micro_z"  # "YYYY-MM-DDTHH:MM:SS.ffffffZ"
LOCAL_NAIVE = "local_naive"  # naive wall time in the record's local_timezone (time entries)


@dataclass(frozen=True)
class StreamSpec:
    name: str
    family: str  # "accounting" | "project" | "ledger"
    path: str  # accounting: "<a>/<b>" under /accounting/account/{id}/
    list_key: str
    single_key: str
    pk: str = "id"  # the field the emulator keys records by
    aliases: tuple = ()  # other id fields that duplicate pk (e.g. invoiceid)
    updated_field: str | None = "updated"  # field used by updated filters ("_updated" = internal)
    vis_state: bool = True
    delete_mode: str = "soft"  # "soft" (vis_state=1), "hard", "flag" (time entries: _deleted)
    dt_format: str = ET  # default render format for datetime values
    field_formats: dict = field(default_factory=dict)  # per-field override of dt_format
    single_path: str | None = None  # project family: path of a single record ("{bid}", "{id}")
    event: str | None = None  # webhook event prefix (invoice, client, ...)
    money_fields: tuple = ()  # top-level fields that hold money objects
    read_only: bool = False
    default_per_page: int = 15


_A = "accounting"
_P = "project"
_L = "ledger"

STREAMS: dict[str, StreamSpec] = {}


def _add(spec: StreamSpec) -> None:
    STREAMS[spec.name] = spec


_add(
    StreamSpec(
        "clients",
        _A,
        "users/clients",
        "clients",
        "client",
        aliases=("userid",),
        field_formats={"signup_date": UTC_NAIVE},
        event="client",
    )
)
_add(
    StreamSpec(
        "invoices",
        _A,
        "invoices/invoices",
        "invoices",
        "invoice",
        aliases=("invoiceid",),
        event="invoice",
        field_formats={"version": ET_MICRO},
        money_fields=("amount", "outstanding", "paid", "discount_total", "deposit_amount", "net_paid_amount"),
    )
)
_add(
    StreamSpec(
        "payments",
        _A,
        "payments/payments",
        "payments",
        "payment",
        aliases=("logid",),
        event="payment",
        money_fields=("amount",),
    )
)
_add(
    StreamSpec(
        "expenses",
        _A,
        "expenses/expenses",
        "expenses",
        "expense",
        aliases=("expenseid",),
        event="expense",
        field_formats={"version": ET_MICRO},
        money_fields=("amount", "taxAmount1", "taxAmount2"),
    )
)
_add(
    StreamSpec(
        "expense_categories",
        _A,
        "expenses/categories",
        "categories",
        "category",
        aliases=("categoryid",),
        updated_field="updated_at",
        event="category",
        read_only=True,
    )
)
_add(
    StreamSpec(
        "bills",
        _A,
        "bills/bills",
        "bills",
        "bill",
        updated_field="updated_at",
        event="bill",
        money_fields=("amount", "total_amount", "outstanding", "paid", "tax_amount"),
    )
)
_add(
    StreamSpec(
        "bill_payments",
        _A,
        "bill_payments/bill_payments",
        "bill_payments",
        "bill_payment",
        updated_field=None,
        money_fields=("amount",),
    )
)
_add(
    StreamSpec(
        "bill_vendors",
        _A,
        "bill_vendors/bill_vendors",
        "bill_vendors",
        "bill_vendor",
        pk="vendorid",
        updated_field="updated_at",
        event="bill_vendor",
    )
)
_add(
    StreamSpec(
        "items",
        _A,
        "items/items",
        "items",
        "item",
        aliases=("itemid",),
        event="item",
        money_fields=("unit_cost",),
    )
)
_add(
    StreamSpec(
        "taxes",
        _A,
        "taxes/taxes",
        "taxes",
        "tax",
        aliases=("taxid",),
        vis_state=False,
        delete_mode="hard",
        event="tax",
    )
)
_add(
    StreamSpec(
        "credit_notes",
        _A,
        "credit_notes/credit_notes",
        "credit_notes",
        "credit_note",
        aliases=("creditid",),
        event="credit_note",
        money_fields=("amount", "paid"),
    )
)
_add(
    StreamSpec(
        "other_incomes",
        _A,
        "other_incomes/other_incomes",
        "other_income",
        "other_income",
        pk="incomeid",
        updated_field="updated_at",
        money_fields=("amount",),
    )
)
# staff signup_date: naive US/Eastern like the rest of the family (only the client's is UTC in
# freshbooks-sdk 1.3.0 models.py ACCOUNTING_UTC_DATE_FIELDS)
_add(StreamSpec("staff", _A, "users/staffs", "staffs", "staff", aliases=("staffid",)))
_add(
    StreamSpec(
        "journal_entry_details",
        _A,
        "journal_entries/journal_entry_details",
        "journal_entry_details",
        "journal_entry_detail",
        aliases=("detailid",),
        updated_field=None,
        vis_state=False,
        delete_mode="hard",
        read_only=True,
    )
)

# estimates, recurring invoice profiles and tasks (freshbooks-api.md §3.2; estimate and profile
# field lists beyond the invoice-like core are UNCONFIRMED). Estimates: DELETE per the Python SDK,
# kept here as a soft delete (vis_state 1) so both cases of the UNCONFIRMED semantics reach the tap
# through the same list pass; profiles and tasks: PUT vis_state=1 (§5.4).
_add(
    StreamSpec(
        "estimates",
        _A,
        "estimates/estimates",
        "estimates",
        "estimate",
        aliases=("estimateid",),
        event="estimate",
        money_fields=("amount", "discount_total"),
    )
)
_add(
    StreamSpec(
        "invoice_profiles",
        _A,
        "invoice_profiles/invoice_profiles",
        "invoice_profiles",
        "invoice_profile",
        aliases=("profileid",),
        event="recurring",
        money_fields=("amount", "discount_total"),
    )
)
_add(StreamSpec("tasks", _A, "projects/tasks", "tasks", "task", aliases=("taskid",), money_fields=("rate",)))

_add(
    StreamSpec(
        "projects",
        _P,
        "/projects/business/{bid}/projects",
        "projects",
        "project",
        single_path="/projects/business/{bid}/project/{id}",
        updated_field="updated_at",
        vis_state=False,
        delete_mode="hard",
        dt_format=UTC_T,
        event="project",
        default_per_page=30,
    )
)
_add(
    StreamSpec(
        "services",
        _P,
        "/comments/business/{bid}/services",
        "services",
        "service",
        single_path="/comments/business/{bid}/service/{id}",
        updated_field=None,
        dt_format=UTC_T,
        event="service",
        default_per_page=30,
    )
)
_add(
    StreamSpec(
        "time_entries",
        _P,
        "/timetracking/business/{bid}/time_entries",
        "time_entries",
        "time_entry",
        single_path="/timetracking/business/{bid}/time_entries/{id}",
        updated_field="_updated",
        vis_state=False,
        delete_mode="flag",
        dt_format=UTC_Z,
        field_formats={"local_started_at": LOCAL_NAIVE},
        event="time_entry",
        default_per_page=30,
    )
)

_add(
    StreamSpec(
        "chart_of_accounts",
        _L,
        "/accounting/businesses/{uuid}/ledger_accounts/accounts",
        "data",
        "data",
        pk="uuid",
        updated_field="updated_at",
        vis_state=False,
        delete_mode="hard",
        dt_format=UTC_MICRO_Z,
    )
)

# auth family (§3.1 D): {"response": [...], "meta": {page, per_page, total}} without "pages"
_add(
    StreamSpec(
        "team_members",
        "auth",
        "/auth/api/v1/businesses/{bid}/team_members",
        "response",
        "response",
        pk="uuid",
        updated_field="updated_at",
        vis_state=False,
        delete_mode="hard",
        dt_format=UTC_Z,
        single_path="/auth/api/v1/businesses/{bid}/team_members/{id}",
        default_per_page=5,
    )
)

#: streams whose records carry ``lines`` (only with include[]=lines) -> the id field each line repeats
LINE_PARENTS = {
    "invoices": "invoiceid",
    "credit_notes": "creditid",
    "estimates": "estimateid",
    "invoice_profiles": "profileid",
}
#: rider name (the tap's line streams) -> the stream that carries them
LINE_RIDERS = {
    "invoice_lines": "invoices",
    "estimate_lines": "estimates",
    "invoice_profile_lines": "invoice_profiles",
}

# Webhook event prefix -> stream (for auto delivery and event validation)
EVENT_PREFIXES = sorted({s.event for s in STREAMS.values() if s.event} | {"estimate", "recurring"})
EVENT_ACTIONS = ("create", "update", "delete")


def valid_event(name: str) -> bool:
    if name in EVENT_PREFIXES:
        return True
    if name in ("estimate.sendByEmail", "invoice.sendByEmail"):
        return True
    if "." in name:
        prefix, action = name.split(".", 1)
        return prefix in EVENT_PREFIXES and action in EVENT_ACTIONS
    return False


def spec(name: str) -> StreamSpec:
    try:
        return STREAMS[name]
    except KeyError:
        raise KeyError(f"unknown stream {name!r}; known: {sorted(STREAMS)}") from None


ACCOUNTING_BY_PATH = {s.path: s for s in STREAMS.values() if s.family == _A}
