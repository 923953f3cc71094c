"""The loader settings meltano.yml sets for speed and memory (docs/performance.md), and what they keep.

target-postgres: `validate_records: false` (the SDK's per-record JSON-schema check was 2/3 of its
CPU; the tap conforms every record). tests/warehouse/test_postgres_pipeline.py loads with it and
finds every field equal to FreshBooks, decimals NUMERIC.

target-duckdb with meltano.yml's batch size: several flushes per stream still load exactly once.

meltano.yml sets `batch_size_rows: 10000` (the target's default, 100,000 rows buffered per stream,
made the pipeline's memory grow with volume; docs/performance.md). A stream larger than the batch
is then loaded in several flushes, each its own temp table, UPDATE and anti-join INSERT. Here the
batch is lowered to 4 rows so the small seed crosses it in most streams (invoice lines, which ride
along with invoices, included), and the real pipeline runs twice with FreshBooks changes in between.
"""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal

import duckdb
import pytest
import truth
from pipeline_run import ROOT, Pipeline

from freshbooks_emulator import FreshBooksEmulator

pytestmark = pytest.mark.slow

BATCH = 4


def loader_config(loader: str, tmp_path) -> dict:
    """The loader's config as Meltano resolves it from meltano.yml (no TARGET_* variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TARGET_", "MELTANO_"))}
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{tmp_path / 'meltano.db'}"
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "meltano"), "config", "print", "--format=json", loader],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out)


def test_meltano_yml_loader_settings(tmp_path) -> None:
    duckdb_loader = loader_config("target-duckdb", tmp_path)
    assert duckdb_loader["batch_size_rows"] == 25000
    # DuckDB's SETs, as the loader reads them (memory_limit is soft: tests/loader/test_cli.py)
    assert duckdb_loader["settings"] == {
        "threads": "1",
        "allocator_bulk_deallocation_flush_threshold": "8MB",
        "memory_limit": "150MB",
    }
    assert duckdb_loader["add_metadata_columns"] is True and duckdb_loader["hard_delete"] is False
    postgres = loader_config("target-postgres", tmp_path)
    assert postgres["validate_records"] is False
    assert postgres["load_method"] == "upsert"


def loaded(path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def test_many_flushes_per_stream_load_every_record_once(tmp_path) -> None:
    emu = FreshBooksEmulator(seed="small").start()
    try:
        warehouse = tmp_path / "warehouse.duckdb"
        pipeline = Pipeline(
            emu,
            tmp_path,
            "target-duckdb",
            {
                "TARGET_DUCKDB_FILEPATH": str(warehouse),
                "TARGET_DUCKDB_BATCH_SIZE_ROWS": str(BATCH),
                "MELTANO_CLI_LOG_LEVEL": "info",
            },
        )  # the loader's "stream S: N records -> TABLE in T s" lines, one per stream per commit
        first = pipeline.run()
        flushes = first.stderr.count('records -> "warehouse"."freshbooks"."invoice_lines" in')
        assert flushes >= 3, "invoice lines should have needed several flushes"

        acct = emu.accounts[0]["account_id"]
        invoices = [rec for rec in emu.truth("invoices", acct) if rec["vis_state"] == 0]
        early, late = invoices[0], invoices[-1]  # in the first and in a later flush of the stream
        emu.advance(60)
        emu.update("invoices", acct, early["id"], notes="changed after load")
        emu.update("invoices", acct, late["id"], notes="changed too")
        pipeline.run()

        con = loaded(warehouse)
        try:
            for stream, key in (
                ("invoices", "account_id, id"),
                ("invoice_lines", "account_id, invoice_id, id"),
                ("payments", "account_id, id"),
                ("clients", "account_id, id"),
            ):
                rows, keys = con.execute(
                    f"select count(*), count(distinct ({key})) from freshbooks.{stream}"
                ).fetchone()
                assert rows == keys, f"{stream}: duplicates after two runs"
                assert rows > BATCH, f"{stream} should span several batches"
            expected_invoices = len(truth.records(emu, "invoices"))
            assert con.execute("select count(*) from freshbooks.invoices").fetchone()[0] == expected_invoices
            expected_lines = sum(len(rec.get("lines") or []) for _acct, rec in truth.records(emu, "invoices"))
            assert (
                con.execute("select count(*) from freshbooks.invoice_lines").fetchone()[0] == expected_lines
            )
            notes = dict(
                con.execute(
                    "select id, notes from freshbooks.invoices where account_id = ? and id in (?, ?)",
                    [acct, str(early["id"]), str(late["id"])],
                ).fetchall()
            )
            assert notes == {str(early["id"]): "changed after load", str(late["id"]): "changed too"}
            # exact amounts (text in DuckDB), every invoice of both accounts
            loaded_amounts = {
                (a, i): Decimal(v)
                for a, i, v in con.execute(
                    "select account_id, id, amount__amount from freshbooks.invoices"
                ).fetchall()
            }
        finally:
            con.close()
        for acct_id, rec in truth.records(emu, "invoices"):
            assert loaded_amounts[(acct_id, str(rec["id"]))] == truth.money(rec["amount"])[0]
    finally:
        emu.stop()
