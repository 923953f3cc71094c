"""The Dagster fan-out (orchestration/dagster) against the FreshBooks emulator, through real ``meltano run``s.

Three account groups in a fresh copy of the project (``tap-freshbooks--<group>`` extractors in
``orchestration/account_groups.meltano.yml``): ``maple`` and ``northwind`` share one grant (one
FreshBooks user who reaches both accounts, one token store), ``cedar`` is a third account with a
grant of its own. ``freshbooks-dagster run`` executes the code location's partitioned asset with
Dagster's in-process execution (``dagster.materialize``), from the utility's own venv:

1. first run: the three groups load in parallel (their runs overlap in time), each into its own
   DuckDB file, each with its own Meltano state ID; every record of every account exactly once;
2. FreshBooks changes a few records in every account, and cedar's grant is revoked;
3. second run: maple and northwind load exactly the changed records (incremental, from their own
   state) and are materialized; cedar fails with the tap's one-line "re-authorize" message and
   blocks nobody; the run reports it and exits 1;
4. a run of one group whose pipeline lock another run holds reports it "busy": not loaded, not
   failed, exit 0 (the next run picks up everything).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from cryptography.fernet import Fernet

from freshbooks_emulator import FreshBooksEmulator
from tap_freshbooks.run_lock import hold_pipeline_lock

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "runner"), str(ROOT / "orchestration" / "dagster")]
from pipeline_runner import clone_project, link_plugins  # noqa: E402

from security.outputs import save_output  # noqa: E402

FAN_OUT = ROOT / ".meltano" / "utilities" / "freshbooks-dagster" / "venv" / "bin" / "freshbooks-dagster"
pytestmark = pytest.mark.slow
if not FAN_OUT.exists() or not (ROOT / ".meltano" / "extractors" / "tap-freshbooks").is_dir():
    pytest.skip("the Meltano plugins are not installed: run scripts/setup", allow_module_level=True)

CEDAR = "Qx4mN9"  # the third account, added to the emulator's two
GROUPS = {"maple": "zK3pQ7", "northwind": "Rt8vW2", "cedar": CEDAR}
STREAMS = ["clients", "invoices", "invoice_lines", "payments"]
TABLES = ["clients", "invoices", "payments"]


def group_plugins(tmp_path: Path, firm_grant: dict, cedar_grant: dict) -> dict:
    """The groups file a user would write (plus a bootstrap refresh token per grant: test only)."""

    def plugin(group: str, store: str, grant: dict) -> dict:
        return {
            "name": f"tap-freshbooks--{group}",
            "inherit_from": "tap-freshbooks",
            "select": [f"{s}.*" for s in STREAMS],
            "config": {
                "account_ids": [GROUPS[group]],
                "token_store_path": str(tmp_path / store),
                "refresh_token": grant["refresh_token"],
            },
        }

    return {
        "plugins": {
            "extractors": [
                plugin("maple", "firm.fernet", firm_grant),
                plugin("northwind", "firm.fernet", firm_grant),
                plugin("cedar", "cedar.fernet", cedar_grant),
            ]
        }
    }


def fan_out(project: Path, env: dict, *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        [str(FAN_OUT), "run", *args], cwd=project, env=env, capture_output=True, text=True, timeout=400
    )
    save_output(f"freshbooks-dagster run {' '.join(args)}", proc.stdout + proc.stderr)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    return proc.returncode, json.loads(lines[-1]), proc.stderr


def warehouse(tmp_path: Path, group: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(tmp_path / "warehouse" / f"{group}.duckdb"), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, table: str, since: str | None = None) -> list[tuple[str, str]]:
    where = f"WHERE _fb_extracted_at >= '{since}'" if since else ""
    return con.execute(f"SELECT account_id, id FROM freshbooks.{table} {where}").fetchall()


def run_window(log: Path) -> tuple[datetime, datetime]:
    """First and last timestamp Meltano wrote in a group run's log."""
    stamps = [
        datetime.fromisoformat(line.split()[0].rstrip("Z"))
        for line in log.read_text().splitlines()
        if line[:4].isdigit()
    ]
    return stamps[0], stamps[-1]


def test_three_account_groups_in_parallel_then_incremental_with_one_group_failing(tmp_path):
    emu = FreshBooksEmulator(seed="small").start()
    try:
        emu.add_account(CEDAR, 4391203, "Cedar Row Consulting")
        emu.seed_bulk("clients", 4, CEDAR)
        emu.seed_bulk("invoices", 12, CEDAR)
        emu.seed_bulk("payments", 3, CEDAR)
        firm_grant, cedar_grant = emu.issue_grant(), emu.issue_grant()
        cedar_grant_id = emu.oauth.refresh_tokens[cedar_grant["refresh_token"]]

        project = clone_project(tmp_path / "project")
        (project / "orchestration").mkdir(exist_ok=True)
        (project / "orchestration" / "account_groups.meltano.yml").write_text(
            yaml.safe_dump(group_plugins(tmp_path, firm_grant, cedar_grant))
        )
        sys_dir = tmp_path / "home" / "meltano-sys"
        link_plugins(sys_dir)  # the repository's plugin venvs: nothing is reinstalled
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_", "TARGET_", "FRESHBOOKS_DAGSTER", "DAGSTER_"))
        }
        env.update(
            {
                "HOME": str(tmp_path / "home"),
                "MELTANO_SYS_DIR_ROOT": str(sys_dir),
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_CLI_LOG_LEVEL": "warning",
                "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
                "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
                "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
                "TAP_FRESHBOOKS_API_URL": emu.url,
                "TAP_FRESHBOOKS_AUTH_URL": emu.url,
                "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "FRESHBOOKS_DAGSTER_PROJECT_ROOT": str(project),
                "FRESHBOOKS_DAGSTER_MELTANO": str(ROOT / ".venv" / "bin" / "meltano"),
                "FRESHBOOKS_DAGSTER_DUCKDB_DIR": str(tmp_path / "warehouse"),
                "FRESHBOOKS_DAGSTER_MAX_PARALLEL": "3",
            }
        )

        listed = subprocess.run(
            [str(FAN_OUT), "groups"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.split("\n")
        assert [line.split("\t")[0] for line in listed if line] == ["cedar", "maple", "northwind"]

        # -- run 1: every group, in parallel, from no state --------------------------------------
        started = time.monotonic()
        code, summary, log = fan_out(project, env)
        seconds_1 = time.monotonic() - started
        assert code == 0 and summary["success"], (summary, log[-4000:])
        assert summary["loaded"] == ["cedar", "maple", "northwind"] and not summary["failed"]
        logs = {g: next((sys_dir / "logs" / "freshbooks-dagster").glob(f"{g}-*.log")) for g in GROUPS}
        windows = [run_window(path) for path in logs.values()]
        assert max(start for start, _ in windows) < min(end for _, end in windows), (
            "the groups did not overlap"
        )

        for group, account in GROUPS.items():
            with warehouse(tmp_path, group) as con:
                for table in TABLES:
                    loaded = rows(con, table)
                    assert len(loaded) == len(set(loaded)), f"{group}.{table}: a record loaded twice"
                    assert loaded and {a for a, _ in loaded} == {account}, (
                        f"{group}.{table}: another group's account"
                    )
                    truth = {str(r["id"]) for r in emu.truth(table, account)}
                    assert {i for _, i in loaded} == truth, f"{group}.{table} differs from FreshBooks"
        with sqlite3.connect(sys_dir / "meltano.db") as db:
            state_ids = {row[0] for row in db.execute("SELECT state_id FROM state")}
        assert state_ids == {f"dev:tap-freshbooks--{g}-to-target-duckdb" for g in GROUPS}

        # -- FreshBooks changes; cedar's user revokes the app ------------------------------------
        changed = {}
        for group, account in GROUPS.items():
            invoices = [i["id"] for i in emu.truth("invoices", account)[:2]]
            for invoice_id in invoices:
                emu.update("invoices", account, invoice_id, notes=f"edited after run 1 ({invoice_id})")
            changed[group] = [str(i) for i in invoices]
        emu.create("clients", CEDAR, organization="Arrived While Revoked Ltd")
        emu.revoke_grant(cedar_grant_id)
        with warehouse(tmp_path, "cedar") as con:
            cedar_before = {table: sorted(rows(con, table)) for table in TABLES}
        time.sleep(1.1)  # _fb_extracted_at compared at second resolution
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())

        # -- run 2: incremental; cedar fails alone --------------------------------------------------
        started = time.monotonic()
        code, summary, log = fan_out(project, env)
        seconds_2 = time.monotonic() - started
        assert code == 1 and not summary["success"], summary
        assert summary["loaded"] == ["maple", "northwind"], (summary, log[-4000:])
        assert list(summary["failed"]) == ["cedar"]
        assert summary["failed"]["cedar"].startswith("FreshBooks rejected the refresh token"), summary
        assert "Re-authorize with: tap-freshbooks auth login" in summary["failed"]["cedar"]

        for group in ("maple", "northwind"):
            account = GROUPS[group]
            with warehouse(tmp_path, group) as con:
                assert sorted(i for _, i in rows(con, "invoices", since)) == sorted(changed[group])
                assert rows(con, "clients", since) == rows(con, "payments", since) == []
                for table in TABLES:  # still every record exactly once
                    loaded = rows(con, table)
                    assert len(loaded) == len(set(loaded))
                    assert {i for _, i in loaded} == {str(r["id"]) for r in emu.truth(table, account)}
        with warehouse(tmp_path, "cedar") as con:  # untouched by the failed run
            assert {table: sorted(rows(con, table)) for table in TABLES} == cedar_before

        # -- run 3: one group whose pipeline lock another run holds (the bridge, cron) is busy ------
        held = hold_pipeline_lock(
            {},
            logging.getLogger("another-run"),
            environ={
                **env,
                "MELTANO_PROJECT_ROOT": str(project),
                "MELTANO_ENVIRONMENT": "dev",
                "MELTANO_PROJECT_ID": yaml.safe_load((project / "meltano.yml").read_text())["project_id"],
                "MELTANO_EXTRACTOR_NAME": "tap-freshbooks--maple",
            },
        )
        try:
            code, summary, log = fan_out(project, env, "--group", "maple")
        finally:
            held.done(wait=True)
        assert code == 0 and summary["success"], (summary, log[-4000:])
        assert summary["loaded"] == [] and summary["failed"] == {} and list(summary["busy"]) == ["maple"]
        assert "another run of this pipeline is already running" in summary["busy"]["maple"]
        print(
            f"fan-out: run 1 (3 groups, full) {seconds_1:.1f} s; run 2 (incremental, cedar revoked) "
            f"{seconds_2:.1f} s; changed invoices loaded: {changed}"
        )
    finally:
        emu.stop()
