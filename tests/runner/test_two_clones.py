"""State off the runner: two fresh clones that share nothing on disk run one after the other.

The recipe under test (the README's "Run it in CI / cron / containers", examples/):

* Meltano's state in S3: ``MELTANO_STATE_BACKEND_URI=s3://<bucket>/state``;
* the rotating FreshBooks token in S3: ``TAP_FRESHBOOKS_TOKEN_STORE_URL=s3://<bucket>/tokens/...``;
* the pipeline lock in S3: ``TAP_FRESHBOOKS_PIPELINE_LOCK_URL=s3://<bucket>/locks``;
* the warehouse: PostgreSQL; S3 endpoint and credentials: the standard AWS variables
  (all in tests/runner/ci_recipe.py).

Runner 1 and runner 2 are copies of the tracked files (``git ls-files``) in separate directories with
separate HOMEs and Meltano system databases; the S3 API server is moto on 127.0.0.1, the warehouse
a real PostgreSQL. Runner 2's run must be incremental (state from S3: only the changed records,
fewer requests) and must refresh the token with the refresh token runner 1 rotated into S3.
"""

from __future__ import annotations

import json
import time

import ci_recipe as recipe
import psycopg
import pytest
from cryptography.fernet import Fernet
from pipeline_runner import ROOT, Runner, clone_project, postgres_env, wait_until

from freshbooks_emulator import FreshBooksEmulator

pytestmark = pytest.mark.slow

if not (ROOT / ".meltano" / "extractors" / "tap-freshbooks").is_dir():
    pytest.skip("Meltano plugins are not installed: run scripts/setup", allow_module_level=True)

BUCKET = "fb-pipeline"
SCHEMA = "fb_two_clones"
STREAMS = ["clients", "invoices", "invoice_lines", "payments"]
LOADED_TABLES = ["clients", "invoices", "payments"]


def recipe_env(s3_server, postgres, emu, key: str) -> dict[str, str]:
    """The recipe (tests/runner/ci_recipe.py, what examples/ and the README use) with this test's values."""
    return recipe.environment(
        BUCKET,
        {
            **{k: v for k, v in s3_server.env.items()},  # AWS_ENDPOINT_URL: the S3 API is moto, not AWS
            "TAP_FRESHBOOKS_TOKEN_ENCRYPTION_KEY": key,
            "TAP_FRESHBOOKS_CLIENT_ID": emu.client_id,
            "TAP_FRESHBOOKS_CLIENT_SECRET": emu.client_secret,
            "TAP_FRESHBOOKS_REDIRECT_URI": emu.redirect_uri,
            **postgres_env(postgres),
        },
    )


#: test-only: FreshBooks is the emulator, a schema of its own, a few streams to keep the runs short
def emulator_and_test_env(emu) -> dict[str, str]:
    return {
        "TAP_FRESHBOOKS_API_URL": emu.url,
        "TAP_FRESHBOOKS_AUTH_URL": emu.url,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
        "TAP_FRESHBOOKS__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
    }


def loaded_since(postgres, table: str, since: str) -> set[str]:
    with psycopg.connect(postgres.dsn) as conn:
        rows = conn.execute(
            f'SELECT id::text FROM {SCHEMA}."{table}" WHERE _fb_extracted_at >= %s', (since,)
        ).fetchall()
    return {row[0] for row in rows}


def api_requests(emu, since: int) -> int:
    return sum(1 for _, path, _ in emu.request_log[since:] if not path.startswith("/auth/oauth/token"))


def test_second_clone_runs_incrementally_with_the_token_the_first_rotated(tmp_path, s3_server, postgres):
    emu = FreshBooksEmulator(seed="small").start()
    try:
        account = emu.accounts[0]["account_id"]
        emu.seed_bulk("invoices", 250, account)  # several pages on a full read, one on an incremental one
        s3_server.create_bucket(BUCKET)
        env = {
            **recipe_env(s3_server, postgres, emu, Fernet.generate_key().decode()),
            **emulator_and_test_env(emu),
        }
        first = Runner(
            emu,
            clone_project(tmp_path / "runner-1" / "project"),
            tmp_path / "runner-1" / "home",
            {**env, "TAP_FRESHBOOKS_REFRESH_TOKEN": emu.issue_grant()["refresh_token"]},
        )
        second = Runner(
            emu, clone_project(tmp_path / "runner-2" / "project"), tmp_path / "runner-2" / "home", env
        )

        mark, started_1 = len(emu.request_log), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        code, output = first.run(*recipe.RUN_COMMAND[2:])
        assert code == 0, output[-3000:]
        assert "No state was found" in output
        requests_1, invoices_1 = api_requests(emu, mark), loaded_since(postgres, "invoices", started_1)
        records_1 = {table: len(loaded_since(postgres, table, started_1)) for table in LOADED_TABLES}

        # between the runs: FreshBooks changes, and the access token runner 1 stored expires, so
        # runner 2 must refresh, with the only live refresh token: the one runner 1 rotated into S3
        changed = [i["id"] for i in emu.truth("invoices", account)[:3]]
        for invoice_id in changed:
            emu.update("invoices", account, invoice_id, notes=f"changed between runs {invoice_id}")
        emu.expire_access_tokens()
        rotated_by_first = set(emu.oauth.refresh_tokens)
        assert len(rotated_by_first) == 1
        refreshes_before = emu.oauth.refresh_count
        time.sleep(1.1)  # _fb_extracted_at has second resolution in the comparison below

        mark, started_2 = len(emu.request_log), time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        code, output = second.run(*recipe.RUN_COMMAND[2:])
        assert code == 0, output[-3000:]
        assert "No state was found" not in output  # state came from S3
        requests_2, invoices_2 = api_requests(emu, mark), loaded_since(postgres, "invoices", started_2)
        records_2 = {table: len(loaded_since(postgres, table, started_2)) for table in LOADED_TABLES}

        assert invoices_2 == {str(i) for i in changed}, "run 2 must load exactly the changed invoices"
        assert len(invoices_1) > 250 and requests_2 < requests_1
        assert rotated_by_first <= set(emu.oauth.used_refresh_tokens)  # runner 2 spent runner 1's token
        assert emu.oauth.refresh_count == refreshes_before + 1
        assert "invalid_grant" not in output

        s3 = s3_server.client()

        def bucket_keys() -> set[str]:
            return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}

        # the lock is given back once Meltano has exited (its keeper polls every 0.2 s)
        assert wait_until(lambda: not [k for k in bucket_keys() if k.startswith("locks/")], 10)
        keys = bucket_keys()
        assert any(k.startswith("state/dev:tap-freshbooks-to-target-postgres") for k in keys), keys
        assert "tokens/freshbooks.fernet" in keys
        for runner in (first, second):  # nothing of the pipeline on either runner's disk
            assert not (runner.project / ".secrets").exists()

        code, report = second.reconcile(
            postgres.dsn, "--schema", SCHEMA, "--streams", "clients,invoices,payments"
        )
        assert code == 0, report
        assert records_2["clients"] == records_2["payments"] == 0  # nothing else changed
        print(
            f"run 1: {requests_1} API requests, records {records_1}; "
            f"run 2: {requests_2} API requests, records {records_2}"
        )
    finally:
        emu.stop()
