"""dlt's rest_api source -> DuckDB over the FreshBooks emulator: a contestant of benchmarks/compare.py.

Runs in benchmarks/.venv-dlt (benchmarks/requirements-dlt.txt), never in the project's venv:

    benchmarks/.venv-dlt/bin/python benchmarks/dlt_pipeline.py JOB.json

JOB.json (written by compare.py): url, token, endpoints (one per stream and account: path, data
selector, pages path, params, primary key, change cursor), pipelines_dir, duckdb path and
loader_file_format (``insert_values`` is dlt's default for DuckDB, or ``parquet``). Every resource
merges on its primary key; streams with a change cursor load incrementally (dlt keeps the cursor in
its pipeline state under pipelines_dir), so running the same job twice is dlt's incremental run.
Prints one JSON line: records extracted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dlt
from dlt.sources.rest_api import rest_api_source


def resource(endpoint: dict) -> dict:
    params: dict = dict(endpoint["params"])
    if endpoint["pages_path"]:
        params["per_page"] = 100
        paginator = {
            "type": "page_number",
            "base_page": 1,
            "page_param": "page",
            "total_path": endpoint["pages_path"],
        }
    else:
        paginator = {"type": "single_page"}
    if endpoint["cursor"]:
        params[endpoint["filter"]] = {
            "type": "incremental",
            "cursor_path": endpoint["cursor"],
            "initial_value": "2000-01-01 00:00:00",
        }
    return {
        "name": endpoint["name"],
        "primary_key": endpoint["primary_key"],
        "write_disposition": "merge",
        "endpoint": {
            "path": endpoint["path"],
            "params": params,
            "data_selector": endpoint["selector"],
            "paginator": paginator,
        },
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    source = rest_api_source(
        {
            "client": {"base_url": job["url"], "auth": {"type": "bearer", "token": job["token"]}},
            "resources": [resource(e) for e in job["endpoints"]],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="freshbooks_bench",
        pipelines_dir=job["pipelines_dir"],
        destination=dlt.destinations.duckdb(job["duckdb"]),
        dataset_name="freshbooks",
    )
    info = pipeline.run(source, loader_file_format=job["loader_file_format"])
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    records = sum(n for table, n in counts.items() if not table.startswith("_dlt"))
    print(json.dumps({"records": records}))


if __name__ == "__main__":
    main()
