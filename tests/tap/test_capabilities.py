"""Each capability `--about` advertises really works: catalog, state, stream-maps,
schema-flattening, batch, structured-logging (about/discover: test_cli_errors.py)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from urllib.parse import urlparse

from conftest import ROOT, run_tap, tap_config
from tap_freshbooks.tap import TapFreshBooks


def test_catalog_selects_streams(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    catalog = TapFreshBooks(config=config, parse_env_config=False).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "payments"
    run = run_tap(config, catalog=catalog)
    assert set(run.records) == {"payments"}


def test_state_resumes(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path)
    first = run_tap(config)
    assert first.state["bookmarks"]["invoices"]["partitions"][0]["replication_key_value"]
    assert run_tap(config, state=first.state).count == 0


def test_stream_maps(emulator, tmp_path) -> None:
    config = tap_config(
        emulator,
        tmp_path,
        stream_maps={
            "clients": {"email": "__NULL__", "email_domain": "(record.get('email') or '').split('@')[-1]"}
        },
    )
    run = run_tap(config)
    for client in run.records["clients"]:
        assert "email" not in client
        assert "email_domain" in client


def test_schema_flattening(emulator, tmp_path) -> None:
    config = tap_config(emulator, tmp_path, flattening_enabled=True, flattening_max_depth=1)
    run = run_tap(config)
    invoice = run.records["invoices"][0]
    assert "amount" not in invoice
    assert isinstance(invoice["amount__amount"], str) and invoice["amount__code"]
    schema = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "invoices")["schema"]
    assert schema["properties"]["amount__amount"]["format"] == "x-singer.decimal"


def test_batch_messages(emulator, tmp_path) -> None:
    config = tap_config(
        emulator,
        tmp_path,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path / 'batches'}", "prefix": "fb-"},
        },
    )
    run = run_tap(config)
    batches = [m for m in run.messages if m["type"] == "BATCH"]
    assert {b["stream"] for b in batches} >= {"invoices", "clients"}
    invoice_batch = next(b for b in batches if b["stream"] == "invoices")
    rows = []
    for url in invoice_batch["manifest"]:
        with gzip.open(urlparse(url).path, "rt") as handle:
            rows += [json.loads(line) for line in handle]
    want = sum(len(emulator.truth("invoices", a["account_id"])) for a in emulator.accounts)
    assert len(rows) == want


def test_structured_logging(emulator, tmp_path) -> None:
    log_config = tmp_path / "logging.yml"
    log_config.write_text(
        "version: 1\n"
        "disable_existing_loggers: false\n"
        "formatters:\n  structured:\n    (): singer_sdk.logging.StructuredFormatter\n"
        "handlers:\n  stderr:\n    class: logging.StreamHandler\n    formatter: structured\n    stream: ext://sys.stderr\n"
        "root:\n  level: INFO\n  handlers: [stderr]\n"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tap_config(emulator, tmp_path)))
    env = {**os.environ, "SINGER_SDK_LOG_CONFIG": str(log_config)}
    proc = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    summaries = [e for e in events if "fb_emitted" in json.dumps(e)]
    assert summaries, proc.stderr[-2000:]
    assert any("invoices" in json.dumps(e) for e in summaries)
    # logs never carry tokens or secrets
    text = proc.stderr
    cfg = json.loads(config.read_text())
    from freshbooks_auth.token_store import TokenStore

    stored = TokenStore(cfg["token_store_path"], cfg["token_encryption_key"]).load()
    for secret in (
        cfg["client_secret"],
        cfg["refresh_token"],
        cfg["token_encryption_key"],
        stored.access_token,
        stored.refresh_token,
    ):
        assert secret not in text


def test_catalog_round_trip_keeps_decimal_sizes(emulator, tmp_path) -> None:
    """Meltano always passes a catalog; the SDK's catalog model drops precision/scale, which
    would make Snowflake/Redshift create NUMBER(38,0) money columns. The tap restores them."""
    config = tap_config(emulator, tmp_path, flattening_enabled=True, flattening_max_depth=1)
    catalog = TapFreshBooks(config=config, parse_env_config=False).catalog_dict
    run = run_tap(config, catalog=catalog)
    schema = next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "invoices")["schema"]
    assert schema["properties"]["amount__amount"]["precision"] == 38
    assert schema["properties"]["amount__amount"]["scale"] == 27
