"""Independent truth from the FreshBooks emulator's internal store (not from the warehouse, not from
the LookML), for comparing what the pipeline loaded and what the LookML measures compute."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal

ACCOUNTS = ("zK3pQ7", "Rt8vW2")


def records(emu, stream: str) -> list[tuple[str, dict]]:
    """(account_id, internal record) for every record, deleted and archived included."""
    out = []
    for acct in [a["account_id"] for a in emu.accounts]:
        for pk in emu.store.ids(stream, acct):
            rec = emu.get(stream, acct, pk)
            if rec is not None:
                out.append((acct, rec))
    return out


def warehouse_id(emu, stream: str, rec: dict) -> str:
    return str(rec[emu.spec(stream).pk])


def money(obj) -> tuple[Decimal, str] | tuple[None, None]:
    if not obj:
        return None, None
    return Decimal(str(obj["amount"])), obj["code"]


def today() -> date:
    return datetime.now(UTC).date()


def open_ar_by_currency(emu) -> dict[str, Decimal]:
    """Open receivables: sent (not draft), not deleted, outstanding > 0; by invoice currency."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for _, inv in records(emu, "invoices"):
        amount, _ = money(inv["outstanding"])
        if inv["status"] != 1 and inv.get("vis_state", 0) != 1 and amount > 0:
            out[inv["currency_code"]] += amount
    return dict(out)


def aging_bucket(due: date, as_of: date) -> str:
    days = (as_of - due).days
    if days <= 0:
        return "Current"
    if days <= 30:
        return "1-30 days"
    if days <= 60:
        return "31-60 days"
    if days <= 90:
        return "61-90 days"
    return "90+ days"


def open_ar_by_bucket(emu) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for _, inv in records(emu, "invoices"):
        amount, _ = money(inv["outstanding"])
        if inv["status"] != 1 and inv.get("vis_state", 0) != 1 and amount > 0:
            out[(aging_bucket(inv["due_date"], today()), inv["currency_code"])] += amount
    return dict(out)


def invoiced_by_month(emu) -> dict[tuple[date, str], Decimal]:
    """Invoice totals (drafts and deleted excluded) by invoice-date month and currency."""
    out: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for _, inv in records(emu, "invoices"):
        if inv["status"] == 1 or inv.get("vis_state", 0) == 1:
            continue
        amount, _code = money(inv["amount"])
        out[(inv["create_date"].replace(day=1), inv["currency_code"])] += amount
    return dict(out)


def line_revenue_by_name(emu) -> dict[tuple[str, str], Decimal]:
    """Current lines of non-draft, non-deleted invoices, by line name and currency."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for _, inv in records(emu, "invoices"):
        if inv["status"] == 1 or inv.get("vis_state", 0) == 1:
            continue
        for line in inv.get("lines") or []:
            amount, code = money(line["amount"])
            out[(line["name"], code)] += amount
    return dict(out)


def collected_by_currency(emu) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for _, p in records(emu, "payments"):
        if p.get("vis_state", 0) != 1:
            amount, code = money(p["amount"])
            out[code] += amount
    return dict(out)


def expenses_by_category(emu) -> dict[tuple[str, str], Decimal]:
    names = {(acct, c["categoryid"]): c["category"] for acct, c in records(emu, "expense_categories")}
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for acct, e in records(emu, "expenses"):
        if e.get("vis_state", 0) == 1:
            continue
        amount, code = money(e["amount"])
        out[(names.get((acct, e["categoryid"])), code)] += amount
    return dict(out)


def open_ap_by_currency(emu) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for _, b in records(emu, "bills"):
        amount, _ = money(b["outstanding"])
        if b.get("vis_state", 0) != 1 and amount > 0:
            out[b["currency_code"]] += amount
    return dict(out)


def natural_by_type(emu) -> dict[tuple[str, str], Decimal]:
    """General ledger activity in each account type's normal direction, by currency."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for _, d in records(emu, "journal_entry_details"):
        debit, _ = money(d.get("debit"))
        credit, _ = money(d.get("credit"))
        debit, credit = debit or Decimal(0), credit or Decimal(0)
        typ = d["account"]["account_type"]
        value = credit - debit if typ in ("liability", "equity", "income") else debit - credit
        out[(typ, d["currency_code"])] += value
    return dict(out)


def nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v != 0}
