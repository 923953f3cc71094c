"""The offline LookML check (issue 5 acceptance): every file parses, every reference resolves,
every explore's SQL (Liquid rendered, joins included) runs against the schema the real pipeline
loaded, and a deliberately broken reference makes the check fail."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from freshbooks_looker import generate
from freshbooks_looker.check import LOOKER_DIALECTS, Checker
from freshbooks_looker.lookml import Project
from freshbooks_looker.warehouse import DuckDBWarehouse
from tap_freshbooks.streams import STREAM_TYPES

ROOT = Path(__file__).resolve().parents[2]
LOOKER_DIR = ROOT / "looker"

CLI = ROOT / ".venv" / "bin" / "freshbooks-looker"


def test_every_file_parses_and_is_included():
    project = Project(LOOKER_DIR)
    assert [str(i) for i in project.issues] == []
    lkml = sorted(
        p.relative_to(LOOKER_DIR).as_posix()
        for p in LOOKER_DIR.rglob("*.lkml")
        if "freshbooks_looker" not in p.parts
    )
    assert len(project.parsed) == len(lkml)
    assert set(project.explores) >= {
        "invoices",
        "payments",
        "ar_activity",
        "expenses",
        "general_ledger",
        "bills",
        "time_entries",
        "stream_freshness",
    }
    assert set(project.dashboards) == {
        "revenue",
        "receivables_aging",
        "expenses",
        "payables_aging",
        "freshness",
    }
    # one base view per stream table, named exactly as the stream
    streams = {s["tap_stream_id"] for s in generate.discover_catalog()["streams"]}
    assert streams <= set(project.views)
    for name in streams:
        assert project.views[name].sql_table_name == f"@{{SCHEMA_NAME}}.{name}"


def test_base_views_are_generated_from_the_current_tap_catalog():
    """The _base views, the freshness view and the datagroup match the tap's catalog; after a tap
    schema change, `freshbooks-looker generate` rewrites them (this test says which are stale)."""
    stale = generate.stale(generate.generate())
    assert stale == [], f"run `freshbooks-looker generate`: {stale}"


def test_static_check_passes_in_every_dialect():
    report = Checker(LOOKER_DIR).run()
    assert report.errors == [], report.text()
    for dialect in LOOKER_DIALECTS:
        # every explore (all dimensions, all measures, all joins) x parameter values + every tile
        assert report.stats[f"sql parsed ({dialect})"] >= 2 * 10 + 24
    assert report.stats["references resolved"] > 2000  # every field of every explore's views


def test_check_passes_against_the_loaded_duckdb(checker):
    report = checker.run()
    assert report.errors == [], report.text()
    assert not report.issues, report.text()
    # every explore x parameter value (all dims + each measure), every tile, trigger, PKs
    assert report.stats["queries run (duckdb)"] > 400
    assert report.stats["relationships checked"] >= 15


def test_check_passes_against_the_demo_seed(demo_load):
    """More data (400 invoices, 1000 lines, duplicate service names...): relationships hold."""
    with DuckDBWarehouse(demo_load.path) as wh:
        report = Checker(LOOKER_DIR, wh, dialects=["postgres"]).run()
    assert report.errors == [], report.text()
    assert report.stats["relationships checked"] >= 15


def test_cli_exit_codes(duckdb_load, project_copy: Path):
    ok = subprocess.run(
        [str(CLI), "check", "--duckdb", str(duckdb_load.path), "--quiet", "--dialect", "postgres"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 error(s)" in ok.stdout
    rfn = project_copy / "refinements" / "invoices_rfn.view.lkml"
    rfn.write_text(
        rfn.read_text().replace(
            'sql: ${outstanding} ;;\n    filters: [is_open: "Yes"]',
            'sql: ${outstandng} ;;\n    filters: [is_open: "Yes"]',
            1,
        )
    )
    bad = subprocess.run(
        [str(CLI), "check", "--project", str(project_copy), "--quiet", "--dialect", "postgres"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1
    assert "${outstandng}: view invoices has no field 'outstandng'" in bad.stdout


BREAKAGES = {
    # file, old, new, expected message fragment
    "field reference": (
        "refinements/invoices_rfn.view.lkml",
        "sql: ${status} = 1 ;;",
        "sql: ${statuss} = 1 ;;",
        "has no field 'statuss'",
    ),
    "cross-view reference": (
        "explores/invoices.explore.lkml",
        "${clients.userid} = ${invoices.customerid}",
        "${client.userid} = ${invoices.customerid}",
        "no view 'client'",
    ),
    "unknown constant": (
        "views/invoices_base.view.lkml",
        "@{SCHEMA_NAME}.invoices",
        "@{SCHEMA}.invoices",
        "unknown constant @{SCHEMA}",
    ),
    "liquid typo": (
        "explores/invoices.explore.lkml",
        "invoices.include_deleted._parameter_value == 'yes' %}1 = 1",
        "invoice.include_deleted._parameter_value == 'yes' %}1 = 1",
        "Liquid error",
    ),
    "dashboard field": (
        "dashboards/1_revenue.dashboard.lookml",
        "invoices.total_invoiced_fytd]",
        "invoices.total_invoiced_ytd]",
        "field invoices.total_invoiced_ytd is not in explore",
    ),
    "dashboard listen": (
        "dashboards/2_receivables_aging.dashboard.lookml",
        "      Client: clients.client_name\n    row: 0",
        "      Customer: clients.client_name\n    row: 0",
        "unknown dashboard filter 'Customer'",
    ),
    "join to unknown view": (
        "explores/bills.explore.lkml",
        "join: bill_vendors {",
        "join: bill_vendor {",
        "unknown view bill_vendor",
    ),
    "missing primary key": (
        "views/taxes_base.view.lkml",
        "    primary_key: yes\n",
        "",
        "needs exactly one primary_key",
    ),
    "syntax": (
        "refinements/clients_rfn.view.lkml",
        "drill_fields: [client_detail*]\n  }",
        "drill_fields: [client_detail*]\n",
        "parse error",
    ),
    "bigquery branch": (
        "manifest.lkml",
        "DATE_ADD(CURRENT_DATE(), INTERVAL -@{DSO_WINDOW_DAYS} DAY)",
        "CURRENT_DATE() - INTERVAL '@{DSO_WINDOW_DAYS} days'",
        "quoted INTERVAL literal",
    ),
    "missing description": (
        "refinements/items_rfn.view.lkml",
        '    description: "Number of distinct items."\n',
        "",
        "visible field count has no description",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_a_deliberate_break_fails_the_static_check(project_copy: Path, name: str):
    rel, old, new, expected = BREAKAGES[name]
    path = project_copy / rel
    text = path.read_text()
    assert old in text, f"fixture out of date: {old!r} not in {rel}"
    path.write_text(text.replace(old, new, 1))
    dialects = ["bigquery_standard_sql"] if name == "bigquery branch" else ["postgres"]
    report = Checker(project_copy, dialects=dialects).run()
    messages = "\n".join(str(i) for i in report.errors)
    assert report.errors, f"{name}: no error reported"
    assert expected in messages, messages


def test_a_missing_column_fails_only_against_the_warehouse(duckdb_load, project_copy: Path):
    """The generated SQL is executed: a column the pipeline does not load is a warehouse error."""
    path = project_copy / "views" / "payments_base.view.lkml"
    path.write_text(path.read_text().replace("${TABLE}.gateway ;;", "${TABLE}.gateway_name ;;"))
    static = Checker(project_copy, dialects=["postgres"]).run()
    assert static.errors == []
    with DuckDBWarehouse(duckdb_load.path) as wh:
        report = Checker(project_copy, wh, dialects=["postgres"]).run()
    messages = "\n".join(str(i) for i in report.errors)
    assert 'does not have a column named "gateway_name"' in messages


def test_a_wrong_relationship_fails_against_the_warehouse(duckdb_load, project_copy: Path):
    """Declaring invoice_lines many_to_one to invoices is caught on the loaded data."""
    path = project_copy / "explores" / "payments.explore.lkml"
    text = path.read_text().replace(
        "${invoices.account_id} = ${payments.account_id} AND ${invoices.invoiceid} = ${payments.invoiceid}",
        "${invoices.account_id} = ${payments.account_id}",
    )
    path.write_text(text)
    with DuckDBWarehouse(duckdb_load.path) as wh:
        report = Checker(project_copy, wh, dialects=["postgres"]).run()
    messages = "\n".join(str(i) for i in report.errors)
    assert "join invoices is declared many_to_one but" in messages


@pytest.mark.usefixtures("duckdb_load")
def test_datagroup_trigger_is_the_newest_load(checker):
    wh = checker.warehouse
    xs_sql = checker.project.datagroups["freshbooks_load"]["sql_trigger"].replace(
        "@{SCHEMA_NAME}", "freshbooks"
    )
    (trigger,) = wh.query(xs_sql)[0]
    tables = [
        r[0]
        for r in wh.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'freshbooks' AND table_catalog = 'fbwh'"
        )
    ]
    newest = max(wh.query(f"SELECT MAX(_sdc_batched_at) FROM freshbooks.{t}")[0][0] for t in tables)
    assert trigger == newest
    assert len(tables) == len(STREAM_TYPES)


def test_freshness_explore_lists_every_stream(checker):
    rows = checker.query(
        "stream_freshness",
        [
            "stream_freshness.stream",
            "stream_freshness.row_count",
            "stream_freshness.last_loaded_time",
            "stream_freshness.minutes_since_last_load",
        ],
    )
    wh = checker.warehouse
    assert len(rows) == len(STREAM_TYPES)
    for row in rows:
        (count,) = wh.query(f"SELECT COUNT(*) FROM freshbooks.{row['stream_freshness.stream']}")[0]
        assert row["stream_freshness.row_count"] == count
        assert row["stream_freshness.minutes_since_last_load"] >= 0


def test_report_is_json_serialisable_stats(checker):
    json.dumps(checker.report.stats)
