"""``freshbooks-looker drift``: FreshBooks dimensions in the warehouse vs what the model expects.
(The end-to-end version, with the changes made in the emulator and loaded by the pipeline, is in
tests/warehouse/test_postgres_pipeline.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import duckdb

from freshbooks_looker import drift
from freshbooks_looker.lookml import Project

ROOT = Path(__file__).resolve().parents[2]
LOOKER_DIR = ROOT / "looker"


def run(path, lock, *extra) -> tuple[int, list[str]]:
    return run_args(["--duckdb", str(path), "--lock", str(lock), *extra])


def run_args(argv: list[str]) -> tuple[int, list[str]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = drift.main(argv)
    return code, out.getvalue().splitlines()


def test_expectations_are_read_from_the_lookml():
    exp = drift.expectations(Project(LOOKER_DIR))
    assert exp.account_types == {"asset", "liability", "equity", "income", "expense"}
    assert exp.category_depth == 2 and exp.account_depth == 2


def test_no_drift_after_review_then_every_kind_of_change(duckdb_load, tmp_path):
    lock = tmp_path / "dimensions.lock.json"
    code, lines = run(duckdb_load.path, lock)
    assert code == 0 and "no reviewed snapshot yet" in lines[0]
    code, lines = run(duckdb_load.path, lock, "--update")
    assert code == 0 and lock.exists()
    code, lines = run(duckdb_load.path, lock, "--strict")
    assert code == 0 and lines == ["drift: 0 error(s), 0 change(s) since the reviewed snapshot"]

    changed = tmp_path / "changed.duckdb"
    shutil.copy(duckdb_load.path, changed)
    con = duckdb.connect(str(changed))
    con.execute("USE changed")
    con.execute(
        "UPDATE freshbooks.expense_categories SET category = 'Software & SaaS' WHERE categoryid = 5001"
    )
    con.execute("UPDATE freshbooks.expense_categories SET parentid = 5002 WHERE categoryid = 5003")
    con.execute(
        "INSERT INTO freshbooks.expense_categories (account_id, id, categoryid, category, parentid, vis_state) "
        "VALUES ('zK3pQ7', '5999', 5999, 'Cloud Hosting', 5003, 0)"
    )  # 3 levels deep
    con.execute(
        "UPDATE freshbooks.expenses SET amount__code = 'EUR' WHERE id = (SELECT MIN(id) FROM freshbooks.expenses)"
    )
    con.execute(
        "UPDATE freshbooks.chart_of_accounts SET sub_type = 'Prepaid Expenses' "
        "WHERE uuid = (SELECT MIN(uuid) FROM freshbooks.chart_of_accounts WHERE type = 'asset')"
    )
    con.execute(
        "UPDATE freshbooks.chart_of_accounts SET type = 'cost_of_sales' "
        "WHERE uuid = (SELECT MIN(uuid) FROM freshbooks.chart_of_accounts WHERE type = 'expense')"
    )
    con.close()

    code, lines = run(changed, lock)
    text = "\n".join(lines)
    assert code == 1  # errors: the model cannot follow these without a LookML change
    assert "ERROR  account types: FreshBooks account type 'cost_of_sales' is not mapped" in text
    assert "ERROR  expense categories: category zK3pQ7|5999 (Cloud Hosting) is 3 levels deep" in text
    # changes the model follows by itself, reported for review
    assert "renamed zK3pQ7|5001: 'Insurance' -> 'Software & SaaS'" in text or "renamed zK3pQ7|5001" in text
    assert "re-parented zK3pQ7|5003: None -> 5002" in text
    assert "added zK3pQ7|5999: Cloud Hosting" in text
    assert "new currency EUR" in text
    assert "new sub-type asset / Prepaid Expenses" in text


def use_looker(fake, monkeypatch) -> None:
    """Point the utility's ``--looker`` mode at the fake Looker (its URL and API credentials)."""
    for key, value in {
        "BASE_URL": fake.url,
        "CLIENT_ID": fake.client_id,
        "CLIENT_SECRET": fake.client_secret,
    }.items():
        monkeypatch.setenv(f"FRESHBOOKS_LOOKER_{key}", value)


def test_drift_through_the_looker_api_reads_what_the_warehouse_holds(duckdb_load, tmp_path, monkeypatch):
    """`drift --looker`: the same snapshot through Looker's inline queries (the fake Looker runs
    the explores' SQL on the warehouse), deleted records and every currency explore included."""
    from fake_looker import FakeLooker

    from freshbooks_looker.warehouse import DuckDBWarehouse

    changed = tmp_path / "changed.duckdb"
    shutil.copy(duckdb_load.path, changed)
    con = duckdb.connect(str(changed))
    con.execute(
        "UPDATE freshbooks.expense_categories SET category = 'Software & SaaS' WHERE categoryid = 5001"
    )
    con.execute(
        "UPDATE freshbooks.expenses SET amount__code = 'EUR', vis_state = 1 "
        "WHERE id = (SELECT MIN(id) FROM freshbooks.expenses)"
    )  # a deleted expense's currency counts
    con.close()
    with DuckDBWarehouse(changed) as wh:
        direct = drift.snapshot(wh, "freshbooks")
        fake = FakeLooker(warehouse=wh, project_dir=LOOKER_DIR).start()
        try:
            use_looker(fake, monkeypatch)
            lock = tmp_path / "lock.json"
            code, lines = run_args(["--looker", "--lock", str(lock), "--update"])
        finally:
            fake.stop()
    assert code == 0, lines
    assert lines[0] == (
        "drift: currencies of bill_payments.amount__code, clients.currency_code not read "
        "(no explore has them as its base)"
    )
    via_looker = drift.Snapshot.load(lock)
    assert via_looker == direct
    assert (
        "EUR" in via_looker.currencies
        and via_looker.expense_categories["zK3pQ7|5001"]["name"] == "Software & SaaS"
    )
    queries = [json.loads(c["body"]) for c in fake.calls if c["path"] == "/api/4.0/queries/run/json"]
    assert len(queries) == 9 and all(q["limit"] == "5000" for q in queries)
    assert {
        "model": "freshbooks",
        "view": "expenses",
        "fields": ["expenses.amount_currency"],
        "filters": {"expenses.include_deleted": "yes"},
        "limit": "5000",
    } in queries


def test_drift_through_looker_fails_clearly_at_the_5000_row_limit(duckdb_load, tmp_path, monkeypatch):
    from fake_looker import FakeLooker

    from freshbooks_looker.warehouse import DuckDBWarehouse

    big = tmp_path / "big.duckdb"
    shutil.copy(duckdb_load.path, big)
    con = duckdb.connect(str(big))
    con.execute(
        "INSERT INTO freshbooks.chart_of_accounts (account_id, id, uuid, number, name, type) "
        "SELECT 'zK3pQ7', 'x' || i, 'uuid-' || i, CAST(90000 + i AS VARCHAR), 'Account ' || i, 'asset' "
        "FROM range(5000) t(i)"
    )
    con.close()
    with DuckDBWarehouse(big) as wh:
        fake = FakeLooker(warehouse=wh, project_dir=LOOKER_DIR).start()
        try:
            use_looker(fake, monkeypatch)
            code, lines = run_args(["--looker", "--lock", str(tmp_path / "lock.json")])
        finally:
            fake.stop()
    assert code == 2
    assert lines == [
        "drift: freshbooks::chart_of_accounts returned 5,000 rows, Looker's 5,000-row query limit, "
        "so the answer may be cut off; read the warehouse directly instead (--duckdb FILE / "
        "--postgres DSN)"
    ]
