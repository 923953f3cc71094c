"""BigQuery (issue 12): the loader meltano.yml pins installs from PyPI (``meltano install loader
target-bigquery``, run by scripts/setup into .meltano), and is checked through the installed
package itself: its version, its own settings schema (``target-bigquery --about``) against
meltano.yml's config, and the BigQuery column types its denormalized mode creates for every
column the tap produces (its ``SchemaTranslator``, the code that builds the table).

Not run: a load. There is no BigQuery here, and no local engine that a test can start offline:
bqemulator 1.4.0 (PyPI, DuckDB-backed) refuses to start without downloading DuckDB's spatial
extension (measured). The LookML's BigQuery SQL is rendered and parsed (test_cloud_targets.py).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from singer_sdk.helpers._flattening import flatten_schema
from test_cloud_targets import FIXTURE, ROOT, loader, shape_key, validate_config

VENV = ROOT / ".meltano" / "loaders" / "target-bigquery" / "venv"

TYPES = """
import json, sys
from target_bigquery.core import SchemaTranslator
out = {}
for name, schema in json.load(sys.stdin).items():
    out[name] = {
        f.name: [f.field_type, f.mode]
        for f in SchemaTranslator(schema, transforms={}).translated_schema_transformed
    }
print(json.dumps(out))
"""


def run_in_loader_venv(args: list[str], stdin: str | None = None) -> str:
    if not (VENV / "bin" / "target-bigquery").exists():
        pytest.fail(f"{VENV} is missing: run scripts/setup (meltano install loader target-bigquery)")
    return subprocess.run(
        [str(VENV / "bin" / args[0]), *args[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def about() -> dict:
    return json.loads(run_in_loader_venv(["target-bigquery", "--about", "--format", "json"]))


@pytest.fixture(scope="module")
def flattened(catalog) -> dict[str, dict]:
    """Each stream's schema as the tap sends it under meltano.yml (flattening, depth 1)."""
    return {s["tap_stream_id"]: flatten_schema(s["schema"], max_level=1) for s in catalog["streams"]}


@pytest.fixture(scope="module")
def catalog() -> dict:
    from freshbooks_looker import generate

    return generate.discover_catalog()


def test_pinned_from_the_package_registry_and_installed(about):
    pip_url = loader("target-bigquery")["pip_url"]
    assert "git+" not in pip_url and "z3-target-bigquery==0.7.2" in pip_url.split()
    version = run_in_loader_venv(
        ["python", "-c", "import importlib.metadata as m; print(m.version('z3-target-bigquery'))"]
    )
    assert version.strip() == "0.7.2"
    assert about["name"] == "target-bigquery" and about["sdk_version"].startswith("0.22.")


def test_meltano_yml_validates_against_the_installed_settings_schema(about):
    config = loader("target-bigquery")["config"]
    validate_config("target-bigquery", config, {"project": "acme-analytics"}, settings=about["settings"])
    assert (
        about["settings"] == FIXTURE["target-bigquery"]["settings"]
    )  # the captured fixture is this package's
    declared = {s["name"] for s in loader("target-bigquery")["settings"]}
    assert declared <= set(about["settings"]["properties"]), declared - set(about["settings"]["properties"])


def test_column_types_from_the_installed_loader(flattened):
    tables = json.loads(run_in_loader_venv(["python", "-c", TYPES], json.dumps(flattened)))
    assert set(tables) == set(flattened)
    for stream, columns in tables.items():
        props = flattened[stream]["properties"]
        assert set(columns) == set(props), stream
        for col, (bq_type, mode) in columns.items():
            prop = props[col]
            fmt = prop.get("format")
            want = {"date-time": "TIMESTAMP", "date": "DATE", "x-singer.decimal": "STRING"}.get(fmt)
            if want is None:
                types = prop.get("type")
                types = types if isinstance(types, list) else [types]
                want = "INTEGER" if "integer" in types else "BOOLEAN" if "boolean" in types else "STRING"
            assert (bq_type, mode) == (want, "NULLABLE"), (stream, col, prop, bq_type, mode)
            # the captured fixture (used by test_cloud_targets) agrees with the package
            assert FIXTURE["target-bigquery"]["types"][shape_key(prop)] == want
    # money: exact decimal strings land in STRING columns (never FLOAT64); the LookML casts to BIGNUMERIC
    assert tables["invoices"]["amount__amount"] == ["STRING", "NULLABLE"]
    assert tables["invoices"]["updated"] == ["TIMESTAMP", "NULLABLE"]
