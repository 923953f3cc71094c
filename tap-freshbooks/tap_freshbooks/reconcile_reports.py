"""The report check of ``tap-freshbooks reconcile``: the warehouse's own accounts aging and profit and
loss, computed from the loaded invoices, payments, other incomes and expenses, against FreshBooks'
report snapshots loaded for the same date (streams ``report_accounts_aging``, ``report_profit_loss``).

For each account the latest report date in the warehouse is compared (or ``--report-date``). The
other tables hold today's state of every record, so a snapshot of an earlier day can differ from
them for good reasons (an invoice paid since): compare the snapshot of the same load.

What the warehouse computes (FreshBooks documents the reports' shape, freshbooks-api.md §3.2, but
not which records feed each line: UNCONFIRMED; these are the rules the emulator's reports follow):

* accounts aging as of the snapshot's ``end_date``: per client (``customerid``) the ``outstanding``
  of invoices that are sent (not drafts, status 1), not deleted (vis_state 1), in the report's
  currency, created on or before that day and still owed (> 0), bucketed by days past due:
  ``interval_0_30`` (not yet due and no due date included), ``interval_31_60``, ``interval_61_90``,
  ``interval_91_plus``; plus each client's total and the totals row.
* profit and loss for ``start_date``..``end_date``, on the basis the snapshot states
  (``cash_based``): accrual (false) counts the ``amount`` of sent, not deleted invoices created in
  the period as Sales; cash (true) counts payments (not deleted) dated in the period as Sales
  (UNCONFIRMED: no FreshBooks cash-basis report was available to check). Both: Other Income =
  other incomes dated in the period; Expenses per category name = expenses dated in the period
  (``Uncategorized`` without a category). Bills are not counted.

Amounts are exact decimals. FreshBooks prints its figures rounded (2 decimals); a figure matches
when it is the warehouse's exact sum rounded to the figure's decimals, half-even or half-up
(FreshBooks' rounding mode is not documented). Both the exact sum and the figure are reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import functools
import json
import typing as t

from tap_freshbooks.reconcile_compare import as_decimal, as_int, decimal_text, money_of

if t.TYPE_CHECKING:
    from tap_freshbooks.reconcile_warehouse import Warehouse

AGING, PROFIT_LOSS = "report_accounts_aging", "report_profit_loss"
REPORT_TABLES = (AGING, PROFIT_LOSS)
#: aging buckets by days past due (upper bound; None: no bound), as FreshBooks names them
BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("interval_0_30", 30),
    ("interval_31_60", 60),
    ("interval_61_90", 90),
    ("interval_91_plus", None),
)
NO_REPORT_ROWS = (
    "the warehouse has no report rows ({tables}){accounts}: run the report streams "
    "first (select report_accounts_aging and report_profit_loss and run the pipeline)"
)
#: sums of 27-decimal amounts need more digits than Decimal's default 28
EXACT = decimal.Context(prec=200)
ZERO = decimal.Decimal(0)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One loaded report row: an account's report for one report date."""

    table: str
    account_id: str
    report_date: str
    start: dt.date | None
    end: dt.date
    currency: str
    report: dict[str, t.Any]


# -- reading the warehouse -------------------------------------------------------------------------
def day(value: t.Any) -> dt.date | None:
    """A business date from a date, a timestamp or ISO text; None for no date or an odd one."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def read_table(
    warehouse: Warehouse, table: str, fields: t.Sequence[str], money: t.Sequence[str] = ()
) -> list[dict[str, t.Any]]:
    """Rows of ``table`` as dicts of ``fields`` (None where the column is absent) and ``money``
    fields as (amount, code) whether the loader flattened them or stored JSON; [] without a table."""
    columns = warehouse.columns(table)
    if columns is None:
        return []
    stored = {c.lower(): c for c in columns}
    select: dict[str, str] = {f: stored[f.lower()] for f in fields if f.lower() in stored}
    for name in money:
        amount, code = f"{name}__amount", f"{name}__code"
        if amount in stored and code in stored:
            select[amount], select[code] = stored[amount], stored[code]
        elif name.lower() in stored:
            select[name] = stored[name.lower()]
    labels = list(select)
    out = []
    for row in warehouse.rows(table, [select[label] for label in labels]):
        values = dict(zip(labels, row, strict=True))
        record = {f: values.get(f) for f in fields}
        for name in money:
            if f"{name}__amount" in values:
                code = values[f"{name}__code"]
                record[name] = (as_decimal(values[f"{name}__amount"]), None if code is None else str(code))
            else:
                record[name] = money_of(values.get(name))
        out.append(record)
    return out


def snapshots(
    warehouse: Warehouse, accounts: t.Collection[str] | None, report_date: dt.date | None
) -> dict[tuple[str, str], Snapshot]:
    """{(table, account): the snapshot to compare}: the latest report date, or ``report_date``."""
    chosen: dict[tuple[str, str], Snapshot] = {}
    for table in REPORT_TABLES:
        fields = ("account_id", "report_date", "start_date", "end_date", "currency_code", "report")
        for row in read_table(warehouse, table, fields):
            account, taken, end = str(row["account_id"]), day(row["report_date"]), day(row["end_date"])
            if taken is None or end is None or (accounts is not None and account not in accounts):
                continue
            if report_date is not None and taken != report_date:
                continue
            report = row["report"]
            if isinstance(report, str):
                report = json.loads(report)
            current = chosen.get((table, account))
            if current is None or taken.isoformat() > current.report_date:
                chosen[(table, account)] = Snapshot(
                    table=table,
                    account_id=account,
                    report_date=taken.isoformat(),
                    start=day(row["start_date"]),
                    end=end,
                    currency=str(row["currency_code"] or report.get("currency_code") or ""),
                    report=report,
                )
    return chosen


# -- the warehouse's own figures -------------------------------------------------------------------
def _live(record: dict[str, t.Any]) -> bool:
    return as_int(record.get("vis_state")) != 1


def _sent(record: dict[str, t.Any], currency: str) -> bool:
    return _live(record) and as_int(record.get("status")) != 1 and record.get("currency_code") == currency


def _within(value: t.Any, start: dt.date | None, end: dt.date) -> bool:
    when = day(value)
    return when is not None and (start is None or start <= when) and when <= end


def _add(sums: dict[t.Any, decimal.Decimal], key: t.Any, amount: decimal.Decimal) -> None:
    sums[key] = EXACT.add(sums.get(key, ZERO), amount)


def bucket_of(late_days: int) -> str:
    return next(name for name, upper in BUCKETS if upper is None or late_days <= upper)


def warehouse_aging(
    invoices: t.Iterable[dict[str, t.Any]], snap: Snapshot
) -> dict[tuple[str, str], decimal.Decimal]:
    """{(client userid, bucket or "total"): exact outstanding}, totals under client "totals"."""
    sums: dict[tuple[str, str], decimal.Decimal] = {}
    for inv in invoices:
        amount = inv["outstanding"][0]
        if not _sent(inv, snap.currency) or amount is None or amount <= 0:
            continue
        created, due = day(inv["create_date"]), day(inv["due_date"])
        if created is not None and created > snap.end:
            continue
        bucket = bucket_of((snap.end - due).days if due is not None else 0)
        client = str(
            as_int(inv["customerid"]) if as_int(inv["customerid"]) is not None else inv["customerid"]
        )
        for key in ((client, bucket), (client, "total"), ("totals", bucket), ("totals", "total")):
            _add(sums, key, amount)
    return sums


def report_aging(snap: Snapshot) -> tuple[dict[tuple[str, str], decimal.Decimal | None], dict[str, str]]:
    """The snapshot's figures in warehouse_aging's keys, and client organization names."""
    figures: dict[tuple[str, str], decimal.Decimal | None] = {}
    names: dict[str, str] = {}
    rows = [(str(a.get("userid")), a) for a in snap.report.get("accounts") or []]
    rows.append(("totals", snap.report.get("totals") or {}))
    for client, row in rows:
        if client != "totals":
            names[client] = str(row.get("organization") or "")
        for bucket in [name for name, _ in BUCKETS] + ["total"]:
            if bucket in row:
                figures[(client, bucket)] = money_of(row[bucket])[0]
    return figures, names


def warehouse_profit_loss(
    tables: dict[str, list[dict[str, t.Any]]], snap: Snapshot
) -> dict[str, decimal.Decimal]:
    """{line: exact amount}: "Income", "Income / Sales", "Income / Other Income", "Expenses",
    "Expenses / <category>"."""
    code, start, end = snap.currency, snap.start, snap.end
    lines: dict[str, decimal.Decimal] = {"Income / Sales": ZERO, "Income / Other Income": ZERO}
    if snap.report.get("cash_based"):
        for pay in tables["payments"]:
            amount, currency = pay["amount"]
            if _live(pay) and currency == code and amount is not None and _within(pay["date"], start, end):
                _add(lines, "Income / Sales", amount)
    else:
        for inv in tables["invoices"]:
            amount = inv["amount"][0]
            if _sent(inv, code) and amount is not None and _within(inv["create_date"], start, end):
                _add(lines, "Income / Sales", amount)
    for other in tables["other_incomes"]:
        amount, currency = other["amount"]
        if _live(other) and currency == code and amount is not None and _within(other["date"], start, end):
            _add(lines, "Income / Other Income", amount)
    categories = {str(c["categoryid"]): str(c["category"]) for c in tables["expense_categories"]}
    expenses: dict[str, decimal.Decimal] = {}
    for exp in tables["expenses"]:
        amount, currency = exp["amount"]
        if _live(exp) and currency == code and amount is not None and _within(exp["date"], start, end):
            _add(expenses, categories.get(str(exp["categoryid"]), "Uncategorized"), amount)
    lines["Income"] = EXACT.add(lines["Income / Sales"], lines["Income / Other Income"])
    lines["Expenses"] = functools.reduce(EXACT.add, expenses.values(), ZERO)
    lines.update({f"Expenses / {name}": amount for name, amount in expenses.items()})
    return lines


def report_profit_loss(snap: Snapshot) -> dict[str, decimal.Decimal | None]:
    """The snapshot's income and expense trees as {"A / B": total}."""
    lines: dict[str, decimal.Decimal | None] = {}

    def walk(nodes: t.Iterable[dict[str, t.Any]], prefix: str) -> None:
        for node in nodes:
            path = f"{prefix}{node.get('description')}"
            lines[path] = money_of(node.get("total"))[0]
            walk(node.get("children") or [], f"{path} / ")

    walk(snap.report.get("income") or [], "")
    walk(snap.report.get("expenses") or [], "")
    return lines


# -- comparison ------------------------------------------------------------------------------------
def matches(figure: decimal.Decimal | None, exact: decimal.Decimal) -> bool:
    """Is FreshBooks' ``figure`` the warehouse's ``exact`` sum, rounded to the figure's decimals?"""
    if figure is None:
        return exact == 0
    exponent = figure.as_tuple().exponent
    if figure == exact or not isinstance(exponent, int):
        return figure == exact
    quantum = decimal.Decimal(1).scaleb(exponent)
    return any(
        exact.quantize(quantum, rounding=mode, context=EXACT) == figure
        for mode in (decimal.ROUND_HALF_EVEN, decimal.ROUND_HALF_UP)
    )


def _text(value: decimal.Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _differences(
    fb: t.Mapping[t.Any, decimal.Decimal | None], wh: t.Mapping[t.Any, decimal.Decimal]
) -> list[tuple[t.Any, decimal.Decimal | None, decimal.Decimal]]:
    return [
        (key, fb.get(key), wh.get(key, ZERO))
        for key in sorted(fb.keys() | wh.keys(), key=str)
        if not matches(fb.get(key), wh.get(key, ZERO))
    ]


def compare_aging(snap: Snapshot, invoices: t.Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    figures, names = report_aging(snap)
    ours = warehouse_aging(invoices, snap)
    diffs = [
        {
            "client": client,
            "organization": names.get(client, ""),
            "bucket": bucket,
            "freshbooks": _text(fb),
            "warehouse": _text(wh),
        }
        for (client, bucket), fb, wh in _differences(figures, ours)
    ]
    return {
        "report": AGING,
        "report_date": snap.report_date,
        "as_of": snap.end.isoformat(),
        "currency": snap.currency,
        "compared": len(figures.keys() | ours.keys()),
        "match": not diffs,
        "totals": {
            "freshbooks": _text(figures.get(("totals", "total"))),
            "warehouse": _text(ours.get(("totals", "total"), ZERO)),
        },
        "differences": diffs,
    }


def compare_profit_loss(snap: Snapshot, tables: dict[str, list[dict[str, t.Any]]]) -> dict[str, t.Any]:
    figures = report_profit_loss(snap)
    ours = warehouse_profit_loss(tables, snap)
    diffs = [
        {"line": line, "freshbooks": _text(fb), "warehouse": _text(wh)}
        for line, fb, wh in _differences(figures, ours)
    ]
    return {
        "report": PROFIT_LOSS,
        "report_date": snap.report_date,
        "period": [snap.start.isoformat() if snap.start else None, snap.end.isoformat()],
        "basis": "cash" if snap.report.get("cash_based") else "accrual",
        "currency": snap.currency,
        "compared": len(figures.keys() | ours.keys()),
        "match": not diffs,
        "totals": {
            line: {"freshbooks": _text(figures.get(line)), "warehouse": _text(ours.get(line, ZERO))}
            for line in ("Income", "Expenses")
        },
        "differences": diffs,
    }


SOURCE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "invoices": (
        ("account_id", "customerid", "status", "vis_state", "currency_code", "create_date", "due_date"),
        ("amount", "outstanding"),
    ),
    "payments": (("account_id", "vis_state", "date"), ("amount",)),
    "other_incomes": (("account_id", "vis_state", "date"), ("amount",)),
    "expenses": (("account_id", "vis_state", "date", "categoryid"), ("amount",)),
    "expense_categories": (("account_id", "categoryid", "category"), ()),
}


def report_check(
    warehouse: Warehouse, accounts: t.Sequence[str] | None, report_date: dt.date | None = None
) -> dict[str, t.Any]:
    """Compare per account; ``accounts`` None: every account with report rows.

    ``status``: "match", "mismatch" or "no_report_rows" (then ``message`` says what to do).
    """
    chosen = snapshots(warehouse, accounts, report_date)
    found = sorted({account for _, account in chosen})
    wanted = list(accounts) if accounts is not None else found
    without = [a for a in wanted if a not in found]
    result: dict[str, t.Any] = {"report_date": report_date.isoformat() if report_date else "latest"}
    if not found:
        dated = f" dated {report_date.isoformat()}" if report_date else ""
        message = NO_REPORT_ROWS.format(tables=", ".join(REPORT_TABLES) + dated, accounts=_for(wanted))
        return {**result, "status": "no_report_rows", "message": message, "accounts": [], "notes": []}
    per_account: dict[str, dict[str, list[dict[str, t.Any]]]] = {
        a: {n: [] for n in SOURCE_TABLES} for a in found
    }
    for table, (fields, money) in SOURCE_TABLES.items():
        for row in read_table(warehouse, table, fields, money):
            if str(row["account_id"]) in per_account:
                per_account[str(row["account_id"])][table].append(row)
    checks: list[dict[str, t.Any]] = []
    notes = []
    for account in found:
        tables = per_account[account]
        for table in REPORT_TABLES:
            snap = chosen.get((table, account))
            if snap is None:
                notes.append(f"account {account}: no {table} row to compare")
                continue
            check = (
                compare_aging(snap, tables["invoices"])
                if table == AGING
                else compare_profit_loss(snap, tables)
            )
            checks.append({"account_id": account, **check})
        currencies = {c["currency"] for c in checks if c["account_id"] == account}
        others = sorted(_currencies(tables) - currencies - {""})
        if others:
            notes.append(
                f"account {account}: amounts in {', '.join(others)} are not compared (FreshBooks' report "
                f"snapshots are in {', '.join(sorted(currencies))} only, one currency per report)"
            )
    if without:
        notes.append(NO_REPORT_ROWS.format(tables=", ".join(REPORT_TABLES), accounts=_for(without)))
    if any(c["report_date"] != checks[0]["report_date"] for c in checks):
        notes.append("accounts were compared on different report dates (the latest of each)")
    status = "match" if all(c["match"] for c in checks) else "mismatch"
    return {**result, "status": status, "accounts": found, "checks": checks, "notes": notes}


def _for(accounts: t.Sequence[str]) -> str:
    return f" for account(s) {', '.join(accounts)}" if accounts else ""


def _currencies(tables: dict[str, list[dict[str, t.Any]]]) -> set[str]:
    """The currencies of the account's invoices, payments, other incomes and expenses."""
    found = {str(inv["currency_code"] or "") for inv in tables["invoices"]}
    for name in ("payments", "other_incomes", "expenses"):
        found |= {str(row["amount"][1] or "") for row in tables[name]}
    return found


def render_lines(check: dict[str, t.Any]) -> list[str]:
    """The report check as text lines (the reconcile text report's last section)."""
    if check["status"] == "no_report_rows":
        return [f"Reports: {check['message']}"]
    lines = ["Reports: the warehouse's own figures against FreshBooks' report snapshots"]
    for c in check["checks"]:
        verdict = "match" if c["match"] else f"MISMATCH in {len(c['differences'])} of {c['compared']}"
        if c["report"] == AGING:
            lines.append(
                f"  accounts aging / account {c['account_id']} as of {c['as_of']} ({c['currency']}): "
                f"{c['compared']} client/bucket amounts, total FreshBooks {c['totals']['freshbooks']} "
                f"warehouse {c['totals']['warehouse']}: {verdict}"
            )
            lines.extend(
                f"    client {d['client']} {d['organization']} {d['bucket']}: FreshBooks {d['freshbooks']} "
                f"warehouse {d['warehouse']}"
                for d in c["differences"]
            )
        else:
            start, end = c["period"]
            lines.append(
                f"  profit and loss / account {c['account_id']} {start}..{end} ({c['basis']} basis, "
                f"{c['currency']}): {c['compared']} lines: {verdict}"
            )
            lines.extend(
                f"    {d['line']}: FreshBooks {d['freshbooks']} warehouse {d['warehouse']}"
                for d in c["differences"]
            )
    lines.extend(f"  Note: {note}" for note in check["notes"])
    return lines
