"""Cost centers (issue 12 point 6): a mapping CSV loaded into the warehouse by
``freshbooks-looker cost-centers``, the Cost Center dimension mapped from client, project or
service (manifest constants), and the dashboard tile "MTD Revenue by Client, Service Line and Cost
Center" checked like every tile and compared with the emulator's truth.

The warehouse is a copy of the one the real pipeline loaded (session fixture). The seed spreads
invoice dates over 400 days, so the current month may hold none: the copy re-dates every third
invoice to today, and the truth dates the same invoices today. Everything else (amounts, lines,
clients, projects, the mapping) comes from the emulator's own records and the CSV.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import truth

from freshbooks_looker import cost_centers
from freshbooks_looker.check import Checker
from freshbooks_looker.warehouse import DuckDBWarehouse

LOOKER_DIR = Path(__file__).resolve().parents[2] / "looker"
TILE_FIELDS = (
    "clients.client_name",
    "invoice_lines.name",
    "cost_centers.cost_center",
    "invoice_lines.amount_currency",
)


def client_name(c: dict) -> str:
    return c.get("organization") or f"{c.get('fname') or ''} {c.get('lname') or ''}".strip()


def mapping_rows(emu) -> list[tuple[str, str, str, str]]:
    """Half the clients of each account, one service name and one project mapped; the rest not."""
    rows = []
    for acct in [a["account_id"] for a in emu.accounts]:
        clients = sorted(c["userid"] for a, c in truth.records(emu, "clients") if a == acct)
        rows += [
            (acct, "client", str(uid), "Enterprise" if i % 4 == 0 else "Small Business")
            for i, uid in enumerate(clients)
            if i % 2 == 0
        ]
        rows.append((acct, "service", "Consulting", "Professional Services"))
        projects = sorted(p["id"] for a, p in truth.records(emu, "projects") if a == acct)
        rows.append((acct, "project", str(projects[0]), "Implementation"))
    return rows


def redated(emu) -> set[tuple[str, str]]:
    return {
        (acct, str(inv["id"])) for acct, inv in truth.records(emu, "invoices") if inv["invoiceid"] % 3 == 0
    }


def expected(emu, source: str, mapping, mtd: bool) -> dict:
    """Line revenue of non-draft, non-deleted invoices by (client, line name, cost center, currency)."""
    today, moved = truth.today(), redated(emu)
    clients = {(a, c["userid"]): client_name(c) for a, c in truth.records(emu, "clients")}
    projects = {(a, str(p["id"])): p["title"] for a, p in truth.records(emu, "projects")}
    mapped = {(a, s, k): cc for a, s, k, cc in mapping}
    out: dict = defaultdict(Decimal)
    for acct, inv in truth.records(emu, "invoices"):
        if inv["status"] == 1 or inv.get("vis_state", 0) == 1:
            continue
        day = today if (acct, str(inv["id"])) in moved else inv["create_date"]
        if mtd and not ((day.year, day.month) == (today.year, today.month) and day <= today):
            continue
        client = clients.get((acct, inv["customerid"]))
        for line in inv.get("lines") or []:
            project = line.get("modern_project_id")
            key, own = {
                "client": (str(inv["customerid"]), client),
                "project": (str(project), projects.get((acct, str(project)))) if project else (None, None),
                "service": (line["name"], line["name"]),
            }[source]
            cost_center = mapped.get((acct, source, key)) or own or "Unassigned"
            amount, code = truth.money(line["amount"])
            out[(client, line["name"], cost_center, code)] += amount
    return truth.nonzero(dict(out))


@pytest.fixture(scope="module")
def mapped_copy(duckdb_load, tmp_path_factory):
    """The loaded warehouse, every third invoice dated today, and the mapping CSV loaded."""
    emu = duckdb_load.emu
    path = tmp_path_factory.mktemp("cost_centers") / "warehouse.duckdb"
    shutil.copy(duckdb_load.path, path)
    con = duckdb.connect(str(path))
    con.execute(
        f"UPDATE freshbooks.invoices SET create_date = '{truth.today().isoformat()}' "
        "WHERE CAST(invoiceid AS BIGINT) % 3 = 0"
    )
    con.close()
    rows = mapping_rows(emu)
    csv = path.parent / "cost_centers.csv"
    csv.write_text(
        "cost_center,account_id,source,source_key\n"  # columns in any order
        + "".join(f'"{cc}",{a},{s.upper() if s == "client" else s},"{k}"\n' for a, s, k, cc in rows)
    )
    assert cost_centers.load(cost_centers.read_csv(csv), duckdb=str(path)) == len(rows)
    return path, rows


def tile(checker: Checker):
    found = [
        t for t in checker.dashboard_tiles() if t[0] == "revenue" and t[1]["name"] == "revenue_by_cost_center"
    ]
    assert len(found) == 1
    _, el, explore, fields, filters, sorts, limit = found[0]
    assert el["title"] == "MTD Revenue by Client, Service Line and Cost Center"
    assert tuple(fields[:4]) == TILE_FIELDS and fields[4] == "invoice_lines.total_line_revenue_mtd"
    return explore, fields, filters, sorts, limit


def rows_by(rows: list[dict], value: str) -> dict:
    got = {tuple(r[f] for f in TILE_FIELDS): r[value] for r in rows if r["invoice_lines.name"] is not None}
    return truth.nonzero(got)


def test_the_tile_equals_the_emulators_mtd_line_revenue_by_client_service_and_cost_center(
    mapped_copy, duckdb_load
):
    path, mapping = mapped_copy
    with DuckDBWarehouse(path) as wh:
        ck = Checker(LOOKER_DIR, wh, {"COST_CENTER_TABLE": "cost_centers", "COST_CENTER_SOURCE": "client"})
        explore, fields, filters, sorts, limit = tile(ck)
        compiled = ck.explore_sql(explore).compile(fields, filters, sorts, limit)
        rows = [dict(zip(compiled.columns, r, strict=True)) for r in wh.query(compiled.sql)]
    want = expected(duckdb_load.emu, "client", mapping, mtd=True)
    assert len(want) >= 5 and len(rows) < limit
    assert rows_by(rows, "invoice_lines.total_line_revenue_mtd") == want
    centers = {k[2] for k in want}
    mapped = {"Enterprise", "Small Business"}
    assert centers & mapped and centers - mapped  # mapped clients and unmapped ones (their own name)


@pytest.mark.parametrize("source", ["client", "project", "service"])
def test_each_source_maps_all_line_revenue(mapped_copy, duckdb_load, source):
    path, mapping = mapped_copy
    with DuckDBWarehouse(path) as wh:
        ck = Checker(LOOKER_DIR, wh, {"COST_CENTER_TABLE": "cost_centers", "COST_CENTER_SOURCE": source})
        rows = ck.query("invoices", [*TILE_FIELDS, "invoice_lines.total_line_revenue"])
    want = expected(duckdb_load.emu, source, mapping, mtd=False)
    assert rows_by(rows, "invoice_lines.total_line_revenue") == want
    if source == "service":
        assert any(k[2] == "Professional Services" and k[1] == "Consulting" for k in want)


def test_without_a_mapping_table_cost_centers_are_the_clients(checker, duckdb_load):
    """The default (COST_CENTER_TABLE empty) needs no table: the check of every tile covers it."""
    rows = checker.query("invoices", [*TILE_FIELDS, "invoice_lines.total_line_revenue"])
    assert rows_by(rows, "invoice_lines.total_line_revenue") == expected(
        duckdb_load.emu, "client", [], mtd=False
    )


def test_the_mapping_table_passes_the_checks_every_view_and_join_gets(mapped_copy):
    """What `freshbooks-looker check` asks of every view and many_to_one join, with the table
    configured: a unique, non-null primary key and at most one mapping per invoice line (the full
    check runs with the default configuration in test_lookml_check.py)."""
    path, _ = mapped_copy
    with DuckDBWarehouse(path) as wh:
        for source in ("client", "project", "service"):
            ck = Checker(LOOKER_DIR, wh, {"COST_CENTER_TABLE": "cost_centers", "COST_CENTER_SOURCE": source})
            xs = ck.explore_sql("invoices")
            pk, _ = xs.dim_ref("cost_centers", "pk")
            total, distinct, nonnull = wh.query(
                f"SELECT COUNT(*), COUNT(DISTINCT {pk}), COUNT({pk}) "
                f"FROM {xs.table_sql('cost_centers')} AS cost_centers"
            )[0]
            assert total == distinct == nonnull > 0, source
        # service: the key is a name, the source most likely to match a line twice
        ck._check_relationships(ck.project.explores["invoices"])
        assert ck.report.errors == [], ck.report.text()
        assert ck.report.stats["relationships checked"] >= 6


def test_a_bad_mapping_is_refused_whole_with_line_numbers(tmp_path, mapped_copy):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "account_id,source,source_key,cost_center\nA,client,1,X\nA,client,1,Y\nA,region,2,Z\nA,service,,Z\n"
    )
    with pytest.raises(cost_centers.MappingError) as err:
        cost_centers.read_csv(bad)
    assert "line 3: client '1' of account A is already mapped on line 2" in str(err.value)
    assert "line 4: source 'region'" in str(err.value) and "line 5: empty source_key" in str(err.value)
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE SCHEMA freshbooks; CREATE TABLE freshbooks.cost_centers (code VARCHAR, name VARCHAR)")
    con.close()
    with pytest.raises(cost_centers.MappingError, match="not replacing a table this command did not create"):
        cost_centers.load([("A", "client", "1", "X")], duckdb=str(other))
