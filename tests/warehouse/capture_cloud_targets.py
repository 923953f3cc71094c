"""Re-capture tests/warehouse/fixtures/cloud_targets.json (run by hand when a cloud loader's
version changes; the tests only read the fixture, they never need the cloud or these packages).

    python -m venv /tmp/sf && /tmp/sf/bin/pip install meltanolabs-target-snowflake==0.20.4
    python -m venv /tmp/bq && /tmp/bq/bin/pip install z3-target-bigquery==0.7.2 "setuptools<70"
    .venv/bin/python tests/warehouse/capture_cloud_targets.py /tmp/sf/bin/python /tmp/bq/bin/python

It records each loader's settings schema (``--about --format=json``) and the SQL type each loader
creates for every JSON-schema shape the tap's flattened catalog uses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "looker"))

from singer_sdk.helpers._flattening import flatten_schema  # noqa: E402

from freshbooks_looker.generate import discover_catalog  # noqa: E402

SF_TYPES = """
import json, sys
from target_snowflake.connector import SnowflakeConnector
from snowflake.sqlalchemy.snowdialect import SnowflakeDialect
shapes = json.load(sys.stdin)
out = {}
for ts in ("TIMESTAMP_NTZ", "TIMESTAMP_TZ"):
    conn = SnowflakeConnector(config={"account": "x", "user": "u", "database": "d", "timestamp_type": ts})
    out[ts] = {k: conn.to_sql_type(json.loads(k)).compile(dialect=SnowflakeDialect()) for k in shapes}
print(json.dumps(out))
"""
BQ_TYPES = """
import json, sys
from target_bigquery.core import bigquery_type
shapes = json.load(sys.stdin)
out = {}
for k in shapes:
    s = json.loads(k)
    t = s.get("type", "string")
    out[k] = bigquery_type(t if isinstance(t, list) else [t], s.get("format")).upper()
print(json.dumps(out))
"""


#: What the tap's decimal type should declare (see tests/warehouse/test_cloud_targets.py).
PROPOSED_DECIMAL = {"type": ["string", "null"], "format": "x-singer.decimal", "precision": 38, "scale": 27}


def shape_key(prop: dict) -> str:
    return json.dumps(
        {k: prop[k] for k in ("type", "format", "precision", "scale") if k in prop}, sort_keys=True
    )


def shapes() -> list[str]:
    out = set()
    for stream in discover_catalog()["streams"]:
        for prop in flatten_schema(stream["schema"], max_level=1)["properties"].values():
            out.add(shape_key(prop))
    out.add(shape_key(PROPOSED_DECIMAL))
    return sorted(out)


def about(python: str, exe: str) -> dict:
    bindir = Path(python).parent
    proc = subprocess.run(
        [str(bindir / exe), "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def main(sf_python: str, bq_python: str) -> None:
    keys = shapes()

    def run(py: str, code: str) -> dict:
        proc = subprocess.run(
            [py, "-c", code], input=json.dumps(keys), capture_output=True, text=True, check=True
        )
        return json.loads(proc.stdout)

    sf_about, bq_about = about(sf_python, "target-snowflake"), about(bq_python, "target-bigquery")
    fixture = {
        "target-snowflake": {
            "package": "meltanolabs-target-snowflake==0.20.4",
            "settings": sf_about["settings"],
            "types": run(sf_python, SF_TYPES),
        },
        "target-bigquery": {
            "package": "z3-target-bigquery==0.7.2 (PyPI); same type mapping at z3z1ma/target-bigquery@090dad0",
            "settings": bq_about["settings"],
            "types": run(bq_python, BQ_TYPES),
        },
    }
    (HERE / "fixtures" / "cloud_targets.json").write_text(
        json.dumps(fixture, indent=1, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
