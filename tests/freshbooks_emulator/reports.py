"""FreshBooks' accounting reports, computed from the emulator's own records.

``GET /accounting/account/{id}/reports/accounting/{name}`` -> ``{"response": {"result": {key: {...}}}}``.

* ``profitloss_entity`` (key ``profitloss``; shape after freshbooks-api.md §3.2: ``cash_based``,
  ``currency_code``, ``dates``, ``start_date``, ``end_date``, ``income[]`` / ``expenses[]`` trees
  of ``{description, entry_type, data[M], total M, children[]}``): accrual basis; income = sent
  invoices created in the period plus other income dated in it, expenses by category.
* ``taxsummary`` (key ``taxsummary``; fields UNCONFIRMED): per tax name, the taxable line amounts
  and the tax on them, of sent invoices created in the period.
* ``accounts_aging`` (key ``accounts_aging``; path and fields UNCONFIRMED): per client, the
  outstanding amount of sent invoices as of ``end_date``, bucketed by days past due.

Deleted records (vis_state 1) and drafts do not count, as in FreshBooks (§8). Amounts of one
currency only (``currency_code``, default the account's).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from .seed import c2, m

#: the tap's report streams -> the report each one reads
REPORT_STREAMS = {
    "report_profit_loss": "profitloss_entity",
    "report_tax_summary": "taxsummary",
    "report_accounts_aging": "accounts_aging",
}
REPORT_KEYS = {
    "profitloss_entity": "profitloss",
    "taxsummary": "taxsummary",
    "accounts_aging": "accounts_aging",
}
AGING_BUCKETS = (
    ("interval_0_30", 0, 30),
    ("interval_31_60", 31, 60),
    ("interval_61_90", 61, 90),
    ("interval_91_plus", 91, None),
)


def _day(value) -> date | None:
    """A record's business date (records created through the API may hold the ISO text); None for a
    date that is no date (tests store odd values such as "0000-00-00" to exercise the tap's guard)."""
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _within(value, start: date, end: date) -> bool:
    day = _day(value)
    return day is not None and start <= day <= end


def _live(emu, stream: str, acct: str) -> list[dict]:
    store = emu.store
    return [
        r
        for r in (store.get(stream, acct, pk) for pk in store.query(stream, acct, vis="all"))
        if r.get("vis_state", 0) != 1
    ]


def _sent_invoices(emu, acct: str, code: str) -> list[dict]:
    return [i for i in _live(emu, "invoices", acct) if i["status"] != 1 and i["currency_code"] == code]


def _node(description: str, entry_type: str, amount: Decimal, code: str, children=()) -> dict:
    return {
        "description": description,
        "entry_type": entry_type,
        "data": [m(c2(amount), code)],
        "total": m(c2(amount), code),
        "children": list(children),
    }


def profitloss(emu, acct: str, start: date, end: date, code: str) -> dict:
    sales = sum(
        (
            Decimal(i["amount"]["amount"])
            for i in _sent_invoices(emu, acct, code)
            if _within(i["create_date"], start, end)
        ),
        Decimal(0),
    )
    other = sum(
        (
            Decimal(o["amount"]["amount"])
            for o in _live(emu, "other_incomes", acct)
            if _within(o["date"], start, end) and o["amount"]["code"] == code
        ),
        Decimal(0),
    )
    by_category: dict[str, Decimal] = {}
    for e in _live(emu, "expenses", acct):
        if _within(e["date"], start, end) and e["amount"]["code"] == code:
            category = emu.store.get("expense_categories", acct, e["categoryid"])
            name = (category or {}).get("category", "Uncategorized")
            by_category[name] = by_category.get(name, Decimal(0)) + Decimal(e["amount"]["amount"])
    income = [
        _node(
            "Income",
            "income",
            sales + other,
            code,
            [_node("Sales", "income", sales, code), _node("Other Income", "income", other, code)],
        )
    ]
    expenses = [
        _node(
            "Expenses",
            "expense",
            sum(by_category.values(), Decimal(0)),
            code,
            [_node(name, "expense", amount, code) for name, amount in sorted(by_category.items())],
        )
    ]
    return {
        "cash_based": False,
        "currency_code": code,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "dates": [{"start_date": start.isoformat(), "end_date": end.isoformat()}],
        "income": income,
        "expenses": expenses,
    }


def taxsummary(emu, acct: str, start: date, end: date, code: str) -> dict:
    taxes: dict[str, list[Decimal]] = {}
    for inv in _sent_invoices(emu, acct, code):
        if not _within(inv["create_date"], start, end):
            continue
        for line in inv.get("lines") or []:
            name, percent = line.get("taxName1"), line.get("taxAmount1")
            if name and percent:
                amount = Decimal(line["amount"]["amount"])
                row = taxes.setdefault(name, [Decimal(0), Decimal(0)])
                row[0] += amount
                row[1] += amount * Decimal(percent) / 100
    return {
        "currency_code": code,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "taxes": [
            {"tax_name": name, "taxable_amount": m(c2(base), code), "tax_collected": m(c2(tax), code)}
            for name, (base, tax) in sorted(taxes.items())
        ],
    }


def _id_order(item: tuple) -> tuple:
    """Client ids in numeric order; an odd (non-integer) id that tests store sorts after them."""
    pk = item[0]
    return (0, pk, "") if isinstance(pk, int) else (1, 0, str(pk))


def accounts_aging(emu, acct: str, end: date, code: str) -> dict:
    clients: dict = {}
    for inv in _sent_invoices(emu, acct, code):
        outstanding = Decimal(inv["outstanding"]["amount"])
        created, due = _day(inv["create_date"]), _day(inv["due_date"])
        if (created is not None and created > end) or outstanding <= 0:
            continue
        late = (end - due).days if due is not None else 0  # no readable due date: not yet due
        row = clients.setdefault(inv["customerid"], {name: Decimal(0) for name, _lo, _hi in AGING_BUCKETS})
        # not yet due counts in the first bucket
        bucket = next(name for name, _lo, hi in AGING_BUCKETS if hi is None or late <= hi)
        row[bucket] += outstanding
    accounts = []
    for userid, row in sorted(clients.items(), key=_id_order):
        client = (emu.store.get("clients", acct, userid) if isinstance(userid, int) else None) or {}
        accounts.append(
            {
                "userid": userid,
                "organization": client.get("organization", ""),
                **{k: m(c2(v), code) for k, v in row.items()},
                "total": m(c2(sum(row.values(), Decimal(0))), code),
            }
        )
    totals = {
        name: m(c2(sum((Decimal(a[name]["amount"]) for a in accounts), Decimal(0))), code)
        for name, _lo, _hi in AGING_BUCKETS
    }
    return {
        "currency_code": code,
        "end_date": end.isoformat(),
        "accounts": accounts,
        "totals": {
            **totals,
            "total": m(c2(sum((Decimal(v["amount"]) for v in totals.values()), Decimal(0))), code),
        },
    }


def report(emu, acct: str, name: str, params: dict) -> dict:
    """The report ``name`` with the request's params (start_date, end_date, currency_code)."""
    code = params.get("currency_code") or emu.account(acct)["currency"]
    end = date.fromisoformat(params.get("end_date") or emu.now().date().isoformat())
    if name == "accounts_aging":
        return accounts_aging(emu, acct, end, code)
    start = date.fromisoformat(params.get("start_date") or end.replace(month=1, day=1).isoformat())
    return (profitloss if name == "profitloss_entity" else taxsummary)(emu, acct, start, end, code)


def snapshot(emu, acct: str, stream: str) -> dict:
    """What the tap's report stream reads today (UTC date: the tap's report date), as truth."""
    day = datetime.now(UTC).date()
    name = REPORT_STREAMS[stream]
    params = {"end_date": day.isoformat()}
    if name != "accounts_aging":
        params["start_date"] = day.replace(month=1, day=1).isoformat()
    return {
        "id": day.isoformat(),
        "report_date": day.isoformat(),
        **params,
        "report": report(emu, acct, name, params),
    }
