"""Snowflake and BigQuery without the cloud: what can be checked locally is checked here.

Verified: the meltano.yml loader config validates against each loader's own settings schema
(captured from the pinned packages in fixtures/cloud_targets.json by capture_cloud_targets.py),
deduplication is on (MERGE on the tap's key properties), every column type the tap's catalog
produces maps to an exact or string type (never float), timestamps are zone-aware, and the LookML's
SQL renders and parses in both dialects.

Snowflake is loaded for real (against fakesnow) in test_snowflake_fakesnow.py; BigQuery's installed
loader is checked in test_bigquery_loader.py. Not verified here: Looker's own SQL on either warehouse.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from singer_sdk.helpers._flattening import flatten_schema

from freshbooks_looker import generate
from freshbooks_looker.check import Checker

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "cloud_targets.json").read_text())


def loader(name: str) -> dict:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return next(p for p in project["plugins"]["loaders"] if p["name"] == name)


@pytest.fixture(scope="module")
def catalog() -> dict:
    return generate.discover_catalog()


def shape_key(prop: dict) -> str:
    return json.dumps(
        {k: prop[k] for k in ("type", "format", "precision", "scale") if k in prop}, sort_keys=True
    )


def shapes(catalog: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for stream in catalog["streams"]:
        for col, prop in flatten_schema(stream["schema"], max_level=1)["properties"].items():
            out.setdefault(shape_key(prop), []).append(f"{stream['tap_stream_id']}.{col}")
    return out


def sanitize(schema):
    """Loaders ship slightly invalid JSON Schema (z3: "null" as a bare anyOf member): repair it."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
                value = [{"type": "null"} if item == "null" else item for item in value]
            out[key] = sanitize(value) if isinstance(value, (dict, list)) else value
        return out
    if isinstance(schema, list):
        return [sanitize(item) for item in schema]
    return schema


def validate_config(target: str, config: dict, required_dummies: dict, settings: dict | None = None) -> None:
    """``settings``: the loader's settings schema (default: the captured fixture)."""
    schema = sanitize(settings or FIXTURE[target]["settings"])
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate({**required_dummies, **config})
    unknown = set(config) - set(schema["properties"])
    assert not unknown, f"{target}: meltano.yml sets settings the loader does not have: {unknown}"


def test_snowflake_config_validates_and_deduplicates():
    plugin = loader("target-snowflake")
    assert plugin["pip_url"] == "meltanolabs-target-snowflake==0.20.4"
    config = plugin["config"]
    validate_config(
        "target-snowflake", config, {"account": "acme-xy12345", "user": "LOADER", "database": "ANALYTICS"}
    )
    assert config["load_method"] == "upsert"  # MERGE on key properties; Hub's default would append
    assert config["timestamp_type"] == "TIMESTAMP_TZ"
    assert config["add_record_metadata"] is True  # _sdc_batched_at feeds the datagroup / freshness
    declared = {s["name"] for s in plugin["settings"]}
    assert (
        set(config) <= declared
        and {"account", "user", "password", "private_key", "role", "warehouse", "database"} <= declared
    )


def test_bigquery_config_validates_and_deduplicates():
    plugin = loader("target-bigquery")
    config = plugin["config"]
    validate_config("target-bigquery", config, {"project": "acme-analytics"})
    assert config["denormalized"] is True  # typed columns (required for upsert)
    assert config["upsert"] is True and config["dedupe_before_upsert"] is True
    assert config["method"] in FIXTURE["target-bigquery"]["settings"]["properties"]["method"]["enum"]


LINE_PARENTS = {
    "invoice_lines": "invoice",
    "estimate_lines": "estimate",
    "invoice_profile_lines": "invoice_profile",
}


def test_every_stream_has_merge_keys(catalog):
    for stream in catalog["streams"]:
        keys = stream["key_properties"]
        parent = LINE_PARENTS.get(stream["tap_stream_id"])  # line streams add their parent's id
        want = ["account_id", f"{parent}_id", "id"] if parent else ["account_id", "id"]
        assert keys == want, stream["tap_stream_id"]


@pytest.mark.parametrize(
    "target,types",
    [
        ("target-snowflake", FIXTURE["target-snowflake"]["types"]["TIMESTAMP_TZ"]),
        ("target-bigquery", FIXTURE["target-bigquery"]["types"]),
    ],
)
def test_every_column_type_is_exact_and_zone_aware(catalog, target, types):
    found = shapes(catalog)
    missing = set(found) - set(types)
    assert not missing, f"new column shapes, re-run capture_cloud_targets.py: {missing}"
    for key, columns in found.items():
        sql = types[key]
        assert "FLOAT" not in sql and "DOUBLE" not in sql, (target, key, columns[:3])
        if '"date-time"' in key:
            assert sql in ("TIMESTAMP_TZ", "TIMESTAMP"), (target, sql)  # BigQuery TIMESTAMP is UTC


def test_snowflake_keeps_the_cents(catalog):
    """The tap's decimal type carries precision 38 / scale 27: without it Snowflake creates
    NUMBER(38,0) (and Redshift NUMERIC(18,0)) and rounds the cents away."""
    types = FIXTURE["target-snowflake"]["types"]["TIMESTAMP_TZ"]
    for key in shapes(catalog):
        if "x-singer.decimal" in key:
            assert types[key] != "DECIMAL", f"{key} -> {types[key]} (NUMBER(38,0))"
    proposed = shape_key(
        {"type": ["string", "null"], "format": "x-singer.decimal", "precision": 38, "scale": 27}
    )
    assert types[proposed] == "DECIMAL(38, 27)"


def test_lookml_renders_and_parses_for_snowflake_and_bigquery():
    report = Checker(ROOT / "looker", dialects=["snowflake", "bigquery_standard_sql"]).run()
    assert report.errors == [], report.text()
    assert report.stats["sql parsed (snowflake)"] >= 40
    assert report.stats["sql parsed (bigquery_standard_sql)"] >= 40
