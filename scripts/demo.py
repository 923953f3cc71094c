"""The demo: FreshBooks (emulator, or your real account) -> Meltano -> DuckDB -> LookML checks.

Run through ``scripts/demo`` (which sets everything up first). With no FreshBooks credentials in
the environment (TAP_FRESHBOOKS_CLIENT_ID), it starts the bundled FreshBooks emulator and points
the tap at it; with credentials (see the README: "Connect a real FreshBooks account") it extracts
your real data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"
VENV_BIN = Path(sys.executable).parent
DUCKDB_FILE = OUTPUT / "warehouse.duckdb"


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def start_emulator() -> tuple[subprocess.Popen, dict]:
    state_file = OUTPUT / "emulator.json"
    state_file.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    log = (OUTPUT / "emulator.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "freshbooks_emulator", "serve", "--seed", "demo", "--port", "0",
         "--state-file", str(state_file)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not state_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"demo: the FreshBooks emulator did not start; see {OUTPUT / 'emulator.log'}")
        time.sleep(0.1)
    return proc, json.loads(state_file.read_text())


def emulator_env(state: dict) -> dict[str, str]:
    from cryptography.fernet import Fernet  # noqa: PLC0415

    store = OUTPUT / "demo_tokens.fernet"
    store.unlink(missing_ok=True)  # a fresh emulator issues a fresh grant
    return {
        "TAP_FRESHBOOKS_CLIENT_ID": state["client_id"],
        "TAP_FRESHBOOKS_CLIENT_SECRET": state["client_secret"],
        "TAP_FRESHBOOKS_REDIRECT_URI": state["redirect_uri"],
        "TAP_FRESHBOOKS_REFRESH_TOKEN": state["grant"]["refresh_token"],
        "TAP_FRESHBOOKS_API_URL": state["url"],
        "TAP_FRESHBOOKS_AUTH_URL": state["url"],
        "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(store),
        "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }


def summarize() -> int:
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(str(DUCKDB_FILE), read_only=True)
    tables = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'freshbooks' order by 1"
    ).fetchall()]
    say(f"loaded into {DUCKDB_FILE} (schema freshbooks):")
    empty = []
    for table in tables:
        columns = [c[0] for c in con.execute(f'describe freshbooks."{table}"').fetchall()]
        if "vis_state" in columns:
            rows, deleted = con.execute(
                f'select count(*), count(*) filter (where vis_state = 1) from freshbooks."{table}"'  # noqa: S608
            ).fetchone()
            note = f"({deleted} deleted, kept with vis_state = 1)"
        else:
            rows = con.execute(f'select count(*) from freshbooks."{table}"').fetchone()[0]  # noqa: S608
            note = ""
        print(f"  {table:<24} {rows:>7} rows  {note}")
        if not rows:
            empty.append(table)
    con.close()
    return 1 if empty else 0


def main() -> int:
    OUTPUT.mkdir(exist_ok=True)
    env = {**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    emulator = None
    if env.get("TAP_FRESHBOOKS_CLIENT_ID"):
        say("using your FreshBooks credentials from the environment")
    else:
        say("no TAP_FRESHBOOKS_CLIENT_ID set: starting the bundled FreshBooks emulator")
        emulator, state = start_emulator()
        env.update(emulator_env(state))
        say(f"emulator at {state['url']} with accounts {[a['account_id'] for a in state['accounts']]}")
        # a fresh emulator has fresh data: start from a clean warehouse and clean bookmarks
        DUCKDB_FILE.unlink(missing_ok=True)
        env["MELTANO_RUN_FULL_REFRESH"] = "true"
    try:
        started = time.monotonic()
        say("meltano run tap-freshbooks target-duckdb")
        run = subprocess.run(  # noqa: S603
            [str(VENV_BIN / "meltano"), "run", "tap-freshbooks", "target-duckdb"],
            env=env, cwd=ROOT, check=False,
        )
        if run.returncode != 0:
            say("the pipeline failed (see the log lines above)")
            return run.returncode
        say(f"pipeline finished in {time.monotonic() - started:.1f} s")
        status = summarize()
        checker = VENV_BIN / "freshbooks-looker"
        if checker.exists():
            say("checking the LookML project against the loaded warehouse")
            check = subprocess.run(  # noqa: S603
                [str(checker), "check", "--duckdb", str(DUCKDB_FILE)], cwd=ROOT, check=False
            )
            status = status or check.returncode
        say(f"done. Query it: {VENV_BIN / 'python'} -c \"import duckdb; "
            f"print(duckdb.connect('{DUCKDB_FILE}').sql('select * from freshbooks.invoices limit 5'))\"")
        return status
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
