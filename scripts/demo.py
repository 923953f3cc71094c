"""The demo: FreshBooks (bundled emulator, or your real account) -> Meltano -> DuckDB -> LookML checks.

Run through ``scripts/demo`` (which sets everything up first). It never reads or writes your
pipeline's data: not ``output/warehouse.duckdb``, not the Meltano state of ``dev`` (or any other
environment), not ``.secrets/``; ``.env`` is only read, for your app's credentials. Everything it
writes is under ``output/demo/``:

* ``warehouse.duckdb``  its own DuckDB warehouse (schema ``freshbooks``), rebuilt on every run;
* ``tokens.fernet``     its own encrypted token store (``emulator-tokens.fernet`` with the emulator);
* Meltano environment ``demo`` (meltano.yml), hence its own state id
  ``demo:tap-freshbooks-to-target-duckdb``, refreshed in full on every run.

Credentials are looked up the way Meltano looks them up: the environment first, then ``.env`` at
the project root (python-dotenv). Without ``TAP_FRESHBOOKS_CLIENT_ID`` it starts the bundled
FreshBooks emulator with a grant of its own, and ``.env`` is not read at all. With it, it extracts
your real account, through a grant of its own: FreshBooks refresh tokens are single-use, so sharing
your pipeline's token (store or ``refresh_token``) would lock one of the two out. The first run
asks you to authorize the demo once (``auth login`` into ``output/demo/tokens.fernet``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "output" / "demo"
WAREHOUSE = DEMO_DIR / "warehouse.duckdb"
TOKEN_STORE = DEMO_DIR / "tokens.fernet"  # the demo's grant on your real account
EMULATOR_TOKEN_STORE = DEMO_DIR / "emulator-tokens.fernet"  # the bundled emulator's grant (per run)
EMULATOR_STATE = DEMO_DIR / "emulator.json"
EMULATOR_LOG = DEMO_DIR / "emulator.log"
EMULATOR_DOTENV = DEMO_DIR / "emulator.env"
ENVIRONMENT = "demo"
STATE_ID = f"{ENVIRONMENT}:tap-freshbooks-to-target-duckdb"
VENV_BIN = Path(sys.executable).parent
OWN_SETTINGS_PREFIXES = ("TAP_FRESHBOOKS_", "TARGET_DUCKDB_")


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def settings_as_meltano_sees_them() -> dict[str, str]:
    """The environment over ``.env`` (Meltano's precedence; ``.env`` read with python-dotenv)."""
    dotenv = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    return {**dotenv, **os.environ}


def demo_paths_env(token_store: Path) -> dict[str, str]:
    """Always ours, whatever the environment or .env say: they beat .env and meltano.yml."""
    return {
        "TAP_FRESHBOOKS_TOKEN_STORE_PATH": str(token_store),
        "TARGET_DUCKDB_FILEPATH": str(WAREHOUSE),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def start_emulator() -> tuple[subprocess.Popen, dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    from freshbooks_emulator import process  # noqa: PLC0415  (the bundled emulator lives beside the tests)

    with EMULATOR_LOG.open("w") as log:
        try:
            proc, state = process.start(EMULATOR_STATE, seed="demo", output=log, cwd=ROOT, timeout=60)
        except process.EmulatorDidNotStart:
            sys.exit(f"demo: the FreshBooks emulator did not start; see {shown(EMULATOR_LOG)}")
    EMULATOR_STATE.unlink()  # it holds the emulator's grant
    return proc, state


def emulator_env(state: dict) -> dict[str, str]:
    """The emulator's app and grant; nothing of the user's TAP_FRESHBOOKS_*/TARGET_DUCKDB_* leaks in."""
    from cryptography.fernet import Fernet  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS_PREFIXES)}
    env.update(
        {
            "TAP_FRESHBOOKS_CLIENT_ID": state["client_id"],
            "TAP_FRESHBOOKS_CLIENT_SECRET": state["client_secret"],
            "TAP_FRESHBOOKS_REDIRECT_URI": state["redirect_uri"],
            "TAP_FRESHBOOKS_REFRESH_TOKEN": state["grant"]["refresh_token"],
            "TAP_FRESHBOOKS_API_URL": state["url"],
            "TAP_FRESHBOOKS_AUTH_URL": state["url"],
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            **demo_paths_env(EMULATOR_TOKEN_STORE),
        }
    )
    return env


def real_account_env() -> dict[str, str]:
    """Your app from the environment / .env, but the demo's own token store and no bootstrap token."""
    # An empty value beats .env: the demo must never spend the refresh_token your pipeline bootstraps from.
    return {**os.environ, "TAP_FRESHBOOKS_REFRESH_TOKEN": "", **demo_paths_env(TOKEN_STORE)}


def meltano(env: dict[str, str], *args: str, dotenv: Path | None = None) -> int:
    command = [str(VENV_BIN / "meltano"), "--environment", ENVIRONMENT]
    if dotenv is not None:
        command += ["--env-file", str(dotenv)]
    return subprocess.run([*command, *args], env=env, cwd=ROOT, check=False).returncode


def authorize_demo(env: dict[str, str]) -> int:
    """First real-account run: one authorization for the demo's own grant."""
    if TOKEN_STORE.exists():
        return 0
    if not sys.stdin.isatty():
        say(
            f"the demo extracts your account through a grant of its own ({shown(TOKEN_STORE)}), so it never "
            "spends your pipeline's single-use refresh token; run scripts/demo in a terminal once to authorize it"
        )
        return 2
    say(f"authorize the demo once (its own grant, stored encrypted in {shown(TOKEN_STORE)})")
    return meltano(env, "invoke", "tap-freshbooks:auth_login")


def reset_own_files(*, emulator: bool) -> None:
    """The demo starts over on every run, with its own files only."""
    for path in (WAREHOUSE, WAREHOUSE.with_name(WAREHOUSE.name + ".wal")):
        path.unlink(missing_ok=True)
    if emulator:
        EMULATOR_TOKEN_STORE.unlink(missing_ok=True)  # a fresh emulator issues a fresh grant
        EMULATOR_DOTENV.write_text("# scripts/demo, emulator mode: the project's .env is not read.\n")


def summarize(*, require_rows: bool) -> int:
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(str(WAREHOUSE), read_only=True)
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'freshbooks' order by 1"
        ).fetchall()
    ]
    say(f"loaded into {shown(WAREHOUSE)} (schema freshbooks):")
    empty = []
    for table in tables:
        columns = [c[0] for c in con.execute(f'describe freshbooks."{table}"').fetchall()]
        if "vis_state" in columns:
            rows, deleted = con.execute(
                f'select count(*), count(*) filter (where vis_state = 1) from freshbooks."{table}"'
            ).fetchone()
            note = f"({deleted} deleted, kept with vis_state = 1)"
        else:
            rows = con.execute(f'select count(*) from freshbooks."{table}"').fetchone()[0]
            note = ""
        print(f"  {table:<24} {rows:>7} rows  {note}")
        if not rows:
            empty.append(table)
    con.close()
    return 1 if require_rows and (empty or not tables) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-lookml-check", action="store_true", help="skip the offline LookML check at the end (about 25 s)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    emulator = None
    dotenv = None
    if settings_as_meltano_sees_them().get("TAP_FRESHBOOKS_CLIENT_ID"):
        say("using your FreshBooks app from the environment / .env (the demo keeps its own grant)")
        env = real_account_env()
        reset_own_files(emulator=False)
        status = authorize_demo(env)
        if status:
            return status
    else:
        say(
            "no TAP_FRESHBOOKS_CLIENT_ID in the environment or .env: starting the bundled FreshBooks emulator"
        )
        reset_own_files(emulator=True)
        emulator, state = start_emulator()
        env = emulator_env(state)
        dotenv = EMULATOR_DOTENV
        say(f"emulator at {state['url']} with accounts {[a['account_id'] for a in state['accounts']]}")
    try:
        started = time.monotonic()
        say(f"meltano --environment {ENVIRONMENT} run --full-refresh tap-freshbooks target-duckdb")
        if meltano(env, "run", "--full-refresh", "tap-freshbooks", "target-duckdb", dotenv=dotenv) != 0:
            say("the pipeline failed (see the log lines above)")
            if emulator is None:
                say(
                    f"if FreshBooks rejected the demo's grant, delete {shown(TOKEN_STORE)} and run scripts/demo "
                    "again in a terminal (your pipeline's token store is not involved)"
                )
            return 1
        say(f"pipeline finished in {time.monotonic() - started:.1f} s")
        status = summarize(require_rows=emulator is not None)
        checker = VENV_BIN / "freshbooks-looker"
        if checker.exists() and not args.no_lookml_check:
            say("checking the LookML project against the loaded warehouse")
            check = subprocess.run([str(checker), "check", "--duckdb", str(WAREHOUSE)], cwd=ROOT, check=False)
            status = status or check.returncode
        say(
            f"your data is in {shown(WAREHOUSE)}, Meltano state id {STATE_ID}; output/warehouse.duckdb, "
            "the dev state, .secrets/ and .env were not touched (each demo run rebuilds output/demo/)"
        )
        say(
            f'query it: {VENV_BIN / "python"} -c "import duckdb; '
            f"print(duckdb.connect('{WAREHOUSE}').sql('select * from freshbooks.invoices limit 5'))\""
        )
        return status
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
