"""Bad configuration and dead grants: one clear line and a non-zero exit, never a bare traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TEST_FERNET_KEY, tap_config
from security.outputs import save_output
from stream_names import CONTRACT_STREAMS

TAP = [sys.executable, "-m", "tap_freshbooks"]


def run_cli(args: list[str], config: dict | None, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = list(TAP) + args
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        cmd += ["--config", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_FRESHBOOKS")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=ROOT, check=False)
    save_output(f"tap-freshbooks {' '.join(args)}", proc.stdout + "\n" + proc.stderr)
    return proc


def last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def assert_one_clear_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, no traceback, and one error line (ours, or the SDK's config validation) that
    says what is wrong."""
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith("tap-freshbooks: ") or "| ERROR " in line
    ]
    assert any(all(n in line for n in needles) for line in errors), proc.stderr[-2000:]


def test_missing_client_id(emulator, tmp_path) -> None:
    """The SDK's own config validation answers: one error line per problem, then exit 1."""
    config = tap_config(emulator, tmp_path)
    del config["client_id"]
    proc = run_cli([], config, tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "'client_id' is a required property" in proc.stderr
    assert config["client_secret"] not in proc.stderr


def test_wrong_encryption_key(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    from freshbooks_auth.token_store import TokenSet, TokenStore

    TokenStore(config["token_store_path"], TEST_FERNET_KEY).save(
        TokenSet.from_token_response(emulator.issue_grant())
    )
    from cryptography.fernet import Fernet

    config["token_encryption_key"] = Fernet.generate_key().decode()
    proc = run_cli([], config, tmp_path)
    assert_one_clear_line(proc, "token_encryption_key")
    assert TEST_FERNET_KEY not in proc.stderr


def test_malformed_encryption_key(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path, token_encryption_key="not-a-key")
    assert_one_clear_line(run_cli([], config, tmp_path), "token_encryption_key")


def test_unreadable_store(emulator, tmp_path) -> None:
    store = tmp_path / "tokens.fernet"
    store.write_bytes(b"this is not a fernet token")
    config = tap_config(emulator, tmp_path, token_store_path=str(store))
    assert_one_clear_line(run_cli([], config, tmp_path), str(store))


@pytest.mark.parametrize(
    ("record_ids", "needle"),
    [
        pytest.param("{not json", "record_ids", id="not-json"),
        pytest.param(["invoices", 1], "record_ids", id="not-an-object"),
        pytest.param({"invoices": "123"}, "record_ids", id="ids-not-a-list"),
        pytest.param({"invoicez": [1]}, "invoicez", id="unknown-stream"),
        pytest.param({"invoice_lines": [1]}, "invoice_lines", id="stream-without-single-fetch"),
    ],
)
def test_malformed_record_ids(emulator, tmp_path, record_ids, needle) -> None:
    config = tap_config(emulator, tmp_path, record_ids=record_ids)
    assert_one_clear_line(run_cli([], config, tmp_path), needle)


def test_revoked_grant_names_the_reauthorize_command(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    emulator.revoke_grant()
    proc = run_cli([], config, tmp_path)
    assert_one_clear_line(proc, "tap-freshbooks auth login")
    assert config["refresh_token"] not in proc.stderr + proc.stdout


def test_about_lists_every_setting_with_a_description(tmp_path) -> None:
    proc = run_cli(["--about", "--format", "json"], None, tmp_path)
    assert proc.returncode == 0
    about = json.loads(proc.stdout)
    assert about["capabilities"] == [
        "about",
        "catalog",
        "discover",
        "state",
        "stream-maps",
        "schema-flattening",
        "batch",
        "structured-logging",
    ]
    contract = {
        "client_id",
        "client_secret",
        "redirect_uri",
        "refresh_token",
        "token_store_path",
        "token_encryption_key",
        "account_ids",
        "start_date",
        "api_url",
        "auth_url",
        "record_ids",
    }
    properties = about["settings"]["properties"]
    assert contract <= set(properties)
    assert all(prop.get("description") for prop in properties.values())
    for secret in ("client_secret", "refresh_token", "token_encryption_key"):
        assert properties[secret].get("secret") is True


def test_discover_needs_no_credentials(tmp_path) -> None:
    proc = run_cli(["--discover"], None, tmp_path)
    assert proc.returncode == 0, proc.stderr
    streams = {s["tap_stream_id"] for s in json.loads(proc.stdout)["streams"]}
    assert {*CONTRACT_STREAMS, "invoice_lines"} <= streams
