"""Benchmark: what one scheduled poll of one account group costs (the inputs of docs/scale.md).

    .venv/bin/python benchmarks/group_run_cost.py [--changes 10]

Against the emulator's ``demo`` seed (2 accounts, 18 streams, ~4,000 records), in a copy of the
project with its own Meltano system directory and a DuckDB file of its own, it runs
``meltano run tap-freshbooks target-duckdb`` three times, side by side in one process:

1. full (no state);
2. idle incremental (nothing changed in FreshBooks);
3. incremental after ``--changes`` invoice edits in one account;
4. idle incremental of the 5 "hot" streams only (``HOT_STREAMS``: invoices with their lines, payments,
   clients, expenses, bills), the tier docs/scale.md polls every 15 minutes.

For each run it prints: API requests (the emulator's log, token endpoint apart), records loaded,
wall seconds, CPU seconds of every process of the run (meltano, tap, target: ``RUSAGE_CHILDREN``),
the peak RSS of the largest process and the peak of all its processes together (sampled). It also
runs the tap alone (no Meltano, output to /dev/null) from the idle state, to split the tap's cost
from Meltano's start-up. CPU seconds are what a busy machine does not inflate; wall seconds are (see
the load average printed).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "runner")]
from pipeline_runner import MELTANO, TAP, Runner, clone_project, token_env  # noqa: E402

from freshbooks_emulator import FreshBooksEmulator  # noqa: E402

#: the streams a finance team watches during the day (docs/scale.md: a 15-minute tier)
HOT_STREAMS = ["clients", "invoices", "invoice_lines", "payments", "expenses", "bills"]


#: runs the command in a fresh process and reports its tree's CPU seconds and largest RSS (KiB), so
#: each run's peak is its own (RUSAGE_CHILDREN covers every descendant that was waited for)
WRAPPER = """import resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=sys.stderr).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"@@usage {u.ru_utime + u.ru_stime} {u.ru_maxrss}", file=sys.stderr)
sys.exit(code)"""


def measured(emu: FreshBooksEmulator, command: list[str], **kwargs) -> dict:
    """Run one command to completion; requests, wall, CPU of it and its descendants, peak RSS."""
    mark = len(emu.request_log)
    started = time.monotonic()
    # a file, not a pipe: a full pipe would stall the run
    with tempfile.TemporaryFile(mode="w+") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, *command],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            text=True,
            **kwargs,
        )
        tree_peak = 0  # the whole run at once (meltano + tap + target + lock keeper), sampled every 50 ms
        while proc.poll() is None:
            try:
                procs = psutil.Process(proc.pid).children(recursive=True)
                tree_peak = max(tree_peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)
        errors.seek(0)
        stderr = errors.read()
    wall = time.monotonic() - started
    log = emu.request_log[mark:]
    if proc.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{stderr[-3000:]}")
    cpu, maxrss = stderr.rsplit("@@usage ", 1)[1].split()
    by_stream = collections.Counter(
        re.sub(r"\?.*$", "", path).rstrip("/").rsplit("/", 1)[-1]
        for _, path, _ in log
        if not path.startswith("/auth/oauth/token")
    )
    return {
        "by_stream": dict(by_stream.most_common()),
        "requests": sum(1 for _, path, _ in log if not path.startswith("/auth/oauth/token")),
        "token_refreshes": sum(1 for _, path, _ in log if path.startswith("/auth/oauth/token")),
        "wall_s": round(wall, 2),
        "cpu_s": round(float(cpu), 2),
        "peak_rss_mb": round(int(maxrss) / 1024, 1),
        "tree_rss_mb": round(tree_peak / 2**20, 1),
    }


def loaded_since(db: Path, since: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'freshbooks'"
            ).fetchall()
        ]
        return sum(
            con.execute(
                f'SELECT count(*) FROM freshbooks."{t}" WHERE _sdc_batched_at >= ?', (since,)
            ).fetchone()[0]
            for t in tables
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()
    emu = FreshBooksEmulator(seed="demo").start()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="group-run-cost-") as tmp_name:
            tmp = Path(tmp_name)
            db = tmp / "warehouse.duckdb"
            tokens = token_env(tmp / "tokens.fernet", emu.issue_grant())
            runner = Runner(
                emu,
                clone_project(tmp / "project"),
                tmp / "home",
                {**tokens, "TARGET_DUCKDB_FILEPATH": str(db)},
            )
            command = [str(MELTANO), "run", "tap-freshbooks", "target-duckdb"]
            account = emu.accounts[0]["account_id"]
            hot = {"TAP_FRESHBOOKS__SELECT": json.dumps([f"{s}.*" for s in HOT_STREAMS])}
            for label, extra in (
                ("full", {}),
                ("idle incremental", {}),
                (f"{args.changes} changed invoices", {}),
                ("idle, 5 hot streams", hot),
            ):
                if label.endswith("changed invoices"):
                    for invoice in emu.truth("invoices", account)[: args.changes]:
                        emu.update(
                            "invoices", account, invoice["id"], notes=f"benchmark edit {invoice['id']}"
                        )
                time.sleep(1.1)
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
                row = measured(emu, command, cwd=runner.project, env={**runner.env, **extra})
                row.update(run=f"meltano run ({label})", records=loaded_since(db, since))
                rows.append(row)

            # the tap alone from the state Meltano stored: its own share of an idle poll
            state = subprocess.run(
                [str(MELTANO), "state", "get", "dev:tap-freshbooks-to-target-duckdb"],
                cwd=runner.project,
                env=runner.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            (tmp / "state.json").write_text(json.dumps(json.loads(state)["singer_state"]))
            config = {
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "redirect_uri": emu.redirect_uri,
                "api_url": emu.url,
                "auth_url": emu.url,
                "token_store_path": tokens["TAP_FRESHBOOKS_TOKEN_STORE_PATH"],
                "token_encryption_key": tokens["TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY"],
                "flattening_enabled": True,
                "flattening_max_depth": 1,
            }
            (tmp / "tap.json").write_text(json.dumps(config))
            base_env = {
                k: v for k, v in runner.env.items() if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_"))
            }
            row = measured(
                emu,
                [str(TAP), "--config", str(tmp / "tap.json"), "--state", str(tmp / "state.json")],
                cwd=tmp,
                env=base_env,
            )
            row.update(run="tap alone (idle incremental)", records=None)
            rows.append(row)
    finally:
        emu.stop()

    print(
        f"emulator seed demo: {len(emu.accounts)} accounts; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores (wall seconds grow with it, CPU seconds do not)"
    )
    header = (
        f"{'run':38} {'requests':>8} {'refresh':>7} {'records':>7} {'wall s':>7} {'CPU s':>6} "
        f"{'peak RSS MB':>11} {'all RSS MB':>10}"
    )
    print(header)
    for r in rows:
        records = "-" if r["records"] is None else r["records"]
        print(
            f"{r['run']:38} {r['requests']:>8} {r['token_refreshes']:>7} {records:>7} {r['wall_s']:>7} "
            f"{r['cpu_s']:>6} {r['peak_rss_mb']:>11} {r['tree_rss_mb']:>10}"
        )
    idle, tap = rows[1], rows[-1]
    print(
        "idle incremental, requests per endpoint (both accounts):",
        ", ".join(f"{name} {n}" for name, n in idle["by_stream"].items()),
    )
    print(
        f"ratios: idle/full requests {idle['requests'] / rows[0]['requests']:.2f}, "
        f"idle requests per account {idle['requests'] / len(emu.accounts):.1f}, "
        f"tap alone / meltano run CPU (idle) {tap['cpu_s'] / idle['cpu_s']:.2f}"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
