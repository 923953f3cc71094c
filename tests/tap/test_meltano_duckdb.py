"""The real pipeline: `meltano run tap-freshbooks target-duckdb` against the emulator.

Uses the project's meltano.yml and the plugins `scripts/setup` installed (.meltano/), with a
per-test system database (state) and DuckDB file.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import ROOT, TEST_FERNET_KEY
from security.outputs import save_output
from tap_freshbooks.streams import STREAM_TYPES

pytestmark = pytest.mark.slow

MELTANO = str(ROOT / ".venv" / "bin" / "meltano")
#: each table's key (line streams add their parent's id)
KEYS = {cls.name: cls.primary_keys for cls in STREAM_TYPES}
TARGET_DUCKDB = ROOT / ".meltano" / "loaders" / "target-duckdb" / "venv" / "bin" / "target-duckdb-fast"


def meltano_env(emu, tmp_path: Path, **extra: str) -> dict[str, str]:
    grant = emu.issue_grant()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "TARGET_", "MELTANO_"))}
    env.update(
        {
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
            "MELTANO_ENVIRONMENT": "dev",
            "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
            "TAP_FRESHBOOKS_REFRESH_TOKEN": grant["refresh_token"],
            "TAP_FRESHBOOKS_API_URL": emu.url,
            "TAP_FRESHBOOKS_AUTH_URL": emu.url,
            "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(tmp_path / "tokens.fernet"),
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": TEST_FERNET_KEY,
            "TARGET_DUCKDB_FILEPATH": str(tmp_path / "warehouse.duckdb"),
            # these runs share the repository's .meltano (run dir), whose default pipeline lock
            # would make test sessions running side by side refuse each other: one lock per test
            "TAP_FRESHBOOKS_PIPELINE_LOCK_URL": f"file://{tmp_path / 'pipeline-locks'}",
        }
    )
    env.update(extra)
    return env


def meltano_run(env: dict[str, str], *blocks: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [MELTANO, "run", *(blocks or ("tap-freshbooks", "target-duckdb"))],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    save_output(
        f"meltano run {' '.join(blocks or ('tap-freshbooks', 'target-duckdb'))}",
        proc.stdout + "\n" + proc.stderr,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def table_counts(path: Path) -> dict[str, tuple[int, int]]:
    """{table: (rows, distinct keys)} for every loaded table."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema='freshbooks'"
            ).fetchall()
        ]
        for table in tables:
            key = ", ".join(KEYS.get(table, ["account_id", "id"]))
            out[table] = con.execute(
                f"select count(*), count(distinct ({key})) from freshbooks.{table}"
            ).fetchone()
        return out
    finally:
        con.close()


def test_meltano_run_twice_gives_no_duplicates(emulator, tmp_path) -> None:
    env = meltano_env(emulator, tmp_path)
    meltano_run(env)
    first = table_counts(tmp_path / "warehouse.duckdb")
    assert len(first) == len(STREAM_TYPES)  # one table per stream
    for table, (rows, keys) in first.items():
        assert rows == keys > 0, table

    account_id = emulator.accounts[0]["account_id"]
    invoice = next(r for r in emulator.truth("invoices", account_id) if r["vis_state"] == 0)
    emulator.advance(60)
    emulator.update("invoices", account_id, invoice["id"], notes="second run")
    emulator.create("clients", account_id, organization="Second Run Inc")

    meltano_run(env)  # state kept by Meltano between runs (environment dev)
    second = table_counts(tmp_path / "warehouse.duckdb")
    for table, (rows, keys) in second.items():
        assert rows == keys, table
    assert second["clients"][0] == first["clients"][0] + 1
    assert second["invoices"] == first["invoices"]

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    notes = con.execute(
        "select notes from freshbooks.invoices where account_id = ? and id = ?",
        [account_id, str(invoice["id"])],
    ).fetchone()[0]
    con.close()
    assert notes == "second run"


def test_one_record_stream_loads_its_one_row(tmp_path) -> None:
    """Regression for target-duckdb 0.8.0 + DuckDB >= 1.3: the CSV sniffer took the only row of an
    all-text batch for a header and loaded nothing. meltano.yml pins duckdb 1.2.2 beside it."""
    messages = [
        {
            "type": "SCHEMA",
            "stream": "services",
            "key_properties": ["account_id", "id"],
            "schema": {
                "type": "object",
                "properties": {
                    "account_id": {"type": ["string"]},
                    "id": {"type": ["string"]},
                    "name": {"type": ["string", "null"]},
                },
            },
        },
        {
            "type": "RECORD",
            "stream": "services",
            "record": {"account_id": "zK3pQ7", "id": "1", "name": "Design"},
        },
        {"type": "STATE", "value": {}},
    ]
    config = tmp_path / "target.json"
    db = tmp_path / "one.duckdb"
    config.write_text(json.dumps({"filepath": str(db), "default_target_schema": "freshbooks"}))
    subprocess.run(
        [str(TARGET_DUCKDB), "--config", str(config)],
        input="\n".join(json.dumps(m) for m in messages) + "\n",
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select account_id, id, name from freshbooks.services").fetchall() == [
        ("zK3pQ7", "1", "Design")
    ]
    con.close()


def test_one_record_stream_through_the_pipeline(tmp_path) -> None:
    from freshbooks_emulator import FreshBooksEmulator

    emu = FreshBooksEmulator(seed="empty").start()
    try:
        service = emu.create("services", emu.accounts[0]["account_id"], name="Only One", billable=True)
        env = meltano_env(emu, tmp_path, TAP_FRESHBOOKS__SELECT=json.dumps(["services.*"]))
        meltano_run(env)
        con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
        rows = con.execute("select id, name from freshbooks.services").fetchall()
        con.close()
        assert rows == [(str(service["id"]), "Only One")]
    finally:
        emu.stop()
