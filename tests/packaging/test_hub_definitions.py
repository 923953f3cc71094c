"""hub/*.yml are valid Meltano Hub variant files, generated from `tap-freshbooks --about` where
they can be, and meltano.yml and the README settings tables say the same thing (no drift).

The Hub's own rules (meltano/hub schemas/plugin_definitions/*.schema.json and
schemas/common/*.schema.json) are restated below as sets rather than copied.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from security.outputs import save_output

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
MELTANO = str(ROOT / ".venv" / "bin" / "meltano")


def _load_generator():
    spec = importlib.util.spec_from_file_location("hub_definitions", ROOT / "scripts" / "hub_definitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()

# -- the Hub's schema, restated --------------------------------------------------------------------
COMMON_KEYS = {
    "name",
    "pip_url",
    "variant",
    "namespace",
    "label",
    "description",
    "executable",
    "settings",
    "docs",
    "repo",
    "logo_url",
    "hidden",
    "python",
    "settings_group_validation",
    "commands",
    "maintenance_status",
    "quality",
    "domain_url",
    "keywords",
    "requires",
    "definition",
    "next_steps",
    "settings_preamble",
    "usage",
    "prereq",
    "supported_python_versions",
    "log_parser",
}
ALLOWED_KEYS = {
    "extractors": COMMON_KEYS | {"capabilities", "metadata", "schema", "select"},
    "utilities": COMMON_KEYS | {"ext_repo"},
    "loaders": COMMON_KEYS | {"capabilities", "dialect", "target_schema"},
}
SETTING_KEYS = {
    "name",
    "aliases",
    "label",
    "value",
    "placeholder",
    "kind",
    "description",
    "tooltip",
    "documentation",
    "env",
    "value_processor",
    "value_post_processor",
    "oauth",
    "options",
    "docs",
    "hidden",
    "sensitive",
}
KINDS = {
    "oauth",
    "hidden",
    "password",
    "date_iso8601",
    "file",
    "email",
    "integer",
    "options",
    "object",
    "array",
    "boolean",
    "string",
    "decimal",
}
CAPABILITIES = {
    "properties",
    "catalog",
    "discover",
    "state",
    "about",
    "stream-maps",
    "schema-flattening",
    "activate-version",
    "batch",
    "test",
    "log-based",
    "structured-logging",
}
#: schemas/common/loaders_specific.schema.json
LOADER_CAPABILITIES = {
    "about",
    "stream-maps",
    "activate-version",
    "batch",
    "soft-delete",
    "hard-delete",
    "datatype-failsafe",
    "record-flattening",
}
HUB_FILES = {
    "tap-freshbooks": ("extractors", "extractor"),
    "webhook-bridge": ("utilities", "utility"),
    "freshbooks-looker": ("utilities", "utility"),
    "target-duckdb": ("loaders", "loader"),
}


def hub(name: str) -> dict:
    return yaml.safe_load((HUB / f"{name}.yml").read_text())


@pytest.fixture(scope="module")
def about() -> dict:
    return json.loads(gen.run_about("json"))


@pytest.mark.parametrize("name", sorted(HUB_FILES))
def test_hub_file_follows_the_hub_schema(name) -> None:
    definition = hub(name)
    kind = HUB_FILES[name][0]
    assert set(definition) <= ALLOWED_KEYS[kind], set(definition) - ALLOWED_KEYS[kind]
    assert {
        "name",
        "namespace",
        "variant",
        "quality",
        "pip_url",
        "executable",
        "label",
        "description",
        "logo_url",
        "domain_url",
        "maintenance_status",
        "keywords",
        "repo",
    } <= set(definition)
    assert definition["name"] == name and definition["variant"] == "freshbooks-warehouse"
    assert definition["quality"] in {"gold", "silver", "bronze", "unknown"}
    assert definition["maintenance_status"] in {"active", "beta", "development", "inactive", "unknown"}
    assert definition["logo_url"].startswith("/assets/logos/") and definition["domain_url"].startswith(
        "https://"
    )
    assert all(v.startswith("3.") for v in definition.get("supported_python_versions", []))
    allowed = LOADER_CAPABILITIES if kind == "loaders" else CAPABILITIES
    assert set(definition.get("capabilities", [])) <= allowed
    for setting in definition["settings"]:
        assert set(setting) <= SETTING_KEYS and setting.get("kind", "string") in KINDS, setting
        assert "Env:" not in setting.get("description", "")
        if setting.get("kind") == "options":
            assert all(set(o) == {"label", "value"} for o in setting["options"])
    names = [s["name"] for s in definition["settings"]]
    assert len(names) == len(set(names)), "a setting is defined twice"
    for group in definition.get("settings_group_validation", []):
        assert set(group) <= set(names)
    for command in definition.get("commands", {}).values():
        assert set(command) <= {"args", "description", "executable", "container_spec"}


def test_tap_hub_file_completed_by_hand(about) -> None:
    definition = hub("tap-freshbooks")
    settings = {s["name"]: s for s in definition["settings"]}
    assert "meltano_sdk" in definition["keywords"]
    assert definition["commands"]["auth_login"]["args"] == "auth login"
    assert definition["pip_url"] == "freshbooks-warehouse-tap"  # not the hotglue variant's package
    assert definition["capabilities"] == sorted(about["capabilities"])
    assert definition["log_parser"] == "singer-sdk"  # structured-logging
    # sensitive exactly where the tap marks a setting secret
    secrets = {n for n, p in gen.leaf_properties(about["settings"]) if p.get("secret")}
    assert {n for n, s in settings.items() if s.get("sensitive")} == secrets
    assert {
        "client_secret",
        "refresh_token",
        "token_encryption_key",
    } <= secrets and "client_id" not in secrets
    # the bridge-only settings are hidden; a fresh project gets a token store path
    assert settings["record_ids"]["hidden"] and settings["event_received_at"]["hidden"]
    assert settings["token_store_path"]["value"] == "$MELTANO_PROJECT_ROOT/.secrets/freshbooks_tokens.fernet"
    assert settings["start_date"]["kind"] == "date_iso8601" and settings["account_ids"]["kind"] == "array"
    assert settings["client_id"]["label"] == "Client ID"


def test_generated_parts_are_up_to_date(about) -> None:
    """hub/tap-freshbooks.yml, meltano.yml and the two README tables are what the generator makes
    from the tap's --about now. Fix: .venv/bin/python scripts/hub_definitions.py"""
    missing, extra = gen.drift(about, hub("tap-freshbooks")["settings"])
    assert not missing, f"settings in the tap but not in hub/tap-freshbooks.yml: {missing}"
    assert not extra, f"settings in hub/tap-freshbooks.yml but not in the tap: {extra}"
    files = gen.expected_files(about, gen.run_about("markdown"))
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if p.read_text() != text]
    assert not stale, f"stale: {stale}; run .venv/bin/python scripts/hub_definitions.py"


def test_drift_is_caught_both_ways(about) -> None:
    """A setting added to the tap's config_jsonschema and not to the definition fails the check,
    and so does a setting the definition keeps after the tap dropped it."""
    definition = hub("tap-freshbooks")
    added = copy.deepcopy(about)
    added["settings"]["properties"]["brand_new_setting"] = {"type": ["string", "null"], "description": "x"}
    assert gen.drift(added, definition["settings"]) == (["brand_new_setting"], [])
    assert gen.dump_yaml(gen.tap_definition(added, definition)) != (HUB / "tap-freshbooks.yml").read_text()

    removed = copy.deepcopy(about)
    del removed["settings"]["properties"]["start_date"]
    assert gen.drift(removed, definition["settings"]) == ([], ["start_date"])
    assert "start_date" not in {s["name"] for s in gen.tap_definition(removed, definition)["settings"]}

    # and the README tables follow a new setting too
    markdown = gen.run_about("markdown").replace(
        "| client_id |", "| brand_new_setting | False | None | A new one. |\n| client_id |", 1
    )
    assert "`brand_new_setting`" in gen.settings_table(markdown)


def test_hand_written_keys_survive_regeneration(about) -> None:
    definition = hub("tap-freshbooks")
    regenerated = gen.tap_definition(about, definition)
    assert regenerated == definition  # idempotent, hand keys (hidden, value, labels) included


def _plugin(project: dict, kind: str, name: str) -> dict:
    return next(p for p in project["plugins"][kind] if p["name"] == name)


@pytest.mark.parametrize("name", sorted(HUB_FILES))
def test_meltano_yml_uses_the_hub_definitions(name) -> None:
    kind = HUB_FILES[name][0]
    plugin = _plugin(yaml.safe_load((ROOT / "meltano.yml").read_text()), kind, name)
    definition = hub(name)
    assert plugin["settings"] == definition["settings"]
    for key in ("namespace", "executable", "commands", "capabilities", "settings_group_validation"):
        assert plugin.get(key) == definition.get(key), key


def test_bridge_definition_has_every_bridge_setting() -> None:
    sys.path.insert(0, str(ROOT / "webhook-bridge"))
    from webhook_bridge.settings import Settings

    fields = {f.name for f in dataclasses.fields(Settings)} - {"project_root"}  # Meltano sets it
    assert {s["name"] for s in hub("webhook-bridge")["settings"]} == fields


def test_meltano_add_from_ref_works_offline(tmp_path) -> None:
    """A fresh project adds all three plugins from their files with no network (any connection
    attempt goes to a closed port), and the tap's settings resolve with a default token store path.
    (tests/packaging/test_wheels.py then installs and runs the tap added this way.)"""
    (tmp_path / "meltano.yml").write_text(
        yaml.safe_dump(
            {
                "requires_meltano": ">=4.0",
                "project_id": str(uuid.uuid4()),
                "default_environment": "dev",
                "send_anonymous_usage_stats": False,
                "environments": [{"name": "dev"}],
                "plugins": {},
            }
        )
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_FRESHBOOKS", "MELTANO_", "WEBHOOK_BRIDGE", "FRESHBOOKS_LOOKER"))
    }
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
        UV_OFFLINE="1",
    )

    def meltano(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [MELTANO, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False
        )
        save_output(f"meltano {' '.join(args[:3])}", proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    for name, (_, singular) in HUB_FILES.items():
        meltano(
            "add", "--plugin-type", singular, name, "--from-ref", str(HUB / f"{name}.yml"), "--no-install"
        )
    project = yaml.safe_load((tmp_path / "meltano.yml").read_text())
    added = {kind: [p["name"] for p in plugins] for kind, plugins in project["plugins"].items()}
    assert added == {
        "extractors": ["tap-freshbooks"],
        "utilities": ["webhook-bridge", "freshbooks-looker"],
        "loaders": ["target-duckdb"],
    }
    assert all(
        p["variant"] == "freshbooks-warehouse" for plugins in project["plugins"].values() for p in plugins
    )
    config = json.loads(meltano("config", "print", "tap-freshbooks").stdout)
    assert config["token_store_path"] == f"{tmp_path.resolve()}/.secrets/freshbooks_tokens.fernet"
    assert config["api_url"] == "https://api.freshbooks.com" and config["bills_timezone"] == "UTC"
