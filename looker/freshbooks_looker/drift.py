"""Dimension drift: FreshBooks' current chart of accounts, expense categories and currencies (as
loaded in the warehouse) against what the LookML expects.

    freshbooks-looker drift --duckdb output/warehouse.duckdb            # report
    freshbooks-looker drift --postgres "$DSN" --update                   # accept: rewrite the lock
    freshbooks-looker drift --duckdb ... --strict                        # exit 1 on any change
    freshbooks-looker drift --looker                                     # through the Looker API

With ``--looker`` the dimensions are read through Looker's API (inline queries on the model's
explores) instead of a warehouse connection. A Looker query returns at most 5,000 rows here: each
query asks for that many and the report fails, saying which explore, when one comes back full.

The LookML reads names, tiers and hierarchies from the dimension tables at query time, so renamed
or added categories, accounts, sub-types and currencies need no LookML edit. What the model does
fix is checked against the data, and is an ERROR when FreshBooks moves past it (exit 1):

* account types: the only hard-coded mapping (financial statement and normal balance per type,
  read from the ``case:`` of chart_of_accounts.statement and journal_entry_details.normal_balance);
* hierarchy depth: the expenses explore joins one parent category, the general_ledger explore one
  parent account, so categories or accounts nested deeper than parent -> child would be cut off.

Everything else is CHANGE information against the last reviewed snapshot (``dimensions.lock.json``
next to the LookML, written by ``--update``): categories added / removed / renamed / re-parented,
ledger accounts and sub-types added / removed / renamed, currencies that appeared or vanished.
Dashboards pivot by currency, so a new currency shows up on its own; the report says so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .looker_api import LookerAPIError, LookerClient, Settings
from .lookml import Project
from .warehouse import Warehouse, connect

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_LOCK = PROJECT_DIR / "dimensions.lock.json"

#: (table, currency column) pairs scanned for currencies in use
CURRENCY_COLUMNS = [
    ("invoices", "currency_code"),
    ("payments", "amount__code"),
    ("expenses", "amount__code"),
    ("bills", "currency_code"),
    ("bill_payments", "amount__code"),
    ("credit_notes", "currency_code"),
    ("other_incomes", "amount__code"),
    ("journal_entry_details", "currency_code"),
    ("clients", "currency_code"),
]


@dataclass
class Finding:
    level: str  # ERROR | CHANGE | OK
    area: str
    message: str

    def __str__(self) -> str:
        return f"{self.level:6} {self.area}: {self.message}"


@dataclass
class Expectations:
    """What the LookML fixes, read from the LookML itself."""

    account_types: set[str]
    category_depth: int
    account_depth: int


@dataclass
class Snapshot:
    account_types: dict[str, list[str]] = field(default_factory=dict)  # type -> sub-types
    ledger_accounts: dict[str, dict[str, t.Any]] = field(
        default_factory=dict[str, t.Any]
    )  # "acct|number" -> {...}
    expense_categories: dict[str, dict[str, t.Any]] = field(
        default_factory=dict[str, t.Any]
    )  # "acct|id" -> {...}
    currencies: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Snapshot | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def expectations(project: Project) -> Expectations:
    def literals(view: str, field_name: str) -> set[str]:
        dim = project.views[view].dimensions.get(field_name, {})
        out: set[str] = set()
        for when in dim.get("case", {}).get("whens", []):
            out |= set(re.findall(r"'([^']*)'", when.get("sql", "")))
        return out

    types = literals("chart_of_accounts", "statement") & literals("journal_entry_details", "normal_balance")

    def depth(explore: str, view: str) -> int:
        ex = project.explores.get(explore)
        if ex is None:
            return 1
        return 1 + sum(1 for j in ex.joins if j.view == view and j.alias != view)

    return Expectations(
        types, depth("expenses", "expense_categories"), depth("general_ledger", "chart_of_accounts")
    )


LEDGER_COLUMNS = ("account_id", "number", "name", "type", "sub_type", "uuid", "parent_account")
CATEGORY_COLUMNS = ("account_id", "categoryid", "category", "parentid", "vis_state")


def build_snapshot(
    ledger_rows: t.Iterable[t.Sequence[t.Any]],
    category_rows: t.Iterable[t.Sequence[t.Any]],
    currencies: set[str],
) -> Snapshot:
    """Rows in LEDGER_COLUMNS / CATEGORY_COLUMNS order, from the warehouse or from Looker."""
    snap = Snapshot()
    for acct, number, name, typ, sub, uuid, parent in ledger_rows:
        snap.account_types.setdefault(typ or "", [])
        if sub and sub not in snap.account_types[typ or ""]:
            snap.account_types[typ or ""].append(sub)
        snap.ledger_accounts[f"{acct}|{uuid}"] = {
            "number": number,
            "name": name,
            "type": typ,
            "sub_type": sub,
            "parent": parent,
        }
    for subs in snap.account_types.values():
        subs.sort()
    for acct, cid, name, parent, vis_state in category_rows:
        if vis_state == 1:
            continue
        snap.expense_categories[f"{acct}|{cid}"] = {
            "name": name,
            "parent": None if parent in (None, 0) else int(parent),
        }
    snap.currencies = sorted(currencies)
    return snap


def snapshot(wh: Warehouse, schema: str) -> Snapshot:
    tables = wh.columns(schema)
    ledger: list[t.Any] = []
    categories: list[t.Any] = []
    if "chart_of_accounts" in tables:
        ledger = wh.query(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM {schema}.chart_of_accounts")
    if "expense_categories" in tables:
        vis = "vis_state" if "vis_state" in tables["expense_categories"] else "0"
        categories = wh.query(
            f"SELECT account_id, categoryid, category, parentid, {vis} FROM {schema}.expense_categories"
        )
    currencies: set[str] = set()
    for table, column in CURRENCY_COLUMNS:
        if column in tables.get(table, {}):
            currencies |= {
                r[0]
                for r in wh.query(
                    f"SELECT DISTINCT {column} FROM {schema}.{table} WHERE {column} IS NOT NULL"
                )
            }
    return build_snapshot(ledger, categories, currencies)


def _column_field(project: Project, view: str, column: str) -> str:
    """The LookML dimension of ``view`` that reads ``column`` as is (``sql: ${TABLE}.column``)."""
    for name, fld in project.views[view].fields.items():
        if fld.category == "dimension" and (fld.sql or "").strip() == f"${{TABLE}}.{column}":
            return f"{view}.{name}"
    raise LookerAPIError(f"drift --looker: view {view} has no dimension reading column {column}")


def looker_snapshot(client: LookerClient, model: str, project: Project) -> tuple[Snapshot, list[str]]:
    """The same snapshot, read through the Looker API (inline queries on the model's explores),
    for installs where only Looker reaches the warehouse. Every query asks for at most
    ``ROW_LIMIT`` rows and fails when it gets that many (the answer may be cut off). Returns the
    snapshot and the currency columns no explore reaches (read from the warehouse only)."""

    def rows(
        explore: str, view: str, columns: t.Sequence[str], filters: dict[str, t.Any] | None = None
    ) -> list[list[t.Any]]:
        fields = [_column_field(project, view, c) for c in columns]
        return [[r.get(f) for f in fields] for r in client.run_query(model, explore, fields, filters)]

    ledger = rows("chart_of_accounts", "chart_of_accounts", LEDGER_COLUMNS)
    categories = rows("expense_categories", "expense_categories", CATEGORY_COLUMNS)
    currencies: set[str] = set()
    unreached: list[str] = []
    for table, column in CURRENCY_COLUMNS:
        explore = next((e.name for e in project.explores.values() if e.base_view == table), None)
        if explore is None:
            unreached.append(f"{table}.{column}")
            continue
        show_deleted = (
            {f"{table}.include_deleted": "yes"}
            if "include_deleted" in project.views[table].parameters
            else None
        )
        currencies |= {r[0] for r in rows(explore, table, [column], show_deleted) if r[0] is not None}
    return build_snapshot(ledger, categories, currencies), unreached


def _depth(nodes: dict[str, t.Any], parent_of: t.Callable[[str], str | None]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key in nodes:
        d, cur, seen = 1, key, {key}
        while (p := parent_of(cur)) is not None and p in nodes and p not in seen:
            d, cur = d + 1, p
            seen.add(p)
        out[key] = d
    return out


def compare(current: Snapshot, reviewed: Snapshot | None, expect: Expectations) -> list[Finding]:
    findings: list[Finding] = []
    for typ in sorted(current.account_types):
        if typ not in expect.account_types:
            findings.append(
                Finding(
                    "ERROR",
                    "account types",
                    f"FreshBooks account type {typ!r} is not "
                    "mapped in the LookML (chart_of_accounts.statement, "
                    "journal_entry_details.normal_balance): it would report as Unmapped",
                )
            )

    def cat_parent(key: str) -> str | None:
        acct = key.split("|", 1)[0]
        p = current.expense_categories[key]["parent"]
        return f"{acct}|{p}" if p is not None else None

    for key, d in sorted(_depth(current.expense_categories, cat_parent).items()):
        if d > expect.category_depth:
            findings.append(
                Finding(
                    "ERROR",
                    "expense categories",
                    f"category {key} "
                    f"({current.expense_categories[key]['name']}) is {d} levels deep; the "
                    f"expenses explore joins {expect.category_depth} levels",
                )
            )

    def acct_parent(key: str) -> str | None:
        acct = key.split("|", 1)[0]
        p = current.ledger_accounts[key]["parent"]
        return f"{acct}|{p}" if p else None

    for key, d in sorted(_depth(current.ledger_accounts, acct_parent).items()):
        if d > expect.account_depth:
            findings.append(
                Finding(
                    "ERROR",
                    "ledger accounts",
                    f"account {current.ledger_accounts[key]['number']} "
                    f"({current.ledger_accounts[key]['name']}) is {d} levels deep; the "
                    f"general_ledger explore joins {expect.account_depth} levels",
                )
            )
    if reviewed is None:
        findings.append(Finding("CHANGE", "snapshot", "no reviewed snapshot yet: run with --update"))
        return findings

    for typ in sorted(set(current.account_types) | set(reviewed.account_types)):
        now, before = set(current.account_types.get(typ, [])), set(reviewed.account_types.get(typ, []))
        for sub in sorted(now - before):
            findings.append(Finding("CHANGE", "account sub-types", f"new sub-type {typ} / {sub}"))
        for sub in sorted(before - now):
            findings.append(Finding("CHANGE", "account sub-types", f"sub-type {typ} / {sub} no longer used"))
    _diff_named(
        findings,
        "ledger accounts",
        current.ledger_accounts,
        reviewed.ledger_accounts,
        ("name", "number", "type", "sub_type", "parent"),
        lambda v: f"{v['number']} {v['name']}",
    )
    _diff_named(
        findings,
        "expense categories",
        current.expense_categories,
        reviewed.expense_categories,
        ("name", "parent"),
        lambda v: v["name"],
    )
    for cur in sorted(set(current.currencies) - set(reviewed.currencies)):
        findings.append(
            Finding(
                "CHANGE",
                "currencies",
                f"new currency {cur}: money measures and "
                "dashboards show it as its own column / series (no LookML change)",
            )
        )
    for cur in sorted(set(reviewed.currencies) - set(current.currencies)):
        findings.append(Finding("CHANGE", "currencies", f"currency {cur} no longer in use"))
    return findings


def _diff_named(
    findings: list[Finding],
    area: str,
    now: dict[str, t.Any],
    before: dict[str, t.Any],
    attrs: tuple[t.Any, ...],
    label: t.Callable[[dict[str, t.Any]], str],
) -> None:
    for key in sorted(set(now) - set(before)):
        findings.append(Finding("CHANGE", area, f"added {key}: {label(now[key])}"))
    for key in sorted(set(before) - set(now)):
        findings.append(Finding("CHANGE", area, f"removed {key}: {label(before[key])}"))
    for key in sorted(set(now) & set(before)):
        for attr in attrs:
            if now[key].get(attr) != before[key].get(attr):
                verb = {"name": "renamed", "parent": "re-parented"}.get(attr, f"{attr} changed")
                findings.append(
                    Finding(
                        "CHANGE", area, f"{verb} {key}: {before[key].get(attr)!r} -> {now[key].get(attr)!r}"
                    )
                )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duckdb", help="DuckDB file the pipeline loaded")
    parser.add_argument("--postgres", help="PostgreSQL DSN")
    parser.add_argument(
        "--looker",
        action="store_true",
        help="read the dimensions through the Looker API (FRESHBOOKS_LOOKER_BASE_URL, "
        "_CLIENT_ID, _CLIENT_SECRET, _MODEL) instead of the warehouse",
    )
    parser.add_argument("--schema", default="freshbooks")
    parser.add_argument("--project", default=str(PROJECT_DIR))
    parser.add_argument("--lock", default=str(DEFAULT_LOCK), help="reviewed snapshot (JSON)")
    parser.add_argument("--update", action="store_true", help="accept the current dimensions as reviewed")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any change, not only errors")


def run(args: argparse.Namespace) -> int:
    if not (args.duckdb or args.postgres or args.looker):
        print("drift: give --duckdb FILE, --postgres DSN or --looker")
        return 2
    project = Project(args.project)
    if args.looker:
        settings = Settings.from_env()
        if not settings.configured:
            print("drift: --looker needs FRESHBOOKS_LOOKER_BASE_URL (or LOOKERSDK_BASE_URL)")
            return 2
        try:
            with settings.client() as client:
                current, unreached = looker_snapshot(client, settings.model, project)
        except (LookerAPIError, requests.RequestException) as exc:
            print(f"drift: {exc}")
            return 2
        if unreached:
            print(f"drift: currencies of {', '.join(unreached)} not read (no explore has them as its base)")
    else:
        with connect(args.duckdb, args.postgres) as wh:
            current = snapshot(wh, args.schema)
    lock = Path(args.lock)
    findings = compare(current, Snapshot.load(lock), expectations(project))
    for f in findings:
        print(f)
    errors = [f for f in findings if f.level == "ERROR"]
    changes = [f for f in findings if f.level == "CHANGE"]
    print(f"drift: {len(errors)} error(s), {len(changes)} change(s) since the reviewed snapshot")
    if args.update:
        lock.write_text(current.to_json())
        print(f"drift: wrote {lock}")
    if errors or (args.strict and changes and not args.update):
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="freshbooks-looker drift",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
