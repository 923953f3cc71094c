"""A plugin process started ahead of its run: ``<plugin's python> warm_start.py <console script> <fd>``.

Most of a small Singer run is the interpreter importing the plugin (singer-sdk and the tap: ~0.8
CPU-seconds; target-duckdb and DuckDB: ~0.35), not the run itself. The run supervisor
(``meltano_pipeline.py``) therefore starts the tap and the target before a run is due, with this
bootstrap in front of their console scripts:

1. import the plugin by running its console script as a module that is not ``__main__`` (the
   script's ``from tap_x import main`` lines run, ``main()`` does not);
2. wait for one JSON line on descriptor ``fd``: ``{"argv": [...], "env": {...}}``, the run's
   arguments (its config, catalog and state files) and the variables that belong to this run only
   (``MELTANO_RUN_STATE_ID_SUFFIX`` of a per-account run); end quietly (exit 0) if the descriptor
   closes instead;
3. run the console script as ``__main__`` with that argv: the same code path as starting the
   executable, minus the import time.

Standard library only; it runs in the plugin's own virtualenv and environment, which the
supervisor set when it started this process (the environment Meltano resolved for the plugin, the
same for every run).
"""

from __future__ import annotations

import json
import os
import runpy
import sys


def main() -> int:
    script, fd = sys.argv[1], int(sys.argv[2])
    # this file's directory must not shadow the plugin's modules
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    try:
        runpy.run_path(script, run_name="__warm__")
    except Exception:  # noqa: BLE001  (the real start below reports it with the plugin's own output)
        pass
    with os.fdopen(fd, "r", encoding="utf-8") as control:
        line = control.readline()
    if not line.strip():
        return 0  # not needed after all (the bridge stopped or the project changed)
    run = json.loads(line)
    os.environ.update(run.get("env") or {})
    sys.argv = [script, *run["argv"]]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
