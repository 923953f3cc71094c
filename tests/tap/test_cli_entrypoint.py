"""The `tap-freshbooks` command line around the SDK's: `--help` names the subcommands, a bad
`--config` file is one line (not an SDK traceback), and under structured logging the fatal line
is a JSON log line like every other line the tap writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tap_config

TAP = [sys.executable, "-m", "tap_freshbooks"]

STRUCTURED_LOG_CONFIG = (
    "version: 1\n"
    "disable_existing_loggers: false\n"
    "formatters:\n  structured:\n    (): singer_sdk.logging.StructuredFormatter\n"
    "handlers:\n  stderr:\n    class: logging.StreamHandler\n    formatter: structured\n"
    "    stream: ext://sys.stderr\n"
    "root:\n  level: INFO\n  handlers: [stderr]\n"
)


def run(args: list[str], cwd: Path, log_config: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "SINGER_SDK_LOG"))}
    if log_config is not None:
        env["SINGER_SDK_LOG_CONFIG"] = str(log_config)
    return subprocess.run(
        TAP + args, capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


def test_help_names_auth_login_and_reconcile(tmp_path) -> None:
    proc = run(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--discover" in proc.stdout  # still the SDK's Singer options
    assert "tap-freshbooks auth login" in proc.stdout
    assert "tap-freshbooks reconcile" in proc.stdout


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        pytest.param(lambda d: d / "missing.json", "config file not found", id="missing"),
        pytest.param(lambda d: d, "is not a file", id="directory"),
        pytest.param(lambda d: _write(d / "broken.json", "{not json"), "is not valid JSON", id="not-json"),
        pytest.param(lambda d: _write(d / "list.json", "[1]"), "must hold a JSON object", id="not-an-object"),
    ],
)
def test_bad_config_file_is_one_line(tmp_path, make, needle) -> None:
    path = make(tmp_path)
    proc = run(["--config", str(path)], tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tap-freshbooks: ") and needle in lines[0] and str(path) in lines[0]
    assert proc.stdout == ""


def test_env_config_needs_no_file(tmp_path) -> None:
    """`--config ENV` is not a path: the check leaves it to the SDK (which then wants settings)."""
    proc = run(["--config", "ENV"], tmp_path)
    assert "config file" not in proc.stderr
    assert "'client_id' is a required property" in proc.stderr


def _json_lines(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-2000:]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a stderr line is not JSON under structured logging: {line!r}")
    return parsed


def test_missing_config_is_a_json_error_line_under_structured_logging(tmp_path) -> None:
    log_config = _write(tmp_path / "logging.yml", STRUCTURED_LOG_CONFIG)
    proc = run(["--config", str(tmp_path / "missing.json")], tmp_path, log_config)
    assert proc.returncode == 2
    events = _json_lines(proc.stderr)
    errors = [e for e in events if e["level"] == "error"]
    assert len(errors) == 1 and "config file not found" in errors[0]["message"], events
    assert errors[0]["logger_name"] == "tap-freshbooks"


def test_revoked_grant_is_a_json_error_line_under_structured_logging(emulator, tmp_path) -> None:
    """The fatal line of a run (here: FreshBooks rejects the refresh token) is JSON too, names the
    command that fixes it, and carries no secret."""
    config = tap_config(emulator, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    emulator.revoke_grant()
    log_config = _write(tmp_path / "logging.yml", STRUCTURED_LOG_CONFIG)
    proc = run(["--config", str(tmp_path / "config.json")], tmp_path, log_config)
    assert proc.returncode == 1
    events = _json_lines(proc.stderr)
    assert events[-1]["level"] == "error"
    assert "tap-freshbooks auth login" in events[-1]["message"]
    for secret in (config["client_secret"], config["refresh_token"], config["token_encryption_key"]):
        assert secret not in proc.stderr + proc.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
