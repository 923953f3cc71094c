"""Key LookML measures equal independent truth: the emulator's own records (what FreshBooks holds)
or plain SQL over the loaded tables. Queries go through the LookML (fields, joins, filters,
required fields, fan-out protection) exactly like a dashboard tile."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
import truth

from freshbooks_looker.sqlgen import ExploreSQL

LOOKER_DIR = Path(__file__).resolve().parents[2] / "looker"

BUCKETS = [
    "invoices.ar_current",
    "invoices.ar_1_30",
    "invoices.ar_31_60",
    "invoices.ar_61_90",
    "invoices.ar_over_90",
]


def by(rows, *keys, value):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r[value] for r in rows}


def test_ar_aging_total_equals_open_invoices_outstanding_per_currency(checker, duckdb_load):
    expected = truth.open_ar_by_currency(duckdb_load.emu)
    assert len(expected) == 2  # USD and CAD receivables: the test is multi-currency
    rows = checker.query("invoices", ["invoices.total_outstanding", *BUCKETS])
    got = by(rows, "invoices.currency_code", value="invoices.total_outstanding")
    assert truth.nonzero(got) == expected
    for r in rows:  # the buckets add up to the total, exactly
        assert sum(r[b] for b in BUCKETS) == r["invoices.total_outstanding"]


def test_ar_aging_buckets_match_days_past_due(checker, duckdb_load):
    expected = truth.open_ar_by_bucket(duckdb_load.emu)
    rows = checker.query(
        "invoices",
        ["invoices.aging_bucket", "invoices.total_outstanding"],
        filters={"invoices.is_open": "Yes"},
    )
    got = by(rows, "invoices.aging_bucket", "invoices.currency_code", value="invoices.total_outstanding")
    assert truth.nonzero(got) == expected


def test_revenue_by_month_equals_invoice_totals_by_month(checker, duckdb_load):
    expected = truth.invoiced_by_month(duckdb_load.emu)
    rows = checker.query("invoices", ["invoices.created_on_month", "invoices.total_invoiced"])
    got = by(rows, "invoices.created_on_month", "invoices.currency_code", value="invoices.total_invoiced")
    assert got == expected
    assert len({k[1] for k in got}) == 2


def test_revenue_is_exact_with_lines_and_payments_joined(checker):
    """Fan-out: joining lines and payments (one-to-many) must not multiply invoice totals."""
    fields = ["invoices.created_on_month", "invoices.total_invoiced"]
    plain = checker.query("invoices", fields)
    fanned = checker.query("invoices", [*fields, "invoice_lines.count", "payments.count"])
    key = ("invoices.created_on_month", "invoices.currency_code")
    assert by(fanned, *key, value="invoices.total_invoiced") == by(
        plain, *key, value="invoices.total_invoiced"
    )
    assert sum(r["invoice_lines.count"] for r in fanned) > sum(1 for _ in fanned)  # lines did fan out
    sql = checker.warehouse.query(
        "SELECT COUNT(*) FROM freshbooks.invoices i JOIN freshbooks.invoice_lines l "
        "ON l.account_id = i.account_id AND l.invoice_id = i.id AND l.invoice_updated = i.updated "
        "WHERE COALESCE(i.vis_state, 0) <> 1"
    )[0][0]
    assert sum(r["invoice_lines.count"] for r in fanned) == sql


def test_line_revenue_by_item_or_service_uses_current_lines_only(checker, duckdb_load):
    expected = truth.line_revenue_by_name(duckdb_load.emu)
    rows = checker.query("invoices", ["invoice_lines.name", "invoice_lines.total_line_revenue"])
    got = by(
        rows, "invoice_lines.name", "invoice_lines.amount_currency", value="invoice_lines.total_line_revenue"
    )
    assert {k: v for k, v in got.items() if k[0] is not None} == expected


def test_collected_equals_payments_per_currency(checker, duckdb_load):
    expected = truth.collected_by_currency(duckdb_load.emu)
    rows = checker.query("payments", ["payments.total_collected"])
    assert by(rows, "payments.amount_currency", value="payments.total_collected") == expected


def test_collected_vs_invoiced_activity_matches_its_sources(checker, duckdb_load):
    rows = checker.query("ar_activity", ["ar_activity.total_invoiced", "ar_activity.total_collected"])
    invoiced: dict = {}
    for (_, cur), v in truth.invoiced_by_month(duckdb_load.emu).items():
        invoiced[cur] = invoiced.get(cur, 0) + v
    assert by(rows, "ar_activity.currency_code", value="ar_activity.total_invoiced") == invoiced
    assert by(
        rows, "ar_activity.currency_code", value="ar_activity.total_collected"
    ) == truth.collected_by_currency(duckdb_load.emu)


def test_dso_is_outstanding_over_window_sales_times_days(checker, duckdb_load):
    rows = checker.query("invoices", ["invoices.total_outstanding", "invoices.dso"])
    window_rows = checker.query(
        "invoices", ["invoices.total_invoiced"], filters={"invoices.is_in_dso_window": "Yes"}
    )
    window = by(window_rows, "invoices.currency_code", value="invoices.total_invoiced")
    for r in rows:
        sales = window.get(r["invoices.currency_code"])
        if not sales:
            assert r["invoices.dso"] is None
        else:
            assert r["invoices.dso"] == pytest.approx(float(r["invoices.total_outstanding"] * 90 / sales))


def test_expenses_by_category_per_currency(checker, duckdb_load):
    expected = truth.expenses_by_category(duckdb_load.emu)
    rows = checker.query("expenses", ["expense_categories.category", "expenses.total_expenses"])
    got = by(rows, "expense_categories.category", "expenses.amount_currency", value="expenses.total_expenses")
    assert got == expected


def test_ap_aging_total_equals_open_bills_per_currency(checker, duckdb_load):
    rows = checker.query(
        "bills",
        [
            "bills.total_ap_outstanding",
            "bills.ap_current",
            "bills.ap_1_30",
            "bills.ap_31_60",
            "bills.ap_61_90",
            "bills.ap_over_90",
        ],
    )
    got = truth.nonzero(by(rows, "bills.currency_code", value="bills.total_ap_outstanding"))
    assert got == truth.open_ap_by_currency(duckdb_load.emu)


def test_general_ledger_natural_amount_by_account_type(checker, duckdb_load):
    rows = checker.query(
        "general_ledger", ["journal_entry_details.gl_account_type", "journal_entry_details.natural_amount"]
    )
    got = by(
        rows,
        "journal_entry_details.gl_account_type",
        "journal_entry_details.currency_code",
        value="journal_entry_details.natural_amount",
    )
    expected = truth.natural_by_type(duckdb_load.emu)
    assert {k: got[k] for k in expected} == expected
    # expenses by GL account: the expense rows exist and are positive (debit-normal)
    assert all(v > 0 for (typ, _), v in got.items() if typ == "expense")


def test_money_measures_never_add_currencies(checker):
    """required_fields puts the currency into every query; without it the guard returns NULL."""
    xs = checker.explore_sql("invoices")
    compiled = xs.compile(["invoices.total_invoiced"])
    assert compiled.columns == ["invoices.currency_code", "invoices.total_invoiced"]
    project = copy.deepcopy(checker.project)
    project.views["invoices"].fields["total_invoiced"].params.pop("required_fields")
    xs = ExploreSQL(project, project.explores["invoices"], checker.warehouse.dialect)
    compiled = xs.compile(["invoices.total_invoiced", "invoices.invoiced_sum"])
    ((guarded, raw),) = checker.warehouse.query(compiled.sql)
    assert guarded is None and raw > 0  # two currencies in one row: no number at all


def test_deleted_records_hidden_by_default_and_shown_on_demand(checker, duckdb_load):
    invoices = truth.records(duckdb_load.emu, "invoices")
    deleted = sum(1 for _, i in invoices if i.get("vis_state") == 1)
    assert deleted >= 2
    default = checker.query("invoices", ["invoices.count"])[0]["invoices.count"]
    shown = checker.query(
        "invoices", ["invoices.count", "invoices.is_deleted"], params={"invoices.include_deleted": "yes"}
    )
    assert default == len(invoices) - deleted
    assert by(shown, "invoices.is_deleted", value="invoices.count") == {
        "Yes": deleted,
        "No": len(invoices) - deleted,
    }


def test_month_and_fiscal_year_to_date(checker, duckdb_load):
    today = truth.today()
    fy: dict = {}
    mtd: dict = {}
    for _, inv in truth.records(duckdb_load.emu, "invoices"):
        if inv["status"] == 1 or inv.get("vis_state", 0) == 1 or inv["create_date"] > today:
            continue
        amount = Decimal(inv["amount"]["amount"])
        if inv["create_date"].year == today.year:  # FISCAL_MONTH_OFFSET 0 = calendar year
            fy[inv["currency_code"]] = fy.get(inv["currency_code"], 0) + amount
        if (inv["create_date"].year, inv["create_date"].month) == (today.year, today.month):
            mtd[inv["currency_code"]] = mtd.get(inv["currency_code"], 0) + amount
    rows = checker.query("invoices", ["invoices.total_invoiced_mtd", "invoices.total_invoiced_fytd"])
    assert truth.nonzero(by(rows, "invoices.currency_code", value="invoices.total_invoiced_fytd")) == fy
    assert truth.nonzero(by(rows, "invoices.currency_code", value="invoices.total_invoiced_mtd")) == mtd


def test_fiscal_year_offset_constant(duckdb_load):
    """FISCAL_MONTH_OFFSET = 3 (April): an invoice dated in April belongs to the next fiscal year."""
    from freshbooks_looker.check import Checker
    from freshbooks_looker.warehouse import DuckDBWarehouse

    with DuckDBWarehouse(duckdb_load.path) as wh:
        ck = Checker(LOOKER_DIR, wh, {"FISCAL_MONTH_OFFSET": "3"})
        rows = ck.query(
            "invoices",
            ["invoices.created_on_date", "invoices.fiscal_year", "invoices.fiscal_quarter_of_year"],
        )
    for r in rows:
        d = r["invoices.created_on_date"]
        assert r["invoices.fiscal_year"] == d.year + (1 if d.month > 3 else 0)
        assert r["invoices.fiscal_quarter_of_year"] == ((d.month - 4) % 12) // 3 + 1


def test_dashboard_tiles_return_rows(checker):
    """Every data tile of every LookML dashboard runs on the loaded data, most return rows."""
    empty = []
    for dname, el, explore, fields, filters, sorts, limit in checker.dashboard_tiles():
        compiled = checker.explore_sql(explore).compile(fields, filters, sorts, limit)
        if not checker.warehouse.query(compiled.sql):
            empty.append(f"{dname}.{el['name']}")
    # MTD tiles can be empty early in a month; the rest must show data
    assert set(empty) <= {
        "revenue.invoiced_to_date",
        "revenue.collected_to_date",
        "revenue.revenue_by_service",
        "expenses.expenses_to_date",
        "revenue.revenue_by_project",
        "revenue.revenue_by_cost_center",
    }, empty
