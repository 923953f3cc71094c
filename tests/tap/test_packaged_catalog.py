"""`tap-freshbooks --discover` answers from the catalog shipped in the package (packaged_catalog.py):
the SDK's own discovery output byte for byte, for any config, without importing singer-sdk; every
other command line takes the SDK's path."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tap_freshbooks import packaged_catalog
from tap_freshbooks.packaged_catalog import CATALOG_FILE, answer_discover, generated_text, plain_discover
from tap_freshbooks.tap import TapFreshBooks

TAP = [sys.executable, "-m", "tap_freshbooks"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "SINGER_SDK_LOG"))}
    return subprocess.run(
        TAP + args, capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


def test_the_packaged_catalog_is_the_sdks_discovery_now() -> None:
    assert CATALOG_FILE.read_text(encoding="utf-8") == generated_text(), (
        "tap_freshbooks/catalog.json is stale: python -m tap_freshbooks.packaged_catalog --write"
    )


def test_no_setting_changes_the_catalog(tmp_path) -> None:
    """What the shipped file stands on: the SDK's discovery is the same whatever the config says."""
    config = {
        "client_id": "c",
        "client_secret": "s",
        "redirect_uri": "https://example.test/cb",
        "refresh_token": "r",
        "token_store_path": str(tmp_path / "tokens"),
        "token_encryption_key": "k" * 44,
        "account_ids": ["A1"],
        "start_date": "2020-01-01T00:00:00Z",
        "flattening_enabled": True,
        "flattening_max_depth": 1,
        "record_ids": {"invoices": [1]},
    }
    tap = TapFreshBooks(config=config, validate_config=False, setup_mapper=False)
    assert tap.catalog_json_text == generated_text()
    assert TapFreshBooks.dynamic_catalog is False  # the SDK itself reads no setting to discover


def test_console_discover_prints_the_packaged_catalog_without_singer_sdk(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"client_id": "c"}))
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['tap-freshbooks', '--config', {str(config)!r}, '--discover']\n"
        "try:\n    runpy.run_module('tap_freshbooks', run_name='__main__')\n"
        "finally:\n"
        "    sys.stderr.write('SDK_IMPORTED=%s' % ('singer_sdk' in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == generated_text() + "\n"  # what the SDK's print() writes
    assert "SDK_IMPORTED=False" in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--discover"],
        ["--config", "ENV", "--discover"],
        ["--discover", "--config", "{config}", "--config", "ENV"],
        ["--config", "{config}", "--state", "{config}", "--discover"],  # what Meltano runs
    ],
)
def test_plain_discovers(argv, tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{}")
    args = [a.replace("{config}", str(config)) for a in argv]
    assert plain_discover(args)
    out = io.StringIO()
    assert answer_discover(args, out) and json.loads(out.getvalue())["streams"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--about"],
        ["--discover", "--about"],
        ["--discover", "--catalog", "c.json"],
        ["--discover", "--state", "{missing}"],
        ["--discover", "--config"],
        ["--discover", "--config={config}"],
        ["--discover", "--config", "{missing}"],
        ["--discover", "--config", "{broken}"],
        ["--discover", "--config", "{list}"],
        ["--discover", "--help"],
    ],
)
def test_anything_else_takes_the_sdks_path(argv, tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[]")
    names = {"config": "config.json", "missing": "missing.json", "broken": "broken.json", "list": "list.json"}
    args = [a.format(**{k: str(tmp_path / v) for k, v in names.items()}) for a in argv]
    assert not plain_discover(args)
    assert not answer_discover(args, io.StringIO())


def test_a_config_file_the_sdk_refuses_is_still_one_clear_line(tmp_path) -> None:
    """The fast path steps aside, so the console script's own check answers as before."""
    proc = run(["--config", str(tmp_path / "missing.json"), "--discover"], tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "missing.json" in proc.stderr and "Traceback" not in proc.stderr


def test_a_build_without_the_file_discovers_through_the_sdk(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(packaged_catalog, "CATALOG_FILE", tmp_path / "absent.json")
    assert not answer_discover(["--discover"], io.StringIO())


def test_check_and_write(tmp_path, monkeypatch, capsys) -> None:
    target = tmp_path / "catalog.json"
    monkeypatch.setattr(packaged_catalog, "CATALOG_FILE", target)
    assert packaged_catalog.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert packaged_catalog.main(["--write"]) == 0 and target.read_text() == generated_text()
    assert packaged_catalog.main(["--check"]) == 0
    assert packaged_catalog.main([]) == 2
