"""Odd records reach the warehouse through the real loader instead of ending the run."""

from __future__ import annotations

import json

import duckdb
import pytest

from tap.test_meltano_duckdb import meltano_env, meltano_run

pytestmark = pytest.mark.slow


def test_wrong_types_and_missing_replication_keys_load_into_duckdb(emulator, tmp_path) -> None:
    account_id = emulator.accounts[0]["account_id"]
    emulator.configure(omit_fields={"credit_notes": ["updated"]})
    invoice = next(r for r in emulator.truth("invoices", account_id) if r.get("vis_state") == 0)
    emulator.update(
        "invoices", account_id, int(invoice["id"]), customerid="not-a-number", due_date="0000-00-00"
    )
    env = meltano_env(emulator, tmp_path, TAP_FRESHBOOKS_REDIRECT_URI=emulator.redirect_uri)
    proc = meltano_run(env)
    assert "do not match their declared type" in proc.stderr

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        row = con.execute(
            "select customerid, due_date, _fb_unparsed from freshbooks.invoices where id = ? and account_id = ?",
            [str(invoice["id"]), account_id],
        ).fetchone()
        credit_notes = con.execute("select count(*) from freshbooks.credit_notes").fetchone()[0]
        # free-form objects are kept as JSON columns (the flattener used to drop them)
        vendors = con.execute("select count(vendor) from freshbooks.bills").fetchone()[0]
    finally:
        con.close()
    assert row[0] is None and row[1] is None
    assert json.loads(row[2]) == {"customerid": "not-a-number", "due_date": "0000-00-00"}
    want = sum(len(emulator.truth("credit_notes", a["account_id"])) for a in emulator.accounts)
    assert credit_notes == want > 0
    assert vendors > 0
