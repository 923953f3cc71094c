"""The Looker datagroup refresher (``freshbooks-looker refresh``) against a local fake Looker API."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from fake_looker import FakeLooker

from freshbooks_looker.looker_api import LookerAPIError, LookerClient, Settings, api_root, refresh

ROOT = Path(__file__).resolve().parents[2]

CLI = ROOT / ".venv" / "bin" / "freshbooks-looker"


@pytest.fixture
def looker():
    fake = FakeLooker().start()
    yield fake
    fake.stop()


def settings(fake: FakeLooker, **kw) -> Settings:
    env = {
        "FRESHBOOKS_LOOKER_BASE_URL": fake.url,
        "FRESHBOOKS_LOOKER_CLIENT_ID": fake.client_id,
        "FRESHBOOKS_LOOKER_CLIENT_SECRET": fake.client_secret,
    }
    return Settings.from_env(env, **kw)


def test_refresh_logs_in_resets_the_models_datagroup_and_logs_out(looker):
    messages: list[str] = []
    before = int(time.time())
    assert refresh(settings(looker), messages.append) == 0
    assert looker.endpoints() == [
        ("POST", "/api/4.0/login"),
        ("GET", "/api/4.0/datagroups"),
        ("PATCH", "/api/4.0/datagroups/7"),
        ("DELETE", "/api/4.0/logout"),
    ]
    login = looker.calls[0]
    assert login["query"] == ""  # credentials travel in the form body, never the URL
    assert login["content_type"] == "application/x-www-form-urlencoded"
    assert parse_qs(login["body"]) == {"client_id": ["looker-id"], "client_secret": ["looker-secret"]}
    assert all(c["auth"].startswith("token ") for c in looker.calls[1:])
    ours = next(d for d in looker.datagroups if d["id"] == "7")
    other = next(d for d in looker.datagroups if d["id"] == "3")
    assert before - 10 <= ours["stale_before"] == ours["triggered_at"] <= int(time.time())
    assert other["stale_before"] == 0  # same datagroup name in another model: untouched
    assert looker.tokens == {}  # logged out
    assert "freshbooks::freshbooks_load reset" in messages[-1]


def test_expired_token_means_a_new_login_not_a_refresh(looker):
    clock = [time.time()]
    client = LookerClient(looker.url, looker.client_id, looker.client_secret, clock=lambda: clock[0])
    client.datagroups()
    clock[0] += 3600 - 30  # inside the 60 s margin before the 1-hour expiry
    client.datagroups()
    assert client.logins == 2
    assert [e for e in looker.endpoints() if e[1].endswith("/login")] == [("POST", "/api/4.0/login")] * 2
    assert not any("refresh" in c["body"] for c in looker.calls)
    client.logout()


def test_a_401_mid_session_logs_in_once_more(looker):
    client = LookerClient(looker.url, looker.client_id, looker.client_secret)
    client.datagroups()
    looker.revoke_all()  # e.g. the API key was rotated, or the token expired server-side
    assert client.find_datagroup("freshbooks", "freshbooks_load")["id"] == "7"
    assert client.logins == 2


def test_server_clock_behind_is_tolerated(looker):
    """Looker rejects timestamps in the future: the client stamps now minus a few seconds."""
    looker.clock_offset = -3
    assert refresh(settings(looker), lambda _m: None) == 0


def test_wrong_credentials_fail_with_a_clear_message(looker):
    messages: list[str] = []
    assert refresh(settings(looker, client_secret="nope"), messages.append) == 1
    assert "Looker login failed: HTTP 404" in messages[-1]


def test_unknown_datagroup_lists_what_exists(looker):
    messages: list[str] = []
    assert refresh(settings(looker, datagroup="nightly"), messages.append) == 1
    assert "no datagroup freshbooks::nightly" in messages[-1]
    assert "freshbooks::freshbooks_load" in messages[-1]
    with pytest.raises(LookerAPIError):
        LookerClient(looker.url, looker.client_id, looker.client_secret).find_datagroup("x", "y")


def test_not_configured_is_a_skip_not_a_failure():
    messages: list[str] = []
    assert refresh(Settings.from_env({}), messages.append) == 0
    assert "skipping" in messages[0]
    assert refresh(Settings.from_env({"LOOKERSDK_BASE_URL": "https://x"}), messages.append) == 2


def test_looker_sdk_environment_names_work(looker):
    env = {
        "LOOKERSDK_BASE_URL": looker.url + "/api/4.0/",
        "LOOKERSDK_CLIENT_ID": looker.client_id,
        "LOOKERSDK_CLIENT_SECRET": looker.client_secret,
        "LOOKERSDK_VERIFY_SSL": "false",
    }
    s = Settings.from_env(env)
    assert s.verify_ssl is False
    assert refresh(s, lambda _m: None) == 0
    assert api_root("https://co.cloud.looker.com") == "https://co.cloud.looker.com/api/4.0"


def test_cli_refresh_is_the_post_load_command(looker):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOKERSDK", "FRESHBOOKS_LOOKER"))}
    env.update(
        {
            "FRESHBOOKS_LOOKER_BASE_URL": looker.url,
            "FRESHBOOKS_LOOKER_CLIENT_ID": looker.client_id,
            "FRESHBOOKS_LOOKER_CLIENT_SECRET": looker.client_secret,
        }
    )
    ok = subprocess.run([str(CLI), "refresh"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ("PATCH", "/api/4.0/datagroups/7") in looker.endpoints()
    env["FRESHBOOKS_LOOKER_CLIENT_SECRET"] = "wrong"
    bad = subprocess.run([str(CLI), "refresh"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "looker-secret" not in bad.stdout + bad.stderr and "wrong" not in bad.stdout + bad.stderr


def test_meltano_utility_refresh_after_load(looker, tmp_path):
    """The meltano.yml utility (runtime extras only, no `dev`) installs and runs:
    `meltano invoke freshbooks-looker:post_load` (what the jobs and the bridge run after a load)
    resets the datagroup, reading its settings the
    Meltano way (FRESHBOOKS_LOOKER_<SETTING>)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    plugins = project["plugins"]
    if not any(u.get("name") == "freshbooks-looker" for u in plugins.get("utilities", [])):
        snippet = yaml.safe_load((ROOT / "looker" / "meltano-utility.yml").read_text())
        plugins.setdefault("utilities", []).extend(snippet["plugins"]["utilities"])
    plugins = {"utilities": plugins["utilities"]}  # only what this test installs
    (tmp_path / "meltano.yml").write_text(
        yaml.safe_dump(
            {
                "requires_meltano": project["requires_meltano"],
                "project_id": project["project_id"],
                "default_environment": "dev",
                "send_anonymous_usage_stats": False,
                "environments": [{"name": "dev"}],
                "plugins": plugins,
            }
        )
    )
    (tmp_path / "looker").symlink_to(ROOT / "looker", target_is_directory=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "FRESHBOOKS_LOOKER", "LOOKERSDK"))
    }
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    meltano = str(ROOT / ".venv" / "bin" / "meltano")
    inst = subprocess.run(
        [meltano, "install", "utility", "freshbooks-looker"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert inst.returncode == 0, inst.stderr[-2000:]
    # the utility is the runtime install: the development tools' libraries are not in its venv
    venv_python = tmp_path / ".meltano" / "utilities" / "freshbooks-looker" / "venv" / "bin" / "python"
    probe = subprocess.run(
        [
            str(venv_python),
            "-c",
            "import importlib.util as u; print([m for m in ('liquid', 'sqlglot') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    env.update(
        {
            "FRESHBOOKS_LOOKER_BASE_URL": looker.url,
            "FRESHBOOKS_LOOKER_CLIENT_ID": looker.client_id,
            "FRESHBOOKS_LOOKER_CLIENT_SECRET": looker.client_secret,
        }
    )
    run = subprocess.run(
        [meltano, "invoke", "freshbooks-looker:post_load"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    assert "post-load: refresh: datagroup freshbooks::freshbooks_load reset" in run.stdout
    assert looker.endpoints()[-2:] == [("PATCH", "/api/4.0/datagroups/7"), ("DELETE", "/api/4.0/logout")]
