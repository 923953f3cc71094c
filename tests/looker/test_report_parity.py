"""The warehouse's own aging and P&L equal FreshBooks' report snapshots of the same date (issue 13
point 4), in the LookML (explores report_parity_aging / report_parity_profit_loss) and in
`tap-freshbooks reconcile`; and one invoice changed in the warehouse is caught by both.

The warehouse is the session's real load (emulator seed "small" -> meltano -> target-duckdb); the
snapshots are the rows the report streams loaded in that same run. FreshBooks prints its figures
rounded to cents, so an exact warehouse sum matches when it rounds to the printed figure.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from freshbooks_looker.check import Checker
from freshbooks_looker.warehouse import DuckDBWarehouse
from tap_freshbooks.reconcile import main as reconcile_main

LOOKER_DIR = Path(__file__).resolve().parents[2] / "looker"
ACCT = "zK3pQ7"
CENT = Decimal("0.01")
AGING = "report_parity_aging"
PL = "report_parity_profit_loss"
Mutated = tuple[Path, Checker, str]


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def snapshots(path: Path, table: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{account: (report date, report)}: each account's latest snapshot in the warehouse."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(f"select account_id, report_date, report from freshbooks.{table}").fetchall()
    finally:
        con.close()
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for account, day, report in rows:
        if account not in latest or str(day) > latest[account][0]:
            latest[account] = (str(day), json.loads(report))
    return latest


def snapshot_aging(report: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    """The snapshot's non-zero (client, bucket) amounts."""
    return {
        (str(row["userid"]), bucket): Decimal(row[bucket]["amount"])
        for row in report["accounts"]
        for bucket in ("interval_0_30", "interval_31_60", "interval_61_90", "interval_91_plus")
        if Decimal(row[bucket]["amount"]) != 0
    }


def snapshot_lines(report: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    """{(section, line): amount} of the snapshot's non-zero second-level lines."""
    return {
        (section["description"], line["description"]): Decimal(line["total"]["amount"])
        for section in report["income"] + report["expenses"]
        for line in section["children"]
        if Decimal(line["total"]["amount"]) != 0
    }


def lookml_aging(checker: Checker, account: str, day: str) -> dict[tuple[str, str], Decimal]:
    rows = checker.query(
        AGING,
        [f"{AGING}.client_userid", f"{AGING}.bucket", f"{AGING}.total_outstanding"],
        filters={f"{AGING}.account_id": account, f"{AGING}.snapshot_date": day},
    )
    return {
        (str(r[f"{AGING}.client_userid"]), r[f"{AGING}.bucket"]): r[f"{AGING}.total_outstanding"]
        for r in rows
    }


def lookml_lines(checker: Checker, account: str, day: str, *dims: str) -> dict[tuple[str, ...], Decimal]:
    rows = checker.query(
        PL,
        [*(f"{PL}.{d}" for d in dims), f"{PL}.total_amount", f"{PL}.net_profit"],
        filters={f"{PL}.account_id": account, f"{PL}.snapshot_date": day, f"{PL}.basis": "accrual"},
    )
    out = {tuple(r[f"{PL}.{d}"] for d in dims): r[f"{PL}.total_amount"] for r in rows}
    if not dims:
        out[("net",)] = rows[0][f"{PL}.net_profit"]
    return out


def reconcile_reports(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict[str, Any]]:
    code = reconcile_main(["--warehouse", f"duckdb://{path}", "--reports-only", "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def section_totals(report: dict[str, Any]) -> dict[str, Decimal]:
    return {s["description"]: Decimal(s["total"]["amount"]) for s in report["income"] + report["expenses"]}


# -- a clean load: the LookML and reconcile agree with FreshBooks ---------------------------------
def assert_lookml_aging_equals_snapshots(checker: Checker, path: Path) -> set[str]:
    """Every account's LookML aging equals its latest snapshot; returns the buckets holding money."""
    aging = snapshots(path, "report_accounts_aging")
    assert set(aging) == {ACCT, "Rt8vW2"}
    buckets = set()
    for account, (day, report) in aging.items():
        want = snapshot_aging(report)
        got = lookml_aging(checker, account, day)
        assert {key: cents(v) for key, v in got.items()} == want, account
        assert cents(sum(got.values(), Decimal(0))) == Decimal(report["totals"]["total"]["amount"]) > 0
        buckets |= {bucket for _, bucket in want}
    return buckets


def assert_lookml_profit_loss_equals_snapshots(checker: Checker, path: Path) -> None:
    for account, (day, report) in snapshots(path, "report_profit_loss").items():
        assert report["cash_based"] is False  # the accrual rows are the ones to compare
        lines = lookml_lines(checker, account, day, "section", "line")
        assert {key: cents(v) for key, v in lines.items()} == snapshot_lines(report), account
        sections = lookml_lines(checker, account, day, "section")
        totals = section_totals(report)
        assert {s: cents(v) for (s,), v in sections.items()} == totals
        total = lookml_lines(checker, account, day)
        assert cents(total[("net",)]) == totals["Income"] - totals["Expenses"]


def assert_reconcile_matches(capsys: pytest.CaptureFixture[str], path: Path) -> list[dict[str, Any]]:
    code, out = reconcile_reports(capsys, path)
    check = out["report_check"]
    assert code == 0 and out["drift"] is False and check["status"] == "match"
    assert sorted((c["account_id"], c["report"]) for c in check["checks"]) == [
        (a, r) for a in ("Rt8vW2", ACCT) for r in ("report_accounts_aging", "report_profit_loss")
    ]
    assert all(c["compared"] > 4 and c["differences"] == [] for c in check["checks"])
    return list(check["checks"])


def test_lookml_aging_equals_the_aging_snapshot_of_the_same_date(checker: Checker, duckdb_load: Any) -> None:
    buckets = assert_lookml_aging_equals_snapshots(checker, duckdb_load.path)
    assert len(buckets) >= 2  # more than one bucket has money: the day arithmetic is exercised


def test_lookml_profit_and_loss_equals_the_snapshot_of_the_same_period(
    checker: Checker, duckdb_load: Any
) -> None:
    assert_lookml_profit_loss_equals_snapshots(checker, duckdb_load.path)


def test_reconcile_says_the_reports_match(capsys: pytest.CaptureFixture[str], duckdb_load: Any) -> None:
    assert_reconcile_matches(capsys, duckdb_load.path)
    notes = reconcile_reports(capsys, duckdb_load.path)[1]["report_check"]["notes"]
    assert (
        f"account {ACCT}: amounts in CAD are not compared (FreshBooks' report snapshots are in USD only, "
        "one currency per report)" in notes
    )  # the seed's second currency per account is said, not hidden
    text = reconcile_main(["--warehouse", f"duckdb://{duckdb_load.path}", "--reports-only"])
    assert text == 0 and capsys.readouterr().out.splitlines()[-1].startswith("Result: reports match")


def test_the_demo_seed_matches_too(capsys: pytest.CaptureFixture[str], demo_load: Any) -> None:
    """The demo seed (the session's second load): every bucket holds money, more clients and lines."""
    warehouse = DuckDBWarehouse(demo_load.path)
    try:
        checker = Checker(LOOKER_DIR, warehouse)
        assert len(assert_lookml_aging_equals_snapshots(checker, demo_load.path)) == 4
        assert_lookml_profit_loss_equals_snapshots(checker, demo_load.path)
    finally:
        warehouse.close()
    checks = assert_reconcile_matches(capsys, demo_load.path)
    assert all(c["compared"] >= 10 for c in checks)  # 200 client/bucket amounts and 11 lines per account


# -- one invoice changed in the warehouse ----------------------------------------------------------
@pytest.fixture(scope="module")
def mutated(duckdb_load: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mutated]:
    """A copy of the load where one open invoice of ACCT owes a cent more (amount and outstanding)."""
    path = tmp_path_factory.mktemp("parity") / "warehouse.duckdb"
    shutil.copy(duckdb_load.path, path)
    con = duckdb.connect(str(path))
    try:
        found = con.execute(
            "select id, customerid from freshbooks.invoices where account_id = ? and status <> 1 and vis_state = 0 "
            "and currency_code = 'USD' and cast(outstanding__amount as decimal(38, 10)) > 0 order by id limit 1",
            [ACCT],
        ).fetchone()
        assert found is not None
        invoice, client = found
        con.execute(
            "update freshbooks.invoices set "
            "outstanding__amount = cast(cast(outstanding__amount as decimal(38, 10)) + 0.01 as varchar), "
            "amount__amount = cast(cast(amount__amount as decimal(38, 10)) + 0.01 as varchar) "
            "where account_id = ? and id = ?",
            [ACCT, invoice],
        )
    finally:
        con.close()
    warehouse = DuckDBWarehouse(path)
    yield path, Checker(LOOKER_DIR, warehouse), str(client)
    warehouse.close()


def test_lookml_shows_the_changed_invoice_against_the_snapshot(mutated: Mutated) -> None:
    path, checker, client = mutated
    day, aging = snapshots(path, "report_accounts_aging")[ACCT]
    want, got = snapshot_aging(aging), lookml_aging(checker, ACCT, day)
    differ = {
        key: cents(got[key]) - want.get(key, Decimal(0)) for key in got if cents(got[key]) != want.get(key)
    }
    assert len(differ) == 1 and next(iter(differ.values())) == CENT and next(iter(differ))[0] == client
    day, pl = snapshots(path, "report_profit_loss")[ACCT]
    lines = lookml_lines(checker, ACCT, day, "section", "line")
    assert cents(lines[("Income", "Sales")]) - snapshot_lines(pl)[("Income", "Sales")] == CENT
    assert {k: cents(v) for k, v in lines.items() if k != ("Income", "Sales")} == {
        k: v for k, v in snapshot_lines(pl).items() if k != ("Income", "Sales")
    }


def test_reconcile_lists_each_difference_with_both_amounts(
    capsys: pytest.CaptureFixture[str], mutated: Mutated
) -> None:
    path, _, client = mutated
    code, out = reconcile_reports(capsys, path)
    check = out["report_check"]
    assert code == 1 and out["drift"] is True and check["status"] == "mismatch"
    by = {(c["account_id"], c["report"]): c for c in check["checks"]}
    assert [c["match"] for k, c in sorted(by.items()) if k[0] != ACCT] == [True, True]
    aging = by[(ACCT, "report_accounts_aging")]["differences"]
    keys = {(d["client"], d["bucket"]) for d in aging}
    bucket = next(b for c, b in keys if c == client and b != "total")
    assert keys == {(client, bucket), (client, "total"), ("totals", bucket), ("totals", "total")}
    for d in aging:
        assert Decimal(d["warehouse"]) - Decimal(d["freshbooks"]) == CENT
    pl = by[(ACCT, "report_profit_loss")]["differences"]
    assert [d["line"] for d in pl] == ["Income", "Income / Sales"]
    assert all(Decimal(d["warehouse"]) - Decimal(d["freshbooks"]) == CENT for d in pl)

    assert reconcile_main(["--warehouse", f"duckdb://{path}", "--reports-only"]) == 1
    text = capsys.readouterr().out
    sales = next(d for d in pl if d["line"] == "Income / Sales")
    assert f"Income / Sales: FreshBooks {sales['freshbooks']} warehouse {sales['warehouse']}" in text
    assert "Result: reports MISMATCH in 2 of 4 account reports" in text
