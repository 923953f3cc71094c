"""The code location as ``dagster dev -m freshbooks_dagster.location`` loads it, in the utility's venv.

It must load (Dagster's own validation), hold one partition per account group of the project, and
its 15-minute schedule must ask for one run per ``FRESHBOOKS_DAGSTER_GROUPS_PER_RUN`` groups, each a
partition range (a single-run backfill of those groups).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from security.outputs import save_output

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".meltano" / "utilities" / "freshbooks-dagster" / "venv" / "bin" / "python"
if not PYTHON.exists():
    pytest.skip("the freshbooks-dagster utility is not installed: run scripts/setup", allow_module_level=True)

PROBE = """
import json, os
from datetime import datetime, timezone
from dagster import Definitions, build_schedule_context
from freshbooks_dagster.location import defs

Definitions.validate_loadable(defs)
schedule = defs.get_schedule_def("freshbooks_every_15_minutes")
tick = datetime(2026, 12, 2, 9, 15, tzinfo=timezone.utc)
requests = {}
for per_run in ("1", "50"):
    os.environ["FRESHBOOKS_DAGSTER_GROUPS_PER_RUN"] = per_run
    result = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick))
    requests[per_run] = [{"run_key": r.run_key, "tags": dict(r.tags)} for r in result.run_requests]
job = defs.resolve_job_def("freshbooks_fan_out")
print(json.dumps({"cron": schedule.cron_schedule, "job": schedule.job_name,
                  "partitions": job.partitions_def.get_partition_keys(), "requests": requests}))
"""


def test_code_location_loads_with_a_partition_per_group_and_a_schedule_per_chunk(tmp_path):
    shutil.copy(ROOT / "meltano.yml", tmp_path / "meltano.yml")
    (tmp_path / "orchestration").mkdir()
    shutil.copy(
        ROOT / "orchestration" / "account_groups.meltano.yml.example",
        tmp_path / "orchestration" / "account_groups.meltano.yml",
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRESHBOOKS_DAGSTER", "DAGSTER_", "MELTANO_"))
    }
    env["FRESHBOOKS_DAGSTER_PROJECT_ROOT"] = str(tmp_path)
    proc = subprocess.run(
        [str(PYTHON), "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    save_output("freshbooks_dagster.location probe", proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])

    assert found["cron"] == "*/15 * * * *" and found["job"] == "freshbooks_fan_out"
    assert found["partitions"] == ["maple-leaf", "northwind"]

    def ranges(per_run: str) -> list[tuple[str, str]]:
        return [
            (r["tags"]["dagster/asset_partition_range_start"], r["tags"]["dagster/asset_partition_range_end"])
            for r in found["requests"][per_run]
        ]

    assert ranges("1") == [("maple-leaf", "maple-leaf"), ("northwind", "northwind")]
    assert ranges("50") == [("maple-leaf", "northwind")]  # one run, both groups in parallel
    keys = [r["run_key"] for per_run in ("1", "50") for r in found["requests"][per_run]]
    assert all(key.startswith("20261202T0915-") for key in keys)  # one run per group chunk and tick
