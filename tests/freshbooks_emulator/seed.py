"""Deterministic data generators.

Every record is generated from ``random.Random(f"{seed}/{stream}/{id}")`` plus the account
context, so the same seed (and the same clock at seeding time) gives the same data.  Pass
``now=`` to ``FreshBooksEmulator`` to make the data byte-for-byte identical across runs; with the
default real-time clock, created/updated stamps are spread over the ~400 days before "now" and
therefore shift with the date.

Accounts (fixed for every seed, including "empty"):

=========  ===========  ==========  ====================================  ==============  ========
account    account_id   business_id business_uuid                         name            currency
=========  ===========  ==========  ====================================  ==============  ========
1          ``zK3pQ7``   ``4391201`` ``5b0f2ad1-6c1e-4c59-9a57-3f1e0c2d7a11`` Maple Leaf ...  USD (+CAD clients)
2          ``Rt8vW2``   ``4391202`` ``8e4c7b90-2f3d-4a8e-b1c6-9d0a5e7f3b22`` Northwind ...   CAD (+USD clients)
=========  ===========  ==========  ====================================  ==============  ========

The identity (``users/me``) has id 7734101, identity_id 5501234; it is owner of both and also has
a ``client`` membership of a third business with no ``account_id``.

Seeds:

* ``empty``: the two accounts, no records (and no ledger accounts).
* ``small`` per account: clients 5 (one deleted, one archived), invoices 6 (one deleted, one
  archived; 2-3 lines each; statuses draft/sent/paid/partial; one invoice in the secondary
  currency; one invoice with ``net_paid_amount`` "7.60133524082021936099189318"), payments for
  every paid/partial invoice, expenses 5 (one deleted, one archived), expense categories 4,
  bill vendors 2, bills 3 (one paid with a bill payment, one partial), bill payments, items 3,
  taxes 2, credit notes 2, other incomes 2, staff 2, projects 2, services 2, time entries 4
  (one logged by another team member, one deleted), ledger accounts 12, journal entry details
  derived from invoices/payments/expenses.
  Account 1 additionally holds DST edge records (``emu.seed_info["dst"]`` names their ids):

  - client ``dst_spring_before``: updated 2025-03-09 06:59:30Z -> ``"2025-03-09 01:59:30"`` (EST)
  - client ``dst_spring_after``:  updated 2025-03-09 07:00:00Z -> ``"2025-03-09 03:00:00"`` (EDT)
  - invoice ``dst_fall_edt``: updated 2025-11-02 05:30:00Z -> ``"2025-11-02 01:30:00"`` (EDT)
  - invoice ``dst_fall_est``: updated 2025-11-02 06:30:00Z -> ``"2025-11-02 01:30:00"`` (EST)
  - expense ``dst_fall_edt``/``dst_fall_est``: same two instants as the invoices.

  ``emu.seed_info["deleted"|"archived"][stream][account_id]`` list those records' ids.
* ``demo``: the same shape with ~50-200 records per stream per account (taxes 5, staff 6,
  categories 12, services 12, ledger accounts 24) and no DST specials beyond what the
  random stamps give.
* bulk: ``emu.seed_bulk(stream, n, account_id)`` adds n lazily-materialised records
  (invoices with 2-3 lines each, clients, expenses, payments, items...).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

UTC = UTC
C2 = Decimal("0.01")

ACCOUNTS = [
    {
        "account_id": "zK3pQ7",
        "business_id": 4391201,
        "business_uuid": "5b0f2ad1-6c1e-4c59-9a57-3f1e0c2d7a11",
        "name": "Maple Leaf Design Co.",
        "currency": "USD",
        "alt_currency": "CAD",
        "date_format": "mm/dd/yyyy",
        "timezone": "America/New_York",
    },
    {
        "account_id": "Rt8vW2",
        "business_id": 4391202,
        "business_uuid": "8e4c7b90-2f3d-4a8e-b1c6-9d0a5e7f3b22",
        "name": "Northwind Bookkeeping Ltd.",
        "currency": "CAD",
        "alt_currency": "USD",
        "date_format": "dd/mm/yyyy",
        "timezone": "America/Toronto",
    },
]
IDENTITY = {
    "id": 7734101,
    "identity_id": 5501234,
    "identity_uuid": "0f6a1c2e-8b4d-4e7a-9c3b-2d5e6f708192",
    "first_name": "Morgan",
    "last_name": "Ashby",
    "email": "morgan@mapleleaf.example",
}
OTHER_MEMBER_IDENTITY = 5509876

FIRST = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Isla",
    "Jonas",
    "Kemi",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tariq",
    "Uma",
    "Vik",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Zoë",
    "François",
]
LAST = [
    "Adams",
    "Brown",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Martin",
    "Nguyen",
    "O'Brien",
    "Patel",
    "Quinn",
    "Rossi",
    "Singh",
    "Tanaka",
    "Müller",
    "Walker",
]
ORG = [
    "Acme",
    "Blue Harbor",
    "Cedar",
    "Driftwood",
    "Evergreen",
    "Foxglove",
    "Granite",
    "Harbor Lights",
    "Ironbark",
    "Juniper",
    "Kestrel",
    "Lakeside",
    "Meridian",
    "Northstar",
    "Oakridge",
    "Pinecone",
    "Quarry",
    "Riverbend",
    "Summit",
    "Tidewater",
    "Umbra",
    "Vantage",
    "Willow",
    "Yellowknife",
]
SUFFIX = ["Inc.", "LLC", "Ltd.", "Co.", "Studio", "Partners", "& Sons", "Group"]
CITIES = [
    ("Toronto", "Ontario", "Canada"),
    ("Boston", "Massachusetts", "United States"),
    ("Montréal", "Quebec", "Canada"),
    ("Austin", "Texas", "United States"),
    ("Vancouver", "British Columbia", "Canada"),
    ("Denver", "Colorado", "United States"),
]
LINE_NAMES = [
    ("Design", "Logo design and revisions"),
    ("Consulting", "Strategy session"),
    ("Hosting", "Monthly web hosting"),
    ("Development", "Feature development"),
    ("Copywriting", "Website copy"),
    ("Photography", "Product shoot"),
    ("Support", "Priority support retainer"),
    ("Training", "Team workshop, 1/2 day"),
]
VENDORS = [
    "Staples",
    "Amazon Web Services",
    "Uber",
    "Delta Air Lines",
    "Bell Canada",
    "WeWork",
    "Adobe",
    "Tim Hortons",
    "Home Depot",
    "Shell",
]
CATEGORIES = [
    "Advertising",
    "Car & Truck Expenses",
    "Office Expenses & Postage",
    "Meals & Entertainment",
    "Professional Fees",
    "Rent or Lease",
    "Software",
    "Travel",
    "Utilities",
    "Telephone",
    "Insurance",
    "Bank Fees",
]
PAYMENT_TYPES = ["Check", "Credit Card", "Cash", "Bank Transfer", "PayPal", "2Checkout", "ACH"]
TAXES = [
    ("HST", "13", "123456789RT0001"),
    ("GST", "5", "987654321RT0001"),
    ("PST", "7", None),
    ("Sales Tax", "8.875", None),
    ("VAT", "20", "GB123456789"),
]

LEDGER_CHART = [
    # number, name, type, sub_type, system_account_name, parent_index
    ("1000", "Cash", "asset", "Cash & Bank", "cash", None),
    ("1010", "Checking Account", "asset", "Cash & Bank", None, 0),
    ("1020", "Savings Account", "asset", "Cash & Bank", None, 0),
    ("1200", "Accounts Receivable", "asset", "Accounts Receivable", "accounts_receivable", None),
    ("1500", "Equipment", "asset", "Fixed Assets", None, None),
    ("2000", "Accounts Payable", "liability", "Accounts Payable", "accounts_payable", None),
    ("2100", "Sales Taxes Payable", "liability", "Taxes Payable", "sales_taxes_payable", None),
    ("3000", "Owner's Equity", "equity", "Owner's Equity", "owners_equity", None),
    ("3900", "Retained Earnings", "equity", "Retained Earnings", "retained_earnings", None),
    ("4000", "Sales", "income", "Income", "sales", None),
    ("4010", "Consulting Income", "income", "Income", None, 9),
    ("5000", "Cost of Goods Sold", "expense", "Cost of Goods Sold", "cost_of_goods_sold", None),
    ("6000", "Office Expenses", "expense", "Operating Expense", None, None),
    ("6010", "Software", "expense", "Operating Expense", None, 12),
    ("6020", "Travel", "expense", "Operating Expense", None, 12),
    ("6100", "Advertising", "expense", "Operating Expense", None, None),
    ("6200", "Rent", "expense", "Operating Expense", None, None),
    ("6300", "Utilities", "expense", "Operating Expense", None, None),
    ("6400", "Bank Fees", "expense", "Operating Expense", None, None),
    ("6500", "Insurance", "expense", "Operating Expense", None, None),
    ("6600", "Professional Fees", "expense", "Operating Expense", None, None),
    ("6700", "Meals", "expense", "Operating Expense", None, None),
    ("6800", "Telephone", "expense", "Operating Expense", None, None),
    ("7000", "Interest Income", "income", "Other Income", None, None),
]

# legacy journal-entry accounts used by journal_entry_details: accountid, number, name, type, sub id
JE_ACCOUNTS = {
    "ar": (30001, "1200", "Accounts Receivable", "asset", 31001, "Accounts Receivable"),
    "cash": (30002, "1000", "Cash", "asset", 31002, "Checking Account"),
    "sales": (30003, "4000", "Sales", "income", 31003, "Sales"),
    "expense": (30004, "6000", "Expenses", "expense", 31004, "Office Expenses"),
    "ap": (30005, "2000", "Accounts Payable", "liability", 31005, "Accounts Payable"),
}


def c2(x) -> Decimal:
    return Decimal(x).quantize(C2)


def m(amount, code) -> dict:
    if isinstance(amount, Decimal) and amount.as_tuple().exponent > -2:
        amount = f"{amount:.2f}"
    elif isinstance(amount, int):
        amount = f"{amount}.00"
    return {"amount": str(amount), "code": code}


def dec(money_obj) -> Decimal:
    return Decimal(money_obj["amount"]) if money_obj else Decimal(0)


def det_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rand_amount(rng, lo, hi) -> Decimal:
    return c2(Decimal(rng.randint(int(lo * 100), int(hi * 100))) / 100)


class Ctx:
    """What a generator may know about the account it generates for."""

    def __init__(self, account: dict, ids_fn, get_fn, identity_id: int):
        self.account = account
        self.account_id = account["account_id"]
        self.business_id = account["business_id"]
        self.business_uuid = account["business_uuid"]
        self.currency = account["currency"]
        self.alt_currency = account["alt_currency"]
        self.identity_id = identity_id
        self._ids = ids_fn
        self._get = get_fn

    def ids(self, stream: str) -> list:
        return self._ids(stream)

    def get(self, stream: str, pk):
        return self._get(stream, pk)

    def pick(self, rng, stream: str, default=None):
        ids = self.ids(stream)
        return rng.choice(ids) if ids else default


def _person(rng):
    return rng.choice(FIRST), rng.choice(LAST)


# ---------------------------------------------------------------------------------------------
# generators: gen_<stream>(rng, ctx, pk, created, updated) -> internal record
# ---------------------------------------------------------------------------------------------


def gen_clients(rng, ctx: Ctx, pk, created, updated):
    fname, lname = _person(rng)
    org = f"{rng.choice(ORG)} {rng.choice(SUFFIX)}"
    city, prov, country = rng.choice(CITIES)
    cur = ctx.currency if rng.random() < 0.8 else ctx.alt_currency
    return {
        "id": pk,
        "userid": pk,
        "accounting_systemid": ctx.account_id,
        "organization": org,
        "fname": fname,
        "lname": lname,
        "email": f"{fname.lower()}.{lname.lower().replace(' ', '').replace(chr(39), '')}@example.com",
        "username": None,
        "bus_phone": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        "home_phone": None,
        "mob_phone": "",
        "fax": "",
        "note": None,
        "p_street": f"{rng.randint(1, 999)} {rng.choice(LAST)} St",
        "p_street2": "",
        "p_city": city,
        "p_province": prov,
        "p_code": f"{rng.randint(10000, 99999)}",
        "p_country": country,
        "s_street": "",
        "s_street2": "",
        "s_city": "",
        "s_province": "",
        "s_code": "",
        "s_country": "",
        "currency_code": cur,
        "language": "en",
        "vat_name": None,
        "vat_number": None,
        "company_industry": None,
        "company_size": None,
        "level": 0,
        "role": "client",
        "allow_late_fees": True,
        "allow_late_notifications": True,
        "has_retainer": False,
        "retainer_id": None,
        "last_activity": None,
        "last_login": None,
        "num_logins": 0,
        "pref_email": True,
        "pref_gmail": False,
        "statement_token": None,
        "subdomain": None,
        "direct_link_token": None,
        "uuid": det_uuid(rng),
        "signup_date": created,
        "updated": updated,
        "vis_state": 0,
    }


STATUS_TABLE = {
    # status int, v3_status, display_status, payment_status
    "draft": (1, "draft", "draft", "unpaid"),
    "sent": (2, "sent", "sent", "unpaid"),
    "viewed": (3, "viewed", "viewed", "unpaid"),
    "paid": (4, "paid", "paid", "paid"),
    "partial": (8, "partial", "partial", "partial"),
}


def make_lines(rng, parent_key, pk, code, updated, n=None, tax=True):
    lines = []
    for i in range(n or rng.randint(2, 3)):
        name, desc = rng.choice(LINE_NAMES)
        qty = rng.choice([1, 1, 2, 3, 4, 5, 10])
        unit = rand_amount(rng, 10, 800)
        amount = c2(unit * qty)
        tname, tpct, tnum = rng.choice(TAXES[:3]) if tax and rng.random() < 0.6 else (None, None, None)
        lines.append(
            {
                "lineid": i + 1,
                parent_key: pk,
                "name": name,
                "description": desc,
                "qty": str(qty),
                "unit_cost": m(unit, code),
                "amount": m(amount, code),
                "taxName1": tname or "",
                "taxAmount1": tpct,
                "taxNumber1": tnum or "",
                "taxName2": "",
                "taxAmount2": None,
                "taxNumber2": "",
                "compounded_tax": False,
                "type": 0,
                "expenseid": 0,
                "taskno": i + 1,
                "basecampid": 0,
                "date": None,
                "retainer_id": None,
                "retainer_period_id": None,
                "modern_project_id": None,
                "modern_time_entries": [],
                "updated": updated,
            }
        )
    return lines


def invoice_totals(inv: dict) -> None:
    """amount = sum(line amounts); outstanding = amount - paid."""
    code = inv["currency_code"]
    if inv.get("lines") is not None:
        total = sum((dec(line["amount"]) for line in inv["lines"]), Decimal(0))
        inv["amount"] = m(c2(total), code)
    inv["outstanding"] = m(c2(dec(inv["amount"]) - dec(inv["paid"])), code)


def gen_invoices(rng, ctx: Ctx, pk, created, updated):
    cid = ctx.pick(rng, "clients", 0)
    client = ctx.get("clients", cid) if cid else None
    code = (client or {}).get("currency_code") or ctx.currency
    lines = make_lines(rng, "invoiceid", pk, code, updated)
    total = sum((dec(line["amount"]) for line in lines), Decimal(0))
    status = rng.choices(["draft", "sent", "viewed", "paid", "partial"], [1, 2, 1, 4, 2])[0]
    create_date = (created.astimezone(UTC) - timedelta(days=rng.randint(0, 3))).date()
    terms = rng.choice([0, 15, 30, 45])
    paid = Decimal(0)
    date_paid = None
    if status == "paid":
        paid = total
        date_paid = create_date + timedelta(days=rng.randint(0, terms or 5))
    elif status == "partial":
        paid = c2(total * Decimal(rng.randint(10, 80)) / 100)
        date_paid = None
    st, v3, disp, pay = STATUS_TABLE[status]
    inv = {
        "id": pk,
        "invoiceid": pk,
        "accounting_systemid": ctx.account_id,
        "accountid": ctx.account_id,
        "invoice_number": f"{pk % 1000000:07d}",
        "customerid": cid or 0,
        "ownerid": 1,
        "estimateid": 0,
        "basecampid": 0,
        "sentid": 1 if st > 1 else 0,
        "parent": 0,
        "status": st,
        "v3_status": v3,
        "display_status": disp,
        "payment_status": pay,
        "auto_bill": False,
        "autobill_status": None,
        "dispute_status": None,
        "create_date": create_date,
        "due_date": create_date + timedelta(days=terms),
        "due_offset_days": terms,
        "date_paid": date_paid,
        "generation_date": None,
        "created_at": created,
        "updated": updated,
        "version": updated,
        "currency_code": code,
        "language": "en",
        "terms": None,
        "notes": None,
        "description": "",
        "po_number": None,
        "template": "clean-grouped",
        "show_attachments": True,
        "organization": (client or {}).get("organization", ""),
        "fname": (client or {}).get("fname", ""),
        "lname": (client or {}).get("lname", ""),
        "address": "",
        "street": "",
        "street2": "",
        "city": "",
        "province": "",
        "code": "",
        "country": "",
        "amount": m(c2(total), code),
        "paid": m(paid, code),
        "outstanding": m(c2(total - paid), code),
        "discount_total": m(Decimal(0), code),
        "discount_value": "0",
        "deposit_amount": None,
        "deposit_percentage": None,
        "deposit_status": "none",
        "net_paid_amount": m(paid, code),
        "vis_state": 0,
        "ext_archive": 0,
        "uuid": det_uuid(rng),
        "last_order_status": None,
        "return_uri": None,
        "lines": lines,
    }
    return inv


def gen_payments(rng, ctx: Ctx, pk, created, updated):
    iid = ctx.pick(rng, "invoices", 0)
    inv = ctx.get("invoices", iid) if iid else None
    code = (inv or {}).get("currency_code") or ctx.currency
    return {
        "id": pk,
        "logid": pk,
        "accounting_systemid": ctx.account_id,
        "invoiceid": iid or None,
        "clientid": (inv or {}).get("customerid"),
        "creditid": None,
        "overpaymentid": None,
        "bulk_paymentid": None,
        "amount": m(rand_amount(rng, 20, 900), code),
        "date": created.astimezone(UTC).date(),
        "type": rng.choice(PAYMENT_TYPES),
        "note": "",
        "from_credit": False,
        "gateway": None,
        "transactionid": None,
        "orderid": None,
        "send_client_notification": False,
        "updated": updated,
        "vis_state": 0,
    }


def gen_expense_categories(rng, _ctx: Ctx, pk, created, updated):
    return {
        "id": pk,
        "categoryid": pk,
        "category": rng.choice(CATEGORIES),
        "parentid": None,
        "is_cogs": False,
        "is_editable": False,
        "transaction_posted": rng.random() < 0.5,
        "created_at": created,
        "updated_at": updated,
        "vis_state": 0,
    }


def gen_expenses(rng, ctx: Ctx, pk, created, updated):
    code = ctx.currency if rng.random() < 0.85 else ctx.alt_currency
    amount = rand_amount(rng, 3, 1500)
    tax = rng.random() < 0.5
    tname, tpct, _ = rng.choice(TAXES[:3])
    tax_amt = c2(amount * Decimal(tpct) / 100) if tax else None
    project = ctx.pick(rng, "projects", 0) if rng.random() < 0.3 else 0
    client = ctx.pick(rng, "clients", 0) if rng.random() < 0.4 else 0
    return {
        "id": pk,
        "expenseid": pk,
        "accounting_systemid": ctx.account_id,
        "amount": m(amount, code),
        "categoryid": ctx.pick(rng, "expense_categories", 0),
        "clientid": client,
        "projectid": project,
        "staffid": ctx.pick(rng, "staff", 1) or 1,
        "invoiceid": None,
        "accountid": None,
        "transactionid": None,
        "profileid": None,
        "date": created.astimezone(UTC).date(),
        "vendor": rng.choice(VENDORS),
        "notes": "",
        "status": 0,
        "markup_percent": "0",
        "has_receipt": rng.random() < 0.4,
        "include_receipt": False,
        "is_cogs": False,
        "isduplicate": False,
        "bank_name": "",
        "account_name": "",
        "ext_accountid": None,
        "ext_invoiceid": 0,
        "ext_systemid": 0,
        "background_jobid": None,
        "potential_bill_payment": False,
        "compounded_tax": False,
        "taxName1": tname if tax else None,
        "taxPercent1": tpct if tax else None,
        "taxAmount1": m(tax_amt, code) if tax else None,
        "taxName2": None,
        "taxPercent2": None,
        "taxAmount2": None,
        "updated": updated,
        "version": updated,
        "vis_state": 0,
    }


def gen_bill_vendors(rng, ctx: Ctx, pk, created, updated):
    fname, lname = _person(rng)
    city, prov, country = rng.choice(CITIES)
    code = ctx.currency if rng.random() < 0.8 else ctx.alt_currency
    return {
        "vendorid": pk,
        "vendor_name": f"{rng.choice(ORG)} Supply {rng.choice(SUFFIX)}",
        "account_number": str(rng.randint(100000, 999999)),
        "primary_contact_first_name": fname,
        "primary_contact_last_name": lname,
        "primary_contact_email": f"ap@{rng.choice(ORG).lower().replace(' ', '')}.example",
        "street": f"{rng.randint(1, 999)} Industrial Rd",
        "street2": "",
        "city": city,
        "province": prov,
        "postal_code": f"{rng.randint(10000, 99999)}",
        "country": country,
        "phone": f"555-{rng.randint(1000, 9999)}",
        "website": None,
        "currency_code": code,
        "language": "en",
        "is_1099": rng.random() < 0.2,
        "note": None,
        "outstanding_balance": [],
        "overdue_balance": [],
        "tax_defaults": [],
        "created_at": created,
        "updated_at": updated,
        "vis_state": 0,
    }


def bill_totals(bill: dict) -> None:
    code = bill["currency_code"]
    amount = sum((dec(line["amount"]) for line in bill["lines"]), Decimal(0))
    tax = sum((dec(line["tax_amount1"]) + dec(line["tax_amount2"]) for line in bill["lines"]), Decimal(0))
    bill["amount"] = m(c2(amount), code)
    bill["tax_amount"] = m(c2(tax), code)
    bill["total_amount"] = m(c2(amount + tax), code)
    bill["outstanding"] = m(c2(amount + tax - dec(bill["paid"])), code)
    paid = dec(bill["paid"])
    bill["status"] = "paid" if paid >= amount + tax and paid > 0 else ("partial" if paid > 0 else "unpaid")


def gen_bills(rng, ctx: Ctx, pk, created, updated):
    vid = ctx.pick(rng, "bill_vendors", 0)
    vendor = ctx.get("bill_vendors", vid) if vid else None
    code = (vendor or {}).get("currency_code") or ctx.currency
    lines = []
    for i in range(rng.randint(1, 3)):
        cat = ctx.pick(rng, "expense_categories", 0)
        catrec = ctx.get("expense_categories", cat) if cat else None
        qty = rng.randint(1, 5)
        unit = rand_amount(rng, 5, 400)
        amount = c2(unit * qty)
        tax = rng.random() < 0.5
        tname, tpct, _ = rng.choice(TAXES[:3])
        lines.append(
            {
                "id": pk * 10 + i,
                "list_index": i + 1,
                "categoryid": cat,
                "category": {
                    "categoryid": cat,
                    "category": (catrec or {}).get("category", "Office"),
                    "is_cogs": False,
                    "parentid": None,
                },
                "description": rng.choice(LINE_NAMES)[1],
                "quantity": str(qty),
                "unit_cost": m(unit, code),
                "amount": m(amount, code),
                "total_amount": m(c2(amount * (1 + Decimal(tpct) / 100)) if tax else amount, code),
                "tax_name1": tname if tax else None,
                "tax_percent1": tpct if tax else None,
                "tax_authorityid1": None,
                "tax_amount1": m(c2(amount * Decimal(tpct) / 100), code) if tax else None,
                "tax_name2": None,
                "tax_percent2": None,
                "tax_authorityid2": None,
                "tax_amount2": None,
            }
        )
    issue = (created.astimezone(UTC) - timedelta(days=rng.randint(0, 5))).date()
    off = rng.choice([0, 15, 30])
    bill = {
        "id": pk,
        "vendorid": vid,
        "bill_number": f"B-{pk}",
        "issue_date": issue,
        "due_date": issue + timedelta(days=off),
        "due_offset_days": off,
        "currency_code": code,
        "language": "en",
        "overall_category": lines[0]["category"]["category"],
        "overall_description": lines[0]["description"],
        "attachment": None,
        "paid": m(0, code),
        "lines": lines,
        "bill_payments": [],
        "created_at": created,
        "updated_at": updated,
        "vis_state": 0,
    }
    bill_totals(bill)
    return bill


def gen_bill_payments(rng, ctx: Ctx, pk, created, _updated):
    bid = ctx.pick(rng, "bills", 0)
    bill = ctx.get("bills", bid) if bid else None
    code = (bill or {}).get("currency_code") or ctx.currency
    return {
        "id": pk,
        "billid": bid,
        "amount": m(rand_amount(rng, 5, 300), code),
        "paid_date": created.astimezone(UTC).date(),
        "payment_type": rng.choice(["Check", "Credit", "Cash"]),
        "note": "",
        "matched_with_expense": False,
        "vis_state": 0,
    }


def gen_items(rng, ctx: Ctx, pk, _created, updated):
    name, desc = rng.choice(LINE_NAMES)
    inv = rng.random() < 0.3
    return {
        "id": pk,
        "itemid": pk,
        "accounting_systemid": ctx.account_id,
        "name": f"{name} {rng.randint(1, 99)}",
        "description": desc,
        "sku": f"SKU-{pk}",
        "qty": str(rng.randint(0, 20)) if inv else "0",
        "inventory": str(rng.randint(0, 50)) if inv else None,
        "unit_cost": m(rand_amount(rng, 5, 500), ctx.currency),
        "tax1": ctx.pick(rng, "taxes", 0) or 0,
        "tax2": 0,
        "updated": updated,
        "vis_state": 0,
    }


def gen_taxes(rng, ctx: Ctx, pk, _created, updated):
    name, amt, num = rng.choice(TAXES)
    return {
        "id": pk,
        "taxid": pk,
        "accounting_systemid": ctx.account_id,
        "name": name,
        "amount": amt,
        "compound": False,
        "number": num,
        "updated": updated,
    }


def gen_credit_notes(rng, ctx: Ctx, pk, created, updated):
    cid = ctx.pick(rng, "clients", 0)
    client = ctx.get("clients", cid) if cid else None
    code = (client or {}).get("currency_code") or ctx.currency
    lines = make_lines(rng, "creditid", pk, code, updated, n=rng.randint(1, 2), tax=False)
    total = c2(sum((dec(line["amount"]) for line in lines), Decimal(0)))
    return {
        "id": pk,
        "creditid": pk,
        "accounting_systemid": ctx.account_id,
        "clientid": cid,
        "credit_number": f"CN-{pk}",
        "credit_type": rng.choice(["prepayment", "refund", "goodwill"]),
        "create_date": created.astimezone(UTC).date(),
        "currency_code": code,
        "language": "en",
        "amount": m(total, code),
        "paid": m(0, code),
        "display_status": "sent",
        "payment_status": "unapplied",
        "status": 2,
        "organization": (client or {}).get("organization", ""),
        "notes": "",
        "terms": "",
        "created_at": created,
        "updated": updated,
        "vis_state": 0,
        "lines": lines,
    }


def gen_other_incomes(rng, ctx: Ctx, pk, created, updated):
    amount = rand_amount(rng, 10, 2000)
    return {
        "incomeid": pk,
        "amount": m(amount, ctx.currency),
        "category_name": rng.choice(["online_sales", "in_person_sales", "rentals", "royalties", "other"]),
        "date": created.astimezone(UTC).date(),
        "payment_type": rng.choice(PAYMENT_TYPES),
        "source": rng.choice(["Etsy", "Shopify", "Amazon", "Farmers market"]),
        "sourceid": None,
        "note": "",
        "taxes": [{"amount": str(rand_amount(rng, 1, 40)), "name": "HST"}] if rng.random() < 0.5 else [],
        "userid": 1,
        "created_at": created,
        "updated_at": updated,
        "vis_state": 0,
    }


def gen_staff(rng, ctx: Ctx, pk, created, updated):
    fname, lname = _person(rng)
    return {
        "id": pk,
        "staffid": pk,
        "accounting_systemid": ctx.account_id,
        "fname": fname,
        "lname": lname,
        "email": f"{fname.lower()}@staff.example",
        "username": f"{fname.lower()}{pk}",
        "display_name": f"{fname} {lname}",
        "bus_phone": "",
        "mob_phone": "",
        "home_phone": "",
        "fax": "",
        "note": None,
        "level": 1,
        "rate": str(rand_amount(rng, 40, 150)),
        "currency_code": ctx.currency,
        "language": "en",
        "num_logins": rng.randint(0, 200),
        "last_login": None,
        "signup_date": created,
        "updated": updated,
        "vis_state": 0,
    }


def gen_projects(rng, ctx: Ctx, pk, created, updated):
    fixed = rng.random() < 0.4
    return {
        "id": pk,
        "title": f"{rng.choice(ORG)} {rng.choice(['website', 'rebrand', 'audit', 'app', 'campaign'])}",
        "description": "",
        "client_id": ctx.pick(rng, "clients", None),
        "internal": False,
        "budget": rng.choice([None, 36000, 72000]),
        "fixed_price": str(rand_amount(rng, 500, 9000)) if fixed else None,
        "rate": None if fixed else str(rand_amount(rng, 50, 150)),
        "billing_method": "project_rate" if not fixed else None,
        "project_type": "fixed_price" if fixed else "hourly_rate",
        "project_manager_id": ctx.identity_id,
        "active": True,
        "complete": rng.random() < 0.2,
        "sample": False,
        "due_date": (created.astimezone(UTC) + timedelta(days=rng.randint(10, 90))).date()
        if rng.random() < 0.6
        else None,
        "created_at": created,
        "updated_at": updated,
        "logged_duration": rng.randint(0, 200) * 900,
        "services": [],
        "billed_amount": "0.0",
        "billed_status": "unbilled",
        "retainer_id": None,
        "expense_markup": 0,
        "group_id": 9000 + pk,
        "is_project_manager": True,
    }


def gen_services(rng, ctx: Ctx, pk, _created, _updated):
    return {
        "id": pk,
        "business_id": ctx.business_id,
        "name": rng.choice(["Design", "Development", "Consulting", "Meetings", "Research", "QA"]),
        "billable": rng.random() < 0.8,
        "vis_state": 0,
    }


def gen_time_entries(rng, ctx: Ctx, pk, created, updated):
    started = created
    tz = "America/Toronto" if ctx.currency == "CAD" else "America/New_York"
    project = ctx.pick(rng, "projects", None)
    proj = ctx.get("projects", project) if project else None
    return {
        "id": pk,
        "identity_id": ctx.identity_id,
        "is_logged": True,
        "started_at": started,
        "created_at": created,
        "local_started_at": started,
        "local_timezone": tz,
        "duration": rng.randint(1, 32) * 900,
        "client_id": (proj or {}).get("client_id"),
        "project_id": project,
        "service_id": ctx.pick(rng, "services", None),
        "task_id": None,
        "note": rng.choice(["", "Call with client", "Wireframes", "Bug fixing", "Review"]),
        "active": True,
        "billable": True,
        "billed": rng.random() < 0.3,
        "internal": False,
        "retainer_id": None,
        "pending_client": None,
        "pending_project": None,
        "pending_task": None,
        "timer": None,
        "_updated": updated,
        "_deleted": False,
    }


def _billing_document(rng, ctx: Ctx, pk, parent_key, created, updated):
    """The invoice-like core of estimates and recurring profiles (client, currency, lines, total)."""
    cid = ctx.pick(rng, "clients", 0)
    client = ctx.get("clients", cid) if cid else None
    code = (client or {}).get("currency_code") or ctx.currency
    lines = make_lines(rng, parent_key, pk, code, updated)
    total = c2(sum((dec(line["amount"]) for line in lines), Decimal(0)))
    return {
        "id": pk,
        parent_key: pk,
        "accounting_systemid": ctx.account_id,
        "accountid": ctx.account_id,
        "customerid": cid or 0,
        "ownerid": 1,
        "organization": (client or {}).get("organization", ""),
        "fname": (client or {}).get("fname", ""),
        "lname": (client or {}).get("lname", ""),
        "currency_code": code,
        "language": "en",
        "po_number": None,
        "terms": None,
        "notes": None,
        "description": "",
        "address": "",
        "street": "",
        "street2": "",
        "city": "",
        "province": "",
        "code": "",
        "country": "",
        "vat_name": None,
        "vat_number": None,
        "template": "clean-grouped",
        "create_date": (created.astimezone(UTC) - timedelta(days=rng.randint(0, 3))).date(),
        "discount_value": "0",
        "amount": m(total, code),
        "discount_total": m(Decimal(0), code),
        "uuid": det_uuid(rng),
        "created_at": created,
        "updated": updated,
        "vis_state": 0,
        "lines": lines,
    }


ESTIMATE_STATUS = [  # status int, ui_status, display_status, accepted, invoiced
    (1, "draft", "draft", False, False),
    (2, "sent", "sent", False, False),
    (3, "viewed", "viewed", False, False),
    (4, "accepted", "accepted", True, False),
    (5, "declined", "declined", False, False),
    (6, "invoiced", "invoiced", True, True),
]


def gen_estimates(rng, ctx: Ctx, pk, created, updated):
    est = _billing_document(rng, ctx, pk, "estimateid", created, updated)
    st, ui, disp, accepted, invoiced = rng.choice(ESTIMATE_STATUS)
    est.update(
        {
            "estimate_number": f"E-{pk % 1000000:06d}",
            "status": st,
            "ui_status": ui,
            "display_status": disp,
            "reply_status": None,
            "accepted": accepted,
            "invoiced": invoiced,
            "invoiceid": ctx.pick(rng, "invoices", None) if invoiced else None,
        }
    )
    return est


def gen_invoice_profiles(rng, ctx: Ctx, pk, created, updated):
    prof = _billing_document(rng, ctx, pk, "profileid", created, updated)
    occurrences = rng.choice([0, 6, 12, 24])
    prof.update(
        {
            "frequency": rng.choice(["1w", "2w", "1m", "3m", "1y"]),
            "occurrences": occurrences,
            "occurrences_to_date": rng.randint(0, occurrences or 30),
            "status": 1,
            "display_status": "active",
            "due_offset_days": rng.choice([0, 15, 30]),
            "next_issue_date": (created.astimezone(UTC) + timedelta(days=rng.randint(1, 60))).date(),
            "auto_bill": rng.random() < 0.3,
            "send_email": True,
            "disable": rng.random() < 0.1,
        }
    )
    return prof


def gen_tasks(rng, ctx: Ctx, pk, _created, updated):
    name, desc = rng.choice(LINE_NAMES)
    return {
        "id": pk,
        "taskid": pk,
        "name": name,
        "tname": name,
        "description": desc,
        "tdesc": desc,
        "billable": rng.random() < 0.8,
        "rate": m(rand_amount(rng, 40, 250), ctx.currency),
        "tax1": ctx.pick(rng, "taxes", 0) or 0,
        "tax2": 0,
        "updated": updated,
        "vis_state": 0,
    }


TEAM_ROLES = ["business_partner", "business_manager", "business_employee", "business_accountant"]


def gen_team_members(rng, ctx: Ctx, pk, created, updated):
    fname, lname = _person(rng)
    city, prov, country = rng.choice(CITIES)
    login = rng.random() < 0.7
    return {
        "uuid": pk,
        "first_name": fname,
        "middle_name": None,
        "last_name": lname,
        "email": f"{fname.lower()}.{pk[:6]}@team.example",
        "job_title": rng.choice(["Designer", "Developer", "Bookkeeper", "PM"]),
        "street_1": f"{rng.randint(1, 999)} Queen St",
        "street_2": None,
        "city": city,
        "province": prov,
        "country": country,
        "postal_code": f"{rng.randint(10000, 99999)}",
        "phone_number": None,
        "business_id": ctx.business_id,
        "business_role_name": rng.choice(TEAM_ROLES),
        "active": True,
        "identity_id": rng.randint(5600000, 5699999) if login else None,
        "invitation_date_accepted": created + timedelta(hours=rng.randint(1, 72)) if login else None,
        "created_at": created,
        "updated_at": updated,
    }


def gen_journal_entry_details(rng, ctx: Ctx, pk, created, _updated):
    acct = JE_ACCOUNTS[rng.choice(list(JE_ACCOUNTS))]
    amt = rand_amount(rng, 5, 500)
    return je_detail(
        ctx,
        pk,
        acct,
        created.astimezone(UTC).date(),
        debit=amt,
        credit=None,
        balance=amt,
        code=ctx.currency,
        name="Journal Entry",
        detail_type="journal_entry",
        entry={"entryid": pk, "id": pk},
    )


def je_detail(ctx, pk, acct, d, debit, credit, balance, code, name, detail_type, entry):
    accountid, number, aname, atype, subid, subname = acct
    base_entry = {
        "entryid": None,
        "id": None,
        "clientid": None,
        "invoiceid": None,
        "expenseid": None,
        "incomeid": None,
        "creditid": None,
        "paymentid": None,
        "categoryid": None,
    }
    base_entry.update(entry)
    return {
        "id": pk,
        "detailid": pk,
        "accounting_systemid": ctx.account_id,
        "name": name,
        "description": name,
        "detail_type": detail_type,
        "user_entered_date": d,
        "currency_code": code,
        "debit": m(debit, code) if debit is not None else None,
        "credit": m(credit, code) if credit is not None else None,
        "balance": m(balance, code),
        "account": {
            "account_name": aname,
            "account_number": number,
            "account_type": atype,
            "accountid": accountid,
            "id": accountid,
            "accounting_systemid": ctx.account_id,
        },
        "sub_account": {
            "account_sub_name": subname,
            "account_sub_number": number,
            "id": subid,
            "sub_accountid": subid,
            "parentid": accountid,
        },
        "entry": base_entry,
    }


def gen_chart_of_accounts(rng, _ctx: Ctx, pk, _created, updated):
    return {
        "uuid": pk,
        "name": "Account",
        "number": str(rng.randint(1000, 9999)),
        "description": "",
        "type": "asset",
        "sub_type": "Cash & Bank",
        "parent_account": None,
        "sub_accounts": [],
        "auto_created": False,
        "state": "active",
        "updated_at": updated,
        "category_id": None,
        "jea_id": None,
        "jesa_id": None,
    }


GENERATORS = {name[4:]: fn for name, fn in globals().items() if name.startswith("gen_")}

# id counters: ids are unique per stream across accounts (like FreshBooks)
ID_BASE = {
    "clients": 100001,
    "invoices": 200001,
    "payments": 300001,
    "expenses": 400001,
    "expense_categories": 5001,
    "bills": 600001,
    "bill_payments": 650001,
    "bill_vendors": 700001,
    "items": 800001,
    "taxes": 8001,
    "credit_notes": 850001,
    "other_incomes": 900001,
    "staff": 11,
    "journal_entry_details": 1000001,
    "projects": 1100001,
    "services": 1200001,
    "time_entries": 1300001,
    "estimates": 1400001,
    "invoice_profiles": 1500001,
    "tasks": 1600001,
}


def spread(rng: random.Random, now: datetime, days: int = 400):
    """(created, updated) spread over the `days` before now, at second precision."""
    created = now - timedelta(seconds=rng.randint(0, days * 86400))
    created = created.replace(microsecond=0)
    gap = (now - created).total_seconds()
    updated = (
        created
        if rng.random() < 0.5
        else created + timedelta(seconds=rng.randint(0, int(min(gap, 60 * 86400))))
    )
    return created, updated.replace(microsecond=0)


SIZES = {
    "small": {
        "expense_categories": 4,
        "taxes": 2,
        "staff": 2,
        "clients": 5,
        "services": 2,
        "projects": 2,
        "items": 3,
        "invoices": 6,
        "expenses": 5,
        "bill_vendors": 2,
        "bills": 3,
        "credit_notes": 2,
        "other_incomes": 2,
        "time_entries": 4,
        "ledger": 12,
        "estimates": 4,
        "invoice_profiles": 3,
        "tasks": 3,
        "team_members": 3,
    },
    "demo": {
        "expense_categories": 12,
        "taxes": 5,
        "staff": 6,
        "clients": 60,
        "services": 12,
        "projects": 50,
        "items": 50,
        "invoices": 200,
        "expenses": 150,
        "bill_vendors": 30,
        "bills": 60,
        "credit_notes": 50,
        "other_incomes": 50,
        "time_entries": 200,
        "ledger": 24,
        "estimates": 40,
        "invoice_profiles": 15,
        "tasks": 20,
        "team_members": 8,
    },
}
ORDER = [
    "expense_categories",
    "taxes",
    "staff",
    "clients",
    "services",
    "projects",
    "items",
    "invoices",
    "expenses",
    "bill_vendors",
    "bills",
    "credit_notes",
    "other_incomes",
    "time_entries",
]


def seed_data(emu, seed_name: str) -> dict:
    """Fill the emulator with the named seed; returns seed_info (notable ids)."""
    info = {"seed": seed_name, "deleted": {}, "archived": {}, "dst": {}}
    if seed_name == "empty":
        return info
    if seed_name not in SIZES:
        raise ValueError(f"unknown seed {seed_name!r}: use empty, small or demo")
    sizes = SIZES[seed_name]
    now = emu.now().replace(microsecond=0)
    rng = random.Random(f"{emu.seed}/spread")
    store = emu.store

    def note(kind, stream, acct, pk):
        info[kind].setdefault(stream, {}).setdefault(acct, []).append(pk)

    for acct_index, account in enumerate(ACCOUNTS):
        acct = account["account_id"]
        for stream in ORDER:
            n = sizes[stream]
            for i in range(n):
                created, updated = spread(rng, now)
                rec = store.create(stream, acct, {}, created=created, updated=updated, notify=False)
                pk = rec[emu.spec(stream).pk]
                if stream == "invoices":
                    _seed_invoice_payments(emu, acct, rec, rng, now)
                if stream == "bills":
                    _seed_bill_payments(emu, acct, rec, rng, now)
                if stream == "time_entries" and i % 4 == 1:
                    store.update(
                        stream, acct, pk, {"identity_id": OTHER_MEMBER_IDENTITY}, bump=False, notify=False
                    )
        _seed_ledger(emu, account, sizes["ledger"], now)
        _seed_sales_and_team(emu, account, sizes, now, note)
        if seed_name == "small":
            _small_specials(emu, account, acct_index, note, info)
        else:
            # a few deleted / archived records in demo too
            for stream in ("clients", "invoices", "expenses", "items", "payments"):
                ids = store.ids(stream, acct)
                for pk in ids[3::25]:
                    emu.delete(stream, acct, pk)
                    note("deleted", stream, acct, pk)
                for pk in ids[7::40]:
                    emu.archive(stream, acct, pk)
                    note("archived", stream, acct, pk)
        _seed_journal_entries(emu, account)
    return info


#: seeded after the original streams, from their own random stream, so adding them left every
#: other record of every seed unchanged
LATER_ORDER = ["estimates", "invoice_profiles", "tasks", "team_members"]


def _seed_sales_and_team(emu, account, sizes, now, note):
    """Estimates, recurring profiles, tasks, team members; in each, one record deleted (team: one
    member deactivated) and, for estimates, one archived."""
    acct = account["account_id"]
    rng = random.Random(f"{emu.seed}/spread/later/{acct}")
    store = emu.store
    for stream in LATER_ORDER:
        for _ in range(sizes[stream]):
            created, updated = spread(rng, now)
            store.create(stream, acct, {}, created=created, updated=updated, notify=False)
        ids = store.ids(stream, acct)
        if stream == "team_members":
            store.update(stream, acct, ids[-1], {"active": False}, bump=False, notify=False)
            continue
        emu.delete(stream, acct, ids[1])
        note("deleted", stream, acct, ids[1])
        if stream == "estimates":
            emu.archive(stream, acct, ids[2])
            note("archived", stream, acct, ids[2])


def _seed_invoice_payments(emu, acct, inv, rng, now):
    paid = dec(inv["paid"])
    if paid <= 0:
        return
    when = datetime.combine(inv["date_paid"] or inv["create_date"], datetime.min.time(), UTC) + timedelta(
        hours=rng.randint(9, 20)
    )
    when = min(max(when, inv["created_at"]), now)
    emu.store.create(
        "payments",
        acct,
        {
            "invoiceid": inv["id"],
            "clientid": inv["customerid"],
            "amount": m(paid, inv["currency_code"]),
            "date": when.date(),
            "type": rng.choice(PAYMENT_TYPES),
        },
        created=when,
        updated=when,
        notify=False,
    )


def _seed_bill_payments(emu, acct, bill, rng, now):
    r = rng.random()
    if r < 0.4:
        return
    total = dec(bill["total_amount"])
    paid = total if r > 0.7 else c2(total * Decimal(rng.randint(20, 80)) / 100)
    when = min(bill["created_at"] + timedelta(days=rng.randint(0, 20)), now)
    emu.store.create(
        "bill_payments",
        acct,
        {
            "billid": bill["id"],
            "amount": m(paid, bill["currency_code"]),
            "paid_date": when.date(),
        },
        created=when,
        updated=when,
        notify=False,
    )
    emu.store.update(
        "bills", acct, bill["id"], {"paid": m(paid, bill["currency_code"])}, bump=False, notify=False
    )


def _seed_ledger(emu, account, n, now):
    rng = random.Random(f"{emu.seed}/ledger/{account['account_id']}")
    chart = LEDGER_CHART[:n]
    uuids = [det_uuid(rng) for _ in chart]
    for i, (number, name, typ, sub_type, sysname, parent) in enumerate(chart):
        rec = {
            "uuid": uuids[i],
            "name": name,
            "number": number,
            "description": f"{name} account",
            "type": typ,
            "sub_type": sub_type,
            "parent_account": uuids[parent] if parent is not None and parent < len(chart) else None,
            "sub_accounts": [uuids[j] for j, row in enumerate(chart) if row[5] == i],
            "auto_created": sysname is not None,
            "state": "active",
            "updated_at": (
                now
                - timedelta(
                    days=rng.randint(1, 390),
                    seconds=rng.randint(0, 86399),
                    microseconds=rng.randint(0, 999999),
                )
            ),
            "category_id": rng.randint(1, 40) if typ == "expense" else None,
            "jea_id": 30000 + i if sysname else None,
            "jesa_id": 31000 + i,
        }
        if sysname:
            rec["system_account_name"] = sysname
        emu.store.insert("chart_of_accounts", account["account_id"], rec)


def _seed_journal_entries(emu, account):
    """Double-entry details for every sent invoice, payment and expense (GET-only stream)."""
    acct = account["account_id"]
    store = emu.store
    ctx = store.ctx(acct)
    rows = []
    for pk in store.ids("invoices", acct):
        inv = store.get("invoices", acct, pk)
        if inv["status"] == 1:
            continue
        amt, code, d = dec(inv["amount"]), inv["currency_code"], inv["create_date"]
        name = f"Invoice {inv['invoice_number']}"
        ent = {"invoiceid": pk, "clientid": inv["customerid"], "entryid": 50000 + pk % 100000}
        rows.append((d, "ar", amt, None, code, name, "sales", ent))
        rows.append((d, "sales", None, amt, code, name, "sales", ent))
    for pk in store.ids("payments", acct):
        p = store.get("payments", acct, pk)
        amt, code, d = dec(p["amount"]), p["amount"]["code"], p["date"]
        ent = {
            "paymentid": pk,
            "invoiceid": p["invoiceid"],
            "clientid": p["clientid"],
            "entryid": 60000 + pk % 100000,
        }
        rows.append((d, "cash", amt, None, code, "Payment", "payment", ent))
        rows.append((d, "ar", None, amt, code, "Payment", "payment", ent))
    for pk in store.ids("expenses", acct):
        e = store.get("expenses", acct, pk)
        amt, code, d = dec(e["amount"]), e["amount"]["code"], e["date"]
        ent = {"expenseid": pk, "categoryid": e["categoryid"], "entryid": 70000 + pk % 100000}
        rows.append((d, "expense", amt, None, code, "Expense", "expense", ent))
        rows.append((d, "cash", None, amt, code, "Expense", "expense", ent))
    rows.sort(key=lambda r: (r[0], r[6], r[7]["entryid"]))
    balances: dict = {}
    for d, key, debit, credit, code, name, dtype, ent in rows:
        bal = balances.get((key, code), Decimal(0)) + (debit or 0) - (credit or 0)
        balances[(key, code)] = bal
        ent = dict(ent, id=ent["entryid"])
        pk = store.next_id("journal_entry_details")
        store.insert(
            "journal_entry_details",
            acct,
            je_detail(ctx, pk, JE_ACCOUNTS[key], d, debit, credit, c2(bal), code, name, dtype, ent),
        )


def _small_specials(emu, account, acct_index, note, info):
    acct = account["account_id"]
    store = emu.store
    for stream in ("clients", "invoices", "expenses"):
        ids = store.ids(stream, acct)
        emu.delete(stream, acct, ids[1])
        note("deleted", stream, acct, ids[1])
        emu.archive(stream, acct, ids[2])
        note("archived", stream, acct, ids[2])
    # one invoice with a long-precision net_paid_amount, one in the secondary currency
    inv_ids = store.ids("invoices", acct)
    inv = store.get("invoices", acct, inv_ids[0])
    store.update(
        "invoices",
        acct,
        inv_ids[0],
        {"net_paid_amount": {"amount": "7.60133524082021936099189318", "code": inv["currency_code"]}},
        bump=False,
        notify=False,
    )
    if not any(store.get("invoices", acct, i)["currency_code"] == account["alt_currency"] for i in inv_ids):
        alt = store.get("invoices", acct, inv_ids[3])
        upd = {"currency_code": account["alt_currency"]}
        lines = [
            dict(
                line,
                unit_cost=dict(line["unit_cost"], code=account["alt_currency"]),
                amount=dict(line["amount"], code=account["alt_currency"]),
            )
            for line in alt["lines"]
        ]
        upd["lines"] = lines
        upd["paid"] = dict(alt["paid"], code=account["alt_currency"])
        upd["net_paid_amount"] = dict(alt["net_paid_amount"], code=account["alt_currency"])
        upd["discount_total"] = dict(alt["discount_total"], code=account["alt_currency"])
        store.update("invoices", acct, inv_ids[3], upd, bump=False, notify=False)
    # a deleted time entry
    te = store.ids("time_entries", acct)
    emu.delete("time_entries", acct, te[-1])
    note("deleted", "time_entries", acct, te[-1])
    if acct_index != 0:
        return
    # DST edge records (account 1 only)
    spring_before = datetime(2025, 3, 9, 6, 59, 30, tzinfo=UTC)  # 01:59:30 EST
    spring_after = datetime(2025, 3, 9, 7, 0, 0, tzinfo=UTC)  # 03:00:00 EDT
    fall_edt = datetime(2025, 11, 2, 5, 30, 0, tzinfo=UTC)  # 01:30:00 EDT
    fall_est = datetime(2025, 11, 2, 6, 30, 0, tzinfo=UTC)  # 01:30:00 EST
    dst = info["dst"]
    for label, stream, ts in (
        ("dst_spring_before", "clients", spring_before),
        ("dst_spring_after", "clients", spring_after),
        ("dst_fall_edt", "invoices", fall_edt),
        ("dst_fall_est", "invoices", fall_est),
        ("dst_fall_edt", "expenses", fall_edt),
        ("dst_fall_est", "expenses", fall_est),
    ):
        created = ts - timedelta(days=3)
        rec = store.create(stream, acct, {}, created=created, updated=ts, notify=False)
        dst.setdefault(stream, {})[label] = rec[emu.spec(stream).pk]
        if stream == "invoices":
            _seed_invoice_payments(emu, acct, rec, random.Random(f"{emu.seed}/{label}"), created)
