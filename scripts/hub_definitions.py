"""Regenerate what is derived from `tap-freshbooks --about`, so settings are documented once.

    .venv/bin/python scripts/hub_definitions.py           # rewrite the generated parts
    .venv/bin/python scripts/hub_definitions.py --check   # exit 1 and name the stale files

Generated from the tap's `--about`:
- `hub/tap-freshbooks.yml` (Meltano Hub variant file): `settings`, `capabilities`,
  `settings_group_validation`, `supported_python_versions`, `log_parser`. The rest of the file is
  written by hand, and so are these keys of a setting, which are kept across runs: `label`,
  `hidden`, `placeholder`, `documentation`, and `value` where `--about` has no default.
- `meltano.yml`: the same `settings`, `capabilities` and `settings_group_validation` for the
  `tap-freshbooks` extractor (only those keys of that plugin are rewritten), and the `settings` of
  the `webhook-bridge` and `freshbooks-looker` utilities and the `target-duckdb` loader from their
  hand-written Hub files.
- the settings tables in `README.md` and `tap-freshbooks/README.md`, between the
  `<!-- settings-table ... -->` markers, from `--about --format markdown`.

tests/packaging/test_hub_definitions.py fails when any of them is stale.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB_TAP = ROOT / "hub" / "tap-freshbooks.yml"
#: plugins whose Hub file is written by hand; meltano.yml takes its `settings` from it
HUB_UTILITIES = {
    "webhook-bridge": ROOT / "hub" / "webhook-bridge.yml",
    "freshbooks-looker": ROOT / "hub" / "freshbooks-looker.yml",
    "target-duckdb": ROOT / "hub" / "target-duckdb.yml",  # the loader (target-duckdb-fast/)
}
MELTANO_YML = ROOT / "meltano.yml"
READMES = (ROOT / "README.md", ROOT / "tap-freshbooks" / "README.md")
TABLE_START = (
    "<!-- settings-table: generated from `tap-freshbooks --about --format markdown` by "
    "scripts/hub_definitions.py; edit the setting descriptions in tap.py, not here -->"
)
TABLE_END = "<!-- /settings-table -->"

#: keys of a Hub setting written by hand in hub/tap-freshbooks.yml and kept on regeneration
HAND_KEYS = ("label", "hidden", "placeholder", "documentation", "value")
ENV_SUFFIX = re.compile(r"\s*Env: TAP_FRESHBOOKS_[A-Z0-9_]+\.?\s*$")
#: the order of a setting's keys in the written YAML (name first, description last)
SETTING_KEYS = (
    "name",
    "label",
    "kind",
    "value",
    "options",
    "sensitive",
    "hidden",
    "placeholder",
    "documentation",
    "description",
)
#: words the Hub spells in capitals in labels (as hub-utils does)
LABEL_WORDS = {"Id": "ID", "Ids": "IDs", "Url": "URL", "Api": "API", "Uri": "URI", "Oauth": "OAuth"}


# -- reading --about --------------------------------------------------------------------------
def run_about(fmt: str) -> str:
    """`tap-freshbooks --about --format FMT`, run from this interpreter's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_FRESHBOOKS", "SINGER_SDK_LOG"))}
    proc = subprocess.run(
        [sys.executable, "-m", "tap_freshbooks", "--about", "--format", fmt],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"hub_definitions: tap-freshbooks --about failed: {last}")
    return proc.stdout


def leaf_properties(schema: dict[str, t.Any], prefix: str = "") -> list[tuple[str, dict[str, t.Any]]]:
    """Settings as Meltano names them: nested objects with declared properties become
    `parent.child` leaves (as hub-utils does); `stream_maps` and free-form objects stay whole."""
    leaves: list[tuple[str, dict[str, t.Any]]] = []
    for key, prop in (schema.get("properties") or {}).items():
        name = f"{prefix}{key}"
        if "object" in _types(prop) and prop.get("properties") and key != "stream_maps":
            leaves.extend(leaf_properties(prop, f"{name}."))
            continue
        leaves.append((name, prop))
    return leaves


def _types(prop: dict[str, t.Any]) -> set[str]:
    kind = prop.get("type")
    if isinstance(kind, list):
        return {k for k in kind if k != "null"}
    if isinstance(kind, str):
        return {kind} - {"null"}
    alternatives = prop.get("oneOf") or prop.get("anyOf") or []
    return {k for alt in alternatives if isinstance(alt, dict) for k in _types(alt)}


def kind_and_options(prop: dict[str, t.Any]) -> tuple[str, list[dict[str, str]] | None]:
    types = _types(prop)
    if enum := [v for v in prop.get("enum") or [] if v is not None]:
        return "options", [{"label": str(v), "value": str(v)} for v in enum]
    if prop.get("format") in {"date-time", "date"}:
        return "date_iso8601", None
    for json_type, kind in (
        ("array", "array"),
        ("object", "object"),
        ("boolean", "boolean"),
        ("integer", "integer"),
        ("number", "decimal"),
    ):
        if json_type in types and (types <= {json_type, "string"} or json_type in {"array", "object"}):
            return kind, None
    return "string", None


def label(name: str, prop: dict[str, t.Any]) -> str:
    words = (prop.get("title") or name.replace(".", " ").replace("_", " ").title()).split()
    return " ".join(LABEL_WORDS.get(word, word) for word in words)


def describe(prop: dict[str, t.Any]) -> str:
    return ENV_SUFFIX.sub("", " ".join(str(prop.get("description") or "").split()))


def generated_setting(name: str, prop: dict[str, t.Any]) -> dict[str, t.Any]:
    kind, options = kind_and_options(prop)
    setting: dict[str, t.Any] = {
        "name": name,
        "label": label(name, prop),
        "kind": kind,
        "description": describe(prop),
    }
    if options:
        setting["options"] = options
    if prop.get("secret"):
        setting["sensitive"] = True
    if prop.get("default") is not None:
        setting["value"] = prop["default"]
    return setting


def hub_settings(about: dict[str, t.Any], existing: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The Hub `settings` list: generated from --about, with the hand-written keys kept."""
    by_name = {s["name"]: s for s in existing}
    settings = []
    for name, prop in leaf_properties(about["settings"]):
        setting = generated_setting(name, prop)
        for key in HAND_KEYS:
            if key in by_name.get(name, {}) and not (key == "value" and "value" in setting):
                setting[key] = by_name[name][key]
        settings.append({key: setting[key] for key in SETTING_KEYS if key in setting})
    return sorted(settings, key=lambda s: s["name"])


def drift(about: dict[str, t.Any], settings: list[dict[str, t.Any]]) -> tuple[list[str], list[str]]:
    """(settings the tap has that the definition lacks, settings the definition has that the tap lacks)."""
    tap = {name for name, _ in leaf_properties(about["settings"])}
    defined = {s["name"] for s in settings}
    return sorted(tap - defined), sorted(defined - tap)


def tap_definition(about: dict[str, t.Any], current: dict[str, t.Any]) -> dict[str, t.Any]:
    definition = dict(current)
    definition["settings"] = hub_settings(about, current.get("settings") or [])
    definition["capabilities"] = sorted(about["capabilities"])
    required = sorted(about["settings"].get("required") or [])
    definition["settings_group_validation"] = [required] if required else []
    definition["supported_python_versions"] = list(about.get("supported_python_versions") or [])
    if "structured-logging" in about["capabilities"]:
        definition["log_parser"] = "singer-sdk"
    return dict(sorted(definition.items()))


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (`|`), as the Hub's files have them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: t.Any, **kwargs: t.Any) -> str:
    return yaml.dump(
        data, Dumper=_Dumper, **{"sort_keys": False, "width": 100, "allow_unicode": True, **kwargs}
    )


# -- meltano.yml ------------------------------------------------------------------------------
def replace_plugin_key(
    text: str, plugin: str, key: str, value: t.Any, *, one_line_items: bool = False
) -> str:
    """Rewrite `key:` of the `- name: <plugin>` entry under `plugins:` (4-space keys), leaving
    every other line of meltano.yml as it is. `one_line_items`: a list as `- {...}` lines."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip("\n") == f"  - name: {plugin}"), None)
    if start is None:
        raise SystemExit(f"hub_definitions: meltano.yml has no plugin entry '  - name: {plugin}'")
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("  - ") or (lines[i].strip() and not lines[i].startswith("    "))
        ),
        len(lines),
    )
    key_at = next((i for i in range(start, end) if lines[i].startswith(f"    {key}:")), None)
    if one_line_items:
        items = [dump_yaml(item, default_flow_style=True, width=10**6).strip() for item in value]
        rendered = "\n".join([f"{key}:", *(f"- {item}" for item in items)])
    else:
        rendered = dump_yaml({key: value}, default_flow_style=None if key != "settings" else False)
    block = [f"    {line}\n" if line else "\n" for line in rendered.rstrip("\n").split("\n")]
    if key_at is None:
        return "".join(lines[:end] + block + lines[end:])
    stop = next(
        (
            i
            for i in range(key_at + 1, end)
            if lines[i].startswith("    ")
            and not lines[i].startswith(("     ", "    - "))
            and lines[i].strip()
        ),
        end,
    )
    return "".join(lines[:key_at] + block + lines[stop:])


def meltano_plugin(project: dict[str, t.Any], kind: str, name: str) -> dict[str, t.Any]:
    return next(p for p in project["plugins"][kind] if p["name"] == name)


# -- README tables ----------------------------------------------------------------------------
def settings_table(markdown: str) -> str:
    """The `## Settings` table of `--about --format markdown`, made readable: names in code,
    yes/no, no "None", no "Env:" suffix (the line under the table says how env vars work)."""
    rows = []
    in_settings = False
    for line in markdown.splitlines():
        if line.startswith("## "):
            in_settings = line.strip() == "## Settings"
            continue
        if not in_settings or not line.startswith("| ") or line.startswith(("| Setting ", "|:-")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        name, required, default, description = cells[0], cells[1], cells[2], " | ".join(cells[3:])
        default = "" if default == "None" else f"`{default}`"
        description = ENV_SUFFIX.sub("", description)
        rows.append(f"| `{name}` | {'yes' if required == 'True' else 'no'} | {default} | {description} |")
    if not rows:
        raise SystemExit("hub_definitions: `--about --format markdown` has no Settings table")
    return "\n".join(
        [
            "| Setting | Required | Default | Description |",
            "|:--|:--:|:--:|:--|",
            *rows,
            "",
            "Every setting can also be set as an environment variable `TAP_FRESHBOOKS_<SETTING>` "
            "(with `--config ENV`, and always under Meltano).",
        ]
    )


def replace_table(readme: str, table: str, path: Path) -> str:
    if TABLE_START not in readme or TABLE_END not in readme:
        raise SystemExit(f"hub_definitions: {path} has no settings-table markers")
    head, rest = readme.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}"


# -- main -------------------------------------------------------------------------------------
def expected_files(about: dict[str, t.Any], markdown: str) -> dict[Path, str]:
    """Every generated file as it should be now."""
    current = yaml.safe_load(HUB_TAP.read_text(encoding="utf-8"))
    definition = tap_definition(about, current)
    files = {HUB_TAP: dump_yaml(definition)}
    text = MELTANO_YML.read_text(encoding="utf-8")
    for key in ("capabilities", "settings_group_validation", "settings"):
        text = replace_plugin_key(text, "tap-freshbooks", key, definition[key])
    for plugin, hub_file in HUB_UTILITIES.items():
        settings = yaml.safe_load(hub_file.read_text(encoding="utf-8"))["settings"]
        text = replace_plugin_key(text, plugin, "settings", settings, one_line_items=True)
    files[MELTANO_YML] = text
    table = settings_table(markdown)
    for readme in READMES:
        files[readme] = replace_table(readme.read_text(encoding="utf-8"), table, readme)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated part is stale")
    args = parser.parse_args(argv)
    about = json.loads(run_about("json"))
    files = expected_files(about, run_about("markdown"))
    stale = [path for path, text in files.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run: .venv/bin/python scripts/hub_definitions.py)")
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
