"""webhook_bridge.settings: typed, validated, secrets never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.helpers import FERNET_KEY, bridge_env
from webhook_bridge.settings import Secret, Settings, SettingsError


def load(tmp_path, **overrides):
    return Settings.from_env(bridge_env(tmp_path, **overrides))


def test_defaults(tmp_path):
    s = Settings.from_env(
        {"WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": FERNET_KEY, "WEBHOOK_BRIDGE_PROJECT_ROOT": str(tmp_path)}
    )
    assert s.poll_interval == 900 and s.host == "127.0.0.1" and s.port == 8000
    assert s.extractor == "tap-freshbooks" and s.loader == "target-duckdb"
    assert s.data_dir == tmp_path.resolve() / ".webhook-bridge"
    assert s.api_url == "https://api.freshbooks.com"
    assert s.extractor_env_prefix == "TAP_FRESHBOOKS"
    assert s.run_mode == "direct" and s.coalesce_window_seconds == 0.25
    assert s.post_load_command == "freshbooks-looker:post_load" and s.post_load_retry_seconds == 60


def test_meltano_project_root_is_the_default_root(tmp_path):
    s = Settings.from_env(
        {"WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY": FERNET_KEY, "MELTANO_PROJECT_ROOT": str(tmp_path)}
    )
    assert s.project_root == tmp_path.resolve()


def test_lists_from_json_or_commas(tmp_path):
    assert load(tmp_path, account_ids='["AB1", "CD2"]').account_ids == ("AB1", "CD2")
    assert load(tmp_path, account_ids="AB1, CD2").account_ids == ("AB1", "CD2")
    assert load(tmp_path, events='["invoice", "payment.create"]').events == ("invoice", "payment.create")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"token_encryption_key": None}, "WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY is not set"),
        ({"token_encryption_key": "not-a-key"}, "not a valid Fernet key"),
        ({"api_url": "http://api.freshbooks.com"}, "plain http to a non-loopback host"),
        ({"api_url": "ftp://x"}, "not an http(s) URL"),
        ({"public_url": "http://bridge.example.com"}, "WEBHOOK_BRIDGE_PUBLIC_URL"),
        ({"public_url": "https://user:pw@bridge.example.com"}, "credentials"),
        ({"port": "eighty"}, "WEBHOOK_BRIDGE_PORT='eighty' is not an integer"),
        ({"port": 70000}, "outside"),
        ({"max_body_bytes": 10_000_000}, "WEBHOOK_BRIDGE_MAX_BODY_BYTES"),
        ({"poll_interval": 5}, "use 0 to disable polling"),
        ({"poll_interval": "nan"}, "WEBHOOK_BRIDGE_POLL_INTERVAL"),
        ({"account_ids": "AB-1"}, "not a FreshBooks account id"),
        ({"account_ids": "[1,"}, "not a valid JSON array"),
        ({"log_level": "chatty"}, "WEBHOOK_BRIDGE_LOG_LEVEL"),
        ({"loader": "target duckdb; rm -rf /"}, "not a Meltano plugin name"),
    ],
)
def test_rejected_with_one_line(tmp_path, overrides, fragment):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, **overrides)
    message = str(err.value)
    assert fragment in message and "\n" not in message


def test_loopback_http_is_allowed(tmp_path):
    assert load(tmp_path, api_url="http://127.0.0.1:8765/").api_url == "http://127.0.0.1:8765"


def test_secrets_never_print(tmp_path):
    s = load(tmp_path, client_secret="hunter2-secret")
    text = repr(s) + str(s) + str(s.describe())
    assert FERNET_KEY not in text and "hunter2-secret" not in text
    assert s.client_secret.reveal() == "hunter2-secret"
    assert repr(Secret("x")) == "Secret('**********')"


def test_bad_key_message_does_not_echo_the_value(tmp_path):
    with pytest.raises(SettingsError) as err:
        load(tmp_path, token_encryption_key="sup3r-s3cret-but-wrong")
    assert "sup3r-s3cret-but-wrong" not in str(err.value)


def test_relative_data_dir_is_under_the_project(tmp_path):
    s = load(tmp_path, data_dir="queue")
    assert s.data_dir == Path(tmp_path).resolve() / "queue"


def test_cli_reports_bad_settings_in_one_line(tmp_path, capsys, monkeypatch):
    from webhook_bridge.cli import main

    for key in list(__import__("os").environ):
        if key.startswith("WEBHOOK_BRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("WEBHOOK_BRIDGE_TOKEN_ENCRYPTION_KEY", "nope")
    assert main(["status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("webhook-bridge: error: ") and len(err.splitlines()) == 1
